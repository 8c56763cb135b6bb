"""Write ``course_utils/zoo/MANIFEST.sha256``: the sha256 of every file the models load.

    python recipes/make_manifest.py --check     # compare the files with the manifest, write nothing
    python recipes/make_manifest.py --force     # overwrite the manifest (after retraining a model on purpose)

``course_utils.verify_checkpoint`` (and so ``resolve_checkpoint`` in tiny mode) checks the manifest,
and the tests check it too. Regenerating it blesses whatever is on disk, corrupted or not, so it is
never the fix for a failed check (restore the file with git, or reinstall): it needs ``--force``, and
it refuses to write while a file that a checkpoint loads (``EXPECTED_FILES``) is missing.

Entries are relative to ``course_utils/zoo/``. Package data in ``course_utils/data/`` (if that folder
exists) is listed as ``../data/<file>`` and checked with ``course_utils.checkpoints.verify_data("../data")``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"
ZOO = PACKAGE / "zoo"
DATA = PACKAGE / "data"
SKIP = {"README.md", "metrics.json", "training.json", "cpu_run.json", "MANIFEST.sha256"}


def manifest_lines() -> list[str]:
    """One '<sha256>  <path relative to the zoo>' line per file, sorted: the zoo's checkpoints, then package data."""
    lines = []
    for root, prefix in ((ZOO, ""), (DATA, "../data/")):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name not in SKIP and path.suffix != ".png" and "__pycache__" not in path.parts:
                rel = prefix + path.relative_to(root).as_posix()
                lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}")
    return lines


def missing_expected() -> list[str]:
    sys.path.insert(0, str(PACKAGE.parent))
    from course_utils.checkpoints import EXPECTED_FILES

    return [f"{name}/{rel}" for name, files in EXPECTED_FILES.items() for rel in files if not (ZOO / name / rel).is_file()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true",
                      help="overwrite the existing manifest (only after rebuilding a checkpoint on purpose)")
    mode.add_argument("--check", action="store_true", help="report differences with the manifest; write nothing")
    args = ap.parse_args(argv)
    target = ZOO / "MANIFEST.sha256"
    missing = missing_expected()
    if missing:
        print(f"Refusing: {len(missing)} file(s) that the checkpoints load are missing: {', '.join(missing)}.\n"
              "Restore them (`git checkout -- course_utils/zoo/`) or rebuild the checkpoint with its recipe first.",
              file=sys.stderr)
        return 1
    lines = manifest_lines()
    if args.check:
        old = target.read_text().splitlines() if target.exists() else []
        added = [line for line in lines if line not in set(old)]
        removed = [line for line in old if line not in set(lines)]
        for line in removed:
            print(f"- {line}")
        for line in added:
            print(f"+ {line}")
        print("the manifest matches the files" if not (added or removed) else
              f"{len(removed)} line(s) would go and {len(added)} would come (see above); the manifest was not changed")
        return 0 if not (added or removed) else 1
    if target.exists() and not args.force:
        print(f"{target} exists; not overwriting it. A failed integrity check means a file changed: restore it "
              "(`git checkout -- course_utils/zoo/`) or reinstall the course. Only after retraining a model on "
              "purpose run this again with --force (see --check for what would change).", file=sys.stderr)
        return 1
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(target)
    print(f"{len(lines)} files in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
