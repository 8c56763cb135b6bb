"""Execute the course notebooks and time each one.

    python tools/run_notebooks.py                       # every notebook, tiny mode, CPU -> _output/
    python tools/run_notebooks.py --device cuda         # on a GPU (what `make test-gpu` runs)
    python tools/run_notebooks.py --refresh 02_ddpm_from_components   # re-execute committed outputs in place

Each notebook runs top to bottom in a fresh kernel with papermill, its `parameters` cell overridden
(`mode`, `device`); a failure stops nothing else but makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def notebooks(names: list[str] | None = None) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        wanted = [n.removesuffix(".ipynb") for n in names]
        found = [p for p in found if p.stem in wanted or p.stem[:2] in wanted]
        if len(found) != len(wanted):
            raise SystemExit(f"unknown notebook in {names}; have {[p.stem for p in sorted(NOTEBOOKS.glob('*.ipynb'))]}")
    return found


def execute(nb: Path, out_dir: Path, mode: str = "tiny", device: str = "cpu", timeout: int = 600) -> float:
    """Run one notebook with papermill; returns its wall time in seconds (raises on a failing cell)."""
    import os

    import papermill as pm

    os.environ["COURSE_STATIC"] = "1"  # no live frontend: widget explorers fall back to static grids
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters={"mode": mode, "device": device},
                        cwd=str(nb.parent), kernel_name="python3", progress_bar=False,
                        execution_timeout=timeout, log_output=False)
    return time.perf_counter() - t0


def refresh(nb: Path, timeout: int = 600) -> float:
    """Re-execute a committed notebook in place with its default parameters (auto mode: tiny on a CPU).

    Outputs are what learners see on GitHub and in the book, so they must come from a clean run.
    """
    import os

    import nbformat
    from nbclient import NotebookClient

    os.environ["TQDM_DISABLE"] = "1"  # committed outputs: no progress-bar widgets
    os.environ["COURSE_STATIC"] = "1"  # and static grids instead of live widget explorers
    t0 = time.perf_counter()
    book = nbformat.read(nb, as_version=4)
    NotebookClient(book, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(nb.parent)}}).execute()
    for cell in book.cells:
        cell.metadata.pop("execution", None)
    book.metadata.pop("papermill", None)
    nbformat.write(book, nb)
    return time.perf_counter() - t0


def machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    import os

    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


def table(times: dict[str, float | str]) -> str:
    rows = ["| notebook | seconds |", "|---|---:|"]
    total = 0.0
    for name, t in times.items():
        rows.append(f"| {name} | {t:.1f} |" if isinstance(t, float) else f"| {name} | {t} |")
        total += t if isinstance(t, float) else 0.0
    rows.append(f"| **total** | **{total:.1f}** |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (e.g. 02 or 02_ddpm_from_components); default all")
    ap.add_argument("--mode", default="tiny", choices=("tiny", "hub", "auto"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "_output")
    ap.add_argument("--refresh", action="store_true", help="re-execute the committed notebooks in place")
    args = ap.parse_args()

    times: dict[str, float | str] = {}
    failed = []
    for nb in notebooks(args.names):
        print(f"running {nb.name} ...", flush=True)
        try:
            times[nb.stem] = refresh(nb) if args.refresh else execute(nb, args.out, args.mode, args.device)
        except Exception as e:  # report every notebook, then fail
            times[nb.stem] = "FAILED"
            failed.append(nb.stem)
            print(f"  FAILED: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")
        else:
            print(f"  {times[nb.stem]:.1f} s")
    print(f"\nNotebook times ({'refresh' if args.refresh else f'mode={args.mode}, device={args.device}'}; {machine()}):")
    print(table(times))
    if not args.refresh:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "timings.json").write_text(json.dumps(
            {"mode": args.mode, "device": args.device, "machine": machine(), "python": sys.version.split()[0],
             "seconds": times}, indent=2) + "\n")
        print(f"\nExecuted notebooks are in {args.out}/ (open them with `make lab`); timings in {args.out}/timings.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
