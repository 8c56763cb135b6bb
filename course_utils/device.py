"""Device, dtype and generator selection.

Introduced in ``notebooks/00_setup.ipynb`` and used from ``01`` on. The source tutorial writes
``generator = torch.manual_seed(0)`` (a CPU generator) and then ``torch.randn(..., device="cuda")``,
which fails; ``make_generator`` builds the generator on the device the noise is made on.
"""

from __future__ import annotations

import numbers


class DeviceError(RuntimeError):
    """The requested device cannot be used; the message says what to do."""


def _device_name(device) -> str:
    """``device`` as a string ('cpu', 'cuda:0', ...); accepts a ``torch.device``; anything else is a TypeError."""
    if isinstance(device, str):
        return device.strip()
    if type(device).__name__ == "device" and type(device).__module__ == "torch":
        return str(device)
    raise TypeError(f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps' (or a torch.device), "
                    f"not {type(device).__name__} {device!r}.")


def pick_device(device: str = "auto") -> str:
    """'auto' -> 'cuda', then 'mps', then 'cpu'. A named device is checked, never silently replaced."""
    device = _device_name(device)
    if device.lower() == "auto":
        import torch

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'"
                          + (" (lower case)." if kind.lower() in ("cpu", "cuda", "mps") else "."))
    if index and not index.isdigit():
        raise DeviceError(f"device={device!r} has an index PyTorch cannot read: write e.g. 'cuda:0', or just "
                          f"{kind!r}.")
    import torch

    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} was asked for, but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}, built for CUDA: {torch.version.cuda or 'no'}).\n"
            "Use device='auto' (picks cuda, then mps, then cpu) or device='cpu'. On Colab: "
            "Runtime > Change runtime type > GPU.")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise DeviceError(f"device={device!r}, but this machine has {n} CUDA GPU(s), numbered from 0: "
                          f"use 'cuda:0'{f' to cuda:{n - 1}' if n > 1 else ''} or just 'cuda'.")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device={device!r} needs Apple silicon with PyTorch's MPS backend; "
                              "use device='auto' or device='cpu'.")
    return device


def pick_dtype(device: str, half: bool = False):
    """float32 unless ``half`` is asked for on a GPU. fp16 on a CPU fails or crawls, so it is refused."""
    import torch

    device = _device_name(device)
    if not isinstance(half, bool):
        raise TypeError(f"half must be True or False, not {half!r}.")
    if not half:
        return torch.float32
    if device.startswith("cuda"):
        return torch.float16
    if device.startswith("mps"):
        return torch.float16
    raise DeviceError("Half precision (fp16) was asked for on the CPU. Older torch has no fp16 version of some "
                      "CPU kernels ('LayerNormKernelImpl not implemented for Half'), and newer torch runs it more "
                      "slowly than float32: use float32 on the CPU.")


def check_seed(seed) -> int:
    """A seed torch accepts: an int in 0 .. 2**64 - 1 (bools, floats and strings are refused, not converted)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        hint = f" (int({seed!r}) if you meant the number)" if isinstance(seed, (str, float)) else ""
        raise TypeError(f"seed must be a whole number such as 0 or 1234, not {type(seed).__name__} {seed!r}{hint}.")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed={seed} is outside the range torch generators accept, 0 to 2**64 - 1: "
                         f"use {'a non-negative number such as ' + str(-seed) if seed < 0 else 'seed % 2**64 = ' + str(seed % 2**64)}"
                         ", or a small number such as 0.")
    return seed


def make_generator(device: str, seed: int):
    """A ``torch.Generator`` on ``device``, seeded: pass it to every random call on that device."""
    import torch

    seed = check_seed(seed)
    device = pick_device(device)  # 'cuda' without a GPU: a DeviceError that says what to do
    return torch.Generator(device).manual_seed(seed)


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = f"; use {int(value)}" if isinstance(value, float) and value == value and abs(value) != float("inf") \
            and value.is_integer() else ""
        raise TypeError(f"{name} must be a whole number, not {type(value).__name__} {value!r}{hint}.")
    if value < minimum:
        raise ValueError(f"{name}={value} is too small: it must be at least {minimum}.")
    return int(value)


#: beyond this many times a model's native side (on a CPU), ``check_image_size`` refuses
CPU_MAX_SCALE = 4.0


def size_estimate(height: int, width: int, native: int, multiple: int = 8, batch: int = 1) -> str:
    """How much more time and memory an image of ``height`` x ``width`` costs than one at the native size."""
    area = height * width / native**2
    tokens = (height // multiple) * (width // multiple)
    attn_gb = tokens**2 * 4 * 2 * batch / 1e9  # one float32 attention map, x2 for classifier-free guidance
    return (f"{area:.0f}x the pixels of a {native}x{native} image: at least {area:.0f}x its time per step, up to "
            f"{area * area:.0f}x where self-attention runs on the full latent grid ({tokens} positions, whose "
            f"attention map alone is {attn_gb:.3g} GB in float32)")


def check_image_size(height: int, width: int, multiple: int = 8, native: int | None = None,
                     device: str = "cpu", max_scale: float | None = None) -> None:
    """Check an image size before any work: whole, positive pixels, divisible by ``multiple``, not runaway.

    Stable Diffusion's VAE halves the size three times: height and width must divide by 8. With
    ``native`` (the model's own size in pixels), a side more than ``max_scale`` times it (default:
    4x on a CPU) is refused with a time and memory estimate; on a GPU it is a warning.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            hint = (f" Use {int(value)}." if isinstance(value, float) and value == value
                    and abs(value) != float("inf") and value.is_integer() else "")
            raise TypeError(f"{name} must be a whole number of pixels, not {type(value).__name__} {value!r}.{hint}")
        if value <= 0:
            raise ValueError(f"{name}={value}: an image needs a positive size. Use a multiple of {multiple}, e.g. "
                             f"{native or 64} (or None for the model's own size).")
        if value % multiple:
            lower = value - value % multiple
            raise ValueError(f"{name}={value} is not a multiple of {multiple}: the VAE downsamples by "
                             f"{multiple}, so the latents would not line up. Use "
                             f"{f'{lower} or ' if lower else ''}{lower + multiple}.")
    if native is None:
        return
    device = _device_name(device)
    scale = max(height, width) / native
    limit = max_scale if max_scale is not None else (CPU_MAX_SCALE if device.startswith("cpu") else 2 * CPU_MAX_SCALE)
    if scale <= limit / 2:
        return
    msg = f"{height}x{width} on this {native}-px model ({device}) is {size_estimate(height, width, native, multiple)}."
    if scale > limit and device.startswith("cpu"):
        raise ValueError(f"{msg}\nOn a CPU that runs for minutes to hours and may exhaust memory, so it is refused. "
                         f"Use at most {int(native * limit) // multiple * multiple} px here (the model's own size is "
                         f"{native}), or a GPU and a model trained at that size (hub mode).")
    import warnings

    warnings.warn(msg + " Expect it to be slow; the model's own size is " + f"{native} px.", stacklevel=3)
