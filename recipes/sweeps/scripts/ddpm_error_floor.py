"""What tiny-ddpm's noise-prediction error is made of at the noisiest levels (recipes/sweeps/2026-11-29-s19-*.txt).

    python recipes/sweeps/scripts/ddpm_error_floor.py course_utils/zoo/tiny-ddpm

recipes/diagnose_ddpm.py is the recipe's diagnosis (per-t noise MSE, its mean-colour part, DDIM's clipping step by
step); this one-off adds what the sweep asked next: x0-hat's error per t, and what the t=980 error is made of.
"""

import sys

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from course_utils.emoji_data import load_emoji


def left_after(features: torch.Tensor, err: torch.Tensor) -> float:
    """MSE of err after the best least-squares fit of it by the columns of features (rows: pixels)."""
    sol = torch.linalg.lstsq(features, err).solution
    return (err - features @ sol).pow(2).mean().item()


def main(path: str) -> None:
    torch.set_num_threads(2)
    unet = UNet2DModel.from_pretrained(path, dtype=torch.float32).eval()
    alphas = DDPMScheduler.from_pretrained(path).alphas_cumprod
    data = load_emoji(32, designs=("noto", "twemoji"))
    idx = data.subset("face")
    gen = torch.Generator().manual_seed(0)
    x0 = data.tensor(idx)[torch.randperm(len(idx), generator=gen)[:128]]
    noise = torch.randn(x0.shape, generator=gen)
    with torch.no_grad():
        for t in (999, 980, 960, 940, 920, 900, 850, 800, 600, 300):
            a = alphas[t]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            err = unet(xt, torch.full((len(x0),), t)).sample - noise
            x0_hat = (xt - (1 - a).sqrt() * (err + noise)) / a.sqrt()
            mean_part = err.mean((2, 3)).pow(2).mean().item()
            print(f"t={t} sigma={((1 - a) / a).sqrt():.1f} eps MSE {err.pow(2).mean():.2e} (mean colour {mean_part:.2e}) "
                  f"x0-hat error {(x0_hat - x0).pow(2).mean().sqrt():.3f} outside [-1, 1] {(x0_hat.abs() > 1).float().mean():.3f}")
            if t != 980:
                continue
            ones = torch.ones(len(x0), xt[0].numel(), 1)
            per_image = [left_after(torch.cat([xt[i].reshape(-1, 1), ones[i]], 1), err[i].reshape(-1, 1)) for i in range(len(x0))]
            print(f"  left after a per-image gain and offset: {sum(per_image) / len(per_image):.2e}")
            rows = err.flatten(2).transpose(1, 2).reshape(-1, 3)
            for k in (1, 3, 5):
                patches = F.unfold(xt, k, padding=k // 2).transpose(1, 2).reshape(-1, 3 * k * k)
                print(f"  left after a shared linear {k}x{k} filter of x_t: {left_after(torch.cat([patches, torch.ones(len(patches), 1)], 1), rows):.2e}")
            frame = torch.ones(32, 32)
            frame[2:-2, 2:-2] = 0
            sq = err.pow(2).mean((0, 1))
            print(f"  2-px frame {sq[frame.bool()].mean():.2e}, interior {sq[~frame.bool()].mean():.2e}")


if __name__ == "__main__":
    main(sys.argv[1])
