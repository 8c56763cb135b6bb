"""Where does a tiny-ddpm checkpoint's noise prediction go wrong? Per timestep, on real face emoji.

    python recipes/diagnose_ddpm.py                       # the zoo's tiny-ddpm
    python recipes/diagnose_ddpm.py /tmp/run/tiny-ddpm    # a recipe's --out folder

For each t: the MSE of the predicted noise, the part of it that is each channel's mean (the "DC": one number
per image and colour channel), and the regression slope of the prediction on the true noise. The samplers
without clipping (PNDM, Euler, UniPC, DPM-Solver++) turn an error of the predicted noise at timestep t into an
error of the image of about sigma_t times as much (sigma_999 = 157 for these linear betas).

What it found (2026-11-26): with diffusers' default ``norm_num_groups=32`` the committed tiny-ddpm (32-channel
first block: one channel per group) predicts the noise's per-channel mean no better than zero at any t
(DC error about 1/1024, the variance of a mean of 32x32 pixels), which is half of all its error at t=999;
those samplers then drift to flat colours. A run with ``--norm-groups 8`` learns it within 250 steps.

    python recipes/diagnose_ddpm.py --clip                # why DDIM gets worse from 10 to 50 steps

``--clip`` follows DDIM's 50 steps (``clip_sample=True``, inherited from google/ddpm-cat-256's config) and prints,
per step, the share of pixels whose predicted x0 lies outside [-1, 1] and by how much on average; then
evaluate_zoo's nearest-real figure for DDIM 10 and 50 with and without the clipping. What it found (2026-11-27,
the committed weights): at t=980, 76% of x0's pixels are out of range by 1.8 on average; by t=500, 2%. Clipping
only at t >= 500 does all the damage (DDIM 50: 1.40 with it, 1.09 without); clipping only below 500 costs nothing
measurable. The emoji's white backgrounds sit at exactly +1, so the clip is one-sided there and darkens the picture
step after step (mean pixel 0.59 vs 0.67). A posterior-mean x0 never leaves the data's range, so the fix is a
model whose noise prediction is precise at t >= 800 (x0's error there is the noise's error times up to 157).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import ZOO
from evaluate_zoo import real_faces


def diagnose(path: Path, n: int = 64, timesteps=(999, 950, 900, 800, 600, 400, 200, 50)) -> list[dict]:
    from diffusers import DDPMScheduler, UNet2DModel

    unet = UNet2DModel.from_pretrained(path).eval()
    scheduler = DDPMScheduler.from_pretrained(path)
    x0 = real_faces(n) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    rows = []
    for t in timesteps:
        eps = torch.randn(x0.shape, generator=gen)
        tt = torch.full((n,), t)
        with torch.no_grad():
            pred = unet(scheduler.add_noise(x0, eps, tt), tt).sample
        err = pred - eps
        dc = err.mean((2, 3))
        a = scheduler.alphas_cumprod[t]
        rows.append({"t": t, "sigma": float(((1 - a) / a).sqrt()), "mse": float(err.pow(2).mean()),
                     "dc_mse": float(dc.pow(2).mean()), "chance_dc_mse": 1 / (x0.shape[-1] * x0.shape[-2]),
                     "slope": float((pred * eps).sum() / (eps * eps).sum())})
    return rows


def clip_report(path: Path, n: int = 64, steps: int = 50) -> dict:
    """DDIM with the checkpoint's own config: per step, how far the predicted x0 leaves [-1, 1]; then the
    nearest-real figure of DDIM 10 and ``steps`` with the inherited clipping and without it."""
    import json

    from diffusers import DDIMScheduler, UNet2DModel
    from evaluate_zoo import ddpm_ratios, sample_ddpm

    unet = UNet2DModel.from_pretrained(path).eval()
    config = json.loads((Path(path) / "scheduler_config.json").read_text())
    scheduler = DDIMScheduler.from_config(config)
    scheduler.set_timesteps(steps)
    x = torch.randn((n, 3, unet.config.sample_size, unet.config.sample_size), generator=torch.Generator().manual_seed(0))
    per_step = []
    for t in scheduler.timesteps:
        with torch.no_grad():
            eps = unet(x, t).sample
        a = scheduler.alphas_cumprod[t]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()  # what DDIMScheduler.step computes before it clips
        excess = (x0.abs() - 1).clamp(min=0)
        per_step.append({"t": int(t), "out_of_range": float((excess > 0).float().mean()), "mean_excess": float(excess.mean())})
        x = scheduler.step(eps, t, x).prev_sample
    real = real_faces(n)
    nearest = {}
    for clip in (True, False):
        for k in (10, steps):
            s = DDIMScheduler.from_config(config, clip_sample=clip)
            nearest[f"DDIM {k}, clip_sample={clip}"] = ddpm_ratios(sample_ddpm(unet, s, k, n, 0, "cpu"), real)["nn_ratio"]
    return {"per_step": per_step, "nearest": nearest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path, nargs="?", default=ZOO / "tiny-ddpm")
    ap.add_argument("--clip", action="store_true", help="DDIM's clipping of x0, step by step (see above)")
    args = ap.parse_args()
    if not (args.path / "config.json").exists():
        ap.error(f"{args.path} has no config.json: pass a tiny-ddpm folder (the zoo's, or a recipe's --out)")
    if args.clip:
        r = clip_report(args.path)
        print(f"{args.path}: DDIM 50 steps, predicted x0 outside [-1, 1] (share of pixels, mean excess)")
        for row in r["per_step"]:
            print(f"  t={row['t']:4d}  {row['out_of_range']:6.1%}  {row['mean_excess']:.4f}")
        print("nearest real emoji (evaluate_zoo's figure; threshold 1.45):")
        for k, v in r["nearest"].items():
            print(f"  {k:28s} {v:.3f}")
        return
    print(f"{args.path}:  t, sigma_t, MSE of the predicted noise, of its per-channel means (chance ~ 1/HW), slope")
    for r in diagnose(args.path):
        print(f"  t={r['t']:4d}  sigma={r['sigma']:7.2f}  mse {r['mse']:.5f}  dc_mse {r['dc_mse']:.6f} "
              f"(chance {r['chance_dc_mse']:.6f})  slope {r['slope']:.4f}")


if __name__ == "__main__":
    main()
