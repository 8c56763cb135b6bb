"""Exercises that check themselves: write the code, then ``q1.check(answer)``; stuck? ``q1.hint()``, ``q1.solution()``.

Introduced in ``notebooks/01_pipeline_in_four_lines.ipynb``; every notebook from 01 on ends with a few of them,
before its prose exercises. Each exercise is built from the notebook's own objects (its scheduler, its VAE, ...),
so the checks work in tiny mode and in hub mode, offline, and compare your answer with what diffusers computes::

    q1 = exercises.ClassifierFreeGuidance(uncond=noise_pred_uncond, text=noise_pred_text, guidance_scale=7.5)
    guided = ...  # your code here
    q1.check(guided)

A wrong answer is told *what* is wrong (a shape, a hard-coded 0.18215, guidance applied backwards, ...): each
exercise knows the typical mistakes and recognises them. An answer left as ``...`` is "not attempted yet", so
the committed notebooks, which leave every exercise unsolved, run cleanly. ``evaluate(answer)`` returns the
verdict as a ``Result`` instead of printing it (the tests use it).

``NOTEBOOK_EXERCISES`` lists the exercises of each notebook; ``solutions_markdown()`` writes them all, with their
solutions, for the instructor guide.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass

SD_V1_SCALING_FACTOR = 0.18215  # the tutorial's hard-coded number, recognised as a mistake, never used


@dataclass
class Result:
    """The verdict on one answer: ``correct`` is True, False, or None (not attempted)."""

    correct: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.correct)

    def __str__(self) -> str:
        return self.message


class Mistake(Exception):
    """Raised inside a check: the message says what is wrong with the answer."""


class Exercise:
    """One coding exercise. Subclasses set ``title``, ``task``, ``_hint``, ``_solution`` and write ``_check``."""

    label = "q"
    title = ""
    task = ""  # what to write, one sentence, shown by solutions_markdown and in the notebook
    _hint = ""
    _solution = ""

    def __init__(self, label: str | None = None, **context):
        if label is not None:
            self.label = label
        self.context = context
        for name, value in context.items():
            setattr(self, name, value)

    # the three calls a learner makes
    def check(self, answer=...) -> None:
        """Print whether ``answer`` is right, and if not, what is wrong with it."""
        print(self.evaluate(answer).message)

    def hint(self) -> None:
        print(f"Hint ({self.label}): {self._hint}")

    def solution(self) -> None:
        print(f"Solution ({self.label}):\n{textwrap.indent(textwrap.dedent(self._solution).strip(), '    ')}")

    def evaluate(self, answer=...) -> Result:
        """The verdict, as a ``Result`` (``check`` prints its message)."""
        if answer is Ellipsis or answer is None:
            return Result(None, f"Not attempted yet ({self.label}: {self.title}). Replace `...` with your code and "
                                f"run the cell again; `{self.label}.hint()` gives a hint, `{self.label}.solution()` "
                                "the answer.")
        try:
            self._check(answer)
        except Mistake as m:
            return Result(False, f"Not yet ({self.label}): {m}")
        except Exception as e:  # the answer broke the check itself: say so, with the error
            return Result(False, f"Not yet ({self.label}): checking your answer raised {type(e).__name__}: {e}")
        return Result(True, f"Correct ({self.label}): {self.title}.")

    def _check(self, answer) -> None:  # raise Mistake(message) when wrong
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.label}: {self.title}. {self.task} Check it with {self.label}.check(your_answer).>"


# ----------------------------------------------------------------------------------------------------------------
# small checking helpers

def _tensor(answer, what: str = "a tensor"):
    import torch

    if isinstance(answer, torch.Tensor):
        return answer
    raise Mistake(f"expected {what} (a torch.Tensor), got {type(answer).__name__}.")


def _same(a, b, tol: float = 1e-5) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.allclose(a.float().cpu(), b.float().cpu(), atol=tol, rtol=1e-4))


def _shape(answer, expected, hint: str = "") -> None:
    if tuple(answer.shape) != tuple(expected.shape):
        raise Mistake(f"shape mismatch: your answer has shape {tuple(answer.shape)}, the right one "
                      f"{tuple(expected.shape)}. {hint}".strip())


def _diagnose(answer, expected, mistakes, tol: float = 1e-5, fallback: str = "") -> None:
    """Right if ``answer`` is close to ``expected``; otherwise the message of the first known mistake it matches."""
    if _same(answer, expected, tol):
        return
    for wrong, message in mistakes:
        if wrong is not None and _same(answer, wrong, tol):
            raise Mistake(message)
    _shape(answer, expected)
    diff = float((answer.float().cpu() - expected.float().cpu()).abs().max())
    raise Mistake(f"the values differ (largest difference {diff:.3g}). {fallback}".strip())


# ----------------------------------------------------------------------------------------------------------------
# 01 · a pipeline in four lines

class SeededGenerator(Exercise):
    """Context: ``device``, ``seed``."""

    title = "a generator for reproducible images"
    task = "Make a torch.Generator on `device`, seeded with `seed`."
    _hint = "torch.Generator takes the device; .manual_seed(seed) seeds it and returns it."
    _solution = "generator = torch.Generator(device).manual_seed(seed)   # what make_generator(device, seed) does"

    def _check(self, answer):
        import torch

        if answer is torch.default_generator:
            raise Mistake("torch.manual_seed(seed) seeds and returns PyTorch's *global* CPU generator, shared by every "
                          "random call in the process; it fails with tensors on a GPU. Make your own: "
                          "torch.Generator(device).manual_seed(seed).")
        if not isinstance(answer, torch.Generator):
            raise Mistake(f"expected a torch.Generator, got {type(answer).__name__}.")
        if answer.device.type != torch.device(self.device).type:
            raise Mistake(f"your generator is on {answer.device.type!r} but the noise is drawn on {self.device!r}: "
                          f"torch.randn(..., device={self.device!r}, generator=...) would fail with \"Expected a "
                          f"'{torch.device(self.device).type}' device type for generator\". Create it on `device`.")
        if answer.initial_seed() != self.seed:
            raise Mistake(f"your generator was seeded with {answer.initial_seed()}, not seed={self.seed}.")


class ParameterCount(Exercise):
    """Context: ``model``."""

    title = "how big is the UNet"
    task = "Count the numbers in the UNet's weights (an int)."
    _hint = "model.parameters() yields tensors; each tensor's .numel() is how many numbers it holds."
    _solution = "n_params = sum(p.numel() for p in model.parameters())"

    def _check(self, answer):
        expected = sum(p.numel() for p in self.model.parameters())
        tensors = len(list(self.model.parameters()))
        if isinstance(answer, float) and abs(answer * 1e6 - expected) < 0.05e6 * max(1, expected / 1e6):
            raise Mistake(f"{answer} looks like millions; give the exact count as an int ({expected / 1e6:.1f} M).")
        if not isinstance(answer, int):
            raise Mistake(f"expected an int, got {type(answer).__name__}.")
        if answer == tensors:
            raise Mistake(f"{answer} is the number of parameter *tensors*; each holds many numbers: sum p.numel().")
        if answer != expected:
            raise Mistake(f"{answer:,} is not the count (it is {'more' if answer > expected else 'less'}); "
                          "sum p.numel() over model.parameters().")


# ----------------------------------------------------------------------------------------------------------------
# 02 · DDPM from its components

class InferenceTimesteps(Exercise):
    """Context: ``scheduler`` (a DDPMScheduler), ``num_inference_steps``."""

    title = "the timesteps of a short run"
    task = "Give the timesteps the loop visits for `num_inference_steps` steps (a tensor or a list)."
    _hint = "A scheduler picks them in set_timesteps(n) and keeps them in .timesteps."
    _solution = """
        scheduler.set_timesteps(num_inference_steps)
        timesteps = scheduler.timesteps"""

    def _check(self, answer):
        import torch

        ref = type(self.scheduler).from_config(self.scheduler.config)
        ref.set_timesteps(self.num_inference_steps)
        expected = ref.timesteps.tolist()
        got = answer.tolist() if isinstance(answer, torch.Tensor) else list(answer)
        got = [int(t) for t in got]
        if got == expected:
            return
        if got == expected[::-1]:
            raise Mistake("right timesteps, wrong order: the loop starts at the noisiest level and ends at 0.")
        if len(got) == self.scheduler.config.num_train_timesteps:
            raise Mistake(f"{len(got)} timesteps: these are all the training levels. Call "
                          f"scheduler.set_timesteps({self.num_inference_steps}) first.")
        if len(got) != len(expected):
            raise Mistake(f"{len(got)} timesteps, but the loop runs {self.num_inference_steps} steps.")
        for spacing in ("trailing", "linspace"):
            other = type(self.scheduler).from_config(self.scheduler.config, timestep_spacing=spacing)
            other.set_timesteps(self.num_inference_steps)
            if got == other.timesteps.tolist():
                raise Mistake(f"these are '{spacing}' timesteps; this scheduler's config says timestep_spacing="
                              f"{self.scheduler.config.timestep_spacing!r}: ask the scheduler rather than computing them.")
        raise Mistake(f"expected {expected}, got {got}.")


class PredictedX0(Exercise):
    """Context: ``scheduler`` (DDPM), ``sample`` (x_t), ``model_output`` (ε̂), ``timestep`` (t)."""

    title = "the model's guess of the clean image"
    task = ("Compute x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t from `sample`, `model_output` and `timestep`, clipped as the "
            "scheduler's config says (what step() returns as pred_original_sample).")
    _hint = ("ᾱ_t is scheduler.alphas_cumprod[t] (the product of all 1 − β up to t, not scheduler.alphas[t]); "
             "clip_sample=True means clamp to [-1, 1].")
    _solution = """
        a = scheduler.alphas_cumprod[timestep]
        x0_hat = (sample - (1 - a).sqrt() * model_output) / a.sqrt()
        if scheduler.config.clip_sample:
            x0_hat = x0_hat.clamp(-1, 1)"""

    def _formula(self, a, sign=-1, root=True):
        x, eps = self.sample, self.model_output
        if root:
            return (x + sign * (1 - a).sqrt() * eps) / a.sqrt()
        return (x + sign * (1 - a) * eps) / a

    def _clip(self, x):
        cfg = self.scheduler.config
        return x.clamp(-cfg.clip_sample_range, cfg.clip_sample_range) if cfg.clip_sample else x

    def _check(self, answer):
        answer = _tensor(answer, "x̂₀")
        t = int(self.timestep)
        s = self.scheduler
        a = s.alphas_cumprod[t].to(self.sample.device)
        expected = self._clip(self._formula(a))
        mistakes = [
            (self._formula(a), "right formula; now clip it: the config says clip_sample=True, so step() clamps x̂₀ "
                               "to [-1, 1] (pixel-space models keep their guess inside the image range)."),
            (self._clip(self._formula(s.alphas[t].to(a.device))),
             "you used scheduler.alphas[t], one step's 1 − β_t; the formula needs ᾱ_t = alphas_cumprod[t], the "
             "product over all steps up to t."),
            (self._clip(self._formula(1 - s.betas[t].to(a.device))), "1 − betas[t] is one step's α_t; the formula "
                                                                    "needs ᾱ_t = alphas_cumprod[t]."),
            (self._clip(self._formula(a, sign=+1)), "sign error: x̂₀ *removes* the predicted noise: x_t − √(1−ᾱ_t)·ε̂."),
            (self._clip(self._formula(a, root=False)), "missing square roots: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, so divide "
                                                      "by √ᾱ_t and scale ε̂ by √(1−ᾱ_t)."),
        ]
        _diagnose(answer, expected, mistakes, tol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# 03 · schedulers

class SchedulerSwap(Exercise):
    """Context: ``config`` (the DDPM scheduler's config)."""

    title = "swap in DDIM with trailing timesteps"
    task = "Build a DDIMScheduler with the same betas as `config` and timestep_spacing='trailing'."
    _hint = "Every scheduler class has .from_config(config, **overrides): keyword arguments override config values."
    _solution = "ddim = DDIMScheduler.from_config(config, timestep_spacing='trailing')"

    def _check(self, answer):
        import torch
        from diffusers import DDIMScheduler

        if isinstance(answer, type):
            raise Mistake("that is the class itself; build an instance with DDIMScheduler.from_config(config, ...).")
        if not isinstance(answer, DDIMScheduler):
            raise Mistake(f"that is a {type(answer).__name__}, not a DDIMScheduler.")
        ref = DDIMScheduler.from_config(self.config)
        if (answer.betas.shape != ref.betas.shape or not torch.allclose(answer.betas, ref.betas)):
            raise Mistake(f"its betas are not the checkpoint's (beta_schedule={answer.config.beta_schedule!r}, "
                          f"{answer.config.beta_start}..{answer.config.beta_end}): DDIMScheduler() starts from its own "
                          "defaults. Build it with DDIMScheduler.from_config(config, ...) to keep the model's schedule.")
        if answer.config.timestep_spacing != "trailing":
            raise Mistake(f"timestep_spacing is {answer.config.timestep_spacing!r}: pass timestep_spacing='trailing' "
                          "to from_config.")
        if answer.config.clip_sample != self.config.get("clip_sample", answer.config.clip_sample):
            raise Mistake("clip_sample differs from the checkpoint's config: keep the config's value.")


class AlphasCumprod(Exercise):
    """Context: ``scheduler``."""

    title = "ᾱ_t from the betas"
    task = "Compute ᾱ_t = ∏_{s≤t}(1 − β_s) for every t from scheduler.betas (a tensor of 1,000 numbers)."
    _hint = "torch.cumprod(x, dim=0) is the running product."
    _solution = "alpha_bar = torch.cumprod(1 - scheduler.betas, dim=0)"

    def _check(self, answer):
        import torch

        answer = _tensor(answer, "ᾱ")
        b = self.scheduler.betas
        expected = torch.cumprod(1 - b, 0)
        mistakes = [
            (torch.cumsum(1 - b, 0), "a running *sum*; ᾱ_t is a running product: torch.cumprod."),
            (torch.cumprod(b, 0), "the product of the betas; ᾱ_t multiplies the shares of signal kept, 1 − β."),
            (1 - torch.cumprod(b, 0), "1 − ∏β is not ∏(1 − β): take the product of (1 − betas)."),
            (1 - b, "that is α_t for each step alone; ᾱ_t is their running product."),
            (torch.cumprod(1 - b, 0).sqrt(), "that is √ᾱ_t, the signal's scale; ᾱ_t itself has no square root."),
        ]
        _diagnose(answer, expected, mistakes, tol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# 04 · Stable Diffusion's parts

class LatentShape(Exercise):
    """Context: ``unet``, ``vae``, ``batch_size``, ``height``, ``width``."""

    title = "the shape of the latents"
    task = "Give the shape (a tuple) of the latents for `batch_size` images of `height` × `width` pixels."
    _hint = ("Channels come from unet.config.in_channels; the VAE shrinks each side by "
             "vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1).")
    _solution = """
        vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        shape = (batch_size, unet.config.in_channels, height // vae_scale_factor, width // vae_scale_factor)"""

    def _check(self, answer):
        f = 2 ** (len(self.vae.config.block_out_channels) - 1)
        c = self.unet.config.in_channels
        expected = (self.batch_size, c, self.height // f, self.width // f)
        got = tuple(int(x) for x in answer)
        if got == expected:
            return
        if len(got) == 3:
            raise Mistake(f"{len(got)} dimensions: the latents are a batch, (batch, channels, height, width).")
        if len(got) != 4:
            raise Mistake(f"{len(got)} dimensions; latents have four: (batch, channels, height, width).")
        if got[1] == 3:
            raise Mistake(f"3 channels is the image's RGB; the latents have unet.config.in_channels = {c}.")
        if got[2:] == (self.height, self.width):
            raise Mistake(f"that is the image's size; the VAE downsamples each side by {f}.")
        if got[2:] != expected[2:]:
            raise Mistake(f"height and width {got[2:]} should be {expected[2:]}: divide by vae_scale_factor = {f} "
                          "(three halvings).")
        if got[0] != self.batch_size:
            raise Mistake(f"batch {got[0]}, expected batch_size = {self.batch_size}.")
        raise Mistake(f"expected {expected}, got {got}.")


class ScaleLatents(Exercise):
    """Context: ``vae``, ``latents`` (raw, from vae.encode)."""

    title = "latents on the diffusion scale"
    task = "Scale the raw VAE latents `latents` to what the UNet works with."
    _hint = "The factor is a property of the VAE: read it from vae.config, never type it."
    _solution = "scaled = latents * vae.config.scaling_factor"

    def _check(self, answer):
        answer = _tensor(answer, "the scaled latents")
        f = self.vae.config.scaling_factor
        z = self.latents
        mistakes = [
            (z * SD_V1_SCALING_FACTOR, f"you used 0.18215, Stable Diffusion v1's number, instead of "
                                       f"vae.config.scaling_factor (= {f} for this VAE)."),
            (z / f, "divided: into diffusion space you multiply by the factor; you divide only before decoding."),
            (z / SD_V1_SCALING_FACTOR, "divided by a hard-coded 0.18215: multiply by vae.config.scaling_factor."),
            (z, "unscaled: multiply by vae.config.scaling_factor so the latents have roughly unit variance."),
        ]
        _diagnose(answer, z * f, mistakes, tol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# 05 · Stable Diffusion from its components

class ClassifierFreeGuidance(Exercise):
    """Context: ``uncond``, ``text`` (the two noise predictions), ``guidance_scale``."""

    title = "the classifier-free guidance line"
    task = "Combine the unconditional and text noise predictions `uncond`, `text` with `guidance_scale`."
    _hint = "Start from the unconditional prediction and move guidance_scale times the way the text points."
    _solution = "guided = uncond + guidance_scale * (text - uncond)"

    def _check(self, answer):
        answer = _tensor(answer, "the guided noise prediction")
        u, c, s = self.uncond, self.text, self.guidance_scale
        mistakes = [
            (c + s * (u - c), "guidance applied backwards: this pushes away from the prompt, towards the "
                              "unconditional prediction. Start from uncond and add s·(text − uncond)."),
            (s * (c - u), "you forgot to start from the unconditional prediction: uncond + s·(text − uncond)."),
            (c + s * (c - u), "start from the *unconditional* prediction, not the text one: uncond + s·(text − uncond)."),
            ((u + c) / 2, "an average is not guidance: uncond + s·(text − uncond) extrapolates beyond the text "
                          "prediction when s > 1."),
            (u + c * s, "scale the *difference* (text − uncond), not the text prediction alone."),
        ]
        _shape(answer, u, "Guidance combines the two halves of noise_pred.chunk(2): one image's worth each.")
        _diagnose(answer, u + s * (c - u), mistakes, tol=1e-5)


class BatchedEmbeddings(Exercise):
    """Context: ``uncond`` and ``cond`` embeddings, each (batch, 77, hidden)."""

    title = "one batch for both halves of guidance"
    task = "Put the unconditional and the prompt embeddings into one batch for a single UNet pass."
    _hint = ("torch.cat along the batch dimension; the loop later splits the UNet's output with .chunk(2) and "
             "treats the first half as unconditional.")
    _solution = "both = torch.cat([uncond, cond])"

    def _check(self, answer):
        import torch

        answer = _tensor(answer, "the batched embeddings")
        u, c = self.uncond, self.cond
        if answer.dim() == u.dim() + 1:
            raise Mistake(f"shape {tuple(answer.shape)}: torch.stack adds a dimension; torch.cat joins along the "
                          "batch dimension that exists.")
        if tuple(answer.shape) == tuple(c.shape):
            raise Mistake(f"shape {tuple(answer.shape)}: you forgot to concatenate; one pass needs both halves, "
                          f"shape {(2 * c.shape[0],) + tuple(c.shape[1:])}.")
        mistakes = [
            (torch.cat([c, u]), "wrong order: noise_pred.chunk(2) takes the first half as unconditional, so the "
                                "unconditional embeddings go first."),
            (torch.cat([u, c], dim=1), "concatenated along the tokens (dim 1); join along the batch (dim 0)."),
            (torch.cat([u, c], dim=-1), "concatenated along the features; join along the batch (dim 0)."),
        ]
        _diagnose(answer, torch.cat([u, c]), mistakes, tol=0)


class DecodeScaling(Exercise):
    """Context: ``vae``, ``latents`` (denoised, on the diffusion scale)."""

    title = "back to the VAE's scale before decoding"
    task = "Undo the latent scaling of `latents` so that vae.decode gets what it expects."
    _hint = "The encoder side multiplied by the VAE's scaling factor; decoding divides by the same number, from vae.config."
    _solution = """
        unscaled = latents / vae.config.scaling_factor
        image = vae.decode(unscaled).sample"""

    def _check(self, answer):
        answer = _tensor(answer, "the unscaled latents")
        f, z = self.vae.config.scaling_factor, self.latents
        mistakes = [
            (z / SD_V1_SCALING_FACTOR, f"you used 0.18215, Stable Diffusion v1's factor, instead of "
                                       f"vae.config.scaling_factor (= {f} here): with another VAE the image comes out "
                                       "washed out or saturated."),
            (z * f, "multiplied: before decoding, divide by vae.config.scaling_factor."),
            (z * SD_V1_SCALING_FACTOR, "multiplied by a hard-coded 0.18215: divide by vae.config.scaling_factor."),
            (z, "unchanged: divide by vae.config.scaling_factor before decoding."),
        ]
        _diagnose(answer, z / f, mistakes, tol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# 06 · guidance, seeds and trajectories

class LatentsPerSeed(Exercise):
    """Context: ``shape`` (of one image's latents, with batch 1), ``seeds``, ``device``."""

    title = "one image per seed, reproducibly"
    task = "Make a batch of starting latents whose image i depends only on seeds[i] (shape (len(seeds), ...))."
    _hint = "One generator per seed: draw each image's noise with its own make_generator(device, s), then torch.cat."
    _solution = """
        latents = torch.cat([torch.randn(shape, generator=make_generator(device, s), device=device) for s in seeds])"""

    def _check(self, answer):
        import torch

        from .device import make_generator

        answer = _tensor(answer, "the latents")
        per_seed = torch.cat([torch.randn(self.shape, generator=make_generator(self.device, s), device=self.device)
                              for s in self.seeds])
        n = len(self.seeds)
        batch_shape = (n,) + tuple(self.shape[1:])
        one_gen = torch.randn(batch_shape, generator=make_generator(self.device, self.seeds[0]), device=self.device)
        mistakes = [(one_gen, "all images came from one generator seeded with seeds[0]: image i then depends on its "
                              "place in the batch, not on seeds[i] alone. Use one generator per seed.")]
        _shape(answer, per_seed, f"One image per seed: ({n}, ...).")
        _diagnose(answer, per_seed, mistakes, tol=0,
                  fallback="Draw image i with make_generator(device, seeds[i]) on `device`, in the order of `seeds`.")


class StepCallback(Exercise):
    """Context: none."""

    title = "a callback that changes the generation"
    task = ("Write `callback(pipe, step, timestep, callback_kwargs)` that multiplies the latents by 1.05 at step 5 "
            "only, and returns the tensors for the pipeline to carry on with.")
    _hint = "The pipeline continues with what the callback returns: return callback_kwargs (changed or not)."
    _solution = """
        def callback(pipe, step, timestep, callback_kwargs):
            if step == 5:
                callback_kwargs["latents"] = callback_kwargs["latents"] * 1.05
            return callback_kwargs"""

    def _check(self, answer):
        import torch

        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        for step in range(8):
            latents = torch.ones(1, 4, 2, 2)
            out = answer(None, step, 999 - step, {"latents": latents.clone()})
            if out is None:
                raise Mistake("your callback returns None: return callback_kwargs, or the pipeline has no latents "
                              "to continue with.")
            if not isinstance(out, dict) or "latents" not in out:
                raise Mistake("return the dict of tensors (callback_kwargs) with its 'latents' entry.")
            want = 1.05 if step == 5 else 1.0
            got = float(out["latents"].mean())
            if abs(got - want) > 1e-6:
                raise Mistake(f"at step {step} the latents were multiplied by {got:.3f}; only step 5 should change "
                              "(compare the `step` argument with 5).")


# ----------------------------------------------------------------------------------------------------------------
# 07 · write your own pipeline

class StepKwargs(Exercise):
    """Context: none (checked against DDPM, DDIM, UniPC and Euler)."""

    title = "pass the generator only where step() takes one"
    task = ("Write `step_kwargs(scheduler, generator)` returning {'generator': generator} if the scheduler's step() "
            "has a generator parameter, else {}.")
    _hint = "inspect.signature(scheduler.step).parameters lists the names step() accepts."
    _solution = """
        import inspect

        def step_kwargs(scheduler, generator):
            takes = "generator" in inspect.signature(scheduler.step).parameters
            return {"generator": generator} if takes else {}"""

    def _check(self, answer):
        import torch
        from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        g = torch.Generator("cpu").manual_seed(0)
        for cls in (DDPMScheduler, DDIMScheduler, UniPCMultistepScheduler, EulerDiscreteScheduler):
            s = cls()
            takes = "generator" in inspect.signature(s.step).parameters
            out = answer(s, g)
            if out is None:
                raise Mistake("your function returns None: return a dict ({} when there is nothing to pass).")
            if takes and out.get("generator") is not g:
                raise Mistake(f"{cls.__name__}.step draws random noise and takes a generator: without it the image is "
                              "not reproducible. Return {'generator': generator}.")
            if not takes and "generator" in out:
                raise Mistake(f"{cls.__name__}.step has no generator parameter: passing one raises TypeError. "
                              "Check the signature.")
            extra = set(out) - {"generator"}
            if extra:
                raise Mistake(f"unexpected keys {sorted(extra)}: return only the generator, when step() takes it.")


class RepeatPrompts(Exercise):
    """Context: none."""

    title = "num_images_per_prompt"
    task = "Write `repeat_prompts(prompts, n)` that returns each prompt n times in a row: (['a', 'b'], 2) -> a, a, b, b."
    _hint = "A nested list comprehension: for each prompt, for each of the n copies."
    _solution = """
        def repeat_prompts(prompts, n):
            return [p for p in prompts for _ in range(n)]"""

    def _check(self, answer):
        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        out = answer(["cat face", "red heart"], 2)
        if not isinstance(out, list):
            raise Mistake(f"return a list of strings, not {type(out).__name__}.")
        if out == ["cat face", "red heart", "cat face", "red heart"]:
            raise Mistake("interleaved: the pipelines repeat each prompt n times in a row (a, a, b, b), and the "
                          "latents and negative prompts must follow the same order.")
        if any(isinstance(p, list) for p in out):
            raise Mistake("a list of lists: flatten it, one string per image.")
        if out != ["cat face", "cat face", "red heart", "red heart"]:
            raise Mistake(f"for (['cat face', 'red heart'], 2) you returned {out}.")
        if answer(["x"], 3) != ["x", "x", "x"]:
            raise Mistake("it does not use n: repeat_prompts(['x'], 3) should give three copies.")


# ----------------------------------------------------------------------------------------------------------------
# 08 · train your own

class AddNoiseByHand(Exercise):
    """Context: ``scheduler``, ``x0`` (N, C, H, W), ``noise``, ``timesteps`` (N,)."""

    title = "the forward process by hand"
    task = "Compute x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for each image with its own timestep (what add_noise returns)."
    _hint = ("scheduler.alphas_cumprod[timesteps] gives one ᾱ per image, shape (N,); reshape it to (N, 1, 1, 1) "
             "so that it broadcasts over channels and pixels.")
    _solution = """
        a = scheduler.alphas_cumprod.to(x0.device)[timesteps].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise"""

    def _check(self, answer):
        answer = _tensor(answer, "x_t")
        s = self.scheduler
        expected = s.add_noise(self.x0, self.noise, self.timesteps)
        a = s.alphas_cumprod.to(self.x0.device)[self.timesteps].view(-1, 1, 1, 1)
        _shape(answer, expected, "Index alphas_cumprod with the timesteps, then .view(-1, 1, 1, 1) so ᾱ broadcasts "
                                 "per image.")
        mistakes = [
            (a * self.x0 + (1 - a) * self.noise, "missing square roots: the scales are √ᾱ_t and √(1−ᾱ_t), so that the "
                                                 "variance stays 1."),
            ((1 - a).sqrt() * self.x0 + a.sqrt() * self.noise, "swapped: the signal gets √ᾱ_t, the noise √(1−ᾱ_t)."),
            (self.x0 + (1 - a).sqrt() * self.noise, "the signal must shrink as noise grows: multiply x₀ by √ᾱ_t."),
        ]
        _diagnose(answer, expected, mistakes, tol=1e-5)


class EMAUpdate(Exercise):
    """Context: none."""

    title = "one EMA update"
    task = "Write `ema_update(ema, param, decay)` returning the new moving average of a weight tensor."
    _hint = "The average keeps `decay` of itself and takes (1 − decay) of the current weights."
    _solution = """
        def ema_update(ema, param, decay):
            return decay * ema + (1 - decay) * param      # in place: ema.lerp_(param, 1 - decay)"""

    def _check(self, answer):
        import torch

        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        ema, param, d = torch.zeros(3), torch.ones(3), 0.99
        out = answer(ema.clone(), param.clone(), d)
        if out is None:
            raise Mistake("your function returns None: return the new average (or use lerp_ and return ema).")
        out = _tensor(out, "the new average")
        if _same(out, torch.full((3,), d)):
            raise Mistake("swapped: the average keeps `decay` of *itself* (ema) and moves (1 − decay) towards param.")
        if _same(out, param):
            raise Mistake("that is the current weights: the average moves only (1 − decay) of the way towards them.")
        if not _same(out, torch.full((3,), 1 - d)):
            raise Mistake(f"for ema=0, param=1, decay={d} the new average is {1 - d:.2f}, you gave {float(out.mean()):.4f}.")


# ----------------------------------------------------------------------------------------------------------------
# 09 · making it fast

class HalfPrecisionDtype(Exercise):
    """Context: none."""

    title = "the fast dtype for each device"
    task = "Write `fast_dtype(device)`: torch.float16 on 'cuda', and on 'cpu' a dtype that works there."
    _hint = "float16 kernels are missing or slow on CPUs (LayerNormKernelImpl not implemented for 'Half')."
    _solution = """
        def fast_dtype(device):
            return torch.float16 if device.startswith("cuda") else torch.float32   # or torch.bfloat16 on a CPU with bf16"""

    def _check(self, answer):
        import torch

        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        cpu, cuda = answer("cpu"), answer("cuda")
        if cpu is torch.float16:
            raise Mistake("float16 on a CPU fails or crawls ('LayerNormKernelImpl not implemented for Half'): use "
                          "float32 (or bfloat16) there.")
        if cpu not in (torch.float32, torch.bfloat16):
            raise Mistake(f"{cpu} on the CPU: use float32 (or bfloat16).")
        if cuda is torch.float32:
            raise Mistake("float32 on the GPU is correct but slow: half precision (float16) is the biggest single win.")
        if cuda not in (torch.float16, torch.bfloat16):
            raise Mistake(f"{cuda} on the GPU: use torch.float16.")


class MedianTime(Exercise):
    """Context: none (checked with a function whose first call is slow and one later call is an outlier)."""

    title = "timing honestly"
    task = "Write `time_it(fn, repeats=3)` that returns the time of one call of fn in seconds, honestly."
    _hint = "Call fn once untimed (warm-up), then time `repeats` calls with time.perf_counter and take the median."
    _solution = """
        import statistics, time

        def time_it(fn, repeats=3):
            fn()                                    # warm-up: the first call pays for allocation and lazy set-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)        # one slow run (another process) does not move it"""

    def _check(self, answer):
        import time

        if not callable(answer):
            raise Mistake(f"expected a function, got {type(answer).__name__}.")
        delays = iter([0.3, 0.02, 0.35, 0.02, 0.02, 0.02, 0.02, 0.02])
        calls = []

        def fn():
            calls.append(1)
            time.sleep(next(delays, 0.02))

        got = answer(fn, 3)
        if not isinstance(got, (int, float)):
            raise Mistake(f"return the time in seconds (a number), not {type(got).__name__}.")
        if len(calls) < 4:
            raise Mistake(f"fn was called {len(calls)} times: call it once untimed first (warm-up), then `repeats` "
                          "timed calls.")
        if got > 0.08:
            raise Mistake(f"{got:.3f} s: the warm-up call, or one slow outlier, went into your figure. Skip the first "
                          "call and take the median, not the mean or the total.")
        if got < 0.015:
            raise Mistake(f"{got:.3f} s is less than one call takes (0.02 s here): time each call, in seconds.")


# ----------------------------------------------------------------------------------------------------------------
# 10 · img2img by hand

class Img2ImgTimesteps(Exercise):
    """Context: ``scheduler`` (after set_timesteps(num_inference_steps)), ``num_inference_steps``, ``strength``."""

    title = "which timesteps img2img runs"
    task = ("Give the timesteps the img2img loop visits for `strength` (of `num_inference_steps`), as "
            "StableDiffusionImg2ImgPipeline does.")
    _hint = ("strength·n steps are run, the *last* ones (the least noisy): skip the first n − int(n·strength). "
             "Multistep schedulers count scheduler.order entries per step.")
    _solution = """
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        t_start = num_inference_steps - init_timestep
        timesteps = scheduler.timesteps[t_start * scheduler.order:]"""

    def _check(self, answer):
        import torch

        s, n = self.scheduler, self.num_inference_steps
        k = min(int(n * self.strength), n)
        all_t = s.timesteps.tolist()
        expected = all_t[(n - k) * s.order:]
        got = [int(t) for t in (answer.tolist() if isinstance(answer, torch.Tensor) else list(answer))]
        if got == expected:
            return
        if got == all_t:
            raise Mistake("all the timesteps: with strength < 1 img2img skips the noisiest ones.")
        if got == all_t[: k * s.order]:
            raise Mistake("you took the first (noisiest) timesteps; img2img starts part-way: it runs the *last* "
                          "int(n·strength) steps, from the noise level add_noise put the image at.")
        if got == all_t[int(n * self.strength):]:
            raise Mistake("you skipped int(n·strength) steps; skip n − int(n·strength) and run int(n·strength).")
        raise Mistake(f"expected {len(expected)} timesteps {expected}, got {got}.")


class InpaintBlend(Exercise):
    """Context: ``scheduler``, ``init_latents``, ``noise``, ``mask`` (1 = repaint, 0 = keep), ``timestep``."""

    title = "inpainting by blending latents"
    task = ("After a step, keep the known region: where mask is 0 put the init latents noised to `timestep` "
            "(scheduler.add_noise), where mask is 1 keep `latents`. Write `blend(latents)`.")
    _hint = "mask * latents + (1 − mask) * scheduler.add_noise(init_latents, noise, timestep)."
    _solution = """
        def blend(latents):
            known = scheduler.add_noise(init_latents, noise, timestep)   # the original, at this step's noise level
            return mask * latents + (1 - mask) * known"""

    def _check(self, answer):
        import torch

        if not callable(answer):
            raise Mistake(f"expected a function of the latents, got {type(answer).__name__}.")
        latents = torch.randn(self.init_latents.shape, generator=torch.Generator().manual_seed(1)).to(self.init_latents)
        t = torch.as_tensor(self.timestep).reshape(1)
        known = self.scheduler.add_noise(self.init_latents, self.noise, t)
        m = self.mask
        out = _tensor(answer(latents.clone()), "the blended latents")
        mistakes = [
            ((1 - m) * latents + m * known, "the mask is the wrong way round: 1 marks the region to repaint (keep the "
                                            "denoised latents there), 0 the region to keep from the original."),
            (m * latents + (1 - m) * self.init_latents, "the kept region is clean while the rest is still noisy: noise "
                                                       "the init latents to this timestep with scheduler.add_noise."),
            (m * known + (1 - m) * latents, "the mask is the wrong way round: 1 = repaint, so mask * latents."),
        ]
        _diagnose(out, m * latents + (1 - m) * known, mistakes, tol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# 11 · cross-attention maps

class TokenPosition(Exercise):
    """Context: ``tokenizer``, ``prompt``, ``word``."""

    title = "where a word sits among the 77 positions"
    task = "Give the position (an int) of `word`'s token in tokenizer(prompt).input_ids."
    _hint = "Position 0 is <|startoftext|>; tokenizer.tokenize(prompt) lists the prompt's tokens without it."
    _solution = """
        ids = tokenizer(prompt).input_ids
        position = ids.index(tokenizer.convert_tokens_to_ids(word + "</w>"))"""

    def _check(self, answer):
        ids = self.tokenizer(self.prompt).input_ids
        tokens = self.tokenizer.tokenize(self.prompt)
        word_token = self.word + "</w>"
        if word_token not in tokens:
            raise Mistake(f"{self.word!r} is not one token of {self.prompt!r}: the tokens are {tokens}.")
        expected = tokens.index(word_token) + 1
        if not isinstance(answer, int):
            raise Mistake(f"expected an int position, got {type(answer).__name__}.")
        if answer == expected - 1:
            raise Mistake(f"off by one: position 0 is the start token <|startoftext|> ({ids[0]}), so the prompt's "
                          "tokens start at 1.")
        if answer == ids[expected]:
            raise Mistake(f"{answer} is the token's *id* in the vocabulary; the position is where it sits in input_ids.")
        if answer != expected:
            raise Mistake(f"position {answer} holds {self.tokenizer.convert_ids_to_tokens(ids[answer]) if 0 <= answer < len(ids) else 'nothing'!r}.")


class AttentionProbabilities(Exercise):
    """Context: ``query`` (…, pixels, d), ``key`` (…, tokens, d)."""

    title = "attention probabilities"
    task = "Compute softmax(q·kᵀ/√d): for each pixel (row), how much it attends to each token."
    _hint = "query @ key.transpose(-1, -2), divided by √d (d = query.shape[-1]), softmax over the tokens (the last dim)."
    _solution = """
        probs = (query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5).softmax(dim=-1)"""

    def _check(self, answer):
        answer = _tensor(answer, "the probabilities")
        q, k = self.query, self.key
        d = q.shape[-1]
        scores = q @ k.transpose(-1, -2)
        expected = (scores / d ** 0.5).softmax(-1)
        _shape(answer, expected, "(…, pixels, tokens): query @ key.transpose(-1, -2).")
        mistakes = [
            ((scores / d ** 0.5).softmax(-2), "softmax over the wrong axis: each *pixel's* row must sum to 1 over "
                                              "the tokens (dim=-1)."),
            (scores.softmax(-1), "you forgot the 1/√d scale: without it the softmax is too peaked."),
            ((scores / d).softmax(-1), "divide by √d, not d."),
        ]
        _diagnose(answer, expected, mistakes, tol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# 12 · guidance of your own

class TargetColour(Exercise):
    """Context: ``rgb`` (three numbers 0-255)."""

    title = "a colour in the model's range"
    task = "Turn `rgb` (0-255) into a tensor that broadcasts against images of shape (N, 3, H, W) in [-1, 1]."
    _hint = "Divide by 127.5 and subtract 1; shape (1, 3, 1, 1) so the three numbers run along the channels."
    _solution = "target = (torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1).view(1, 3, 1, 1)"

    def _check(self, answer):
        import torch

        answer = _tensor(answer, "the target colour")
        expected = (torch.tensor(self.rgb, dtype=torch.float32) / 127.5 - 1).view(1, 3, 1, 1)
        if answer.numel() == 3 and tuple(answer.shape) != (1, 3, 1, 1):
            raise Mistake(f"shape {tuple(answer.shape)}: against (N, 3, H, W) images a (3,) tensor broadcasts along the "
                          "*width*; reshape to (1, 3, 1, 1) so the values run along the channels.")
        mistakes = [
            ((torch.tensor(self.rgb, dtype=torch.float32) / 255).view(1, 3, 1, 1),
             "that is [0, 1]; the decoder's images are in [-1, 1]: rgb / 127.5 − 1."),
            (torch.tensor(self.rgb, dtype=torch.float32).view(1, 3, 1, 1), "still 0-255: scale to [-1, 1]."),
        ]
        _diagnose(answer, expected, mistakes, tol=1e-6)


class GuidanceStep(Exercise):
    """Context: ``latents``, ``grad`` (of the loss with respect to the latents), ``guidance_strength``."""

    title = "one step down the loss"
    task = "Move `latents` to lower the loss, by `guidance_strength` times its gradient `grad`."
    _hint = "Gradient descent: the gradient points uphill."
    _solution = "latents = latents - guidance_strength * grad"

    def _check(self, answer):
        answer = _tensor(answer, "the new latents")
        z, g, s = self.latents, self.grad, self.guidance_strength
        mistakes = [
            (z + s * g, "you climbed the loss: the gradient points uphill, so subtract it."),
            (z - g, "scale the gradient by guidance_strength."),
            (z - s * g.sign(), "that is the sign of the gradient; use the gradient itself, scaled."),
        ]
        _diagnose(answer, z - s * g, mistakes, tol=1e-6)


#: the coding exercises of each notebook, in the order they appear
NOTEBOOK_EXERCISES = {
    "01": [SeededGenerator, ParameterCount],
    "02": [InferenceTimesteps, PredictedX0],
    "03": [SchedulerSwap, AlphasCumprod],
    "04": [LatentShape, ScaleLatents],
    "05": [ClassifierFreeGuidance, BatchedEmbeddings, DecodeScaling],
    "06": [LatentsPerSeed, StepCallback],
    "07": [StepKwargs, RepeatPrompts],
    "08": [AddNoiseByHand, EMAUpdate],
    "09": [HalfPrecisionDtype, MedianTime],
    "10": [Img2ImgTimesteps, InpaintBlend],
    "11": [TokenPosition, AttentionProbabilities],
    "12": [TargetColour, GuidanceStep],
}


def solutions_markdown() -> str:
    """Every coding exercise with its hint and solution, per notebook (for the instructor guide)."""
    parts = []
    for nb, classes in NOTEBOOK_EXERCISES.items():
        parts.append(f"### Notebook {nb}\n")
        for i, cls in enumerate(classes, 1):
            sol = textwrap.dedent(cls._solution).strip()
            parts.append(f"**q{i} · {cls.title}.** {cls.task}\n\n*Hint:* {cls._hint}\n\n```python\n{sol}\n```\n")
    return "\n".join(parts)
