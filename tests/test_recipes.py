"""Each training recipe, run for a few steps on a small subset, writes a checkpoint the tutorial can load."""

import json
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file


def run(repo, *args):
    r = subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1",
                            "HOME": str(repo)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


def test_ddpm_recipe_smoke(repo, tmp_path):
    from diffusers import DDPMPipeline

    out = run(repo, "recipes/train_tiny_ddpm.py", "--steps", "8", "--batch", "8", "--subset", "16",
              "--sample-every", "4", "--norm-groups", "4", "--out", str(tmp_path / "m"),
              "--run-dir", str(tmp_path / "run"))
    assert "after 8 steps" in out
    assert (tmp_path / "run" / "samples-000008.png").exists() and (tmp_path / "m" / "samples.png").exists()
    pipe = DDPMPipeline.from_pretrained(tmp_path / "m")
    img = pipe(num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (32, 32)
    # --init continues m (its groups, 4, win over the default 8), recorded in training.json; m itself is untouched
    before = (tmp_path / "m" / "diffusion_pytorch_model.safetensors").read_bytes()
    run(repo, "recipes/train_tiny_ddpm.py", "--init", str(tmp_path / "m"), "--steps", "2", "--batch", "8", "--subset", "16",
        "--lr", "1e-2", "--warmup", "1", "--sample-every", "100", "--out", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "run2"))
    info = json.loads((tmp_path / "run2" / "training.json").read_text())
    assert info["init"] == str(tmp_path / "m") and info["norm_groups"] == 4 and info["steps"] == 2 and info["warmup"] == 1, info
    assert (tmp_path / "m" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    a = load_file(tmp_path / "m" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "m2" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a), "two steps at lr 1e-2 changed nothing"


def test_sd_recipe_smoke(repo, tmp_path):
    from diffusers import StableDiffusionPipeline

    common = ["--steps", "6", "--batch", "4", "--subset", "32", "--out", str(tmp_path / "m"),
              "--run-dir", str(tmp_path / "run")]
    out = run(repo, "recipes/train_tiny_sd.py", "--stage", "vae", "--heldout-every", "3", "--norm-groups", "4",
              "--schedule", "cosine", *common)
    assert "scaling_factor" in out
    assert json.loads((tmp_path / "run" / "vae" / "training.json").read_text())["schedule"] == "cosine"
    # --heldout-every: the held-out emoji's PSNR (evaluate_zoo's figure) on its own line, at steps 3 and 6
    psnr = [float(m) for m in re.findall(r"step [36]: held-out PSNR ([0-9.]+) dB", out)]
    assert len(psnr) == 2 and all(5 < p < 60 for p in psnr), out[-2000:]
    run(repo, "recipes/train_tiny_sd.py", "--stage", "unet", "--sample-every", "3", *common)
    unet_run = json.loads((tmp_path / "run" / "unet" / "training.json").read_text())
    assert (unet_run["snr_gamma"], unet_run["cfg_drop"]) == (5.0, 0.2)  # the CPU profile's min-SNR and empty prompts
    grid = (tmp_path / "m" / "samples.png").read_bytes()
    weights = tmp_path / "m" / "vae" / "diffusion_pytorch_model.safetensors"
    before = load_file(weights)
    out = run(repo, "recipes/train_tiny_sd.py", "--stage", "decoder", "--heldout-every", "6", *common)
    assert "encoder and scaling_factor unchanged" in out and re.search(r"step 6: held-out PSNR [0-9.]+ dB", out), out[-2000:]
    assert re.search(r"decoder: mirroring \d+ of 32 emoji", out), out[-2000:]
    assert json.loads((tmp_path / "run" / "decoder" / "training.json").read_text())["flip"] is True
    # the pipeline's samples are redrawn with the new decoder
    assert "redrew" in out and (tmp_path / "m" / "samples.png").read_bytes() != grid
    after = load_file(weights)
    # the decoder stage keeps the encoder bit for bit (the UNet's latents stay valid) and changes the decoder
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    # --init continues that VAE, encoder and all: its groups (4, not the default 8), recorded in training.json
    run(repo, "recipes/train_tiny_sd.py", "--stage", "vae", "--init", str(tmp_path / "m" / "vae"), "--steps", "2", "--lr", "1e-2",
        "--batch", "4", "--subset", "32", "--out", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "run2"))
    info = json.loads((tmp_path / "run2" / "vae" / "training.json").read_text())
    assert info["init"] == str(tmp_path / "m" / "vae") and info["norm_groups"] == 4, info
    cont = load_file(tmp_path / "m2" / "vae" / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(after[k], cont[k]) for k in after if k.startswith("encoder."))
    # --init continues m's text encoder and UNet on m's VAE, with the loaded UNet's groups (8, the default) whatever
    # --norm-groups says; recorded in training.json
    unet_file = tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors"
    unet_before = load_file(unet_file)
    (tmp_path / "m" / "runs" / "unet").mkdir(parents=True)
    (tmp_path / "m" / "runs" / "unet" / "training.json").write_text("{}")  # an earlier run's record inside --out
    run(repo, "recipes/train_tiny_sd.py", "--stage", "unet", "--init", str(tmp_path / "m"), "--norm-groups", "4",
        *common[:-2], "--run-dir", str(tmp_path / "run3"))
    # the save replaces the pipeline's parts only: what else --out held is still there
    assert (tmp_path / "m" / "runs" / "unet" / "training.json").read_text() == "{}"
    info = json.loads((tmp_path / "run3" / "unet" / "training.json").read_text())
    assert info["init"] == str(tmp_path / "m") and info["norm_groups"] == 8, info
    unet_after = load_file(unet_file)
    assert unet_after.keys() == unet_before.keys()
    assert any(not torch.equal(unet_before[k], unet_after[k]) for k in unet_before)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "m")
    assert pipe.text_encoder.dtype == torch.float32
    img = pipe("cat face", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (64, 64)


@pytest.mark.parametrize("stage", ["unet", "decoder"])
def test_later_stages_need_the_vae_first(repo, tmp_path, stage):
    r = subprocess.run([sys.executable, "recipes/train_tiny_sd.py", "--stage", stage, "--steps", "1",
                        "--out", str(tmp_path / "none")], cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "--stage vae" in r.stderr + r.stdout


def test_model_cards_match_the_recorded_figures(repo):
    """Every figure in a card comes from training.json, metrics.json and cpu_run.json: regenerate and compare."""
    r = subprocess.run([sys.executable, "recipes/write_model_cards.py", "--check"], cwd=repo,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_recording_a_cpu_run_refuses_a_gpu_run(repo, tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "training.json").write_text(json.dumps({"profile": "gpu", "hardware": "NVIDIA H200"}))
    r = subprocess.run([sys.executable, "recipes/record_cpu_run.py", "tiny-ddpm", "--out", str(tmp_path),
                        "--run-dir", str(tmp_path / "runs")], cwd=repo, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "is not a CPU-profile run on a CPU" in r.stderr


def test_decoder_mirrors_no_training_emoji_whose_mirror_twin_is_held_out():
    """--flip must not turn a training emoji into a held-out one ("woman walking" mirrored is "woman walking facing
    right"): the held-out PSNR would then measure pictures the decoder was trained on."""
    import train_tiny_sd as t

    from course_utils.emoji_data import load_emoji

    data = load_emoji(64, designs="all", progress=False)
    may = t.flippable(data, data.train_idx)
    held_keys = {t.mirror_key(data.captions[i]) for i in data.heldout_idx}
    kept = [data.captions[i] for i, ok in zip(data.train_idx, may.tolist(), strict=True) if not ok]
    assert "woman walking facing right dark skin tone" in {data.captions[i] for i in data.heldout_idx}
    assert "woman walking dark skin tone" in kept  # its mirror twin is held out: never mirrored
    assert all(t.mirror_key(c) in held_keys for c in kept)
    assert not any(t.mirror_key(data.captions[i]) in held_keys for i, ok in zip(data.train_idx, may.tolist(), strict=True) if ok)
    assert 0 < len(kept) < 0.02 * len(data.train_idx), len(kept)


def test_min_snr_weights_count_only_the_nearly_clean_levels_less():
    """min(SNR, gamma) / SNR: 1 wherever SNR <= gamma, gamma / SNR above it; no gamma: plain MSE (all ones)."""
    from diffusers import DDPMScheduler
    from train_tiny_sd import build_scheduler, min_snr_weight

    a = DDPMScheduler.from_config(build_scheduler().config).alphas_cumprod
    snr = a / (1 - a)
    w = min_snr_weight(a, 5.0)
    assert torch.equal(min_snr_weight(a, None), torch.ones_like(a))
    assert torch.all(w[snr <= 5] == 1) and torch.allclose(w[snr > 5], 5 / snr[snr > 5])
    assert w[0] < 0.01 and w[-1] == 1  # t=0: SNR about 1,000; t=999: pure noise
    assert 100 < int((w < 1).sum()) < 200  # SD's betas: SNR is above 5 for the first 147 of 1,000 levels


def test_learning_rate_schedules_follow_the_run_by_steps_or_minutes():
    """tail: 1, then a tenth for the last 20%; cosine: 1 -> 0.5 at half-way -> 0, by steps or by the time budget."""
    from types import SimpleNamespace

    from common import Budget
    from train_tiny_sd import LR_TAIL, tail_factor

    cfg, budget = {"steps": 100}, Budget(None)
    tail, cosine = (SimpleNamespace(max_minutes=None, schedule=s) for s in ("tail", "cosine"))
    assert [tail_factor(s, cfg, budget, tail) for s in (0, 80, 81, 100)] == [1.0, 1.0, LR_TAIL, LR_TAIL]
    assert tail_factor(0, cfg, budget, cosine) == 1.0 and tail_factor(100, cfg, budget, cosine) < 1e-12
    assert abs(tail_factor(50, cfg, budget, cosine) - 0.5) < 1e-12
    assert tail_factor(500, cfg, budget, cosine) < 1e-12  # past the steps: stays at 0
    timed = SimpleNamespace(max_minutes=1.0, schedule="cosine")
    budget.start -= 30  # half of the one-minute budget spent at step 0: the time decides
    assert abs(tail_factor(0, {"steps": 10**6}, budget, timed) - 0.5) < 0.01
