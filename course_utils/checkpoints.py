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
import re
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
#: every file each tiny checkpoint loads (what ``from_pretrained`` reads); each must be in the manifest
EXPECTED_FILES = {
    "tiny-ddpm": ("config.json", "diffusion_pytorch_model.safetensors", "model_index.json", "scheduler_config.json"),
    "tiny-sd": ("model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
                "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
                "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                "vae/diffusion_pytorch_model.safetensors"),
}
#: how to get an intact manifest back (never: regenerate it, which would bless whatever is on disk)
RESTORE_MANIFEST = ("Restore it: `git checkout -- course_utils/zoo/MANIFEST.sha256` in a clone of the course, "
                    "or reinstall the course (`pip install --force-reinstall diffusers-course`, or "
                    "`pip install -e .` in a fresh clone).")
_HEX64 = re.compile(r"[0-9a-f]{64}")

#: the hub probe's answer in this process: None, or (endpoint, answer). Set by the first probe.
_hub_probe = None


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resolved; the message says what to do."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = HUB_TIMEOUT_S, refresh: bool = False) -> bool:
    """True if the Hugging Face hub answers within ``timeout`` seconds.

    Runs in a thread so that a slow DNS lookup cannot stall the caller: the answer always comes
    within ``timeout`` (plus a few milliseconds). ``HF_HUB_OFFLINE=1`` answers False at once.
    The answer is remembered for the rest of the process (per ``HF_ENDPOINT``), so a notebook that
    resolves five checkpoints waits at most once; ``refresh=True`` (or ``reset_hub_probe()``) asks again.
    """
    global _hub_probe
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = hub_endpoint()
    if not refresh and _hub_probe is not None and _hub_probe[0] == endpoint:
        return _hub_probe[1]
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
    _hub_probe = (endpoint, bool(result["ok"]))
    return _hub_probe[1]


def reset_hub_probe() -> None:
    """Forget the remembered hub answer: the next ``hub_reachable()`` probes again."""
    global _hub_probe
    _hub_probe = None


def hub_cached(hub_id: str) -> bool:
    """True if the hub checkpoint's ``model_index.json`` is in the local Hugging Face cache (see ``hub_snapshot``)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    hit = try_to_load_from_cache(hub_id, "model_index.json")
    return isinstance(hit, str)


def hub_snapshot(hub_id: str) -> str | None:
    """The local folder of ``hub_id``'s cached snapshot if it is complete, else None. Never touches the network.

    Complete means: ``model_index.json`` is there and every component it names has its folder.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        path = Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or a broken cache entry: not usable offline
        return None
    index = path / "model_index.json"
    if not index.is_file():
        return None
    try:
        import json

        components = [k for k, v in json.loads(index.read_text()).items()
                      if not k.startswith("_") and isinstance(v, list) and v and v[0] is not None]
    except ValueError:
        return None
    flat = (path / "config.json").is_file()  # google/ddpm-cat-256 keeps its one model at the top level
    # cache_hub() skips safety_checker/ (the notebooks load pipelines with safety_checker=None)
    if not flat and any(not (path / c).is_dir() for c in components if c != "safety_checker"):
        return None
    return str(path)


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
    if hub_id and hub_snapshot(DELETED_IDS.get(hub_id, hub_id)):  # complete in the cache: no network needed
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
        local = hub_snapshot(live)
        if local is not None:  # resolved once, here; from_pretrained(local) reads files and never waits on a network
            if verbose:
                print(f"  {live} is in the Hugging Face cache: loading it offline from {local}")
            return local
        if mode == "hub" and not hub_reachable():
            raise CheckpointError(
                f"Hub mode needs the Hugging Face hub, but it did not answer within {HUB_TIMEOUT_S:.0f} s "
                f"and {live} is not (completely) in the local cache.\n"
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
    """relative path -> sha256, from ``course_utils/zoo/MANIFEST.sha256`` (paths relative to the zoo folder).

    A missing, empty or unparsable manifest is a ``CheckpointError``: a check that has nothing to
    compare against must fail, not pass.
    """
    if not MANIFEST.is_file():
        raise CheckpointError(f"The zoo's manifest {MANIFEST} is missing, so the tiny checkpoints cannot be "
                              f"checked.\n{RESTORE_MANIFEST}")
    try:
        text = MANIFEST.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"The zoo's manifest {MANIFEST} cannot be read ({type(e).__name__}: {e}).\n"
                              f"{RESTORE_MANIFEST}") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not _HEX64.fullmatch(parts[0]) or not parts[1].strip():
            raise CheckpointError(f"The zoo's manifest {MANIFEST} is damaged: line {number} is {line[:100]!r}, "
                                  "not '<64 hex digits>  <path>'.\n" + RESTORE_MANIFEST)
        rel = parts[1].strip()
        if rel in entries:
            raise CheckpointError(f"The zoo's manifest {MANIFEST} is damaged: {rel} is listed twice (line {number}).\n"
                                  + RESTORE_MANIFEST)
        entries[rel] = parts[0]
    if not entries:
        raise CheckpointError(f"The zoo's manifest {MANIFEST} is empty, so nothing can be checked.\n{RESTORE_MANIFEST}")
    return entries


def _check_file(rel: str, digest: str, fix: str) -> None:
    path = (ZOO_DIR / rel).resolve()
    package = ZOO_DIR.resolve().parent
    if package not in path.parents:
        raise CheckpointError(f"The zoo's manifest lists {rel!r}, which is outside the course_utils package.\n"
                              + RESTORE_MANIFEST)
    if not path.is_file():
        raise CheckpointError(f"The file {path} is missing.\n{fix}")
    if _sha256(path) != digest:
        raise CheckpointError(f"The file {path} is corrupted (its sha256 does not match the manifest).\n{fix}")


def _fix_advice(path_hint: str, rebuild: str | None = None) -> str:
    advice = (f"Restore it with `git checkout -- {path_hint}` in a clone of the course, or reinstall the course "
              "(`pip install --force-reinstall diffusers-course`, or `pip install -e .` in a fresh clone)")
    if rebuild:
        advice += f", or rebuild the checkpoint with its recipe: {rebuild}"
    return advice + "."


def verify_checkpoint(name: str) -> None:
    """Check every file of a tiny checkpoint against the sha256 manifest (notebook 00).

    Every file in ``EXPECTED_FILES[name]`` must be listed in the manifest, exist and match; any other
    manifest entry under ``name/`` is checked too. An unknown name is an error, not a pass.
    """
    if name not in EXPECTED_FILES:
        raise CheckpointError(f"Unknown tiny checkpoint {name!r}: the zoo has {', '.join(sorted(EXPECTED_FILES))}. "
                              "Use resolve_checkpoint(hub_id, 'tiny') to get one from its hub id.")
    entries = read_manifest()
    folder = f"course_utils/zoo/{name}"
    for rel in EXPECTED_FILES[name]:
        if f"{name}/{rel}" not in entries:
            raise CheckpointError(f"The zoo's manifest {MANIFEST} has no entry for {name}/{rel}, a file the "
                                  f"{name} checkpoint loads: the manifest is incomplete, so the file cannot be "
                                  f"checked.\n{RESTORE_MANIFEST}")
    for rel, digest in entries.items():
        if rel.startswith(name + "/"):
            _check_file(rel, digest, _fix_advice(f"{folder}/{rel[len(name) + 1:]}", REBUILD[name]))


def verify_data(prefix: str, expected=()) -> list[str]:
    """Check every manifest entry whose path starts with ``prefix + '/'`` (package data other than checkpoints).

    Manifest paths are relative to ``course_utils/zoo/``: data shipped in ``course_utils/data/`` is
    listed as ``../data/<file>`` and checked with ``verify_data("../data")``. ``expected`` names files
    (relative to the prefix) that must be listed. Returns the checked paths; none at all is an error.
    """
    prefix = prefix.rstrip("/")
    if prefix in EXPECTED_FILES:
        verify_checkpoint(prefix)
        return [f"{prefix}/{rel}" for rel in EXPECTED_FILES[prefix]]
    entries = read_manifest()
    checked = [rel for rel in entries if rel.startswith(prefix + "/")]
    for rel in expected:
        if f"{prefix}/{rel}" not in entries:
            raise CheckpointError(f"The zoo's manifest {MANIFEST} has no entry for {prefix}/{rel}.\n{RESTORE_MANIFEST}")
    if not checked:
        raise CheckpointError(f"The zoo's manifest {MANIFEST} lists nothing under {prefix!r}/, so there is nothing "
                              f"to check.\n{RESTORE_MANIFEST}")
    package = ZOO_DIR.resolve().parent
    for rel in checked:
        path = (ZOO_DIR / rel).resolve()
        hint = f"course_utils/{path.relative_to(package).as_posix()}" if package in path.parents else rel
        _check_file(rel, entries[rel], _fix_advice(hint))
    return checked


def cache_hub(hub_ids=("google/ddpm-cat-256", "CompVis/stable-diffusion-v1-4")) -> int:
    """Download the hub-mode checkpoints into the Hugging Face cache (``make cache-hub``).

    Safetensors weights and configs only. Offline, it says so within 3 s and returns 1.
    """
    if isinstance(hub_ids, str):
        raise TypeError(f"cache_hub() takes a list of hub ids, not the string {hub_ids!r}: cache_hub([{hub_ids!r}]).")
    unknown = [h for h in hub_ids if h not in TINY_STAND_INS]
    if unknown:
        raise CheckpointError(f"cache_hub() caches the course's own hub checkpoints; {unknown} is not one of them. "
                              f"Known ids: {', '.join(TINY_STAND_INS)}.")
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
