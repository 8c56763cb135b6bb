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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path, nargs="?", default=ZOO / "tiny-ddpm")
    args = ap.parse_args()
    if not (args.path / "config.json").exists():
        ap.error(f"{args.path} has no config.json: pass a tiny-ddpm folder (the zoo's, or a recipe's --out)")
    print(f"{args.path}:  t, sigma_t, MSE of the predicted noise, of its per-channel means (chance ~ 1/HW), slope")
    for r in diagnose(args.path):
        print(f"  t={r['t']:4d}  sigma={r['sigma']:7.2f}  mse {r['mse']:.5f}  dc_mse {r['dc_mse']:.6f} "
              f"(chance {r['chance_dc_mse']:.6f})  slope {r['slope']:.4f}")


if __name__ == "__main__":
    main()
