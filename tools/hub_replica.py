"""Replicas of the course's hub checkpoints: the real configs, CLIP's real tokenizer, seeded random weights.

    HF_HOME=.cache/hub-replica python tools/hub_replica.py          # what `make hub-replica` runs
    HF_HOME=.cache/hub-replica python tools/hub_replica.py --repo google/ddpm-cat-256

Hub mode is tested with these where the hub cannot be reached (issue 11). Each replica is written into the
Hugging Face cache that ``HF_HOME`` names (its ``hub/`` folder, or ``HF_HUB_CACHE``), laid out exactly as
``make cache-hub`` (``course_utils.checkpoints.cache_hub`` -> ``snapshot_download``) leaves the real one:
``models--org--name/{blobs,refs/main,snapshots/<commit>/...}``, the same files and subfolders, safetensors
only, no ``safety_checker/`` (cache_hub skips it; ``model_index.json`` still lists it, as the real one does,
so pipelines are loaded with ``safety_checker=None``). Then, with ``HF_HUB_OFFLINE=1``,
``from_pretrained(repo_id)``, ``snapshot_download(repo_id, local_files_only=True)`` and
``try_to_load_from_cache`` resolve them.

- configs: byte copies of the published ones, committed in ``tools/hub_configs/`` (from the project's shared
  ``hub-configs``; its README gives their provenance);
  stable-diffusion-v1-5/stable-diffusion-v1-5 has the architecture of v1-4 and reuses v1-4's configs
  (the shared folder has no v1-5 copy);
- tokenizer: CLIP's real BPE (``course_utils/zoo/tiny-sd/tokenizer``'s vocab.json and merges.txt) with the
  hub's tokenizer_config.json (model_max_length 77) and special_tokens_map.json;
- weights: each model built from its config (``from_config`` / ``CLIPTextModel(CLIPTextConfig)``) after
  ``torch.manual_seed(seed + crc32(component))``, saved as safetensors. v1-4 and v1-5 get the same weights
  (same component names), so v1-5's blobs are hard links to v1-4's where the file system allows.

A replica draws noise: it tests the machinery (classes, configs, shapes, loops == pipelines), never what a
trained model draws. It is never written into your real cache by accident: HF_HOME must be set, and a
snapshot that was not written by this tool is never touched. Each repo folder gets a stamp,
``.course-replica.json`` (outside the snapshot), that ``course_utils.workload.is_replica`` reads; a replica
whose stamp matches is skipped, so the command is cheap the second time.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import sys
import time
import zlib
from pathlib import Path

from course_utils.workload import REPLICA_STAMP as STAMP  # the stamp is_replica() reads: one name, one place

REPO = Path(__file__).resolve().parents[1]
# The published configs, committed (byte copies of the project's shared/hub-configs, whose README gives provenance),
# so that an instructor can build the replicas from a clone alone; tests check the copy against shared/ where it is.
CONFIGS = Path(os.environ.get("COURSE_HUB_CONFIGS", REPO / "tools" / "hub_configs"))
SHARED_CONFIGS = REPO.parent / "shared" / "hub-configs"
TOKENIZER = REPO / "course_utils" / "zoo" / "tiny-sd" / "tokenizer"
BUILDER_VERSION = 1

#: repo id -> (folder under CONFIGS, {file in the snapshot: where it comes from})
#: sources: "config:<path>" (a byte copy from CONFIGS), "tokenizer:<file>" (the zoo's CLIP BPE),
#: "weights:<component>" (seeded random weights, built from the component's config)
SD_FILES = {
    "model_index.json": "config:model_index.json",
    "feature_extractor/preprocessor_config.json": "config:feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json": "config:scheduler/scheduler_config.json",
    "text_encoder/config.json": "config:text_encoder/config.json",
    "text_encoder/model.safetensors": "weights:text_encoder",
    "tokenizer/merges.txt": "tokenizer:merges.txt",
    "tokenizer/special_tokens_map.json": "config:tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json": "config:tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json": "tokenizer:vocab.json",
    "unet/config.json": "config:unet/config.json",
    "unet/diffusion_pytorch_model.safetensors": "weights:unet",
    "vae/config.json": "config:vae/config.json",
    "vae/diffusion_pytorch_model.safetensors": "weights:vae",
}
REPLICAS = {
    "google/ddpm-cat-256": ("google--ddpm-cat-256", {
        "config.json": "config:config.json",
        "diffusion_pytorch_model.safetensors": "weights:ddpm_unet",
        "model_index.json": "config:model_index.json",
        "scheduler_config.json": "config:scheduler_config.json",
    }),
    "CompVis/stable-diffusion-v1-4": ("CompVis--stable-diffusion-v1-4", SD_FILES),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("CompVis--stable-diffusion-v1-4", SD_FILES),
}


class ReplicaError(RuntimeError):
    """The replica cannot be written; the message says what to do."""


def hub_cache() -> Path:
    """The hub cache folder that huggingface_hub reads (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if not os.environ.get("HF_HOME"):
        raise ReplicaError(
            "HF_HOME is not set, so the replicas would go into your real Hugging Face cache "
            "(~/.cache/huggingface), where hub mode would then load random weights instead of the real ones.\n"
            "Name a separate cache: HF_HOME=.cache/hub-replica python tools/hub_replica.py "
            "(or just `make hub-replica`), and point HF_HOME there when you run the notebooks on the replicas.")
    return Path(os.environ["HF_HOME"]).expanduser() / "hub"


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def config_source(repo_id: str) -> Path:
    folder = CONFIGS / REPLICAS[repo_id][0]
    if not folder.is_dir():
        raise ReplicaError(f"The hub configs of {repo_id} are not in {folder}. They are committed in tools/hub_configs "
                           "(copies of the published hub-configs, see its README); restore them with `git checkout -- tools/hub_configs` "
                           "or set COURSE_HUB_CONFIGS to where they are.")
    return folder


def component_seed(seed: int, component: str) -> int:
    return seed + zlib.crc32(component.encode())


def git_blob_sha1(data: bytes) -> str:
    """The id the hub gives a regular (non-LFS) file, and the name of its blob in the cache."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def plan(repo_id: str, seed: int) -> dict:
    """What the replica will hold: each file's source and, for small files, its content hash. Cheap."""
    folder = config_source(repo_id)
    files = {}
    for rel, source in REPLICAS[repo_id][1].items():
        kind, _, what = source.partition(":")
        if kind == "config":
            files[rel] = {"source": f"{folder.name}/{what}", "blob": git_blob_sha1((folder / what).read_bytes())}
        elif kind == "tokenizer":
            files[rel] = {"source": f"course_utils/zoo/tiny-sd/tokenizer/{what}",
                          "blob": git_blob_sha1((TOKENIZER / what).read_bytes())}
        else:
            files[rel] = {"source": f"random weights, torch.manual_seed({component_seed(seed, what)})",
                          "component": what}
    return {"builder_version": BUILDER_VERSION, "repo_id": repo_id, "seed": seed, "files": files}


def build_model(component: str, config_dir: Path, seed: int):
    """The component's model class, built from its real config with seeded random weights."""
    import torch

    torch.manual_seed(component_seed(seed, component))
    if component == "ddpm_unet":
        from diffusers import UNet2DModel

        return UNet2DModel.from_config(UNet2DModel.load_config(config_dir))
    if component == "unet":
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config_dir / "unet"))
    if component == "vae":
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_config(AutoencoderKL.load_config(config_dir / "vae"))
    if component == "text_encoder":
        from transformers import CLIPTextConfig, CLIPTextModel

        return CLIPTextModel(CLIPTextConfig.from_pretrained(config_dir / "text_encoder"))
    raise ValueError(f"unknown component {component!r}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_weights(model, blobs: Path) -> str:
    """Save the model's weights as one safetensors blob; returns its sha256 (the blob's name, as on the hub)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = blobs / f".incoming-{os.getpid()}.safetensors"
    save_file(state, str(tmp), metadata={"format": "pt"})
    del state
    digest = sha256_file(tmp)
    tmp.replace(blobs / digest)
    return digest


def read_stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, stamp: dict) -> bool:
    """Every file of the stamped snapshot is there, and each blob has the size the stamp says."""
    ref = folder / "refs" / "main"
    if not ref.is_file() or ref.read_text().strip() != stamp.get("commit"):
        return False
    snap = folder / "snapshots" / stamp["commit"]
    for rel, entry in stamp["files"].items():
        p = snap / rel
        if not p.is_file() or p.stat().st_size != entry.get("size"):
            return False
    return True


def commit_of(repo_id: str, files: dict) -> str:
    """The snapshot's name: a hash of the repo id and of every file's blob (the hub names it by its git commit)."""
    return hashlib.sha1(json.dumps([repo_id, {r: f["blob"] for r, f in sorted(files.items())}]).encode()).hexdigest()


def stamp_matches(folder: Path, want: dict) -> bool:
    have = read_stamp(folder)
    if have is None or not is_complete(folder, have) or have.get("commit") != commit_of(want["repo_id"], have["files"]):
        return False
    if {k: have.get(k) for k in ("builder_version", "repo_id", "seed")} != {k: want[k] for k in ("builder_version", "repo_id", "seed")}:
        return False
    for rel, entry in want["files"].items():
        got = have["files"].get(rel, {})
        if got.get("source") != entry["source"] or ("blob" in entry and got.get("blob") != entry["blob"]):
            return False
    return set(have["files"]) == set(want["files"])


def link_snapshot_file(snap: Path, rel: str, blob: str) -> None:
    """snapshots/<commit>/<rel> -> ../../blobs/<blob>, a relative symlink as huggingface_hub makes (a copy where
    symlinks are not allowed)."""
    target = snap / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    blob_path = snap.parents[1] / "blobs" / blob
    try:
        target.symlink_to(os.path.relpath(blob_path, target.parent))
    except OSError:
        shutil.copyfile(blob_path, target)


def build(repo_id: str, cache: Path, seed: int = 0, force: bool = False, log=print) -> dict:
    """Write one replica into ``cache`` (skipped when its stamp matches); returns its stamp."""
    want = plan(repo_id, seed)
    folder = repo_folder(cache, repo_id)
    if not force and stamp_matches(folder, want):
        log(f"{repo_id}: replica up to date in {folder}")
        return read_stamp(folder)
    if (folder / "snapshots").is_dir() and read_stamp(folder) is None:
        raise ReplicaError(f"{folder} holds a snapshot that this tool did not write (the real checkpoint?). "
                           "It is left alone: point HF_HOME at another folder for the replicas.")
    t0 = time.perf_counter()
    blobs = folder / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    config_dir = config_source(repo_id)
    sibling_blobs = {}  # component -> blob of the same weights in another repo folder of this cache (v1-4 / v1-5)
    for other in REPLICAS:
        stamp = read_stamp(repo_folder(cache, other)) if other != repo_id else None
        if stamp and stamp.get("seed") == seed and is_complete(repo_folder(cache, other), stamp):
            for entry in stamp["files"].values():
                if "component" in entry and REPLICAS[other][0] == REPLICAS[repo_id][0]:
                    sibling_blobs[entry["component"]] = (repo_folder(cache, other) / "blobs" / entry["blob"])
    files = {}
    for rel, entry in want["files"].items():
        kind, _, what = REPLICAS[repo_id][1][rel].partition(":")
        if kind in ("config", "tokenizer"):
            data = (config_dir / what).read_bytes() if kind == "config" else (TOKENIZER / what).read_bytes()
            (blobs / entry["blob"]).write_bytes(data)
            files[rel] = dict(entry, size=len(data))
            continue
        src = sibling_blobs.get(what)
        if src is not None and src.is_file():
            dst = blobs / src.name
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            log(f"  {rel}: the same weights as {src.parents[1].name} (linked)")
            files[rel] = dict(entry, blob=src.name, size=dst.stat().st_size)
            continue
        t1 = time.perf_counter()
        model = build_model(what, config_dir, seed)
        n = sum(p.numel() for p in model.parameters())
        digest = write_weights(model, blobs)
        del model
        gc.collect()
        size = (blobs / digest).stat().st_size
        log(f"  {rel}: {n / 1e6:.1f} M parameters, {size / 2**30:.2f} GiB, {time.perf_counter() - t1:.1f} s")
        files[rel] = dict(entry, blob=digest, size=size)
    commit = commit_of(repo_id, files)
    snap = folder / "snapshots" / commit
    for rel, entry in files.items():
        link_snapshot_file(snap, rel, entry["blob"])
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)  # no newline, as huggingface_hub writes it
    for old in (folder / "snapshots").iterdir():  # an older replica's snapshot
        if old.name != commit:
            shutil.rmtree(old)
    used = {f["blob"] for f in files.values()}
    for blob in blobs.iterdir():
        if blob.name not in used:
            blob.unlink()
    stamp = dict(want, files=files, commit=commit,
                 note="A replica of the real checkpoint (real configs, random weights), written by tools/hub_replica.py; "
                      "it draws noise. Delete this folder to get rid of it.")
    (folder / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    log(f"{repo_id}: replica written in {time.perf_counter() - t0:.1f} s -> {snap}")
    return stamp


def disk_usage(folder: Path) -> int:
    """Bytes on disk under ``folder``, hard links counted once."""
    seen, total = set(), 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", choices=sorted(REPLICAS), metavar="REPO_ID",
                    help=f"a hub id to replicate (repeatable); default all: {', '.join(REPLICAS)}")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the random weights (default 0)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = ap.parse_args(argv)
    if args.seed < 0:
        ap.error(f"--seed must be >= 0, not {args.seed}")
    try:
        cache = hub_cache()
        t0 = time.perf_counter()
        for repo_id in args.repo or list(REPLICAS):
            build(repo_id, cache, seed=args.seed, force=args.force)
    except ReplicaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"hub replicas ready in {cache} ({disk_usage(cache) / 2**30:.2f} GiB on disk, "
          f"{time.perf_counter() - t0:.1f} s). Use them with: HF_HOME={cache.parent} HF_HUB_OFFLINE=1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
