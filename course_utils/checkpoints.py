"""Hub mode or tiny mode: which checkpoint a notebook's ``from_pretrained`` gets.

Introduced in ``notebooks/00_setup.ipynb``. Every notebook keeps the real hub id in its code::

    path = resolve_checkpoint("google/ddpm-cat-256", mode)
    ddpm = DDPMPipeline.from_pretrained(path)

- ``mode="hub"``: the id itself (a deleted id is mapped to its live successor, with a warning);
- ``mode="tiny"``: the course's own tiny stand-in, shipped inside this package (no network);
- ``mode="auto"``: hub mode only with a GPU and a hub that answers within 3 s (or files already
  cached), tiny mode otherwise. It prints one line saying which and why.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

MODES = ("auto", "hub", "tiny")
ZOO_DIR = Path(__file__).resolve().parent / "zoo"
MANIFEST = ZOO_DIR / "MANIFEST.sha256"

#: real hub id -> the folder of its tiny stand-in in ``course_utils/zoo``
TINY_STAND_INS = {
    "google/ddpm-cat-256": "tiny-ddpm",
    "CompVis/stable-diffusion-v1-4": "tiny-sd",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "tiny-sd",
    "runwayml/stable-diffusion-v1-5": "tiny-sd",
}
#: ids deleted from the hub -> their live successors
DELETED_IDS = {"runwayml/stable-diffusion-v1-5": "stable-diffusion-v1-5/stable-diffusion-v1-5"}
#: the command that rebuilds each stand-in
REBUILD = {
    "tiny-ddpm": "python recipes/train_tiny_ddpm.py",
    "tiny-sd": "python recipes/train_tiny_sd.py --stage vae && python recipes/train_tiny_sd.py --stage unet",
}
HUB_TIMEOUT_S = 3.0


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resolved; the message says what to do."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """True if the Hugging Face hub answers within ``timeout`` seconds.

    Runs in a thread so that a slow DNS lookup cannot stall the caller: the answer always comes
    within ``timeout`` (plus a few milliseconds). ``HF_HUB_OFFLINE=1`` answers False at once.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    import urllib.request

    result = {"ok": False}

    def probe() -> None:
        try:
            req = urllib.request.Request(hub_endpoint() + "/api/models/google/ddpm-cat-256", method="HEAD")
            with urllib.request.urlopen(req, timeout=timeout) as r:
                result["ok"] = r.status < 500
        except Exception:
            result["ok"] = False

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return result["ok"]


def hub_cached(hub_id: str) -> bool:
    """True if the hub checkpoint is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    hit = try_to_load_from_cache(hub_id, "model_index.json")
    return isinstance(hit, str)


def accelerator() -> str | None:
    """'cuda' or 'mps' when one is usable, else None."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


def choose_mode(hub_id: str | None = None, mode: str = "auto") -> tuple[str, str]:
    """Return ``(mode, reason)``. ``mode`` must be 'auto', 'hub' or 'tiny'."""
    check_mode(mode)
    if mode != "auto":
        return mode, f"mode={mode!r} was asked for"
    acc = accelerator()
    if acc is None:
        return "tiny", "no GPU was found, and the real checkpoints take minutes per image on a CPU"
    if hub_id and hub_cached(hub_id):
        return "hub", f"a {acc} GPU is present and {hub_id} is already in the Hugging Face cache"
    if hub_reachable():
        return "hub", f"a {acc} GPU is present and the hub answered within {HUB_TIMEOUT_S:.0f} s"
    return "tiny", f"a {acc} GPU is present but the hub did not answer within {HUB_TIMEOUT_S:.0f} s"


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}. "
                         "'tiny' runs offline on the course's own small models; 'hub' downloads the real "
                         "checkpoints; 'auto' picks hub only with a GPU and a reachable hub.")


def resolve_checkpoint(hub_id: str, mode: str = "auto", verbose: bool = True) -> str:
    """The id or local path to pass to ``from_pretrained`` for ``hub_id`` in ``mode``."""
    check_mode(mode)
    chosen, reason = choose_mode(hub_id, mode)
    if verbose:
        print(f"{chosen} mode for {hub_id}: {reason}.")
    if chosen == "hub":
        live = DELETED_IDS.get(hub_id, hub_id)
        if live != hub_id:
            warnings.warn(f"{hub_id} was deleted from the hub; using its successor {live}.", stacklevel=2)
        if mode == "hub" and not hub_cached(live) and not hub_reachable():
            raise CheckpointError(
                f"Hub mode needs the Hugging Face hub, but it did not answer within {HUB_TIMEOUT_S:.0f} s "
                f"and {live} is not in the local cache.\n"
                "Either run in tiny mode (mode='tiny'), or go online once and cache it: `make cache-hub`.")
        return live
    if hub_id not in TINY_STAND_INS:
        known = "\n  ".join(TINY_STAND_INS)
        raise CheckpointError(f"The course has no tiny stand-in for {hub_id!r}. Known ids:\n  {known}\n"
                              "Use one of them, or mode='hub' for any other hub checkpoint.")
    name = TINY_STAND_INS[hub_id]
    verify_checkpoint(name)
    return str(ZOO_DIR / name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest() -> dict[str, str]:
    """relative path -> sha256, from ``course_utils/zoo/MANIFEST.sha256``."""
    entries = {}
    for line in MANIFEST.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            entries[rel.strip()] = digest
    return entries


def verify_checkpoint(name: str) -> None:
    """Check every file of a tiny checkpoint against the sha256 manifest."""
    if not MANIFEST.exists():
        raise CheckpointError(f"The zoo's manifest {MANIFEST} is missing: reinstall the course "
                              "(`pip install -e .`) or run `python recipes/make_manifest.py`.")
    for rel, digest in read_manifest().items():
        if not rel.startswith(name + "/"):
            continue
        path = ZOO_DIR / rel
        if not path.exists():
            raise CheckpointError(f"The tiny checkpoint file {path} is missing.\n"
                                  f"Restore it with `git checkout -- {path}` or rebuild it: {REBUILD[name]}")
        if _sha256(path) != digest:
            raise CheckpointError(f"The tiny checkpoint file {path} is corrupted (its sha256 does not match "
                                  f"the manifest).\nRestore it with `git checkout -- {path}` or rebuild it: "
                                  f"{REBUILD[name]}, then `python recipes/make_manifest.py`.")


def cache_hub(hub_ids=("google/ddpm-cat-256", "CompVis/stable-diffusion-v1-4")) -> int:
    """Download the hub-mode checkpoints into the Hugging Face cache (``make cache-hub``).

    Safetensors weights and configs only. Offline, it says so within 3 s and returns 1.
    """
    if not hub_reachable():
        print(f"Cannot cache the hub checkpoints: the hub ({hub_endpoint()}) did not answer within "
              f"{HUB_TIMEOUT_S:.0f} s (or HF_HUB_OFFLINE is set). Run `make cache-hub` on a machine that is online; "
              "tiny mode needs nothing.")
        return 1
    from huggingface_hub import snapshot_download

    for hub_id in hub_ids:
        live = DELETED_IDS.get(hub_id, hub_id)
        print(f"caching {live} ...", flush=True)
        path = snapshot_download(live, allow_patterns=["*.json", "*.txt", "*.safetensors"],
                                 ignore_patterns=["*fp16*", "*non_ema*", "*.ckpt", "*.bin", "safety_checker/*"])
        print(f"  -> {path}")
    return 0
