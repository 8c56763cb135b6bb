"""Build the Jupyter Book offline: `make book` -> book/_build/html (warnings are errors).

Copies the committed notebooks (with their tiny-mode outputs) and their assets into book/notebooks/,
collects every notebook's exercises and solutions into book/_solutions.md for the instructor guide,
then runs `jupyter-book build` with -W. Nothing is executed: the outputs are the committed ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"


def solutions_markdown() -> str:
    import nbformat

    parts = []
    for nb_path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown" and cell.source.startswith("## Exercises"):
                title = nb.cells[0].source.splitlines()[0].lstrip("# ")
                body = cell.source.removeprefix("## Exercises").strip()
                # a blank line after the label: a solution that starts with a code fence must start a line
                body = re.sub(r"<details><summary>Solution</summary>\s*", "**Solution.**\n\n", body)
                body = body.replace("</details>", "")
                parts.append(f"### {title}\n\n{body}\n")
    return "\n".join(parts)


def prepare() -> None:
    dest = BOOK / "notebooks"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for nb in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        shutil.copy(nb, dest / nb.name)
    (BOOK / "_solutions.md").write_text(solutions_markdown())


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args(argv)  # --help prints this and builds nothing; any other argument is an error
    exe = Path(sys.executable).with_name("jupyter-book")
    if not exe.exists():
        ap.error(f"{exe} is missing: install the course's book extras (`make install`) first")
    prepare()
    cmd = [str(exe), "build", str(BOOK), "-W", "-n", "--keep-going", "--path-output", str(BOOK)]
    r = subprocess.run(cmd)
    if r.returncode == 0:
        print(f"\nThe book is in {BOOK / '_build' / 'html'}/index.html")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
