"""course_utils.attention: the recording processor changes nothing, and records what attention is."""

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DModel, UniPCMultistepScheduler
from diffusers.models.attention_processor import AttnProcessor2_0

from course_utils import make_generator
from course_utils.attention import CrossAttentionRecorder, RecordingAttnProcessor, prompt_tokens


@pytest.fixture(scope="module")
def pipe(sd_path):
    p = StableDiffusionPipeline.from_pretrained(sd_path, safety_checker=None, requires_safety_checker=False)
    p.scheduler = UniPCMultistepScheduler.from_config(p.scheduler.config)
    p.set_progress_bar_config(disable=True)
    return p


def unet_inputs(pipe, batch=2):
    g = make_generator("cpu", 0)
    size = pipe.unet.config.sample_size
    latents = torch.randn((batch, pipe.unet.config.in_channels, size, size), generator=g)
    ids = pipe.tokenizer(["", "red heart"][:batch], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = pipe.text_encoder(ids)[0]
    return latents, emb


def test_recording_leaves_the_unet_output_identical(pipe):
    latents, emb = unet_inputs(pipe)
    with torch.no_grad():
        default = pipe.unet(latents, 500, encoder_hidden_states=emb).sample
        rec = CrossAttentionRecorder().attach(pipe.unet)
        recorded = pipe.unet(latents, 500, encoder_hidden_states=emb).sample
        rec.detach()
    assert torch.equal(default, recorded)
    assert len(rec.maps) == 7 and rec.steps == [0]


def test_recorder_attaches_only_to_cross_attention_and_detaches(pipe):
    before = {k: type(v) for k, v in pipe.unet.attn_processors.items()}
    rec = CrossAttentionRecorder().attach(pipe.unet)
    during = pipe.unet.attn_processors
    assert all(isinstance(p, RecordingAttnProcessor) == k.endswith("attn2.processor") for k, p in during.items())
    with pytest.raises(RuntimeError, match="already attached"):
        rec.attach(pipe.unet)
    rec.detach()
    assert {k: type(v) for k, v in pipe.unet.attn_processors.items()} == before
    assert all(t is AttnProcessor2_0 for t in before.values())


def test_maps_over_a_pipeline_run(pipe):
    rec = CrossAttentionRecorder(batch_slice=slice(-1, None)).attach(pipe.unet)
    plain_rec = pipe("red heart", num_inference_steps=4, generator=make_generator("cpu", 0), output_type="np").images
    rec.detach()
    plain = pipe("red heart", num_inference_steps=4, generator=make_generator("cpu", 0), output_type="np").images
    assert (plain == plain_rec).all()
    assert rec.steps == [0, 1, 2, 3] and len(rec.layers) == 7 and rec.latent_size == (8, 8)
    assert rec.layers[0].startswith("down") and rec.layers[-1].startswith("up")
    sizes = {rec.layer_size(layer) for layer in rec.layers}
    assert sizes == {(8, 8), (4, 4), (2, 2)}
    for (_step, layer), m in rec.maps.items():
        h, w = rec.layer_size(layer)
        assert m.shape == (1, h * w, 77)  # the text half of the guidance batch, heads averaged
        assert torch.allclose(m.sum(-1), torch.ones(1, h * w), atol=1e-5)
    tm = rec.token_map(2)
    assert tm.shape == (8, 8) and float(tm.min()) >= 0
    one = rec.token_map(2, steps=[3], layers=[rec.layers[0]])
    assert torch.allclose(one.flatten(), rec.maps[(3, rec.layers[0])][-1, :, 2], atol=1e-6)  # same size: no resampling
    with pytest.raises(KeyError, match="were not recorded"):
        rec.token_map(2, steps=[9])


def test_at_steps_records_only_those(pipe):
    rec = CrossAttentionRecorder(at_steps=[2]).attach(pipe.unet)
    pipe("cat face", num_inference_steps=3, generator=make_generator("cpu", 0), output_type="np")
    rec.detach()
    assert rec.steps == [2]


def test_teaching_errors(ddpm_path, pipe):
    with pytest.raises(RuntimeError, match="Nothing was recorded"):
        CrossAttentionRecorder().token_map(1)
    with pytest.raises(ValueError, match="no cross-attention layers"):
        CrossAttentionRecorder().attach(UNet2DModel.from_pretrained(ddpm_path))


def test_prompt_tokens(pipe):
    assert prompt_tokens(pipe.tokenizer, "red heart") == [(0, "<|startoftext|>"), (1, "red"), (2, "heart"),
                                                          (3, "<|endoftext|>")]


def test_maps_of_a_half_precision_unet_are_probabilities(sd_path):
    """On a GPU notebooks load float16; the recorded probabilities are computed in float32, so each row of a map
    still sums to 1 (notebook 11 asserts it to 1e-4) and the UNet's own output stays its float16 result."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(sd_path, subfolder="unet", dtype=torch.float16)
    size = unet.config.sample_size
    latents = torch.randn((1, unet.config.in_channels, size, size), generator=make_generator("cpu", 0)).half()
    emb = torch.randn((1, 77, unet.config.cross_attention_dim), generator=make_generator("cpu", 1)).half() * 4
    with torch.no_grad():
        default = unet(latents, 500, encoder_hidden_states=emb).sample
        rec = CrossAttentionRecorder().attach(unet)
        recorded = unet(latents, 500, encoder_hidden_states=emb).sample
        rec.detach()
    assert torch.equal(default, recorded) and recorded.dtype == torch.float16
    for m in rec.maps.values():
        assert m.dtype == torch.float32
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-5), float((m.sum(-1) - 1).abs().max())
