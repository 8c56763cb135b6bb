"""Making it fast, measured: `make bench` (or `python benchmarks/bench.py`).

On a CPU it measures the tiny zoo (tiny-sd, 64 px); on a CUDA GPU the real Stable Diffusion v1
architecture (UNet2DConditionModel, AutoencoderKL and CLIPTextModel built from v1-4's published
config values, random weights: speed does not depend on the values, and no hub is needed) at 512 px,
plus the DDPM 256-px UNet of google/ddpm-cat-256. Each measurement warms up, then takes the median of
repeats; ratios are medians of alternating pairs. GPU work is synchronised before every clock read.

Writes _output/bench/<machine>.json and .md; `--publish` (full settings only) writes the committed
results in course_utils/bench_results/ instead. Published anchors (SD 1.5, 512 px, batch 1, CFG):
54.5 it/s fp16 on an H100 in plain PyTorch and 66.0 it/s with torch.compile (chengzeyi/stable-fast
README, PyTorch 2.1); 1.60 s per 50-step image with SDPA in fp16 on an A100 (fal-ai
stable-diffusion-benchmarks, diffusers 0.22); minutes per image in fp32 on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "recipes"))

from course_utils import make_generator, resolve_checkpoint  # noqa: E402
from course_utils.handwritten import scheduler_step_kwargs, sd_generate  # noqa: E402
from course_utils.timing import alternating_ratio, median_time  # noqa: E402

SD_V1_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
                  block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8, norm_num_groups=32,
                  down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                  up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD_V1_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
                 block_out_channels=(128, 256, 512, 512), scaling_factor=0.18215,
                 down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
CLIP_L_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                   bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=768)
DDPM_256_UNET = dict(sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
                     block_out_channels=(128, 128, 256, 256, 512, 512),
                     down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4)


def machine(device: str) -> str:
    from course_utils import timing

    name = timing.machine(device)
    return name if str(device).startswith("cuda") else f"{name}, {torch.get_num_threads()} threads"


def load_parts(device: str, real_arch: bool, size: int = 512):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel, UniPCMultistepScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)
    tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")  # CLIP's real tokenizer
    scheduler = UniPCMultistepScheduler.from_pretrained(path, subfolder="scheduler")  # SD's betas
    if real_arch:
        torch.manual_seed(0)
        vae = AutoencoderKL(**{**SD_V1_VAE, "sample_size": size})
        unet = UNet2DConditionModel(**{**SD_V1_UNET, "sample_size": size // 8})
        text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))
    else:
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder")
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def two_pass_generate(pipe, prompt, steps, guidance, generator, device):
    """The loop with guidance done as two UNet calls (unconditional, then text) instead of one batch of 2."""
    tok, te, unet, sched = pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.scheduler

    def embed(p):
        ids = tok([p], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        return te(ids.input_ids.to(device))[0]

    with torch.no_grad():
        cond, uncond = embed(prompt), embed("")
        sched.set_timesteps(steps, device=device)
        size = unet.config.sample_size
        latents = torch.randn((1, unet.config.in_channels, size, size), generator=generator, device=device,
                              dtype=cond.dtype) * sched.init_noise_sigma
        extra = scheduler_step_kwargs(sched, generator)
        for t in sched.timesteps:
            x = sched.scale_model_input(latents, t)
            e_u = unet(x, t, encoder_hidden_states=uncond).sample
            e_c = unet(x, t, encoder_hidden_states=cond).sample
            latents = sched.step(e_u + guidance * (e_c - e_u), t, latents, **extra).prev_sample
        return pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def quality_top10(pipe, scheduler_cls, steps, n=20) -> float | None:
    """Tiny mode only: prompt adherence (caption's emoji among the 10 nearest) over n captions."""
    try:
        import torch.nn.functional as F
        from evaluate_zoo import emoji_by_caption, top10_share

        from course_utils.emoji_data import load_emoji
    except Exception:
        return None
    # as evaluate_zoo measures it: every design the zoo trained on, and a caption's emoji in any design counts
    data = load_emoji(64, designs="all", progress=False)
    all_16 = F.interpolate((data.tensor() + 1) / 2, size=16, mode="area")
    by_caption = emoji_by_caption(data)
    captions = sorted({data.captions[i] for i in data.train_idx})
    chosen = [captions[i] for i in torch.randperm(len(captions), generator=torch.Generator().manual_seed(0))[:n].tolist()]
    old = pipe.scheduler
    pipe.scheduler = scheduler_cls.from_config(old.config)
    out = pipe(chosen, num_inference_steps=steps, generator=make_generator(pipe.device.type, 0), output_type="np").images
    pipe.scheduler = old
    return top10_share(torch.from_numpy(out).permute(0, 3, 1, 2).float(), [by_caption[c] for c in chosen], all_16)


def bench_sd(device: str, real_arch: bool, repeats: int, pairs: int, do_compile: bool,
             size: int = 512, steps: int = 25, do_half: bool = True) -> list[dict]:
    from diffusers import DPMSolverMultistepScheduler, PNDMScheduler, UniPCMultistepScheduler
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    rows = []

    def row(name, value, unit, note=""):
        rows.append({"measure": name, "value": round(float(value), 4) if value is not None else None,
                     "unit": unit, "note": note})
        print(f"  {name:55s} {value if value is None else round(float(value), 4)} {unit} {note}", flush=True)

    pipe = load_parts(device, real_arch, size)
    prompt, guidance = "cat face", 7.5
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    print(f"SD ({'real v1 architecture, random weights' if real_arch else 'tiny-sd'}), {size}px, {steps} UniPC "
          f"steps, CFG {guidance}, batch 1, on {machine(device)}")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def generate(p, n=steps, output_type="np"):
        """One image from pipeline ``p``: the call every timed row makes, seeded the same way."""
        return p(prompt, num_inference_steps=n, guidance_scale=guidance,
                 generator=make_generator(device, 0), output_type=output_type).images

    def run_pipe():
        return generate(pipe)

    def loop_its(p) -> float:
        """Denoising-loop iterations per second, as published figures count them: the text encoder runs
        (a few ms), the VAE decoder does not (output_type="latent"). One iteration = one batched CFG UNet call."""
        return steps / median_time(lambda: generate(p, output_type="latent"), repeats=repeats, device=device)

    def run_loop():
        return sd_generate(pipe.vae, pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.scheduler, [prompt],
                           num_inference_steps=steps, guidance_scale=guidance, generator=make_generator(device, 0),
                           device=device)

    with torch.no_grad():
        r = alternating_ratio(run_loop, run_pipe, pairs=pairs, device=device)
        row("1. hand-written loop / pipeline (time ratio)", r["ratio"], "x", f"median of {pairs} alternating pairs")
        t_fp32 = r["b_s"]
        row("   pipeline, float32, SDPA: time per image", t_fp32, "s")
        row("   pipeline, float32, SDPA: denoising-loop iterations per second", loop_its(pipe), "it/s",
            "without the VAE decode, as published it/s are counted")

        r = alternating_ratio(lambda: two_pass_generate(pipe, prompt, steps, guidance, make_generator(device, 0), device),
                              run_loop, pairs=pairs, device=device)
        row("2. two UNet passes / one batched CFG pass (time ratio)", r["ratio"], "x", "above 1: batching wins")

        half = torch.float16 if device == "cuda" else torch.bfloat16
        if do_half:
            pipe_h = copy.deepcopy(pipe).to(dtype=half)
            t_half = median_time(lambda: generate(pipe_h), repeats=repeats, device=device)
            row(f"3. {str(half).split('.')[-1]} / float32 (time ratio)", t_half / t_fp32, "x")
            row(f"   pipeline, {str(half).split('.')[-1]}, SDPA: denoising-loop iterations per second", loop_its(pipe_h),
                "it/s", "without the VAE decode")
        else:
            row(f"3. {str(half).split('.')[-1]} / float32", None, "", "skipped (--no-half)")
        fast = pipe_h if device == "cuda" and do_half else pipe  # the configuration the later rows build on

        def run_fast():
            return generate(fast)

        base = median_time(run_fast, repeats=repeats, device=device)
        fast.unet.set_attn_processor(AttnProcessor())
        t_plain = median_time(run_fast, repeats=repeats, device=device)
        fast.unet.set_attn_processor(AttnProcessor2_0())
        row("4. plain attention / SDPA (time ratio)", t_plain / base, "x", "above 1: SDPA wins")

        fast.unet.to(memory_format=torch.channels_last)
        t_cl = median_time(run_fast, repeats=repeats, device=device)
        fast.unet.to(memory_format=torch.contiguous_format)
        row("5. channels_last / default (time ratio)", t_cl / base, "x", "below 1: channels_last wins")

        if do_compile:
            try:
                original = fast.unet
                t0 = time.perf_counter()
                fast.unet = torch.compile(original)
                run_fast()
                compile_s = time.perf_counter() - t0
                t_c = median_time(run_fast, repeats=repeats, warmup=1, device=device)
                its_c = loop_its(fast)
                fast.unet = original
                row("6. torch.compile / eager (time ratio)", t_c / base, "x", f"compiling took {compile_s:.0f} s")
                row("   compiled: denoising-loop iterations per second", its_c, "it/s", "without the VAE decode")
            except Exception as e:  # report, never hide
                row("6. torch.compile", None, "", f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
        else:
            row("6. torch.compile", None, "", "skipped (--no-compile)")

        for name, cls, n in (("PNDM", PNDMScheduler, 2 * steps), ("UniPC", UniPCMultistepScheduler, steps),
                             ("DPM-Solver++", DPMSolverMultistepScheduler, max(1, round(0.8 * steps)))):
            old = fast.scheduler
            fast.scheduler = cls.from_config(old.config)
            t = median_time(lambda n=n: generate(fast, n), repeats=repeats, device=device)
            fast.scheduler = old
            q = None if real_arch else quality_top10(pipe, cls, n)
            row(f"7. {name} at {n} steps: time per image", t, "s",
                "" if q is None else f"prompt adherence (top-10 of 20 captions): {q:.0%}")
        row("8. peak memory", peak_memory_mb(device), "MiB", "GPU: max allocated" if device == "cuda" else "process peak RSS")
    return rows


def bench_ddpm256(device: str, repeats: int) -> list[dict]:
    from diffusers import UNet2DModel

    rows = []
    unet = UNet2DModel(**DDPM_256_UNET).to(device).eval()
    x = torch.randn(1, 3, 256, 256, device=device)
    t = torch.tensor([500], device=device)
    for dtype in (torch.float32, torch.float16):
        m = unet.to(dtype)
        with torch.no_grad():
            s = median_time(lambda m=m, dtype=dtype: m(x.to(dtype), t).sample, repeats=repeats, device=device)
        rows.append({"measure": f"DDPM 256-px UNet (ddpm-cat-256 architecture), {str(dtype).split('.')[-1]}, batch 1",
                     "value": round(1 / s, 2), "unit": "it/s", "note": ""})
        print("  ", rows[-1])
    return rows


def file_stem(device: str) -> str:
    """The results' file name: the GPU's name, or the CPU's architecture (x86_64-cpu), as the committed files have it."""
    name = torch.cuda.get_device_name(0) if str(device).startswith("cuda") else f"{platform.machine()} CPU"
    return name.replace(" ", "-").lower()


def write(results: dict, out_dir: Path, suffix: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(results["device"]) + suffix
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"### {results['model']}", "",
             f"Machine: {results['machine']}; torch {results['torch']}, diffusers {results['diffusers']}; "
             f"{results['settings']}; measured {results['date']} with `make bench`.", "",
             "| measure | value | unit | note |", "|---|---:|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['measure']} | {'n/a' if r['value'] is None else r['value']} | {r['unit']} | {r['note']} |")
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return out_dir / f"{stem}.md"


#: the committed results (package data: notebook 09 reads them); only `--publish` writes here
PUBLISHED = REPO / "course_utils" / "bench_results"
#: where every other run writes (git-ignored)
SCRATCH = REPO / "_output" / "bench"
#: the least a run must measure before its figures may be committed
PUBLISH_MIN = {"repeats": 5, "pairs": 9}


def _count(minimum: int, maximum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give one from {minimum} to {maximum}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is outside {minimum}..{maximum}: give a whole number from "
                                             f"{minimum} to {maximum}")
        return value
    return parse


def parse_args(argv=None) -> argparse.Namespace:
    """Check every argument before any model is built: a wrong one costs a second, not a benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda, else cpu), cpu, cuda or cuda:N")
    ap.add_argument("--repeats", type=_count(1, 1000), default=5, help="timed runs per measurement (median)")
    ap.add_argument("--pairs", type=_count(1, 1000), default=9, help="alternating pairs per ratio (median)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    ap.add_argument("--no-half", action="store_true",
                    help="skip the half-precision row (bfloat16 on a CPU: without bf16 instructions, the real SD v1 "
                         "architecture takes minutes there)")
    ap.add_argument("--arch", choices=("auto", "tiny", "sd-v1"), default="auto",
                    help="auto: the real SD v1 architecture on a GPU, the tiny zoo on a CPU")
    ap.add_argument("--size", type=_count(8, 2048), default=512,
                    help="image size for --arch sd-v1 (a multiple of 8); a small size checks the GPU path on a CPU")
    ap.add_argument("--steps", type=_count(1, 1000), default=25,
                    help="UniPC steps, 1-1000 (PNDM gets twice as many, DPM-Solver++ 0.8x)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help=f"write the results here (default: {SCRATCH.relative_to(REPO)}/, "
                                                "git-ignored)")
    where.add_argument("--publish", action="store_true",
                       help=f"these are the results to commit: write them to {PUBLISHED.relative_to(REPO)}/ "
                            f"(needs at least {PUBLISH_MIN['repeats']} repeats and {PUBLISH_MIN['pairs']} pairs)")
    args = ap.parse_args(argv)
    from course_utils import DeviceError, check_image_size, pick_device

    if args.device == "auto":  # cuda or cpu: the benchmark has no MPS profile
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        args.device = pick_device(args.device)
        check_image_size(args.size, args.size)
    except (DeviceError, TypeError, ValueError) as e:
        ap.error(str(e))
    if args.device.startswith("mps"):
        ap.error("the benchmark has CPU and CUDA profiles only: use --device cpu or --device cuda")
    if args.publish:
        short = [f"--{k} {getattr(args, k)} (at least {v})" for k, v in PUBLISH_MIN.items() if getattr(args, k) < v]
        if short:
            ap.error(f"--publish writes the committed results, but {', '.join(short)} is a quick run: drop "
                     "--publish (quick runs go to _output/bench/) or measure with the defaults.")
        if args.no_half:
            ap.error("--publish writes the committed results, which measure every row: drop --no-half (it is for "
                     "quick checks of the code path; their results go to _output/bench/)")
        args.out = PUBLISHED
    elif args.out is None:
        args.out = SCRATCH
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file: give a folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)  # before importing diffusers: a wrong argument is refused in the time torch takes to load
    import diffusers

    device = args.device
    real_arch = args.arch == "sd-v1" or (args.arch == "auto" and device == "cuda")
    rows = bench_sd(device, real_arch, args.repeats, args.pairs, not args.no_compile, args.size, args.steps,
                    do_half=not args.no_half)
    if device == "cuda":
        rows += bench_ddpm256(device, args.repeats)
    size = args.size if real_arch else 64
    results = {"machine": machine(device), "device": device, "torch": torch.__version__, "diffusers": diffusers.__version__,
               "model": f"Stable Diffusion v1 architecture, random weights, {size} px" if real_arch
               else "tiny-sd (the course's zoo), 64 px",
               "settings": f"batch 1, classifier-free guidance 7.5, {args.steps} UniPC steps unless stated, "
                           f"{args.repeats} repeats and {args.pairs} alternating pairs, warm-up then median"
                           + (", no torch.compile" if args.no_compile else "") + (", no half precision" if args.no_half else ""),
               "date": time.strftime("%Y-%m-%d"), "rows": rows}
    # The default runs keep their names (x86_64-cpu, nvidia-h100-…); any other setup gets its own file.
    default = args.steps == 25 and ((real_arch and device == "cuda" and size == 512) or
                                    (not real_arch and device != "cuda"))
    md = write(results, args.out, "" if default else f"-{'sd-v1' if real_arch else 'tiny'}-{size}px-{args.steps}steps")
    print("\n" + md.read_text())
    if not args.publish:
        print(f"(written to {args.out}; the committed results in {PUBLISHED.relative_to(REPO)}/ are unchanged: "
              "rerun with --publish and the default repeats to replace them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
