"""Record a full CPU run of a recipe next to the committed checkpoint, for its model card.

The committed weights were trained on a GPU (``recipes/train_zoo_on_gpu.sh``). The recipes' default
profile is sized for a 2-core CPU; this script copies what a full CPU run measured (its training.json
files, the metrics from ``recipes/evaluate_zoo.py --path``, its sample grid and the command's wall
time) into ``course_utils/zoo/<model>/cpu_run.json`` and ``samples-cpu.png``, so that the card can
show what a learner without a GPU gets. The CPU weights themselves are not committed.

    python recipes/train_tiny_ddpm.py --out /tmp/cpu/tiny-ddpm --run-dir /tmp/cpu/runs/tiny-ddpm
    python recipes/evaluate_zoo.py --only ddpm --path /tmp/cpu/tiny-ddpm
    python recipes/record_cpu_run.py tiny-ddpm --out /tmp/cpu/tiny-ddpm --run-dir /tmp/cpu/runs/tiny-ddpm

    python recipes/train_tiny_sd.py --stage vae --out /tmp/cpu/tiny-sd --run-dir /tmp/cpu/runs/tiny-sd
    python recipes/train_tiny_sd.py --stage unet --out /tmp/cpu/tiny-sd --run-dir /tmp/cpu/runs/tiny-sd
    python recipes/evaluate_zoo.py --only sd --path /tmp/cpu/tiny-sd
    python recipes/record_cpu_run.py tiny-sd --out /tmp/cpu/tiny-sd --run-dir /tmp/cpu/runs/tiny-sd

``--wall-minutes`` adds the wall time of each whole command (e.g. from ``/usr/bin/time``), in stage order.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import ZOO, positive_float

STAGES = {"tiny-ddpm": [""], "tiny-sd": ["vae", "unet"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=STAGES)
    ap.add_argument("--out", type=Path, required=True, help="the folder the recipe wrote with --out")
    ap.add_argument("--run-dir", type=Path, required=True, help="the folder the recipe wrote with --run-dir")
    ap.add_argument("--wall-minutes", type=positive_float, nargs="*", default=[],
                    help="each stage's whole-command wall time in minutes, in stage order")
    args = ap.parse_args()
    for flag, path in (("--out", args.out), ("--run-dir", args.run_dir)):
        if not path.is_dir():
            ap.error(f"{flag} {path} is not a folder: pass the folder the recipe wrote")
    if len(args.wall_minutes) > len(STAGES[args.model]):
        ap.error(f"{len(args.wall_minutes)} --wall-minutes for {args.model}, which has {len(STAGES[args.model])} "
                 "stage(s): give one per stage")

    stages = {}
    for i, stage in enumerate(STAGES[args.model]):
        f = args.run_dir / stage / "training.json"
        if not f.exists():
            raise SystemExit(f"{f} is missing: pass the --run-dir the recipe was run with.")
        info = json.loads(f.read_text())
        if info.get("profile") != "cpu" or "CPU" not in info.get("hardware", ""):
            raise SystemExit(f"{f} is not a CPU-profile run on a CPU ({info.get('profile')}, {info.get('hardware')}).")
        if i < len(args.wall_minutes):
            info["wall_minutes"] = args.wall_minutes[i]
        stages[stage or "model"] = info
    metrics_file = args.out / "metrics.json"
    if not metrics_file.exists():
        raise SystemExit(f"{metrics_file} is missing: run `python recipes/evaluate_zoo.py --only "
                         f"{args.model.split('-')[1]} --path {args.out}` first.")
    record = {"stages": stages, "metrics": json.loads(metrics_file.read_text())}
    dest = ZOO / args.model
    (dest / "cpu_run.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.copy(args.out / "samples.png", dest / "samples-cpu.png")
    print(f"wrote {dest / 'cpu_run.json'} and {dest / 'samples-cpu.png'}; now run "
          "`python recipes/write_model_cards.py && make manifest`")


if __name__ == "__main__":
    main()
