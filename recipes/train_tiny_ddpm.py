"""Train ``tiny-ddpm``, the course's offline stand-in for google/ddpm-cat-256.

    python recipes/train_tiny_ddpm.py                  # the CPU recipe: the committed weights (55 min on 2 cores)
    python recipes/train_tiny_ddpm.py --steps 2528     # replay the committed run's step count on any machine
    python recipes/train_tiny_ddpm.py --profile gpu    # a longer run on a GPU
    python recipes/train_tiny_ddpm.py --init OUT --out NEW   # more steps for a trained tiny-ddpm (its EMA weights)
    python recipes/train_tiny_ddpm.py --steps 20 --subset 16 --out /tmp/smoke   # a smoke test

An unconditional UNet2DModel (32x32 RGB) with the same DDPMScheduler settings as
google/ddpm-cat-256, trained on the emoji whose name has the word "face".
The loop is the one ``notebooks/08_train_your_own.ipynb`` walks through.
The output folder has the root-level layout of google/ddpm-cat-256: one folder that
DDPMPipeline, UNet2DModel and DDPMScheduler all load from.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from common import (
    RUNS,
    ZOO,
    Budget,
    device_arg,
    ema_update,
    hardware,
    int_at_least,
    lr_at,
    pick_device,
    positive_float,
    seed_arg,
    to_fp16_storage,
    write_run_info,
)
from tqdm.auto import tqdm

from course_utils.emoji_data import load_emoji

PROFILES = {  # batch size, steps; on a CPU also a 55-minute cap, so the command stays within the hour
    "cpu": dict(batch=64, steps=3000, max_minutes=55),
    "gpu": dict(batch=128, steps=12000),
}


def build_unet(norm_groups: int = 32):
    from diffusers import UNet2DModel

    # norm_num_groups: diffusers' default, 32, gives the 32-channel layers one channel per group, so each
    # GroupNorm removes every channel's mean and the model cannot see or predict the mean colour of the
    # noise: measured on the committed weights, that part of the error stays at chance level (about 1/1024)
    # at every timestep, half of all the error at t=999. --norm-groups 8 gives 4 channels per group, as in
    # google/ddpm-cat-256 (128 channels / 32 groups); the next zoo is trained with it.
    return UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, norm_num_groups=norm_groups,
        block_out_channels=(32, 64, 96),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    )


def build_scheduler():
    from diffusers import DDPMScheduler

    # google/ddpm-cat-256's scheduler settings: 1,000 linear betas, clipped samples.
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001,
                         beta_end=0.02, clip_sample=True, variance_type="fixed_small")


def save_root_layout(unet, scheduler, out: Path) -> None:
    """model_index.json + config.json + weights + scheduler_config.json, all in one folder."""
    import diffusers

    out.mkdir(parents=True, exist_ok=True)
    to_fp16_storage(unet).cpu().save_pretrained(out)
    scheduler.save_pretrained(out)
    index = {"_class_name": "DDPMPipeline", "_diffusers_version": diffusers.__version__,
             "scheduler": ["diffusers", "DDPMScheduler"], "unet": ["diffusers", "UNet2DModel"]}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


@torch.no_grad()
def sample_grid(unet, scheduler, device, path: Path, n: int = 16, steps: int = 50) -> None:
    from diffusers import DDPMPipeline
    from diffusers.utils import make_image_grid

    pipe = DDPMPipeline(unet=unet, scheduler=copy.deepcopy(scheduler)).to(device)
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator(device).manual_seed(0)
    images = pipe(batch_size=n, generator=gen, num_inference_steps=steps).images
    make_image_grid(images, rows=2, cols=n // 2).resize((n // 2 * 64, 128)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=PROFILES, default="cpu")
    ap.add_argument("--steps", type=int_at_least(1), help="override the profile's step count")
    ap.add_argument("--batch", type=int_at_least(1), help="override the profile's batch size")
    ap.add_argument("--lr", type=positive_float, default=5e-4)
    ap.add_argument("--designs", choices=("noto", "all"), default="all",
                    help="the emoji designs to train on (the committed weights: all, Noto and Twemoji)")
    ap.add_argument("--high-t-share", type=float, default=0.5,
                    help="share of each batch whose timestep comes from the noisiest levels (>= --high-t-from); "
                         "the samplers multiply the noise prediction's error there by sigma (up to 157), so it "
                         "must be learnt most precisely (0: uniform timesteps, as in notebook 08)")
    ap.add_argument("--high-t-from", type=int_at_least(1), default=500)
    ap.add_argument("--high-t-weight", type=float, default=25.0,
                    help="weight each sample's loss by 1/SNR_t = sigma_t^2, clamped to [1, W] (1: plain MSE). "
                         "The ODE samplers turn a noise error at t into an image error about sigma_t times as "
                         "large, so they need the noisiest levels learnt more precisely than plain MSE asks")
    ap.add_argument("--norm-groups", type=int_at_least(1), default=8, help="the UNet's norm_num_groups (see build_unet)")
    ap.add_argument("--init", type=Path,
                    help="continue this trained tiny-ddpm (a folder in the root layout, such as a run's --out) "
                         "instead of a new UNet; its norm_num_groups win over --norm-groups")
    ap.add_argument("--ema", type=positive_float, default=0.999, help="EMA decay of the saved weights")
    ap.add_argument("--warmup", type=int_at_least(1), default=500,
                    help="steps of linear learning-rate warm-up (a short continuation with --init may want fewer)")
    ap.add_argument("--snapshot-minutes", type=positive_float,
                    help="also save the EMA weights every N minutes into RUN_DIR/snapshot-<step> (for sweeps)")
    ap.add_argument("--keep-fp32", action="store_true",
                    help="also save the final EMA weights in float32 into RUN_DIR/final-fp32 (the zoo stores float16)")
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--subset", type=int_at_least(1), help="train on the first N face emoji only (smoke tests)")
    ap.add_argument("--device", type=device_arg, default="auto", help="auto (cuda, else cpu), cpu, cuda or cuda:N")
    ap.add_argument("--max-minutes", type=positive_float, help="stop early after this much wall time")
    ap.add_argument("--sample-every", type=int_at_least(1), default=2000, help="write a sample grid every N steps")
    ap.add_argument("--out", type=Path, default=ZOO / "tiny-ddpm", help="the checkpoint folder to write (default: the zoo's)")
    ap.add_argument("--run-dir", type=Path, default=RUNS / "tiny-ddpm", help="logs and sample grids")
    args = ap.parse_args()
    for flag, path in (("--out", args.out), ("--run-dir", args.run_dir)):
        if path.exists() and not path.is_dir():
            ap.error(f"{flag} {path} is a file: give a folder")
    if not 0 <= args.high_t_share <= 1:
        ap.error(f"--high-t-share {args.high_t_share} must be between 0 and 1")
    if args.high_t_weight < 1:
        ap.error(f"--high-t-weight {args.high_t_weight} must be at least 1 (1 turns the weighting off)")
    if args.high_t_from >= 1000 or not 0 < args.ema < 1:
        ap.error("--high-t-from must be below 1000 and --ema between 0 and 1")
    if args.init and not (args.init / "config.json").exists():
        ap.error(f"--init {args.init}: no UNet there (a folder with config.json and the weights in the root layout "
                 "of google/ddpm-cat-256, such as a train_tiny_ddpm.py run's --out)")
    cfg = dict(PROFILES[args.profile])
    cfg.update({k: v for k, v in (("steps", args.steps), ("batch", args.batch)) if v})
    if args.max_minutes is None and args.steps is None:  # an explicit --steps replays a run: no time cap
        args.max_minutes = cfg.get("max_minutes")

    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    designs = ("noto", "twemoji") if args.designs == "all" else ("noto",)
    data = load_emoji(32, designs=designs)
    idx = data.subset("face")
    if args.subset:
        idx = idx[: args.subset]
    x_all = data.tensor(idx).to(device)
    print(f"tiny-ddpm: {len(idx)} face emoji ({' + '.join(designs)}), {cfg['steps']} steps of batch {cfg['batch']} on {hardware(device)}")

    if args.init:  # continue a trained model: the EMA weights it saved, with a fresh optimiser and warm-up
        from diffusers import UNet2DModel

        unet = UNet2DModel.from_pretrained(args.init, dtype=torch.float32).to(device)
        args.norm_groups = unet.config.norm_num_groups
    else:
        unet = build_unet(args.norm_groups).to(device)
    scheduler = build_scheduler()
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device).manual_seed(args.seed)
    alphas = scheduler.alphas_cumprod.to(device)
    budget, losses, step = Budget(args.max_minutes), [], 0
    next_snapshot = args.snapshot_minutes

    for step in (bar := tqdm(range(cfg["steps"]), desc="tiny-ddpm")):
        pick = torch.randint(0, len(x_all), (cfg["batch"],), device=device, generator=gen)
        x0 = x_all[pick]
        flip = torch.rand(cfg["batch"], 1, 1, 1, device=device, generator=gen) < 0.5
        x0 = torch.where(flip, x0.flip(-1), x0)  # faces survive a mirror
        noise = torch.randn(x0.shape, device=device, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg["batch"],), device=device, generator=gen)
        if args.high_t_share:  # the noisiest levels, oversampled: there the samplers scale the error by sigma
            high = torch.randint(args.high_t_from, scheduler.config.num_train_timesteps, (cfg["batch"],),
                                 device=device, generator=gen)
            t = torch.where(torch.rand(cfg["batch"], device=device, generator=gen) < args.high_t_share, high, t)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise  # what scheduler.add_noise(x0, noise, t) computes
        per_sample = F.mse_loss(unet(noisy, t).sample, noise, reduction="none").mean((1, 2, 3))  # epsilon prediction
        w = ((1 - a) / a).view(-1).clamp(1.0, args.high_t_weight)  # all ones when --high-t-weight is 1
        loss = (w * per_sample).sum() / w.sum()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, args.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema_update(ema, unet, min(args.ema, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        if args.sample_every and (step + 1) % args.sample_every == 0:
            sample_grid(ema, scheduler, device, args.run_dir / f"samples-{step + 1:06d}.png")
        if next_snapshot and budget.elapsed > next_snapshot * 60:
            save_root_layout(copy.deepcopy(ema).float(), scheduler, args.run_dir / f"snapshot-{step + 1:06d}")
            next_snapshot += args.snapshot_minutes
        if budget.over():
            print(f"stopping at step {step + 1}: the {args.max_minutes}-minute budget is spent")
            break

    steps_done = step + 1
    minutes = budget.elapsed / 60
    ema = ema.to(torch.float32)
    save_root_layout(ema, scheduler, args.out)
    if args.keep_fp32:
        args.run_dir.joinpath("final-fp32").mkdir(parents=True, exist_ok=True)
        ema.cpu().save_pretrained(args.run_dir / "final-fp32")
        scheduler.save_pretrained(args.run_dir / "final-fp32")
        (args.run_dir / "final-fp32" / "model_index.json").write_text((args.out / "model_index.json").read_text())
        ema.to(device)
    sample_grid(ema, scheduler, device, args.out / "samples.png")
    write_run_info(args.run_dir, model="tiny-ddpm", profile=args.profile, steps=steps_done,
                   batch=cfg["batch"], lr=args.lr, seed=args.seed, images=len(idx), designs=list(designs),
                   high_t_share=args.high_t_share, high_t_from=args.high_t_from, high_t_weight=args.high_t_weight, ema=args.ema, warmup=args.warmup, norm_groups=args.norm_groups,
                   init=str(args.init) if args.init else None, minutes=round(minutes, 2),
                   hardware=hardware(device), torch=torch.__version__, final_loss=sum(losses[-200:]) / len(losses[-200:]),
                   parameters=sum(p.numel() for p in ema.parameters()))
    print(f"saved {args.out} after {steps_done} steps in {minutes:.1f} min")


if __name__ == "__main__":
    main()
