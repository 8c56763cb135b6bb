"""An ipywidgets explorer: change the prompt, steps, guidance, seed or scheduler and see the image.

Introduced in ``notebooks/06_guidance_and_latents.ipynb``. You pass the function that generates
(so the diffusers call stays in the notebook); this module only wires the widgets to it.

Outside a live kernel (papermill, nbval, the book build: anything that sets ``COURSE_STATIC=1``)
it returns a static grid instead, so executed notebooks carry no widget state to break.
"""

from __future__ import annotations

import os
import time


def is_live() -> bool:
    return os.environ.get("COURSE_STATIC", "").lower() not in ("1", "true", "yes")


def explorer(generate, schedulers, prompt: str = "cat face", steps: int = 25, guidance: float = 7.5,
             seed: int = 0, static_prompts=None, force_static: bool = False):
    """``generate(prompt, steps, guidance, seed, scheduler_name) -> PIL.Image``.

    Live: returns an ipywidgets VBox (display it, or leave it last in a cell). Static: returns a
    PIL grid of ``static_prompts`` (default: ``prompt``) by guidance 1, 4 and 7.5, first scheduler, each tile
    labelled with its prompt and guidance.
    """
    if not callable(generate):
        raise TypeError(f"explorer() takes the function that generates, generate(prompt, steps, guidance, seed, "
                        f"scheduler_name) -> PIL.Image, not {type(generate).__name__}.")
    if isinstance(schedulers, str):
        raise TypeError(f"schedulers must be a list of names, e.g. [{schedulers!r}], not the string {schedulers!r}.")
    schedulers = list(schedulers or [])
    if not schedulers:
        raise ValueError("explorer() needs at least one scheduler name.")
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string such as 'cat face', not {type(prompt).__name__} {prompt!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= 50:
        raise ValueError(f"steps={steps!r}: the explorer's slider goes from 2 to 50; start it within that range.")
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 1.0 <= guidance <= 20.0:
        raise ValueError(f"guidance={guidance!r}: the explorer's slider goes from 1 to 20 (7.5 is the usual value).")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r}: use a whole number of at least 0.")
    if force_static or not is_live():
        from .display import grid

        prompts = static_prompts or [prompt]
        scales = (1.0, 4.0, 7.5)
        images = [generate(p, steps, g, seed, schedulers[0]) for p in prompts for g in scales]
        labels = [f"{p}, guidance {g:g}" for p in prompts for g in scales]
        return grid([_labelled(im, text) for im, text in zip(images, labels, strict=True)], cols=3)

    import ipywidgets as w
    from IPython.display import display

    style = {"description_width": "80px"}
    controls = {
        "prompt": w.Text(value=prompt, description="prompt", style=style, continuous_update=False),
        "steps": w.IntSlider(value=steps, min=2, max=50, description="steps", style=style, continuous_update=False),
        "guidance": w.FloatSlider(value=guidance, min=1.0, max=20.0, step=0.5, description="guidance", style=style,
                                  continuous_update=False),
        "seed": w.IntText(value=seed, description="seed", style=style),
        "scheduler": w.Dropdown(options=list(schedulers), value=schedulers[0], description="scheduler", style=style),
    }
    out = w.Output()
    status = w.Label()

    def render(_=None):
        """Regenerate; a failing ``generate`` is shown (type, message, traceback), never swallowed."""
        import traceback

        status.value = "generating ..."
        t0 = time.perf_counter()
        try:
            image = generate(controls["prompt"].value, controls["steps"].value, controls["guidance"].value,
                             controls["seed"].value, controls["scheduler"].value)
            if not hasattr(image, "resize") or not hasattr(image, "width"):
                raise TypeError(f"generate() must return a PIL image, not {type(image).__name__}: "
                                "return pipe(...).images[0].")
        except Exception as e:  # shown in the widget, and kept for whoever asks: box.error
            box.error = e
            status.value = f"FAILED after {time.perf_counter() - t0:.2f} s: {type(e).__name__}: {e}"
            out.clear_output(wait=True)
            with out:
                print("".join(traceback.format_exception(type(e), e, e.__traceback__)))
            return
        box.error = None
        status.value = f"generated in {time.perf_counter() - t0:.2f} s"
        out.clear_output(wait=True)
        with out:
            display(image.resize((256, 256), 0) if image.width < 256 else image)

    box = w.VBox([w.HBox([w.VBox(list(controls.values())), out]), status])
    box.error = None  # the exception of the last render, if it failed
    for c in controls.values():
        c.observe(render, names="value")
    render()
    box.render = render  # for tests: regenerate without a browser
    box.controls = controls
    return box


def _labelled(image, text: str, size: int = 128, band: int = 16):
    """``image`` resized to ``size`` px under a white band with ``text`` (Pillow's built-in font: no system font)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    tile = Image.new("RGB", (size, size + band), "white")
    tile.paste(image.convert("RGB").resize((size, size), Image.NEAREST), (0, band))
    draw = ImageDraw.Draw(tile)
    while len(text) > 1 and draw.textlength(text, font=font) > size - 4:
        text = text[:-2] + "…"
    draw.text((2, 2), text, fill="black", font=font)
    return tile
