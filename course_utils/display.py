"""Turning tensors into pictures, and pictures into grids.

Introduced in ``notebooks/02_ddpm_from_components.ipynb``, where the conversion is first written
out by hand; from then on the notebooks call these helpers.
"""

from __future__ import annotations


def to_pil(images):
    """A batch in [-1, 1] (the model's range), shape (N, C, H, W), to a list of PIL images."""
    import numpy as np
    from PIL import Image

    if not hasattr(images, "detach") or images.ndim != 4:
        raise ValueError(f"to_pil() takes a tensor of shape (N, C, H, W) in [-1, 1], not "
                         f"{getattr(images, 'shape', type(images).__name__)}: add a batch axis with x[None] if needed.")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"to_pil() needs 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)}): "
                         "latents have 4 channels, so decode them with the VAE first (or see show_latent_channels).")
    if not images.isfinite().all():
        raise ValueError("to_pil() got NaN or infinite values: there is no honest picture of them. Check the loop "
                         "that made this tensor (guidance scale, dtype, step count).")
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
    for name, v in (("cols", cols), ("size", size)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name}={v!r}: use a whole number of at least 1 (or None).")
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
    if not images:
        raise ValueError("show_grid() got no images.")
    if titles is not None and len(titles) < len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images: give one title per image.")
    if cols is not None and (isinstance(cols, bool) or not isinstance(cols, int) or cols < 1):
        raise ValueError(f"cols={cols!r}: use a whole number of at least 1 (or None).")
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
