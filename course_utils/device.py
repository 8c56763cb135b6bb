"""Device, dtype and generator selection.

Introduced in ``notebooks/00_setup.ipynb`` and used from ``01`` on. The source tutorial writes
``generator = torch.manual_seed(0)`` (a CPU generator) and then ``torch.randn(..., device="cuda")``,
which fails; ``make_generator`` builds the generator on the device the noise is made on.
"""

from __future__ import annotations


class DeviceError(RuntimeError):
    """The requested device cannot be used; the message says what to do."""


def pick_device(device: str = "auto") -> str:
    """'auto' -> 'cuda', then 'mps', then 'cpu'. A named device is checked, never silently replaced."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} was asked for, but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}, built for CUDA: {torch.version.cuda or 'no'}).\n"
            "Use device='auto' (picks cuda, then mps, then cpu) or device='cpu'. On Colab: "
            "Runtime > Change runtime type > GPU.")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device={device!r} needs Apple silicon with PyTorch's MPS backend; "
                              "use device='auto' or device='cpu'.")
    if kind not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'.")
    return device


def pick_dtype(device: str, half: bool = False):
    """float32 unless ``half`` is asked for on a GPU. fp16 on a CPU fails or crawls, so it is refused."""
    import torch

    if not half:
        return torch.float32
    if device.startswith("cuda"):
        return torch.float16
    if device.startswith("mps"):
        return torch.float16
    raise DeviceError("Half precision (fp16) was asked for on the CPU. Many CPU kernels have no fp16 "
                      "version ('LayerNormKernelImpl not implemented for Half') and the rest are slow: "
                      "use float32 on the CPU.")


def make_generator(device: str, seed: int):
    """A ``torch.Generator`` on ``device``, seeded: pass it to every random call on that device."""
    import torch

    return torch.Generator(device).manual_seed(seed)


def check_image_size(height: int, width: int, multiple: int = 8) -> None:
    """Stable Diffusion's VAE halves the size three times: height and width must divide by 8."""
    for name, value in (("height", height), ("width", width)):
        if value % multiple:
            lower = value - value % multiple
            raise ValueError(f"{name}={value} is not a multiple of {multiple}: the VAE downsamples by "
                             f"{multiple}, so the latents would not line up. Use {lower} or {lower + multiple}.")
