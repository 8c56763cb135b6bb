"""Execute the course notebooks and time each one.

    python tools/run_notebooks.py                       # every notebook, tiny mode, CPU -> _output/
    python tools/run_notebooks.py --device cuda         # on a GPU (what `make test-gpu` runs)
    python tools/run_notebooks.py --refresh 02_ddpm_from_components   # re-execute committed outputs in place

Each notebook runs top to bottom in a fresh kernel with papermill, its `parameters` cell overridden
(`mode`, `device`); a failure stops nothing else but makes the exit status non-zero.

With ``--jobs 2`` (what `make run` does on a CPU) two notebooks run at once, each kernel with half of the CPU's
threads: a kernel's start, its imports and the small tiny-mode kernels use one core at a time, so two of them
keep a 2-core CPU busy. The notebooks that *measure speed* (SOLO: 09) run afterwards, alone, with every core,
because another notebook beside them would distort what they measure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
#: notebooks that time things and assert on the timings: never run beside another notebook
SOLO = {"09_making_it_fast"}
#: the slowest notebooks in tiny mode on a CPU (measured by `make run`), started first in a --jobs run so that no
#: long one is left running alone at the end; a previous run's timings.json in --out, when there is one, takes over
LONGEST_FIRST = ("08_train_your_own", "06_guidance_and_latents", "07_write_your_own_pipeline", "03_schedulers")

#: the kernel's own log, critical messages only: ipykernel >= 7 warns at every start that its local TCP sockets are not
#: encrypted, which buried `make run`'s one progress line per notebook. A kernel that dies or fails to start still
#: fails its notebook, with papermill's own message.
QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]

#: once the last cell has run and its outputs have arrived, the kernel is stopped at once instead of asked to exit. A
#: kernel that has imported torch and diffusers spends 2-3 s of CPU tearing down its ~2,800 modules (papermill's gap
#: between the last cell and its end, on the 2-core AMD EPYC: 2.7-2.9 s graceful, 0.12 s immediate), 13 times in a
#: `make run`. No notebook needs its kernel's exit hooks: everything a cell writes is closed when the cell ends.
SHUTDOWN = "immediate"


def notebooks(names: list[str] | None = None) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        wanted = [n.removesuffix(".ipynb") for n in names]
        found = [p for p in found if p.stem in wanted or p.stem[:2] in wanted]
        unknown = [n for n in wanted if not any(p.stem == n or p.stem[:2] == n for p in found)]
        if unknown:
            raise SystemExit(f"unknown notebook(s) {unknown}: give a number such as 02 or a name; the notebooks are "
                             f"{[p.stem for p in sorted(NOTEBOOKS.glob('[0-9][0-9]_*.ipynb'))]}")
    return found


#: appended to the executed copy (never to the committed notebook) when a run records its peak GPU memory
MEASURE_CELL = """import json, pathlib, torch
pathlib.Path({path!r}).write_text(json.dumps({{"peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None}}))"""


def execute(nb: Path, out_dir: Path, mode: str = "tiny", device: str = "cpu", timeout: int = 600,
            parameters: dict | None = None, record: Path | None = None) -> float:
    """Run one notebook with papermill; returns its wall time in seconds (raises on a failing cell).

    ``parameters`` go in too (e.g. ``{"fast": True}``: the workload parameters every notebook takes). With
    ``record``, a last cell of the executed copy writes the kernel's ``torch.cuda.max_memory_allocated()``
    (None without CUDA) to that JSON file.
    """
    import os

    import nbformat
    import papermill as pm

    os.environ["COURSE_STATIC"] = "1"  # no live frontend: widget explorers fall back to static grids
    out_dir.mkdir(parents=True, exist_ok=True)
    book = nbformat.read(nb, as_version=4)
    if record is not None:
        book.cells.append(nbformat.v4.new_code_cell(MEASURE_CELL.format(path=str(Path(record).resolve())),
                                                    metadata={"tags": ["course-measure"]}))
    t0 = time.perf_counter()
    pm.execute_notebook(book, str(out_dir / nb.name), parameters={"mode": mode, "device": device, **(parameters or {})},
                        cwd=str(nb.parent), kernel_name="python3", progress_bar=False,
                        execution_timeout=timeout, log_output=False, extra_arguments=QUIET_KERNEL,
                        # written at the end (and every 30 s of a long cell), not re-validated and rewritten after
                        # every cell: that cost about a CPU-second per notebook, taken from the kernels beside it
                        request_save_on_cell_execute=False, shutdown_kernel=SHUTDOWN)
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
    NotebookClient(book, timeout=timeout, kernel_name="python3", extra_arguments=QUIET_KERNEL, shutdown_kernel=SHUTDOWN,
                   resources={"metadata": {"path": str(nb.parent)}}).execute()
    for cell in book.cells:
        cell.metadata.pop("execution", None)
    book.metadata.pop("papermill", None)
    finish_progress_bars(book)
    nbformat.write(book, nb)
    return time.perf_counter() - t0


def bar_text(book, model_id: str) -> str | None:
    """The text a finished tqdm notebook bar shows, read from the notebook's saved widget state (None: not a bar).

    tqdm.notebook draws an HBox of [HTML "desc: 100%", FloatProgress, HTML " 36/36 [00:00<00:00, ...]"].
    """
    import html

    state = book.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box["state"].get("children", [])]
    if [c.get("model_name") for c in children] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c["state"] for c in children)
    done = min(max(bar.get("value", 0) / bar["max"], 0), 1) if bar.get("max") else 1
    filled = int(10 * done)
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (10 - filled)}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def finish_progress_bars(book) -> int:
    """Give every progress-bar widget output the text of its finished state; returns how many were rewritten.

    TQDM_DISABLE does not reach tqdm.notebook (it passes ``disable`` explicitly), so executed notebooks keep their
    bars as widgets. Jupyter and the book draw them from the saved widget state (100%), but GitHub and other
    viewers without widgets show the output's text/plain, which tqdm wrote when the bar *started*: "0%| 0/36".
    """
    changed = 0
    for cell in book.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            text = bar_text(book, view["model_id"]) if view else None
            if text is not None and out["data"].get("text/plain") != text:
                out["data"]["text/plain"] = text
                changed += 1
    return changed


def failure_report(e: BaseException) -> str:
    """The whole cause of a failing notebook: which cell, the exception and its traceback (not just the last line)."""
    import re

    ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    if hasattr(e, "ename") and hasattr(e, "traceback"):  # papermill's PapermillExecutionError, nbclient's CellExecutionError
        cell = getattr(e, "exec_count", None)
        head = f"cell {cell}: " if cell is not None else ""
        lines = e.traceback or []
        if isinstance(lines, str):  # nbclient (--refresh) gives one string, papermill a list of lines
            lines = lines.splitlines()
        tb = "\n".join(ansi.sub("", line) for line in lines)
        return f"{head}{e.ename}: {e.evalue}\n{tb}".rstrip()
    import traceback

    return "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()


def machine() -> str:
    """The GPU when there is one, else the CPU's model and cores: timings mean little without them."""
    from course_utils import timing

    try:
        import torch

        return timing.machine("cuda" if torch.cuda.is_available() else "cpu")
    except ImportError:
        return timing.machine("cpu")


def table(times: dict[str, float | str]) -> str:
    rows = ["| notebook | seconds |", "|---|---:|"]
    total = 0.0
    for name, t in times.items():
        rows.append(f"| {name} | {t:.1f} |" if isinstance(t, float) else f"| {name} | {t} |")
        total += t if isinstance(t, float) else 0.0
    rows.append(f"| **total** | **{total:.1f}** |")
    return "\n".join(rows)


def threads_per_job(jobs: int) -> int:
    import os

    return max(1, (os.cpu_count() or 1) // jobs)


def _pool_init(threads: str) -> None:
    """A --jobs worker: its kernels get ``threads`` threads, and papermill is imported once per worker."""
    import os

    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)  # the kernels it starts inherit them
    import papermill  # noqa: F401  (2-3 s of imports, paid once per worker instead of once per notebook)


def run_one(nb: Path, args, threads: str | None = None) -> tuple[float | None, str | None]:
    """One notebook as ``args`` ask (refresh in place, or execute into --out): (seconds, None) or (None, the cause).

    ``threads``: the threads its kernel gets (in a --jobs worker: every core, for a notebook that runs alone).
    """
    import os

    if threads:
        os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    try:
        if args.refresh:
            return refresh(nb, args.timeout), None
        return execute(nb, args.out, args.mode, args.device, args.timeout,
                       parameters={"fast": True} if args.fast else None), None
    except Exception as e:  # report every notebook, then fail; as text, since a kernel's exception need not pickle
        return None, failure_report(e)


def run_parallel(todo: list[Path], jobs: int, args, record, alone: list[Path] = ()) -> None:
    """Run ``todo`` ``jobs`` at a time, each notebook in a fresh kernel with cores/jobs threads; then each of ``alone``
    on its own with every core, in the same workers (papermill is imported there already: 2-3 s saved)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    try:  # the longest first, from the last run's timings when there are some
        last = json.loads((args.out / "timings.json").read_text())["seconds"]
        last = {k: v for k, v in last.items() if isinstance(v, (int, float))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        last = {}
    if len(last) >= len(todo) // 2:
        todo = sorted(todo, key=lambda nb: -last.get(nb.stem, 0.0))
    else:
        todo = sorted(todo, key=lambda nb: LONGEST_FIRST.index(nb.stem) if nb.stem in LONGEST_FIRST else len(LONGEST_FIRST))
    threads = str(threads_per_job(jobs))
    print(f"running {len(todo)} notebooks, {jobs} at a time ({threads} thread(s) each) ...", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with torch
                             initializer=_pool_init, initargs=(threads,)) as pool:
        futures = {pool.submit(run_one, nb, args): nb for nb in todo}
        for done, fut in enumerate(as_completed(futures), 1):
            record(futures[fut], *fut.result(), done)
        for done, nb in enumerate(alone, len(todo) + 1):  # after every other notebook has finished: nothing beside it
            print(f"running {nb.name} alone (it measures speed) ...", flush=True)
            record(nb, *pool.submit(run_one, nb, args, str(threads_per_job(1))).result(), done)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (e.g. 02 or 02_ddpm_from_components); default all")
    ap.add_argument("--mode", default="tiny", choices=("tiny", "hub", "auto"))
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto: passed to every "
                                                     "notebook's `device` parameter")
    ap.add_argument("--out", type=Path, default=REPO / "_output", help="folder for the executed copies and timings.json")
    ap.add_argument("--timeout", type=int, default=600, help="seconds a single cell may run (default 600)")
    ap.add_argument("--refresh", action="store_true", help="re-execute the committed notebooks in place")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks run at once, each kernel with cores/jobs threads (default 1; `make run`: 2). "
                         f"The ones that measure speed ({', '.join(sorted(SOLO))}) always run alone, at the end")
    ap.add_argument("--fast", action="store_true", help="each notebook's fast workload (fast=True): few steps, small images")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from course_utils.device import DeviceError, pick_device

    try:
        pick_device(args.device)  # 'cuda' without a GPU: say so now, not in every notebook's first cell
    except (DeviceError, TypeError) as e:
        ap.error(str(e).replace("\n", " "))
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give how many notebooks may run at once, at least 1")
    if args.jobs > 1 and args.device != "cpu":
        ap.error(f"--jobs {args.jobs} shares the CPU's cores between notebooks; on {args.device!r} run them one at a time "
                 "(leave --jobs out): two notebooks on one accelerator would distort each other's timings and memory")
    if args.timeout < 1:
        ap.error(f"--timeout {args.timeout}: give the seconds a cell may run, at least 1")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file: give a folder")
    if args.refresh and args.device != "cpu":
        ap.error("--refresh re-executes the committed outputs with the notebooks' defaults; it takes no --device")

    times: dict[str, float | str] = {}
    failed = []
    todo = notebooks(args.names)
    jobs = 1 if args.refresh or len(todo) < 2 else args.jobs
    started = time.perf_counter()

    def record(nb: Path, seconds: float | None, error: str | None, done: int) -> None:
        elapsed = time.perf_counter() - started
        if error is None:
            times[nb.stem] = seconds
            print(f"[{done}/{len(todo)}] {nb.stem}: {seconds:.1f} s   ({elapsed:.0f} s since the start)", flush=True)
        else:
            times[nb.stem] = "FAILED"
            failed.append(nb.stem)
            print(f"[{done}/{len(todo)}] {nb.stem}: FAILED\n    " + error.replace("\n", "\n    "), flush=True)

    if jobs > 1:  # the speed-measuring notebooks last, alone
        run_parallel([nb for nb in todo if nb.stem not in SOLO], jobs, args, record, [nb for nb in todo if nb.stem in SOLO])
    else:
        for nb in todo:
            print(f"running {nb.name} ...", flush=True)
            record(nb, *run_one(nb, args), len(times) + 1)
    times = {nb.stem: times[nb.stem] for nb in todo}  # the table in the notebooks' order
    wall = time.perf_counter() - started
    solo = "".join(f"; {nb.stem} alone" for nb in todo if nb.stem in SOLO)
    how = f"{jobs} at a time, {threads_per_job(jobs)} thread(s) each{solo}" if jobs > 1 else "one at a time"
    print(f"\nNotebook times ({'refresh' if args.refresh else f'mode={args.mode}, device={args.device}'}; {how}; {machine()}):")
    print(table(times))
    print(f"wall time of the whole run: {wall:.1f} s")
    if not args.refresh:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "timings.json").write_text(json.dumps(
            {"mode": args.mode, "device": args.device, "fast": args.fast, "jobs": jobs, "machine": machine(),
             "python": sys.version.split()[0], "seconds": times, "wall_seconds": round(wall, 1)}, indent=2) + "\n")
        print(f"\nExecuted notebooks are in {args.out}/ (open them with `make lab`); timings in {args.out}/timings.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
