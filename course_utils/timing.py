"""Honest timing: warm-up, then the median of repeats; ratios from alternating pairs.

Introduced in ``notebooks/09_making_it_fast.ipynb``; ``benchmarks/bench.py`` uses the same functions.
On a GPU, work is asynchronous: every timed call is followed by ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import statistics
import time


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _check_counts(fn, **counts) -> None:
    if not callable(fn):
        raise TypeError(f"Pass the function to time, not its result: median_time(lambda: work(), ...), not "
                        f"{type(fn).__name__}.")
    for name, (value, minimum) in counts.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a whole number, not {value!r}.")
        if value < minimum:
            raise ValueError(f"{name}={value}: {name} must be at least {minimum}"
                             + (" (a median of no runs is no measurement)." if minimum else "."))


def median_time(fn, repeats: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    _check_counts(fn, repeats=(repeats, 1), warmup=(warmup, 0))
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternating_ratio(fn_a, fn_b, pairs: int = 7, warmup: int = 1, device: str = "cpu") -> dict:
    """Time A and B in alternation (A B, B A, A B, ...) and return the median of the per-pair ratios A/B.

    Alternating cancels slow drifts (thermal throttling, other processes) that would bias two
    separate blocks of timings.
    """
    _check_counts(fn_a, pairs=(pairs, 1), warmup=(warmup, 0))
    _check_counts(fn_b)
    for _ in range(warmup):
        fn_a()
        fn_b()
    ratios, ta, tb = [], [], []
    for i in range(pairs):
        order = (fn_a, fn_b) if i % 2 == 0 else (fn_b, fn_a)
        got = {}
        for fn in order:
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            got[fn] = time.perf_counter() - t0
        ta.append(got[fn_a])
        tb.append(got[fn_b])
        ratios.append(got[fn_a] / got[fn_b])
    return {"ratio": statistics.median(ratios), "a_s": statistics.median(ta), "b_s": statistics.median(tb),
            "pairs": pairs}


def cpu_model() -> str:
    """The CPU's model name, as `lscpu` gives it ("AMD EPYC", "Intel(R) Xeon(R) Processor @ 2.50GHz"): a time means
    little without the machine it came from, and "x86_64" does not tell two machines of one kind apart."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or f"{platform.machine()} CPU"


def machine(device: str = "cpu") -> str:
    """What a time was measured on: the GPU's name for a CUDA device, else "<CPU model>, <N> cores"."""
    import os

    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_model()}, {os.cpu_count()} cores"
