"""Every notebook in hub mode at full size on a GPU, timed, with its peak GPU memory: `make test-gpu` (issue 11).

    python tools/gpu_notebooks.py                     # what `make test-gpu` runs: device cuda, mode hub, full workloads
    python tools/gpu_notebooks.py --readme            # only rewrite the README's GPU column from the results file
    python tools/gpu_notebooks.py --device cpu --fast --results /tmp/r.json --readme-file /tmp/README.md 02
                                                      # the same recording path on a CPU (peak memory: n/a)

Each notebook runs top to bottom in a fresh kernel (papermill, `tools/run_notebooks.execute`) with
`mode="hub"`, `device`, `dtype="auto"` (float16 on CUDA) and its default workload. A last cell, added to the
executed copy only, reads `torch.cuda.max_memory_allocated()` inside the kernel. Wall time, peak memory and
the outcome go to `benchmarks/gpu-notebooks.json` (commit it), and the README's GPU column is written from it.

Checkpoints: the real hub ones when the hub answers (`--checkpoints auto`, the default), else the replicas of
`make hub-replica` (the real configs with random weights: the same shapes, so the same time and memory).
A notebook whose peak is above 14 GiB fails: every notebook must fit a 16 GB T4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
RESULTS = REPO / "benchmarks" / "gpu-notebooks.json"
README = REPO / "README.md"
REPLICA_HOME = REPO / ".cache" / "hub-replica"
PEAK_LIMIT_GIB = 14.0  # a 16 GB T4, with room for the CUDA context
GIB = 2 ** 30
GPU_NOTE = re.compile(r"<!-- gpu-note:start -->.*?<!-- gpu-note:end -->", re.S)


def use_checkpoints(choice: str) -> str:
    """Point this process (and the kernels it starts) at the real hub or at the replicas; returns which."""
    from course_utils.checkpoints import hub_reachable

    if choice == "auto":
        choice = "hub" if hub_reachable() else "replicas"
    if choice == "replicas":
        from hub_replica import REPLICAS, build

        for repo_id in REPLICAS:
            build(repo_id, REPLICA_HOME / "hub")
        os.environ["HF_HOME"] = str(REPLICA_HOME)
        os.environ["HF_HUB_OFFLINE"] = "1"
    return choice


def run(names, device: str, fast: bool, out: Path, timeout: int) -> dict:
    """Run the notebooks; returns {notebook: {"seconds", "peak_bytes", "status"}}."""
    from run_notebooks import execute, failure_report, notebooks

    rows = {}
    for nb in notebooks(names):
        print(f"running {nb.name} ...", flush=True)
        record = out / f"{nb.stem}.peak.json"
        t0 = time.perf_counter()
        try:
            execute(nb, out, mode="hub", device=device, timeout=timeout, parameters={"fast": fast}, record=record)
        except Exception as e:  # report every notebook, then fail
            rows[nb.stem] = {"seconds": round(time.perf_counter() - t0, 1), "peak_bytes": None,
                             "status": "failed: " + failure_report(e).splitlines()[0][:300]}
            print("  " + rows[nb.stem]["status"], flush=True)
            continue
        peak = json.loads(record.read_text())["peak_bytes"]
        status = "passed"
        if peak is not None and peak / GIB > PEAK_LIMIT_GIB:
            status = f"failed: peak {peak / GIB:.1f} GiB is above the {PEAK_LIMIT_GIB:.0f} GiB a 16 GB T4 leaves"
        rows[nb.stem] = {"seconds": round(time.perf_counter() - t0, 1), "peak_bytes": peak, "status": status}
        print(f"  {rows[nb.stem]['seconds']:.1f} s, peak {fmt_peak(peak)}, {status}", flush=True)
    return rows


def fmt_peak(peak) -> str:
    return "n/a" if peak is None else f"{peak / GIB:.2f} GiB"


def gpu_cell(row: dict | None) -> str:
    if row is None:
        return "not measured"
    if row["status"] != "passed":
        return "failed"
    return f"{row['seconds']:.1f} s, {fmt_peak(row['peak_bytes'])}"


def readme_text(text: str, results: dict | None) -> str:
    """``text`` (the README) with the timing table's last column and the note under it written from ``results``."""
    rows = (results or {}).get("notebooks", {})
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "<!-- timings:start -->" in line)
    end = next(i for i, line in enumerate(lines) if "<!-- timings:end -->" in line)
    for i in range(start, end):
        cells = lines[i].rstrip("\n").split("|")
        if len(cells) < 4 or not lines[i].startswith("|"):
            continue
        if "notebook" in cells[2] and "what you do" in lines[i]:
            cells[-2] = " GPU, hub mode (time, peak memory) "
        elif re.fullmatch(r" \d\d ", cells[1]):
            stem = next((s for s in rows if s.startswith(cells[1].strip() + "_")), None)
            cells[-2] = f" {gpu_cell(rows.get(stem))} "
        else:
            continue
        lines[i] = "|".join(cells) + "\n"
    text = "".join(lines)
    if results is None:
        note = ("The GPU column is empty: no GPU run of the notebooks has been committed yet. `make test-gpu` runs every "
                "notebook in hub mode at full size on a CUDA machine (the real checkpoints, or their replicas offline) "
                "and writes `benchmarks/gpu-notebooks.json`, from which `python tools/gpu_notebooks.py --readme` fills it.")
    else:
        total = sum(r["seconds"] for r in rows.values())
        peak = max((r["peak_bytes"] for r in rows.values() if r["peak_bytes"] is not None), default=None)
        note = (f"GPU column: `make test-gpu` on {results['machine']} ({results['date']}): `mode=\"hub\"` with "
                f"{results['checkpoints']}, `dtype` {results['dtype']}, "
                f"{'the fast workload' if results['fast'] else 'the full default workloads'}; wall time per notebook "
                f"and peak `torch.cuda.max_memory_allocated()` ({total:.0f} s in all, highest peak {fmt_peak(peak)}; "
                f"the limit is {PEAK_LIMIT_GIB:.0f} GiB, for a 16 GB T4). From `benchmarks/gpu-notebooks.json`.")
    block = f"<!-- gpu-note:start -->\n{note}\n<!-- gpu-note:end -->"
    if GPU_NOTE.search(text):
        return GPU_NOTE.sub(lambda m: block, text)
    return text.replace("<!-- timings:end -->\n", f"<!-- timings:end -->\n\n{block}\n", 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (e.g. 02); default all")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N; cpu only to test this script")
    ap.add_argument("--checkpoints", default="auto", choices=("auto", "hub", "replicas"),
                    help="auto (default): the real ones when the hub answers, else the replicas")
    ap.add_argument("--fast", action="store_true", help="the notebooks' fast workload (to test this script on a CPU)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may run (default 1800)")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(REPO)})")
    ap.add_argument("--readme", action="store_true", help="only rewrite the README's GPU column from the results file")
    ap.add_argument("--readme-file", type=Path, default=README, help="the README to rewrite (default README.md)")
    args = ap.parse_args(argv)
    if args.timeout < 1:
        ap.error(f"--timeout {args.timeout}: give the seconds a cell may run, at least 1")
    if not args.readme_file.is_file():
        ap.error(f"--readme-file {args.readme_file} does not exist")

    if not args.readme:
        sys.path.insert(0, str(REPO))
        from course_utils import timing
        from course_utils.device import DeviceError, pick_device

        try:
            device = pick_device(args.device)
        except (DeviceError, TypeError) as e:
            ap.error(str(e).replace("\n", " "))
        if device == "auto" or device.startswith("mps"):
            ap.error(f"--device {args.device}: give cuda (or cpu to test this script)")
        import diffusers
        import torch

        checkpoints = use_checkpoints(args.checkpoints)
        with tempfile.TemporaryDirectory() as out:
            rows = run(args.names, device, args.fast, Path(out), args.timeout)
        results = {
            "command": "make test-gpu" if device.startswith("cuda") and not args.fast else
                       f"python tools/gpu_notebooks.py --device {device}{' --fast' if args.fast else ''}",
            "machine": timing.machine(device), "device": device, "mode": "hub",
            "checkpoints": ("the real hub checkpoints" if checkpoints == "hub"
                            else "replicas of the hub checkpoints (real configs, random weights)"),
            "dtype": "float16" if device.startswith("cuda") else "float32", "fast": args.fast,
            "date": datetime.date.today().isoformat(), "python": sys.version.split()[0],
            "torch": torch.__version__, "diffusers": diffusers.__version__, "notebooks": rows,
        }
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results in {args.results}")
    results = json.loads(args.results.read_text()) if args.results.is_file() else None
    args.readme_file.write_text(readme_text(args.readme_file.read_text(), results))
    print(f"GPU column of {args.readme_file} written from {args.results if results else 'no results (not measured)'}")
    failed = [n for n, r in (results or {}).get("notebooks", {}).items() if r["status"] != "passed"]
    if failed and not args.readme:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
