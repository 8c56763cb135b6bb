"""Write ``course_utils/zoo/MANIFEST.sha256``: the sha256 of every file the models load.

    python recipes/make_manifest.py

``course_utils.verify_checkpoint`` (and so ``resolve_checkpoint`` in tiny mode) checks it, and
the tests check it too. Run it after retraining a model.
"""

import hashlib
from pathlib import Path

ZOO = Path(__file__).resolve().parents[1] / "course_utils" / "zoo"
SKIP = {"README.md", "metrics.json", "training.json", "cpu_run.json", "MANIFEST.sha256"}


def main() -> None:
    lines = []
    for path in sorted(ZOO.rglob("*")):
        if path.is_file() and path.name not in SKIP and path.suffix != ".png":
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(ZOO).as_posix()}")
    (ZOO / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} files in {ZOO / 'MANIFEST.sha256'}")


if __name__ == "__main__":
    main()
