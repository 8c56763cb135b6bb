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
    PIL grid of ``static_prompts`` (default: ``prompt``) by guidance 1, 4 and 7.5, first scheduler.
    """
    if not schedulers:
        raise ValueError("explorer() needs at least one scheduler name.")
    if force_static or not is_live():
        from .display import grid

        prompts = static_prompts or [prompt]
        images = [generate(p, steps, g, seed, schedulers[0]) for p in prompts for g in (1.0, 4.0, 7.5)]
        return grid(images, cols=3, size=128)

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
        t0 = time.perf_counter()
        image = generate(controls["prompt"].value, controls["steps"].value, controls["guidance"].value,
                         controls["seed"].value, controls["scheduler"].value)
        status.value = f"generated in {time.perf_counter() - t0:.2f} s"
        out.clear_output(wait=True)
        with out:
            display(image.resize((256, 256), 0) if image.width < 256 else image)

    for c in controls.values():
        c.observe(render, names="value")
    render()
    box = w.VBox([w.HBox([w.VBox(list(controls.values())), out]), status])
    box.render = render  # for tests: regenerate without a browser
    box.controls = controls
    return box
