"""Files that ship inside the installed package, so a notebook opened on its own (Colab, Studio Lab: only the
``.ipynb``, no checkout) finds them where ``pip install`` put them, never at a path relative to the checkout.

- ``sample_images()``: the emoji pictures notebook ``04_sd_components`` shows the VAE.
- ``bench_results()``: the committed ``make bench`` results that notebook ``09_making_it_fast`` tabulates
  (``benchmarks/bench.py`` writes them into ``course_utils/bench_results/``).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path


def _folder(name: str) -> Path:
    folder = Path(str(files("course_utils") / name))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is missing: this copy of course_utils was installed without its package data. Reinstall the "
            "course (`pip install .` in the checkout, or the notebook's install cell on Colab / Studio Lab).")
    return folder


def sample_images() -> list[Path]:
    """The PNG files notebook 04 encodes with the VAE (emoji rendered from Noto Color Emoji, OFL 1.1),
    sorted by name. Raises FileNotFoundError, saying how to reinstall, if there are none."""
    found = sorted(_folder("sample_images").glob("*.png"))
    if not found:
        raise FileNotFoundError(f"no sample images in {_folder('sample_images')}: reinstall the course")
    return found


def bench_results() -> list[tuple[dict, str]]:
    """The committed benchmark results of notebook 09: ``(data, markdown_table)`` for each machine, sorted by
    file name. ``data`` is the JSON that ``make bench`` wrote (``data["device"]`` is ``"cpu"`` or ``"cuda"``)."""
    folder = _folder("bench_results")
    return [(json.loads(p.read_text()), p.with_suffix(".md").read_text()) for p in sorted(folder.glob("*.json"))]
