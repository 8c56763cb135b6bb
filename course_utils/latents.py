"""Looking at latents: each channel as an image, and an approximate RGB preview without the decoder.

Introduced in ``notebooks/04_sd_components.ipynb``.
"""

from __future__ import annotations


def fit_latent_rgb(vae, images):
    """Fit a linear map (4 latent channels + bias -> RGB) by least squares on ``images``.

    ``images``: a float tensor (N, 3, H, W) in [-1, 1]. The map turns latents into a small colour
    preview, the way sampling UIs show progress, and it is fitted to *this* VAE rather than copied.
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"fit_latent_rgb() needs RGB images as a tensor (N, 3, H, W) in [-1, 1], not "
                         f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}.")
    with torch.no_grad():
        z = vae.encode(images).latent_dist.mode() * vae.config.scaling_factor
    small = F.interpolate(images, size=z.shape[-2:], mode="area")
    X = torch.cat([z, torch.ones_like(z[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, z.shape[1] + 1)
    Y = small.permute(0, 2, 3, 1).reshape(-1, 3)
    # on the CPU in float32: lstsq has no float16 kernels, and latent_preview() applies the map on the CPU
    return torch.linalg.lstsq(X.float().cpu(), Y.float().cpu()).solution  # (C + 1, 3)


def latent_preview(latents, projection, size: int = 64):
    """PIL previews of scaled latents (N, C, h, w) through a ``fit_latent_rgb`` projection."""
    import torch

    from .display import to_pil

    if latents.ndim != 4 or projection.shape != (latents.shape[1] + 1, 3):
        raise ValueError(f"latent_preview() needs latents (N, C, h, w) and a ({latents.shape[1] + 1}, 3) projection "
                         f"from fit_latent_rgb(); got latents {tuple(latents.shape)} and projection "
                         f"{tuple(projection.shape)}.")
    z = latents.detach().float().cpu()
    X = torch.cat([z, torch.ones_like(z[:, :1])], 1).permute(0, 2, 3, 1)
    rgb = (X @ projection).permute(0, 3, 1, 2)
    from PIL import Image

    return [im.resize((size, size), Image.NEAREST) for im in to_pil(rgb)]


def show_latent_channels(latents, title: str | None = None, scale: float = 1.6):
    """Each channel of one latent (C, h, w) as a grey image, on a shared colour scale."""
    import matplotlib.pyplot as plt

    z = latents.detach().float().cpu()
    if z.dim() == 4:
        z = z[0]
    if z.dim() != 3:
        raise ValueError(f"show_latent_channels() needs one latent (C, h, w) or a batch (N, C, h, w), not shape "
                         f"{tuple(latents.shape)}.")
    lim = float(z.abs().max())
    fig, axes = plt.subplots(1, z.shape[0], figsize=(z.shape[0] * scale, scale + 0.3))
    for c, ax in enumerate(axes):
        ax.imshow(z[c].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"channel {c}", fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB between two image tensors in [-1, 1]."""
    import torch

    if a.shape != b.shape:
        raise ValueError(f"psnr() compares images of the same shape, not {tuple(a.shape)} and {tuple(b.shape)}.")
    mse = torch.mean(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2)
    if not torch.isfinite(mse):
        raise ValueError("psnr() got NaN or infinite pixels: check the loop that made the images.")
    return float(-10 * torch.log10(mse))  # identical images: inf dB
