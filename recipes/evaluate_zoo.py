"""Measure the zoo's quality and write ``metrics.json`` next to each checkpoint.

    python recipes/evaluate_zoo.py            # both models, on the CPU (about 2 minutes here)
    python recipes/evaluate_zoo.py --only ddpm
    python recipes/evaluate_zoo.py --only sd --path /tmp/my-run/tiny-sd   # a recipe's --out folder

tiny-ddpm: 64 samples (50 DDPM steps) against 64 random real face emoji at 32 px:
  nearest-real distance / the real set's leave-one-out figure  (<= 1.45: samples look like emoji)
  mean pairwise distance of samples / that of the real set      (>= 0.5: no collapse)
  mean absolute pixel gradient of samples / that of real         (>= 0.75: not blurred)
tiny-sd: for 100 training captions, one 64 px image each (UniPC, 25 steps); every emoji ranked by
  pixel distance at 16x16; the share whose own emoji is among the 10 nearest, at guidance 7.5 and 1.0.
  The VAE's reconstruction PSNR on the held-out emoji.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import ZOO
from tqdm.auto import tqdm

from course_utils.emoji_data import load_emoji

THRESHOLDS = {"nn_ratio_max": 1.45, "diversity_ratio_min": 0.5, "sharpness_ratio_min": 0.75,
              "top10_min": 0.5, "psnr_min": 22.0}


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1)


def ddpm_ratios(samples: torch.Tensor, real: torch.Tensor) -> dict:
    """samples, real: float tensors in [0, 1], shape (N, 3, H, W)."""
    s, r = _flat(samples), _flat(real)
    d_sr = torch.cdist(s, r)
    d_rr = torch.cdist(r, r).fill_diagonal_(float("inf"))
    nn_ratio = d_sr.min(1).values.mean() / d_rr.min(1).values.mean()
    iu = torch.triu_indices(len(s), len(s), 1)
    pair_s = torch.cdist(s, s)[iu[0], iu[1]].mean()
    iu = torch.triu_indices(len(r), len(r), 1)
    pair_r = torch.cdist(r, r)[iu[0], iu[1]].mean()

    def grad(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

    return {"nn_ratio": float(nn_ratio), "diversity_ratio": float(pair_s / pair_r),
            "sharpness_ratio": float(grad(samples) / grad(real))}


def evaluate_ddpm(path) -> dict:
    from diffusers import DDPMPipeline

    t0 = time.perf_counter()
    pipe = DDPMPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(desc="tiny-ddpm: 64 samples")
    out = pipe(batch_size=64, num_inference_steps=50, generator=torch.Generator("cpu").manual_seed(0),
               output_type="np").images
    samples = torch.from_numpy(out).permute(0, 3, 1, 2).float()
    data = load_emoji(32)
    faces = data.subset("face")
    pick = faces[torch.randperm(len(faces), generator=torch.Generator().manual_seed(0))[:64].numpy()]
    real = (data.tensor(pick) + 1) / 2
    m = ddpm_ratios(samples, real)
    m.update(samples=64, real=64, steps=50, seconds=round(time.perf_counter() - t0, 1))
    m["passes"] = (m["nn_ratio"] <= THRESHOLDS["nn_ratio_max"] and m["diversity_ratio"] >= THRESHOLDS["diversity_ratio_min"]
                   and m["sharpness_ratio"] >= THRESHOLDS["sharpness_ratio_min"])
    return m


def top10_share(images: torch.Tensor, own: list[int], all_16: torch.Tensor) -> float:
    """images: (N, 3, 64, 64) in [0, 1]; all_16: every emoji at 16x16 in [0, 1]."""
    q = F.interpolate(images, size=16, mode="area")
    d = torch.cdist(_flat(q), _flat(all_16))
    ranks = d.argsort(1)[:, :10]
    return float(sum(int(o in r.tolist()) for o, r in zip(own, ranks, strict=False)) / len(own))


def evaluate_sd(path) -> dict:
    from diffusers import StableDiffusionPipeline, UniPCMultistepScheduler

    t0 = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(path)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    data = load_emoji(64)
    all_16 = F.interpolate((data.tensor() + 1) / 2, size=16, mode="area")
    g = torch.Generator().manual_seed(0)
    chosen = data.train_idx[torch.randperm(len(data.train_idx), generator=g)[:100].numpy()].tolist()
    prompts = [data.captions[i] for i in chosen]
    m = {"captions": 100, "steps": 25}
    for guidance in (7.5, 1.0):
        images = []
        for i in tqdm(range(0, 100, 20), desc=f"tiny-sd: 100 captions at guidance {guidance}"):
            out = pipe(prompts[i : i + 20], num_inference_steps=25, guidance_scale=guidance,
                       generator=torch.Generator("cpu").manual_seed(i), output_type="np").images
            images.append(torch.from_numpy(out).permute(0, 3, 1, 2).float())
        m[f"top10_at_{guidance}"] = top10_share(torch.cat(images), chosen, all_16)

    held = data.tensor(data.heldout_idx)
    with torch.no_grad():
        rec = torch.cat([pipe.vae.decode(pipe.vae.encode(held[i : i + 64]).latent_dist.mode()).sample
                         for i in range(0, len(held), 64)]).clamp(-1, 1)
    mse = F.mse_loss((rec + 1) / 2, (held + 1) / 2)
    m["vae_psnr_heldout_db"] = float(-10 * torch.log10(mse))
    m["heldout_images"] = len(held)
    m["train_images"] = len(data.train_idx)
    m["seconds"] = round(time.perf_counter() - t0, 1)
    m["passes"] = (m["top10_at_7.5"] >= THRESHOLDS["top10_min"] and m["top10_at_7.5"] > m["top10_at_1.0"]
                   and m["vae_psnr_heldout_db"] >= THRESHOLDS["psnr_min"])
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("ddpm", "sd"))
    ap.add_argument("--path", type=Path, help="evaluate this folder (a recipe's --out) instead of the zoo's; "
                                              "needs --only")
    args = ap.parse_args()
    if args.path and not args.only:
        ap.error("--path evaluates one model: say which with --only ddpm or --only sd")
    if args.path and not (args.path / "model_index.json").exists():
        ap.error(f"{args.path} has no model_index.json: pass the folder a recipe wrote with --out")
    torch.manual_seed(0)
    for name, fn in (("ddpm", evaluate_ddpm), ("sd", evaluate_sd)):
        if args.only and args.only != name:
            continue
        path = args.path or ZOO / f"tiny-{name}"
        metrics = {**fn(path), "thresholds": THRESHOLDS, "machine": "cpu", "torch": torch.__version__}
        (path / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"tiny-{name}:", json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
