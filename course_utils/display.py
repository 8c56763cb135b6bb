"""Turning tensors into pictures, and pictures into grids.

Introduced in ``notebooks/02_ddpm_from_components.ipynb``, where the conversion is first written
out by hand; from then on the notebooks call these helpers.
"""

from __future__ import annotations


def to_pil(images):
    """A batch in [-1, 1] (the model's range), shape (N, C, H, W), to a list of PIL images."""
    import numpy as np
    from PIL import Image

    x = (images.detach().float() / 2 + 0.5).clamp(0, 1)
    x = x.cpu().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray((im * 255).round().astype(np.uint8)) for im in x]


def grid(images, cols: int | None = None, size: int | None = None):
    """A grid of PIL images (``diffusers.utils.make_image_grid``), optionally each resized to ``size``."""
    from diffusers.utils import make_image_grid
    from PIL import Image

    images = list(images)
    if not images:
        raise ValueError("grid() got no images.")
    if size:
        images = [im.resize((size, size), Image.NEAREST) for im in images]
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    images += [Image.new("RGB", images[0].size, "white")] * (rows * cols - len(images))
    return make_image_grid(images, rows=rows, cols=cols)


def show_grid(images, titles=None, cols: int | None = None, scale: float = 1.6, suptitle: str | None = None):
    """Plot images (PIL) in a matplotlib grid with titles; returns the figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale + (0.3 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
