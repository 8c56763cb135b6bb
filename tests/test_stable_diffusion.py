"""The hand-written Stable Diffusion loop equals StableDiffusionPipeline, and bad input gets teaching errors."""

import warnings

import numpy as np
import pytest
import torch

from course_utils import make_generator
from course_utils.handwritten import check_prompts, predicted_x0, sd_generate


@pytest.fixture(scope="module")
def parts(sd_path):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae")
    tok = CLIPTokenizer.from_pretrained(sd_path, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(sd_path, subfolder="text_encoder")
    unet = UNet2DConditionModel.from_pretrained(sd_path, subfolder="unet")
    return vae, tok, te, unet, StableDiffusionPipeline


SCHEDULERS = ["UniPCMultistepScheduler", "DDIMScheduler", "EulerDiscreteScheduler"]


@pytest.mark.parametrize("scheduler_name", SCHEDULERS)
@pytest.mark.parametrize("guidance", [1.0, 7.5])
@pytest.mark.parametrize("prompts", [["cat face"], ["cat face", "red heart", "rocket"]], ids=["batch1", "batch3"])
def test_hand_written_loop_equals_pipeline(parts, sd_path, scheduler_name, guidance, prompts):
    import diffusers

    vae, tok, te, unet, Pipeline = parts
    cls = getattr(diffusers, scheduler_name)
    ours = sd_generate(vae, tok, te, unet, cls.from_pretrained(sd_path, subfolder="scheduler"), prompts,
                       num_inference_steps=12, guidance_scale=guidance, generator=make_generator("cpu", 0))
    pipe = Pipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                    scheduler=cls.from_pretrained(sd_path, subfolder="scheduler"),
                    safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    lib = pipe(prompts, num_inference_steps=12, guidance_scale=guidance, generator=make_generator("cpu", 0),
               output_type="np").images
    assert ours.shape == lib.shape == (len(prompts), 64, 64, 3)
    assert np.abs(ours - lib).max() <= 1e-4
    assert ours.std() > 0.05  # a real image, not a blank


def test_negative_prompt_matches_pipeline_and_changes_the_image(parts, sd_path):
    from diffusers import UniPCMultistepScheduler

    vae, tok, te, unet, Pipeline = parts

    def sched():
        return UniPCMultistepScheduler.from_pretrained(sd_path, subfolder="scheduler")

    pipe = Pipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched(), safety_checker=None,
                    feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=10, guidance_scale=7.5)
    ours = sd_generate(vae, tok, te, unet, sched(), ["cat face"], negative_prompts=["yellow"],
                       generator=make_generator("cpu", 0), **kw)
    lib = pipe(["cat face"], negative_prompt=["yellow"], generator=make_generator("cpu", 0), output_type="np", **kw).images
    plain = sd_generate(vae, tok, te, unet, sched(), ["cat face"], generator=make_generator("cpu", 0), **kw)
    assert np.abs(ours - lib).max() <= 1e-4
    assert np.abs(ours - plain).max() > 0.1


def test_teaching_errors(parts, sd_path):
    from diffusers import UniPCMultistepScheduler

    vae, tok, te, unet, _ = parts
    sched = UniPCMultistepScheduler.from_pretrained(sd_path, subfolder="scheduler")
    with pytest.raises(ValueError, match="prompt list is empty"):
        sd_generate(vae, tok, te, unet, sched, [])
    with pytest.raises(ValueError, match="not a multiple of 8"):
        sd_generate(vae, tok, te, unet, sched, ["cat face"], height=60)
    with pytest.raises(ValueError, match="below 1"):
        sd_generate(vae, tok, te, unet, sched, ["cat face"], guidance_scale=0.5)
    with pytest.raises(ValueError, match="one per prompt"):
        sd_generate(vae, tok, te, unet, sched, ["a", "b"], negative_prompts=["c"])
    long = "red " * 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_prompts(tok, [long])
    msg = str(caught[0].message)
    assert "102 tokens" in msg and "cut:" in msg and "red" in msg.split("cut:")[1]


def test_predicted_x0_is_exact_for_a_known_noise(sd_path):
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    s = DDIMScheduler.from_pretrained(sd_path, subfolder="scheduler")
    x0 = torch.randn(1, 4, 8, 8)
    eps = torch.randn(1, 4, 8, 8)
    t = torch.tensor([500])
    xt = s.add_noise(x0, eps, t)
    assert torch.allclose(predicted_x0(s, xt, eps, t[0]), x0, atol=1e-4)
    assert predicted_x0(EulerDiscreteScheduler.from_pretrained(sd_path, subfolder="scheduler"), xt, eps, t[0]) is None
