"""course_utils.exercises: each check passes a correct answer, and answers each typical mistake with its own hint.

The contexts are the notebooks' own objects (the tiny zoo's scheduler, VAE, UNet, tokenizer), as in the notebooks.
"""

import inspect
import re
import time

import nbformat
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    UNet2DConditionModel,
    UNet2DModel,
    UniPCMultistepScheduler,
)
from run_notebooks import notebooks
from transformers import CLIPTokenizer

from course_utils import exercises as ex
from course_utils import make_generator


@pytest.fixture(scope="module")
def ddpm(ddpm_path):
    return DDPMScheduler.from_pretrained(ddpm_path), UNet2DModel.from_pretrained(ddpm_path)


@pytest.fixture(scope="module")
def sd(sd_path):
    return (AutoencoderKL.from_pretrained(sd_path, subfolder="vae"),
            UNet2DConditionModel.from_pretrained(sd_path, subfolder="unet"),
            CLIPTokenizer.from_pretrained(sd_path, subfolder="tokenizer"))


def verdict(q, answer):
    return q.evaluate(answer)


def assert_right(q, answer):
    r = q.evaluate(answer)
    assert r.correct is True, r.message
    assert r.message.startswith("Correct")


def assert_wrong(q, answer, *fragments):
    r = q.evaluate(answer)
    assert r.correct is False, f"a wrong answer passed: {r.message}"
    for f in fragments:
        assert f in r.message, f"expected {f!r} in: {r.message}"


def g(seed=0, shape=(2, 4, 8, 8)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# -- the machinery -------------------------------------------------------------------------------------------------

def test_unsolved_is_not_attempted_and_printed_not_raised(capsys):
    q = ex.SeededGenerator("q1", device="cpu", seed=0)
    r = q.evaluate(...)
    assert r.correct is None and "Not attempted yet" in r.message and "q1.hint()" in r.message
    q.check(...)
    assert "Not attempted yet" in capsys.readouterr().out
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert out.startswith("Hint (q1)") and "torch.Generator(device).manual_seed(seed)" in out


def test_an_answer_that_breaks_the_check_is_told_so():
    q = ex.ClassifierFreeGuidance("q1", uncond=g(1), text=g(2), guidance_scale=7.5)
    assert_wrong(q, "not a tensor", "expected the guided noise prediction (a torch.Tensor), got str")


def test_every_notebook_from_01_has_two_coding_exercises_with_hint_and_solution():
    assert sorted(ex.NOTEBOOK_EXERCISES) == [f"{i:02d}" for i in range(1, 13)]
    for nb, classes in ex.NOTEBOOK_EXERCISES.items():
        assert len(classes) >= 2, nb
        for cls in classes:
            assert cls.title and cls.task and cls._hint and cls._solution, cls.__name__
    md = ex.solutions_markdown()
    assert md.count("```python") == sum(len(c) for c in ex.NOTEBOOK_EXERCISES.values())


@pytest.mark.parametrize("nb", [p for p in notebooks() if p.stem[:2] in ex.NOTEBOOK_EXERCISES], ids=lambda p: p.stem)
def test_committed_notebooks_leave_their_exercises_unsolved(nb):
    """Each notebook builds its exercises and checks an unsolved `...` answer (so it runs cleanly in CI)."""
    src = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code")
    for i, cls in enumerate(ex.NOTEBOOK_EXERCISES[nb.stem[:2]], 1):
        assert re.search(rf"q{i} = exercises\.{cls.__name__}\(\"q{i}\"", src), f"{nb.stem}: q{i} {cls.__name__} missing"
        assert re.search(rf"= \.\.\.  # your code here.*\n(.*\n)*?q{i}\.check\(", src), f"{nb.stem}: q{i} not unsolved"


# -- one test per exercise: the right answer, then the typical mistakes ----------------------------------------------

def test_seeded_generator():
    q = ex.SeededGenerator("q1", device="cpu", seed=3)
    assert_right(q, torch.Generator("cpu").manual_seed(3))
    assert_wrong(q, torch.manual_seed(3), "global", "torch.Generator(device).manual_seed(seed)")
    assert_wrong(q, torch.Generator("cpu").manual_seed(4), "seeded with 4")
    assert_wrong(q, 3, "expected a torch.Generator")
    q_gpu = ex.SeededGenerator("q1", device="cuda", seed=0)
    assert_wrong(q_gpu, torch.Generator("cpu").manual_seed(0), "is on 'cpu'", "Expected a 'cuda' device type")


def test_parameter_count(ddpm):
    _, model = ddpm
    n = sum(p.numel() for p in model.parameters())
    q = ex.ParameterCount("q2", model=model)
    assert_right(q, n)
    assert_wrong(q, len(list(model.parameters())), "parameter *tensors*", "p.numel()")
    assert_wrong(q, round(n / 1e6, 1), "looks like millions")
    assert_wrong(q, n - 1, "is not the count")


def test_inference_timesteps(ddpm):
    scheduler, _ = ddpm
    q = ex.InferenceTimesteps("q1", scheduler=scheduler, num_inference_steps=10)
    s = DDPMScheduler.from_config(scheduler.config)
    s.set_timesteps(10)
    assert_right(q, s.timesteps)
    assert_right(q, s.timesteps.tolist())
    assert_wrong(q, s.timesteps.flip(0), "wrong order")
    s1000 = DDPMScheduler.from_config(scheduler.config)
    assert_wrong(q, s1000.timesteps, "all the training levels", "set_timesteps(10)")
    trailing = DDPMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
    trailing.set_timesteps(10)
    assert_wrong(q, trailing.timesteps, "'trailing' timesteps")
    assert_wrong(q, list(range(900, -1, -90))[:10], "expected [")


def test_predicted_x0(ddpm):
    scheduler, _ = ddpm
    x, eps, t = g(1, (1, 3, 8, 8)) * 1.5, g(2, (1, 3, 8, 8)), 500
    q = ex.PredictedX0("q2", scheduler=scheduler, sample=x, model_output=eps, timestep=torch.tensor(t))
    a = scheduler.alphas_cumprod[t]
    raw = (x - (1 - a).sqrt() * eps) / a.sqrt()
    assert (raw.abs() > 1).any(), "the example must need clipping"
    assert_right(q, raw.clamp(-1, 1))
    assert_right(q, scheduler.step(eps, t, x, generator=make_generator("cpu", 0)).pred_original_sample)
    assert_wrong(q, raw, "now clip it", "clip_sample=True")
    al = scheduler.alphas[t]
    assert_wrong(q, ((x - (1 - al).sqrt() * eps) / al.sqrt()).clamp(-1, 1), "scheduler.alphas[t]", "alphas_cumprod[t]")
    assert_wrong(q, ((x + (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1), "sign error")
    assert_wrong(q, ((x - (1 - a) * eps) / a).clamp(-1, 1), "missing square roots")
    assert_wrong(q, raw.clamp(-1, 1)[0], "shape mismatch")


def test_scheduler_swap(ddpm):
    scheduler, _ = ddpm
    q = ex.SchedulerSwap("q1", config=scheduler.config)
    assert_right(q, DDIMScheduler.from_config(scheduler.config, timestep_spacing="trailing"))
    assert_wrong(q, DDIMScheduler.from_config(scheduler.config), "timestep_spacing is 'leading'")
    assert_wrong(q, DDIMScheduler(beta_schedule="scaled_linear", timestep_spacing="trailing"), "from_config(config")
    assert_wrong(q, DDIMScheduler, "the class itself")
    assert_wrong(q, DDPMScheduler.from_config(scheduler.config), "not a DDIMScheduler")


def test_alphas_cumprod(ddpm):
    scheduler, _ = ddpm
    q = ex.AlphasCumprod("q2", scheduler=scheduler)
    b = scheduler.betas
    assert_right(q, torch.cumprod(1 - b, dim=0))
    assert_right(q, scheduler.alphas_cumprod)
    assert_wrong(q, torch.cumsum(1 - b, 0), "running *sum*")
    assert_wrong(q, torch.cumprod(b, 0), "product of the betas")
    assert_wrong(q, 1 - torch.cumprod(b, 0), "1 − ∏β")
    assert_wrong(q, 1 - b, "α_t for each step alone")


def test_latent_shape(sd):
    vae, unet, _ = sd
    q = ex.LatentShape("q1", unet=unet, vae=vae, batch_size=2, height=64, width=128)
    assert_right(q, (2, 4, 8, 16))
    assert_right(q, torch.Size([2, 4, 8, 16]))
    assert_wrong(q, (2, 3, 8, 16), "3 channels", "in_channels = 4")
    assert_wrong(q, (2, 4, 64, 128), "the image's size", "by 8")
    assert_wrong(q, (2, 4, 16, 32), "vae_scale_factor = 8")
    assert_wrong(q, (4, 8, 16), "a batch")
    assert_wrong(q, (1, 4, 8, 16), "batch 1")


def test_scale_latents(sd):
    vae, _, _ = sd
    assert vae.config.scaling_factor != ex.SD_V1_SCALING_FACTOR  # the tiny VAE: the hard-coded number is wrong
    z = g(3)
    q = ex.ScaleLatents("q2", vae=vae, latents=z)
    assert_right(q, z * vae.config.scaling_factor)
    assert_wrong(q, z * 0.18215, "used 0.18215", f"vae.config.scaling_factor (= {vae.config.scaling_factor} ")
    assert_wrong(q, z / vae.config.scaling_factor, "divided")
    assert_wrong(q, z, "unscaled")


def test_classifier_free_guidance():
    u, c, s = g(1), g(2), 7.5
    q = ex.ClassifierFreeGuidance("q1", uncond=u, text=c, guidance_scale=s)
    assert_right(q, u + s * (c - u))
    assert_wrong(q, c + s * (u - c), "guidance applied backwards")
    assert_wrong(q, s * (c - u), "forgot to start from the unconditional")
    assert_wrong(q, c + s * (c - u), "start from the *unconditional*")
    assert_wrong(q, torch.cat([u, c]), "shape mismatch", "chunk(2)")


def test_batched_embeddings():
    u, c = g(1, (1, 77, 64)), g(2, (1, 77, 64))
    q = ex.BatchedEmbeddings("q2", uncond=u, cond=c)
    assert_right(q, torch.cat([u, c]))
    assert_wrong(q, torch.cat([c, u]), "wrong order")
    assert_wrong(q, c, "forgot to concatenate")
    assert_wrong(q, torch.stack([u, c]), "torch.stack adds a dimension")
    assert_wrong(q, torch.cat([u, c], dim=1), "along the tokens")


def test_decode_scaling(sd):
    vae, _, _ = sd
    z = g(4)
    q = ex.DecodeScaling("q3", vae=vae, latents=z)
    assert_right(q, z / vae.config.scaling_factor)
    assert_wrong(q, z / 0.18215, "used 0.18215", "vae.config.scaling_factor")
    assert_wrong(q, z * vae.config.scaling_factor, "multiplied")
    assert_wrong(q, z, "unchanged")


def test_latents_per_seed():
    shape, seeds = (1, 4, 8, 8), [0, 1, 2, 3]
    q = ex.LatentsPerSeed("q1", shape=shape, seeds=seeds, device="cpu")
    right = torch.cat([torch.randn(shape, generator=make_generator("cpu", s)) for s in seeds])
    assert_right(q, right)
    assert_wrong(q, torch.randn((4, 4, 8, 8), generator=make_generator("cpu", 0)), "one generator")
    assert_wrong(q, right[:2], "shape mismatch", "One image per seed")
    assert_wrong(q, right.flip(0), "in the order of `seeds`")


def test_step_callback():
    q = ex.StepCallback("q2")

    def right(pipe, step, t, kw):
        if step == 5:
            kw["latents"] = kw["latents"] * 1.05
        return kw

    def every(pipe, step, t, kw):
        kw["latents"] = kw["latents"] * 1.05
        return kw

    def returns_none(pipe, step, t, kw):
        if step == 5:
            kw["latents"] = kw["latents"] * 1.05

    assert_right(q, right)
    assert_wrong(q, every, "at step 0", "only step 5")
    assert_wrong(q, returns_none, "returns None", "return callback_kwargs")


def test_step_kwargs():
    q = ex.StepKwargs("q1")

    def right(scheduler, generator):
        return {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}

    assert_right(q, right)
    assert_wrong(q, lambda s, gen: {"generator": gen}, "UniPCMultistepScheduler.step has no generator")
    assert_wrong(q, lambda s, gen: {}, "DDPMScheduler.step draws random noise")


def test_repeat_prompts():
    q = ex.RepeatPrompts("q2")
    assert_right(q, lambda prompts, n: [p for p in prompts for _ in range(n)])
    assert_wrong(q, lambda prompts, n: prompts * n, "interleaved")
    assert_wrong(q, lambda prompts, n: [[p] * n for p in prompts], "list of lists")


def test_add_noise_by_hand(ddpm):
    scheduler, _ = ddpm
    x0, noise, ts = g(1, (3, 3, 8, 8)), g(2, (3, 3, 8, 8)), torch.tensor([10, 500, 990])
    q = ex.AddNoiseByHand("q1", scheduler=scheduler, x0=x0, noise=noise, timesteps=ts)
    a = scheduler.alphas_cumprod[ts].view(-1, 1, 1, 1)
    assert_right(q, a.sqrt() * x0 + (1 - a).sqrt() * noise)
    assert_wrong(q, a * x0 + (1 - a) * noise, "missing square roots")
    assert_wrong(q, (1 - a).sqrt() * x0 + a.sqrt() * noise, "swapped")
    flat = scheduler.alphas_cumprod[ts]
    assert_wrong(q, (flat.sqrt() * x0.transpose(0, -1)).transpose(0, -1)[:, :1], "shape mismatch", "view(-1, 1, 1, 1)")


def test_ema_update():
    q = ex.EMAUpdate("q2")
    assert_right(q, lambda ema, p, d: d * ema + (1 - d) * p)
    assert_right(q, lambda ema, p, d: ema.lerp_(p, 1 - d))
    assert_wrong(q, lambda ema, p, d: d * p + (1 - d) * ema, "swapped")
    assert_wrong(q, lambda ema, p, d: None, "returns None")


def test_half_precision_dtype():
    q = ex.HalfPrecisionDtype("q1")
    assert_right(q, lambda d: torch.float16 if d.startswith("cuda") else torch.float32)
    assert_wrong(q, lambda d: torch.float16, "float16 on a CPU")
    assert_wrong(q, lambda d: torch.float32, "correct but slow")


def test_median_time():
    q = ex.MedianTime("q2")

    def right(fn, repeats=3):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def no_warmup(fn, repeats=3):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def mean(fn, repeats=3):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    assert_right(q, right)
    assert_wrong(q, no_warmup, "untimed first")
    assert_wrong(q, mean, "median")


def test_img2img_timesteps(sd_path):
    s = UniPCMultistepScheduler.from_pretrained(sd_path, subfolder="scheduler")
    s.set_timesteps(25)
    q = ex.Img2ImgTimesteps("q1", scheduler=s, num_inference_steps=25, strength=0.6)
    assert_right(q, s.timesteps[10:])
    assert_wrong(q, s.timesteps, "all the timesteps")
    assert_wrong(q, s.timesteps[:15], "first (noisiest)")
    assert_wrong(q, s.timesteps[15:], "skipped int(n·strength)")


def test_inpaint_blend(sd_path):
    s = DDIMScheduler.from_pretrained(sd_path, subfolder="scheduler")
    init, noise = g(1, (1, 4, 8, 8)), g(2, (1, 4, 8, 8))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:] = 1
    t = torch.tensor(501)
    q = ex.InpaintBlend("q2", scheduler=s, init_latents=init, noise=noise, mask=mask, timestep=t)
    known = s.add_noise(init, noise, t.reshape(1))
    assert_right(q, lambda z: mask * z + (1 - mask) * known)
    assert_wrong(q, lambda z: (1 - mask) * z + mask * known, "wrong way round")
    assert_wrong(q, lambda z: mask * z + (1 - mask) * init, "noise the init latents")


def test_token_position(sd):
    _, _, tok = sd
    q = ex.TokenPosition("q1", tokenizer=tok, prompt="red heart", word="heart")
    assert_right(q, 2)
    assert_wrong(q, 1, "off by one", "<|startoftext|>")
    assert_wrong(q, tok("red heart").input_ids[2], "*id*")
    assert_wrong(q, 3, "position 3 holds")


def test_attention_probabilities():
    qry, key = g(1, (2, 16, 8)), g(2, (2, 77, 8)) * 3
    q = ex.AttentionProbabilities("q2", query=qry, key=key)
    scores = qry @ key.transpose(-1, -2)
    assert_right(q, (scores / 8 ** 0.5).softmax(-1))
    assert_right(q, torch.nn.functional.softmax(scores * 8 ** -0.5, dim=2))
    assert_wrong(q, (scores / 8 ** 0.5).softmax(-2), "wrong axis")
    assert_wrong(q, scores.softmax(-1), "forgot the 1/√d")
    assert_wrong(q, scores.transpose(-1, -2).softmax(-1), "shape mismatch")


def test_target_colour():
    q = ex.TargetColour("q1", rgb=(30, 90, 220))
    assert_right(q, (torch.tensor([30, 90, 220.]) / 127.5 - 1).view(1, 3, 1, 1))
    assert_wrong(q, torch.tensor([30, 90, 220.]) / 127.5 - 1, "along the *width*")
    assert_wrong(q, (torch.tensor([30, 90, 220.]) / 255).view(1, 3, 1, 1), "[-1, 1]")


def test_guidance_step():
    z, grad = g(1), g(2)
    q = ex.GuidanceStep("q2", latents=z, grad=grad, guidance_strength=0.3)
    assert_right(q, z - 0.3 * grad)
    assert_wrong(q, z + 0.3 * grad, "climbed the loss")
    assert_wrong(q, z - grad, "scale the gradient")


def test_instructor_guide_lists_every_solution(repo):
    text = (repo / "book" / "instructor_guide.md").read_text()
    block = text.split("<!-- code-solutions:start -->\n")[1].split("<!-- code-solutions:end -->")[0]
    assert block == ex.solutions_markdown(), "regenerate the block from course_utils.exercises.solutions_markdown()"
