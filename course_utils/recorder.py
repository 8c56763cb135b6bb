"""Record a denoising trajectory: from a hand-written loop, or as a pipeline callback.

Introduced in ``notebooks/02_ddpm_from_components.ipynb`` (hand-written DDPM loop) and used
again in ``06_guidance_and_latents.ipynb`` through ``callback_on_step_end``.

    rec = TrajectoryRecorder(at_steps=[0, 10, 25, 49])
    for i, t in enumerate(scheduler.timesteps):
        ...
        out = scheduler.step(noise_pred, t, x)
        rec.record(i, t, out.prev_sample, x0=out.pred_original_sample)

    pipe(..., callback_on_step_end=rec.callback)     # the same recorder, inside a pipeline
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Frame:
    step: int  # the loop's index i
    timestep: int  # the t that step i started from (x0 was predicted there); latents sit one timestep lower
    latents: object  # torch.Tensor on the CPU: the sample after the step, so label it with the *next* timestep
    x0: object = None  # the scheduler's predicted clean sample, when known


@dataclass
class TrajectoryRecorder:
    """Keeps CPU copies of the latents (and x0) at ``at_steps``, or every ``every`` steps, or every step."""

    at_steps: list[int] | None = None
    every: int | None = None
    frames: list[Frame] = field(default_factory=list)

    def __post_init__(self):
        if self.at_steps is not None and self.every is not None:
            raise ValueError("Give at_steps (a list of step numbers) or every (record each N-th step), not both.")
        if self.at_steps is not None:
            if isinstance(self.at_steps, (str, bytes)) or not hasattr(self.at_steps, "__iter__"):
                raise TypeError(f"at_steps must be a list of step numbers such as [0, 10, 49], not {self.at_steps!r}.")
            self.at_steps = list(self.at_steps)
            bad = [s for s in self.at_steps if isinstance(s, bool) or not isinstance(s, int) or s < 0]
            if bad:
                raise ValueError(f"at_steps must hold step numbers 0, 1, 2, ... (the loop's index i, not the "
                                 f"timestep t); {bad} are not.")
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int)
                                       or self.every < 1):
            raise ValueError(f"every={self.every!r}: record each N-th step with a whole number N >= 1.")

    def wants(self, step: int) -> bool:
        if self.at_steps is not None:
            return step in self.at_steps
        if self.every:
            return step % self.every == 0
        return True

    def record(self, step: int, timestep, latents, x0=None) -> None:
        if self.wants(step):
            self.frames.append(Frame(int(step), int(timestep), latents.detach().float().cpu().clone(),
                                     None if x0 is None else x0.detach().float().cpu().clone()))

    def callback(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        """Use as ``pipe(..., callback_on_step_end=recorder.callback)``: records ``latents`` after each step."""
        self.record(step, timestep, callback_kwargs["latents"])
        return callback_kwargs

    def clear(self) -> None:
        self.frames.clear()

    def images(self, what: str = "latents", decode=None, index: int = 0):
        """One PIL image per frame. ``decode`` maps a (1, C, H, W) tensor to a PIL image
        (default: pixel space in [-1, 1], as a DDPM produces)."""
        from .display import to_pil

        if what not in ("latents", "x0"):
            raise ValueError(f"what={what!r}: use 'latents' (x_t) or 'x0' (the predicted clean sample).")
        if not self.frames:
            raise ValueError("Nothing was recorded: call record() in the loop (or pass callback_on_step_end="
                             "recorder.callback to the pipeline) before asking for images.")
        decode = decode or (lambda x: to_pil(x)[0])
        out = []
        for f in self.frames:
            x = f.latents if what == "latents" else f.x0
            if x is None:
                raise ValueError(f"No {what!r} was recorded at step {f.step}: pass x0= to record().")
            out.append(decode(x[index : index + 1]))
        return out

    def to_gif(self, path, what: str = "latents", decode=None, size: int = 128, ms: int = 300) -> str:
        """Write an animated GIF of the frames (renders in notebooks, on GitHub and in the book)."""
        from PIL import Image

        frames = [im.resize((size, size), Image.NEAREST) for im in self.images(what, decode)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0)
        return str(path)
