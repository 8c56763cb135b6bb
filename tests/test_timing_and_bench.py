import json
import platform
import subprocess
import sys
import time

import pytest

from course_utils.timing import alternating_ratio, cpu_model, machine, median_time


def test_median_time_ignores_one_slow_run():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.2 if len(calls) == 3 else 0.01)

    t = median_time(fn, repeats=5, warmup=1)
    assert len(calls) == 6 and t < 0.05
    with pytest.raises(ValueError):
        median_time(fn, repeats=0)


def test_alternating_ratio_measures_a_real_difference():
    r = alternating_ratio(lambda: time.sleep(0.02), lambda: time.sleep(0.01), pairs=4)
    assert 1.5 < r["ratio"] < 2.6 and r["pairs"] == 4


def test_machine_names_the_cpu_and_its_cores_without_a_gpu():
    """run_notebooks, gpu_notebooks and bench label their timings with it; a CUDA device without a GPU is the CPU."""
    import os

    import torch

    assert machine("cpu") == f"{cpu_model()}, {os.cpu_count()} cores"
    if not torch.cuda.is_available():
        assert machine("cuda:0") == machine("cpu")


def test_bench_runs_and_writes_the_table(repo, tmp_path):
    r = subprocess.run([sys.executable, "benchmarks/bench.py", "--repeats", "1", "--pairs", "2", "--no-compile",
                        "--out", str(tmp_path)], cwd=repo, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    names = [row["measure"] for row in data["rows"]]
    for prefix in ("1.", "2.", "3.", "4.", "5.", "6.", "7. PNDM", "7. UniPC", "7. DPM-Solver++", "8."):
        assert any(n.startswith(prefix) for n in names), prefix
    loop = next(row for row in data["rows"] if row["measure"].startswith("1."))
    assert 0.5 < loop["value"] < 2.0
    half = next(row for row in data["rows"] if row["measure"].startswith("3."))
    assert half["value"] > 0, half  # measured: the tiny model's half-precision path runs here
    assert "| measure | value | unit | note |" in next(tmp_path.glob("*.md")).read_text()
    # the results name the CPU they came from, not just "x86_64"; the file keeps the committed results' name
    assert data["machine"].startswith(cpu_model() + ","), data["machine"]
    assert next(tmp_path.glob("*.json")).name == f"{platform.machine().lower()}-cpu.json"


def test_bench_gpu_path_runs_on_the_real_sd_architecture_at_a_small_size(repo, tmp_path):
    """The GPU run builds the real SD v1 architecture (860M-parameter UNet, CLIP ViT-L text encoder).
    At 64 px and 2 steps a CPU can run that same code path, so a GPU learner's `make bench` is checked here."""
    # --no-half: on the slower AMD EPYC (family 25, model 1, no bf16 instructions) the bfloat16 row took 210 s of this
    # test's 362 s (15.9x float32's time); the tiny bench above runs that row's code, and on a GPU it is float16 anyway
    r = subprocess.run([sys.executable, "benchmarks/bench.py", "--arch", "sd-v1", "--size", "64", "--steps", "2",
                        "--repeats", "1", "--pairs", "1", "--no-compile", "--no-half", "--device", "cpu",
                        "--out", str(tmp_path)],
                       cwd=repo, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    stem = f"{platform.machine().lower()}-cpu-sd-v1-64px-2steps"
    assert files == [f"{stem}.json", f"{stem}.md"], files
    data = json.loads((tmp_path / files[0]).read_text())
    assert data["model"] == "Stable Diffusion v1 architecture, random weights, 64 px"
    names = [row["measure"] for row in data["rows"]]
    assert any(n.startswith("7. PNDM at 4 steps") for n in names) and any(n.startswith("7. UniPC at 2 steps") for n in names)
    half = next(row for row in data["rows"] if row["measure"].startswith("3."))
    assert half["value"] is None and half["note"] == "skipped (--no-half)", half
    peak = next(row for row in data["rows"] if row["measure"].startswith("8."))
    assert peak["value"] > 3000  # MiB: the fp32 SD v1 UNet alone is 3.3 GiB, so a smaller peak means a smaller model
