"""Write every notebook's badges and install cell from `course_utils/links.py`, or check that they agree.

    python tools/sync_notebook_headers.py            # rewrite the badge line and the install cell of each notebook
    python tools/sync_notebook_headers.py --check    # change nothing; exit 1 and name each notebook that disagrees

The badges are one line of the first (markdown) cell, the title cell: only that line is touched. The install cell
is the first code cell (the second cell): it is replaced whole. Both are written from `course_utils.links`, so the
badges open and the install cell installs the same release (`links.RELEASE_REF`). See RELEASING.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's course_utils, even where another one is installed

from course_utils import links  # noqa: E402

BADGE_MARK = "colab-badge.svg"
INSTALL_MARK = 'if "google.colab" in sys.modules'


def notebook_paths() -> list[Path]:
    return sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def expected_badges(nb_path: Path) -> str:
    return links.badges_markdown(f"notebooks/{nb_path.name}")


def expected_install_cell() -> str:
    return links.install_cell().rstrip("\n")


def header_problems(nb_path: Path) -> list[str]:
    """What is out of date in one notebook's header ([] when it agrees with links.py)."""
    import nbformat

    book = nbformat.read(nb_path, as_version=4)
    problems = []
    first = book.cells[0]
    badge_lines = [line for line in first.source.splitlines() if BADGE_MARK in line]
    if first.cell_type != "markdown" or badge_lines != [expected_badges(nb_path)]:
        problems.append("the badge line of the first cell")
    if len(book.cells) < 2 or book.cells[1].cell_type != "code" or book.cells[1].source != expected_install_cell():
        problems.append("the install cell (the second cell)")
    return problems


def sync(nb_path: Path) -> bool:
    """Rewrite one notebook's badge line and install cell; returns True if the file changed."""
    import nbformat

    book = nbformat.read(nb_path, as_version=4)
    changed = False
    first = book.cells[0]
    if first.cell_type != "markdown" or not first.source.startswith("# "):
        raise SystemExit(f"{nb_path.name}: the first cell must be the markdown title cell ('# NN · Title')")
    lines = first.source.splitlines()
    badges = expected_badges(nb_path)
    at = [i for i, line in enumerate(lines) if BADGE_MARK in line]
    if at:  # replace the badge line where it is (and drop any duplicate)
        new_lines = [badges if i == at[0] else line for i, line in enumerate(lines) if i not in at[1:]]
    else:  # under the title, in a paragraph of its own
        new_lines = lines[:1] + ["", badges] + lines[1:]
    if "\n".join(new_lines) != first.source:
        first.source = "\n".join(new_lines)
        changed = True

    source = expected_install_cell()
    second = book.cells[1] if len(book.cells) > 1 else None
    if second is not None and second.cell_type == "code" and INSTALL_MARK in second.source:
        if second.source != source:
            second.source = source
            second.outputs = []
            changed = True
    else:
        book.cells.insert(1, nbformat.v4.new_code_cell(source))
        changed = True
    if changed:
        nbformat.write(book, nb_path)
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook disagrees")
    args = ap.parse_args()
    paths = notebook_paths()
    if args.check:
        bad = {p.name: header_problems(p) for p in paths}
        bad = {k: v for k, v in bad.items() if v}
        for name, problems in bad.items():
            print(f"{name}: {', '.join(problems)} differ from course_utils/links.py")
        if bad:
            print("Fix: python tools/sync_notebook_headers.py   (then commit the notebooks)")
            return 1
        print(f"{len(paths)} notebooks agree with course_utils/links.py (release {links.RELEASE_REF})")
        return 0
    for p in paths:
        print(f"{p.name}: {'updated' if sync(p) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
