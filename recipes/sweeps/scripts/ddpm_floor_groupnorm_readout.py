"""Two more probes of tiny-ddpm's noise-error floor at the noisiest levels (recipes/sweeps/2026-12-06-s21-*.txt, 5).

    python recipes/sweeps/scripts/ddpm_floor_groupnorm_readout.py course_utils/zoo/tiny-ddpm

1. Is the floor the GroupNorms' per-image statistics (at t=980 each image's mean and variance are mostly the
   noise's)? Every GroupNorm's per-sample (mean, var) is replaced by its average over the batch, and the noise MSE
   compared with the model as trained.
2. Is it the read-out? conv_out alone is refitted by least squares on the UNet's own last features, at one t only
   (fitted on 6 batches of 128, scored on a 7th), which bounds what any final layer could do with those features.
"""

import sys

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from course_utils.emoji_data import load_emoji

MODE: dict = {"m": "normal"}
STATS: dict = {}


def group_norm(self, x):
    """torch.nn.GroupNorm's forward, with the statistics MODE asks for."""
    g = self.num_groups
    xg = x.reshape(x.shape[0], g, -1)
    mean, var = xg.mean(-1, keepdim=True), xg.var(-1, unbiased=False, keepdim=True)
    if MODE["m"] == "record":
        STATS[id(self)] = (mean.mean(0, keepdim=True), var.mean(0, keepdim=True))
    elif MODE["m"] == "frozen":
        mean, var = STATS[id(self)]
    y = ((xg - mean) / (var + self.eps).sqrt()).reshape_as(x)
    shape = (1, -1, *[1] * (x.dim() - 2))
    return y * self.weight.view(shape) + self.bias.view(shape)


def noisy(x0, t, alphas, gen):
    noise = torch.randn(x0.shape, generator=gen)
    a = alphas[t]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise, noise


def unfold_rows(h):
    """One row per pixel: its 3x3 neighbourhood of every channel, and a 1 (conv_out's inputs)."""
    p = F.unfold(h, 3, padding=1).transpose(1, 2).reshape(-1, h.shape[1] * 9)
    return torch.cat([p, torch.ones(len(p), 1)], 1).double()


def main(path: str) -> None:
    torch.set_num_threads(2)
    unet = UNet2DModel.from_pretrained(path, dtype=torch.float32).eval()
    alphas = DDPMScheduler.from_pretrained(path).alphas_cumprod
    data = load_emoji(32, designs=("noto", "twemoji"), progress=False)
    faces = data.tensor(data.subset("face"))

    original = torch.nn.GroupNorm.forward
    torch.nn.GroupNorm.forward = group_norm
    gen = torch.Generator().manual_seed(0)
    x0 = faces[torch.randperm(len(faces), generator=gen)[:128]]
    with torch.no_grad():
        for t in (999, 980, 900, 800, 600, 300):
            xt, noise = noisy(x0, t, alphas, gen)
            res = {}
            for m in ("normal", "record", "frozen"):
                MODE["m"] = m
                res[m] = (unet(xt, torch.full((len(x0),), t)).sample - noise).pow(2).mean().item()
            print(f"t={t}: eps MSE, per-image GroupNorm statistics {res['normal']:.2e} | "
                  f"the batch's mean statistics {res['frozen']:.2e}")
    torch.nn.GroupNorm.forward = original

    feats = {}
    unet.conv_out.register_forward_hook(lambda m, i, o: feats.__setitem__("h", i[0]))

    def batch(t, seed):
        g = torch.Generator().manual_seed(seed)
        x = faces[torch.randint(0, len(faces), (128,), generator=g)]
        xt, noise = noisy(x.flip(-1) if seed % 2 else x, t, alphas, g)
        with torch.no_grad():
            out = unet(xt, torch.full((128,), t)).sample
        return feats["h"], out, noise

    for t in (980, 900):
        lhs = rhs = 0
        for seed in range(6):
            h, _, noise = batch(t, seed)
            rows, y = unfold_rows(h), noise.permute(0, 2, 3, 1).reshape(-1, 3).double()
            lhs, rhs = lhs + rows.T @ rows, rhs + rows.T @ y
        w = torch.linalg.solve(lhs + 1e-6 * torch.eye(len(lhs), dtype=lhs.dtype), rhs)
        h, out, noise = batch(t, 99)
        pred = (unfold_rows(h) @ w).float().reshape(128, 32, 32, 3).permute(0, 3, 1, 2)
        print(f"t={t}: eps MSE as trained {(out - noise).pow(2).mean():.2e}; conv_out refitted at this t only "
              f"{(pred - noise).pow(2).mean():.2e} (a held-out batch)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "course_utils/zoo/tiny-ddpm")
