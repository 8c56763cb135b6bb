"""Pieces shared by the zoo's training recipes (the loops themselves stay in each recipe)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

ZOO = REPO / "course_utils" / "zoo"
RUNS = REPO / "runs"


def int_at_least(minimum: int):
    """An argparse ``type``: a whole number >= ``minimum`` (``--steps -3`` is refused before any work)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give one of at least {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: give a whole number of at least {minimum}")
        return value
    parse.__name__ = f"int >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (learning rates, minutes)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a positive one, e.g. 3e-4") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0, e.g. 3e-4")
    return value


def zero_or_positive_float(text: str) -> float:
    """An argparse ``type``: 0 (a weighting switched off, e.g. ``--snr-gamma 0``) or what ``positive_float`` takes."""
    import argparse

    try:
        return 0.0 if float(text) == 0 else positive_float(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 (off) or a positive number, e.g. 5") from None


def seed_arg(text: str) -> int:
    """An argparse ``type``: a torch seed, 0 .. 2**64 - 1."""
    import argparse

    from course_utils.device import check_seed

    try:
        return check_seed(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if text.lstrip("-").isdigit() else f"{text!r} is not a whole number: "
                                         "give a seed such as 0") from None


def device_arg(text: str) -> str:
    """An argparse ``type``: 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', checked at once (no GPU: a clear error)."""
    import argparse

    from course_utils.device import DeviceError
    from course_utils.device import pick_device as course_pick_device

    if text == "auto":
        return text
    try:
        return course_pick_device(text)
    except DeviceError as e:
        raise argparse.ArgumentTypeError(str(e).replace("\n", " ")) from None


def pick_device(name: str = "auto") -> torch.device:
    """course_utils' device choice (with its teaching errors), plus TF32 matmuls for training on a GPU."""
    from course_utils.device import pick_device as course_pick_device

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"  # training: never MPS by surprise
    dev = torch.device(course_pick_device(name))
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:  # the CPU model matters: machines of one kind differ about 2x in speed
        model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} CPU{f' ({model})' if model else ''}, {torch.get_num_threads()} threads"


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=False):
        e.lerp_(p, 1.0 - decay)


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then constant: a run stopped at any step is the same as one asked for that step."""
    return lr * min(1.0, (step + 1) / warmup)


class Budget:
    """Stops a run after ``minutes`` of wall time (a safety net; the step count is what the card records)."""

    def __init__(self, minutes: float | None):
        self.start = time.perf_counter()
        self.minutes = minutes

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over(self) -> bool:
        return self.minutes is not None and self.elapsed > self.minutes * 60


def write_run_info(out: Path, **info) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")


def to_fp16_storage(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the model for saving: weights stored in float16 halve the zoo's size.

    Loading still gives float32 (diffusers and transformers cast to the dtype you ask for,
    float32 by default), so CPU learners never meet fp16 by accident.
    """
    import copy

    return copy.deepcopy(model).to(torch.float16)
