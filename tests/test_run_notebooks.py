"""`make run`'s runner: two notebooks at a time, each kernel with half the cores, a progress line per notebook."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.notebook


def test_two_at_a_time(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "tools/run_notebooks.py", "00", "01", "09", "--jobs", "2", "--fast", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert sorted(line.split("]")[0] for line in progress) == ["[1/3", "[2/3", "[3/3"], r.stdout  # one line per notebook
    # 09 measures speed: it runs last, once the other two have finished, alone
    assert progress[-1].startswith("[3/3] 09_making_it_fast:"), r.stdout
    assert lines.index("running 09_making_it_fast.ipynb alone (it measures speed) ...") > lines.index(progress[1]), r.stdout
    # nothing buries those lines: ipykernel >= 7 warns at each kernel's start about unencrypted local sockets, and
    # logs an error when the interrupt that precedes a kernel's shutdown lands while it finishes its last reply
    assert "WARNING" not in r.stdout + r.stderr and "KeyboardInterrupt" not in r.stdout + r.stderr, r.stdout + r.stderr
    timings = json.loads((out / "timings.json").read_text())
    assert timings["jobs"] == 2 and set(timings["seconds"]) == {"00_setup", "01_pipeline_in_four_lines", "09_making_it_fast"}
    assert all(isinstance(s, float) and s > 0 for s in timings["seconds"].values()), timings
    assert 0 < timings["wall_seconds"] < sum(timings["seconds"].values()) + 30  # 00 and 01 overlapped
    from course_utils.timing import cpu_model

    assert cpu_model() in timings["machine"], timings["machine"]  # the timings name the CPU they came from
    assert (out / "00_setup.ipynb").exists() and (out / "01_pipeline_in_four_lines.ipynb").exists()


def test_speed_notebooks_run_alone():
    """09 asserts on timings: a --jobs run keeps it out of the pool (running it beside another would distort them)."""
    sys.path.insert(0, str(REPO / "tools"))
    from run_notebooks import SOLO, notebooks

    timing = {nb.stem for nb in notebooks() if "median_time(" in nb.read_text() or "alternating_ratio(" in nb.read_text()}
    assert timing and timing <= SOLO, (timing, SOLO)
