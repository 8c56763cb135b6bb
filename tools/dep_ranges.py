"""The dependency ranges of pyproject.toml, for `make test-oldest` and `make test-latest`.

    python tools/dep_ranges.py lower     # pip constraints: each runtime dependency at its lower bound (torch excepted)
    python tools/dep_ranges.py names     # runtime dependencies by bare name ("the newest release"), dev tools as declared
    python tools/dep_ranges.py report    # installed version of each runtime dependency against its declared range

torch is left out of `lower` and `names`: the Makefile installs it first from TORCH_SPEC, because a bare
`pip install torch` pulls a multi-GB CUDA build (README, "Tested versions").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
LOWER = re.compile(r">=\s*([0-9][^,;\s]*)")
UPPER = re.compile(r"<\s*([0-9][^,;\s]*)")


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def runtime() -> list[str]:
    return pyproject()["project"]["dependencies"]


def dev() -> list[str]:
    return pyproject()["project"]["optional-dependencies"]["dev"]


def name(req: str) -> str:
    return NAME.match(req).group(1)


def lower_constraints() -> list[str]:
    out = []
    for req in runtime():
        if name(req) == "torch":
            continue
        low = LOWER.search(req)
        if not low:
            raise SystemExit(f"pyproject.toml: {req!r} has no lower bound (>=): every range must have one")
        out.append(f"{name(req)}=={low.group(1)}")
    return out


def report() -> int:
    """Each runtime dependency: installed version, declared range, and whether it lies inside."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    outside = 0
    for req in runtime():
        r = Requirement(req)
        try:
            have = md.version(r.name)
        except md.PackageNotFoundError:
            have = "missing"
        ok = have != "missing" and r.specifier.contains(have, prereleases=True)
        outside += not ok
        print(f"  {r.name:16s} {have:14s} {str(r.specifier):16s} {'' if ok else '<- outside the declared range'}")
    return outside


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "lower":
        print("\n".join(lower_constraints()))
    elif what == "names":
        # runtime dependencies bare (their newest release, past any upper bound); the dev tools as declared
        # (jupyter-book 2 is another program, not a newer release of the one `make book` drives)
        print("\n".join(sorted({name(r) for r in runtime()} - {"torch"}) + sorted(r.replace(" ", "") for r in dev())))
    elif what == "report":
        outside = report()
        if outside:
            print(f"{outside} installed version(s) outside pyproject.toml's ranges: if the tests passed, widen the "
                  "range to include them (RELEASING.md)")
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
