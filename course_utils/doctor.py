"""The environment doctor: is this machine ready for the course?

Introduced in ``notebooks/00_setup.ipynb``; on workshop machines run ``python -m course_utils doctor``.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import shutil


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def diagnose(check_hub: bool = True) -> dict:
    """Versions, device, hub reachability, the mode ``auto`` would choose, free disk and memory."""
    import torch

    from .checkpoints import (
        EXPECTED_FILES,
        TINY_STAND_INS,
        CheckpointError,
        choose_mode,
        hub_reachable,
        read_manifest,
        verify_checkpoint,
        verify_data,
    )
    from .device import pick_device
    from .emoji_data import FontMissingError, find_font

    report = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface_hub"):
        report[pkg] = _version(pkg)
    device = pick_device("auto")
    report["device"] = device
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        report["gpu"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    report["cpu_threads"] = torch.get_num_threads()
    report["hub_reachable"] = hub_reachable() if check_hub else "not checked"
    mode, reason = choose_mode("CompVis/stable-diffusion-v1-4", "auto") if check_hub else ("tiny", "hub not checked")
    report["auto_mode"] = mode
    report["auto_mode_reason"] = reason
    report["disk_free_gib"] = round(shutil.disk_usage(".").free / 2**30, 1)
    try:
        with open("/proc/meminfo") as f:
            avail = next(line for line in f if line.startswith("MemAvailable"))
        report["memory_free_gib"] = round(int(avail.split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        report["memory_free_gib"] = "unknown"
    zoo = set()
    for name in sorted(set(TINY_STAND_INS.values())):
        try:
            verify_checkpoint(name)
            zoo.add(f"{name} ok")
        except CheckpointError as e:
            zoo.add(f"{name} BROKEN: {str(e).splitlines()[0]}")
    report["tiny_zoo"] = ", ".join(sorted(zoo))
    try:  # package data other than the checkpoints, if the manifest lists any
        prefixes = sorted({rel.rsplit("/", 1)[0] for rel in read_manifest()
                           if rel.split("/", 1)[0] not in EXPECTED_FILES and "/" in rel})
    except CheckpointError:
        prefixes = []  # already reported as BROKEN above
    if prefixes:
        data = []
        for prefix in prefixes:
            try:
                data.append(f"{prefix} ok ({len(verify_data(prefix))} files)")
            except CheckpointError as e:
                data.append(f"{prefix} BROKEN: {str(e).splitlines()[0]}")
        report["package_data"] = ", ".join(data)
    try:
        report["emoji_font"] = str(find_font())
    except FontMissingError:
        report["emoji_font"] = "missing (only needed to train: apt-get install fonts-noto-color-emoji)"
    return report


def print_report(report: dict) -> None:
    width = max(map(len, report))
    for k, v in report.items():
        print(f"{k:<{width}}  {v}")


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m course_utils doctor", description=__doc__)
    ap.add_argument("--no-hub", action="store_true", help="skip the 3-second hub check")
    args = ap.parse_args(argv)
    report = diagnose(check_hub=not args.no_hub)
    print_report(report)
    broken = "BROKEN" in report["tiny_zoo"] or "BROKEN" in report.get("package_data", "")
    print("\nReady for the course." if not broken else
          "\nNOT ready: the tiny zoo (or the data shipped with the course) failed its integrity check, see above. "
          "Reinstall the course, or in a clone restore the files with `git checkout -- course_utils/`.")
    return 1 if broken else 0
