"""The tiny zoo: every load the source tutorial makes works on the local stand-ins, on real weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

CLIP_IDS = [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]


def test_tutorial_ddpm_loads(ddpm_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    pipe = DDPMPipeline.from_pretrained(ddpm_path)
    scheduler = DDPMScheduler.from_pretrained(ddpm_path)
    model = UNet2DModel.from_pretrained(ddpm_path)
    assert isinstance(pipe.unet, UNet2DModel) and isinstance(pipe.scheduler, DDPMScheduler)
    # One set of weights in the root folder serves all three loads (no unet/ or scheduler/ subfolder).
    assert not (Path(ddpm_path) / "unet").exists()
    assert torch.equal(pipe.unet.conv_in.weight, model.conv_in.weight)
    assert model.dtype == torch.float32 and model.config.sample_size == 32
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(980, -1, -20))


def test_tutorial_sd_loads(sd_path):
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
        UniPCMultistepScheduler,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae")
    tokenizer = CLIPTokenizer.from_pretrained(sd_path, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(sd_path, subfolder="text_encoder")
    unet = UNet2DConditionModel.from_pretrained(sd_path, subfolder="unet")
    scheduler = UniPCMultistepScheduler.from_pretrained(sd_path, subfolder="scheduler")
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8
    assert vae.config.latent_channels == 4 == unet.config.in_channels
    assert unet.config.cross_attention_dim == text_encoder.config.hidden_size
    assert text_encoder.config.max_position_embeddings == 77
    # float32 by default everywhere (transformers >= 5 would follow a float16 config).
    assert {vae.dtype, text_encoder.dtype, unet.dtype} == {torch.float32}
    assert scheduler.config.beta_schedule == "scaled_linear" and scheduler.config.num_train_timesteps == 1000
    assert (scheduler.config.beta_start, scheduler.config.beta_end) == (0.00085, 0.012)
    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    assert pipe.safety_checker is None and isinstance(pipe.scheduler, PNDMScheduler)
    assert len(tokenizer) == 49408


def test_vae_shapes_and_data_scaling_factor(sd_path):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae")
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mode()
    assert z.shape == (1, 4, 8, 8)
    sf = vae.config.scaling_factor
    assert sf != 0.18215 and 0.05 < sf < 5, "scaling_factor must come from the data, not SD"
    training = json.loads((Path(sd_path) / "training.json").read_text())
    last_vae_run = [r for r in training["runs"] if r["stage"] == "vae"][-1]  # the runs in the order they ran
    assert abs(last_vae_run["scaling_factor"] - sf) < 1e-4


def test_tokenizer_matches_clip(sd_path):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(sd_path, subfolder="tokenizer")
    assert tok("a photograph of an astronaut riding a horse").input_ids == CLIP_IDS
    assert tok.model_max_length == 77
    assert tok.bos_token == "<|startoftext|>" and tok.eos_token == "<|endoftext|>"
    padded = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    assert padded.shape == (1, 77) and padded[0, :2].tolist() == [49406, 49407]


def test_tokenizer_builder_reproduces_the_committed_files(tmp_path, repo):
    """Convert open_clip's merges again (from a wheel pip downloads) and compare byte for byte."""
    import subprocess
    import sys

    wheel_dir = repo / ".cache" / "wheels"  # git-ignored: downloaded once (at install time, online), then reused
    if not list(wheel_dir.glob("open_clip_torch-3.3.0-*.whl")):
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "open-clip-torch==3.3.0",
                            "-d", str(wheel_dir)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"could not download the open_clip_torch wheel (needed once, online): {r.stderr[-500:]}")
    from build_tokenizer import build

    out = build(next(wheel_dir.glob("open_clip_torch-3.3.0-*.whl")), tmp_path / "tok")
    committed = repo / "course_utils" / "zoo" / "tiny-sd" / "tokenizer"
    for name in ("vocab.json", "merges.txt"):
        assert (out / name).read_bytes() == (committed / name).read_bytes()


def test_weights_are_safetensors_only(repo):
    zoo = repo / "course_utils" / "zoo"
    weights = [p for p in zoo.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".safetensors")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)


def test_zoo_size_budget(repo):
    zoo = repo / "course_utils" / "zoo"
    total = sum(p.stat().st_size for p in zoo.rglob("*") if p.is_file())
    assert total <= 25 * 1000 * 1000, f"the zoo is {total / 1e6:.1f} MB; the budget is 25 MB"


def test_same_seed_same_image_ddpm(ddpm_path):
    from diffusers import DDPMPipeline

    pipe = DDPMPipeline.from_pretrained(ddpm_path)
    pipe.set_progress_bar_config(disable=True)

    def run(seed):
        return pipe(num_inference_steps=10, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images

    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_same_seed_same_image_sd(sd_path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.set_progress_bar_config(disable=True)

    def run(seed):
        return pipe("red heart", num_inference_steps=10, generator=torch.Generator("cpu").manual_seed(seed),
                    output_type="np").images

    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sd_follows_the_prompt(sd_path):
    """A real model: 'red heart' comes out red, 'blue heart' blue (mean colour of the non-white pixels)."""
    from diffusers import StableDiffusionPipeline, UniPCMultistepScheduler

    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    for seed in (0, 1):
        out = pipe(["red heart", "blue heart"], num_inference_steps=25,
                   generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images
        (r1, _, b1), (r2, _, b2) = (im[im.mean(-1) < 0.9].mean(0) for im in out)
        assert r1 > b1 + 0.2 and b2 > r2 + 0.1, (seed, r1, b1, r2, b2)


def test_metrics_recorded_and_passing(repo):
    zoo = repo / "course_utils" / "zoo"
    ddpm = json.loads((zoo / "tiny-ddpm" / "metrics.json").read_text())
    sd = json.loads((zoo / "tiny-sd" / "metrics.json").read_text())
    # every sampler notebook 03 swaps in gives samples that look like face emoji, differ and are not blurred
    assert set(ddpm["samplers"]) == {"DDPM 50", "DDIM 10", "DDIM 50", "PNDM 50", "Euler 50", "UniPC 20", "DPM-Solver++ 20"}
    for name, r in ddpm["samplers"].items():
        assert r["nn_ratio"] <= 1.45 and r["diversity_ratio"] >= 0.5 and r["sharpness_ratio"] >= 0.75, (name, r)
    # DDIM 50 vs 10 (target <= 1.02) is not met by the committed weights: the card and notebook 03 say so
    assert ddpm["ddim_50_vs_10"] == round(ddpm["samplers"]["DDIM 50"]["nn_ratio"] / ddpm["samplers"]["DDIM 10"]["nn_ratio"], 4)
    # tiny-sd meets every target: seeds differ, guidance matters (notebook 06 shows and asserts both), adherence at
    # 7.5, and the VAE's held-out PSNR
    assert sd["seed_ratio"] >= 0.2 and sd["guidance_gap"] >= 0.15 and sd["top10_at_7.5"] >= 0.75, sd
    assert abs(sd["guidance_gap"] - (sd["top10_at_7.5"] - sd["top10_at_1.0"])) < 1e-9
    assert sd["vae_psnr_heldout_db"] >= 25.0 and sd["passes"] is True, sd
