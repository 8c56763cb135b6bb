"""Latent previews, embedding similarity and the widget explorer, on the real tiny models."""

import os

import numpy as np
import pytest
import torch

from course_utils import make_generator
from course_utils.emoji_data import load_emoji


@pytest.fixture(scope="module")
def pipe(sd_path):
    from diffusers import StableDiffusionPipeline, UniPCMultistepScheduler

    p = StableDiffusionPipeline.from_pretrained(sd_path)
    p.scheduler = UniPCMultistepScheduler.from_config(p.scheduler.config)
    p.set_progress_bar_config(disable=True)
    return p


def test_latent_rgb_preview_resembles_the_image(pipe):
    from course_utils.latents import fit_latent_rgb, latent_preview, psnr, show_latent_channels

    data = load_emoji(64)
    x = data.tensor(data.heldout_idx[:32])
    proj = fit_latent_rgb(pipe.vae, x)
    assert proj.shape == (5, 3)
    with torch.no_grad():
        z = pipe.vae.encode(x).latent_dist.mode() * pipe.vae.config.scaling_factor
    prev = latent_preview(z, proj, size=8)
    small = torch.nn.functional.interpolate(x, size=8, mode="area")
    got = torch.stack([torch.from_numpy(__import__("numpy").array(im)).permute(2, 0, 1) for im in prev]).float() / 127.5 - 1
    assert psnr(got, small) > psnr(torch.zeros_like(small), small) + 3  # far better than a grey guess
    fig = show_latent_channels(z[0])
    assert len(fig.axes) == 4


def test_embedding_similarity(pipe):
    from course_utils.text import embedding_similarity, plot_similarity

    prompts = ["cat face", "cat face", "red heart"]
    sim = embedding_similarity(pipe.tokenizer, pipe.text_encoder, prompts)
    assert sim.shape == (3, 3)
    assert torch.allclose(sim.diagonal(), torch.ones(3), atol=1e-5) and sim[0, 1] > 0.999
    assert sim[0, 2] < sim[0, 1]
    assert len(plot_similarity(sim, prompts).axes) == 2


def generate_with(pipe):
    calls = []

    def generate(prompt, steps, guidance, seed, scheduler_name):
        calls.append((prompt, steps, guidance, seed, scheduler_name))
        return pipe(prompt, num_inference_steps=steps, guidance_scale=guidance,
                    generator=make_generator("cpu", seed)).images[0]

    return generate, calls


def test_explorer_static_fallback(pipe, monkeypatch):
    from course_utils.explorer import explorer

    monkeypatch.setenv("COURSE_STATIC", "1")
    generate, calls = generate_with(pipe)
    out = explorer(generate, ["UniPC"], prompt="cat face", steps=5, static_prompts=["cat face", "rocket"])
    assert out.size == (3 * 128, 2 * (128 + 16)) and len(calls) == 6
    band = np.asarray(out.convert("L"))[:16]  # each tile's label: dark text on the white band above it
    assert all((band[:, c * 128:(c + 1) * 128] < 128).any() for c in range(3))
    with pytest.raises(ValueError):
        explorer(generate, [])


def test_explorer_live_widgets_regenerate(pipe, monkeypatch):
    import time

    from course_utils.explorer import explorer

    monkeypatch.setenv("COURSE_STATIC", "0")
    generate, calls = generate_with(pipe)
    box = explorer(generate, ["UniPC", "Euler"], prompt="cat face", steps=25)
    assert len(calls) == 1
    t0 = time.perf_counter()
    box.controls["prompt"].value = "red heart"  # what typing in the text box does
    elapsed = time.perf_counter() - t0
    assert calls[-1] == ("red heart", 25, 7.5, 0, "UniPC") and len(calls) == 2
    assert elapsed < 2.0, f"an explorer update took {elapsed:.2f} s; the budget is 2 s in tiny mode on a CPU"
    box.controls["scheduler"].value = "Euler"
    assert calls[-1][-1] == "Euler"
    assert "generated in" in box.children[1].value
    assert os.environ["COURSE_STATIC"] == "0"
