"""Helpers for the 🧨 diffusers course. Importing this package is cheap: it loads no torch and
sets no global state; each helper imports what it needs when it is called.

Each module's docstring names the notebook that introduces it.
"""

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml and course_utils.links read it

from .checkpoints import CheckpointError, choose_mode, hub_reachable, resolve_checkpoint, verify_checkpoint
from .device import DeviceError, check_image_size, make_generator, pick_device, pick_dtype
from .display import grid, show_grid, to_pil
from .recorder import TrajectoryRecorder

__all__ = [
    "CheckpointError", "DeviceError", "TrajectoryRecorder", "check_image_size", "choose_mode", "grid",
    "hub_reachable", "make_generator", "pick_device", "pick_dtype", "resolve_checkpoint", "show_grid",
    "to_pil", "verify_checkpoint",
]
