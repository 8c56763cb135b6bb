"""Measure the zoo's quality and write ``metrics.json`` next to each checkpoint.

    python recipes/evaluate_zoo.py            # both models, on the CPU (about 6 minutes here)
    python recipes/evaluate_zoo.py --only ddpm
    python recipes/evaluate_zoo.py --only sd --path /tmp/my-run/tiny-sd   # a recipe's --out folder

tiny-ddpm, once per sampler that notebook 03 swaps in (each built with ``from_config`` of the model's
own scheduler config, library defaults otherwise; the loop of notebook 03, with ``init_noise_sigma`` and
``scale_model_input``): DDPM 50, DDIM 10 and 50, PNDM 50, Euler 50, UniPC 20, DPM-Solver++ 20 steps.
64 samples each against 64 random real face emoji (both designs) at 32 px:
  nearest-real distance / the real set's leave-one-out figure  (<= 1.45: samples look like emoji)
  mean pairwise distance of samples / that of the real set      (>= 0.5: no collapse)
  mean absolute pixel gradient of samples / that of real         (>= 0.75: not blurred)
  and DDIM at 50 steps no worse than at 10 (nearest-real ratio at most 2% higher).
tiny-sd (UniPC, 25 steps, 64 px):
  seeds: 20 training captions x 4 seeds at guidance 7.5; the mean distance between two images of one
    prompt, divided by the mean distance between two different real emoji (>= 0.2: seeds differ);
  adherence: 100 training captions, one image each; every emoji of every design ranked by pixel distance
    at 16x16; the share whose own emoji (any design) is among the 10 nearest, at guidance 7.5 (>= 75%)
    and 1.0 (at least 15 points lower: guidance matters);
  the VAE's reconstruction PSNR on the held-out emoji of every design (>= 25 dB).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import ZOO, device_arg, pick_device
from tqdm.auto import tqdm

from course_utils.emoji_data import load_emoji

THRESHOLDS = {"nn_ratio_max": 1.45, "diversity_ratio_min": 0.5, "sharpness_ratio_min": 0.75,
              "ddim_50_vs_10_max": 1.02, "seed_ratio_min": 0.2, "top10_min": 0.75, "guidance_gap_min": 0.15,
              "psnr_min": 25.0}
CPU = torch.device("cpu")
#: notebook 03's samplers and the step counts the zoo must pass at (DDIM also at 10: 50 must be no worse)
SAMPLERS = (("DDPM", 50), ("DDIM", 10), ("DDIM", 50), ("PNDM", 50), ("Euler", 50), ("UniPC", 20),
            ("DPM-Solver++", 20))


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1)


def mean_pair_distance(x: torch.Tensor) -> float:
    iu = torch.triu_indices(len(x), len(x), 1)
    return float(torch.cdist(_flat(x), _flat(x))[iu[0], iu[1]].mean())


def ddpm_ratios(samples: torch.Tensor, real: torch.Tensor) -> dict:
    """samples, real: float tensors in [0, 1], shape (N, 3, H, W)."""
    s, r = _flat(samples), _flat(real)
    d_sr = torch.cdist(s, r)
    d_rr = torch.cdist(r, r).fill_diagonal_(float("inf"))
    nn_ratio = d_sr.min(1).values.mean() / d_rr.min(1).values.mean()

    def grad(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

    return {"nn_ratio": float(nn_ratio), "diversity_ratio": mean_pair_distance(samples) / mean_pair_distance(real),
            "sharpness_ratio": float(grad(samples) / grad(real))}


def make_scheduler(name: str, config):
    """Notebook 03's swap: ``from_config`` of the model's own scheduler config, library defaults otherwise."""
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        PNDMScheduler,
        UniPCMultistepScheduler,
    )

    classes = {"DDPM": DDPMScheduler, "DDIM": DDIMScheduler, "PNDM": PNDMScheduler, "Euler": EulerDiscreteScheduler,
               "UniPC": UniPCMultistepScheduler, "DPM-Solver++": DPMSolverMultistepScheduler}
    return classes[name].from_config(config)


@torch.no_grad()
def sample_ddpm(unet, scheduler, steps: int, n: int, seed: int, device) -> torch.Tensor:
    """Notebook 03's loop, batched: n samples in [0, 1], float32 on the CPU."""
    import inspect

    gen = torch.Generator("cpu").manual_seed(seed)
    size = unet.config.sample_size
    start = torch.randn((n, 3, size, size), generator=gen).to(device)
    extra = {"generator": torch.Generator("cpu").manual_seed(seed + 1)} \
        if "generator" in inspect.signature(scheduler.step).parameters else {}
    scheduler.set_timesteps(steps)
    x = start * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = unet(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(eps, t, x, **extra).prev_sample
    return (x.float().cpu() / 2 + 0.5).clamp(0, 1)


def real_faces(n: int = 64) -> torch.Tensor:
    data = load_emoji(32, designs="all", progress=False)
    faces = data.subset("face")
    pick = faces[torch.randperm(len(faces), generator=torch.Generator().manual_seed(0))[:n].numpy()]
    return (data.tensor(pick) + 1) / 2


def evaluate_ddpm(path, device: torch.device = CPU) -> dict:
    from diffusers import UNet2DModel

    t0 = time.perf_counter()
    unet = UNet2DModel.from_pretrained(path).to(device).eval()
    config = json.loads((Path(path) / "scheduler_config.json").read_text())
    real = real_faces(64)
    m = {"samples": 64, "real": 64, "samplers": {}}
    for name, steps in tqdm(SAMPLERS, desc="tiny-ddpm: 64 samples per sampler"):
        samples = sample_ddpm(unet, make_scheduler(name, config), steps, 64, 0, device)
        r = ddpm_ratios(samples, real)
        r["passes"] = (r["nn_ratio"] <= THRESHOLDS["nn_ratio_max"]
                       and r["diversity_ratio"] >= THRESHOLDS["diversity_ratio_min"]
                       and r["sharpness_ratio"] >= THRESHOLDS["sharpness_ratio_min"])
        m["samplers"][f"{name} {steps}"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
    ddim10, ddim50 = m["samplers"]["DDIM 10"], m["samplers"]["DDIM 50"]
    m["ddim_50_vs_10"] = round(ddim50["nn_ratio"] / ddim10["nn_ratio"], 4)
    m["passes"] = (all(s["passes"] for s in m["samplers"].values())
                   and m["ddim_50_vs_10"] <= THRESHOLDS["ddim_50_vs_10_max"])
    # the figures of the DDPM 50 row, at the top level as before (notebooks and cards quote them)
    m.update({k: m["samplers"]["DDPM 50"][k] for k in ("nn_ratio", "diversity_ratio", "sharpness_ratio")})
    m["steps"] = 50
    m["seconds"] = round(time.perf_counter() - t0, 1)
    return m


def top10_share(images: torch.Tensor, own: list[int | set[int]], all_16: torch.Tensor) -> float:
    """images: (N, 3, 64, 64) in [0, 1]; own: for each image, the index of its caption's emoji, or the set of
    them (one per design); all_16: every emoji at 16x16 in [0, 1]."""
    q = F.interpolate(images, size=16, mode="area")
    ranks = torch.cdist(_flat(q), _flat(all_16)).argsort(1)[:, :10]
    owns = [set(o) if isinstance(o, (set, frozenset, list, tuple)) else {int(o)} for o in own]
    return float(sum(bool(o & set(r.tolist())) for o, r in zip(owns, ranks, strict=True)) / len(own))


def emoji_by_caption(data) -> dict[str, set[int]]:
    """Each caption's emoji indices in ``data``, one per design: any of them counts as the caption's emoji."""
    by_caption: dict[str, set[int]] = {}
    for i, c in enumerate(data.captions):
        by_caption.setdefault(c, set()).add(i)
    return by_caption


def sd_pipeline(path, device):
    from diffusers import StableDiffusionPipeline, UniPCMultistepScheduler

    pipe = StableDiffusionPipeline.from_pretrained(path).to(device)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, guidance, seeds, steps=25) -> torch.Tensor:
    """One image per (prompt, seed): (N, 3, 64, 64) in [0, 1] on the CPU; each image's seed is its own."""
    gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    out = pipe(list(prompts), num_inference_steps=steps, guidance_scale=guidance, generator=gens,
               output_type="np").images
    return torch.from_numpy(out).permute(0, 3, 1, 2).float()


@torch.no_grad()
def vae_psnr(vae, images: torch.Tensor, device: torch.device = CPU) -> float:
    """PSNR (dB) of the VAE's reconstruction of ``images`` (in [-1, 1]): the latent's mode, decoded, pixels in [0, 1].
    The zoo's VAE figure on the held-out emoji; train_tiny_sd prints it while the VAE trains."""
    rec = torch.cat([vae.decode(vae.encode(images[i : i + 64].to(device)).latent_dist.mode()).sample.float().cpu()
                     for i in range(0, len(images), 64)]).clamp(-1, 1)
    return float(-10 * torch.log10(F.mse_loss((rec + 1) / 2, (images.cpu() + 1) / 2)))


def evaluate_sd(path, device: torch.device = CPU) -> dict:
    t0 = time.perf_counter()
    pipe = sd_pipeline(path, device)
    data = load_emoji(64, designs="all", progress=False)
    real_64 = (data.tensor() + 1) / 2
    all_16 = F.interpolate(real_64, size=16, mode="area")
    by_caption = emoji_by_caption(data)
    train_captions = sorted({data.captions[i] for i in data.train_idx})
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train_captions), generator=g).tolist()
    chosen = [train_captions[i] for i in order[:100]]
    m = {"captions": 100, "steps": 25, "designs": sorted(set(data.designs))}

    # seeds: 20 captions x 4 seeds at guidance 7.5
    seed_prompts = chosen[:20]
    within = []
    for prompt in tqdm(seed_prompts, desc="tiny-sd: 20 captions x 4 seeds"):
        imgs = generate(pipe, [prompt] * 4, 7.5, seeds=range(4))
        within.append(mean_pair_distance(imgs))
    pick = torch.randperm(len(real_64), generator=torch.Generator().manual_seed(1))[:400]
    real_pairs = mean_pair_distance(real_64[pick])
    m["seed_distance"] = sum(within) / len(within)
    m["real_pair_distance"] = real_pairs
    m["seed_ratio"] = m["seed_distance"] / real_pairs
    m["seed_prompts"], m["seeds"] = 20, 4

    for guidance in (7.5, 1.0):
        images = [generate(pipe, chosen[i : i + 20], guidance, seeds=range(i, i + 20))
                  for i in tqdm(range(0, 100, 20), desc=f"tiny-sd: 100 captions at guidance {guidance}")]
        m[f"top10_at_{guidance}"] = top10_share(torch.cat(images), [by_caption[c] for c in chosen], all_16)
    m["guidance_gap"] = m["top10_at_7.5"] - m["top10_at_1.0"]

    held = data.tensor(data.heldout_idx)
    m["vae_psnr_heldout_db"] = vae_psnr(pipe.vae, held, device)
    m["heldout_images"] = len(held)
    m["train_images"] = len(data.train_idx)
    m["seconds"] = round(time.perf_counter() - t0, 1)
    m["passes"] = (m["seed_ratio"] >= THRESHOLDS["seed_ratio_min"] and m["top10_at_7.5"] >= THRESHOLDS["top10_min"]
                   and m["guidance_gap"] >= THRESHOLDS["guidance_gap_min"] - 1e-9
                   and m["vae_psnr_heldout_db"] >= THRESHOLDS["psnr_min"])
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("ddpm", "sd"))
    ap.add_argument("--path", type=Path, help="evaluate this folder (a recipe's --out) instead of the zoo's; "
                                              "needs --only")
    ap.add_argument("--device", type=device_arg, default="cpu", help="cpu (the default: the committed figures), "
                                                                     "cuda or cuda:N")
    args = ap.parse_args()
    if args.path and not args.only:
        ap.error("--path evaluates one model: say which with --only ddpm or --only sd")
    if args.path and not (args.path / "model_index.json").exists():
        ap.error(f"{args.path} has no model_index.json: pass the folder a recipe wrote with --out")
    device = pick_device(args.device)
    if device.type == "cuda":  # full float32, as on a CPU (pick_device turns TF32 on for training)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    for name, fn in (("ddpm", evaluate_ddpm), ("sd", evaluate_sd)):
        if args.only and args.only != name:
            continue
        path = args.path or ZOO / f"tiny-{name}"
        metrics = {**fn(path, device), "thresholds": THRESHOLDS, "machine": device.type, "torch": torch.__version__}
        (path / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"tiny-{name}:", json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
