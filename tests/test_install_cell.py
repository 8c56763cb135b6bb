"""The Colab / Studio Lab install cell, run for real in a venv that imitates a hosted runtime, then notebooks opened
on their own there.

The imitation runtime has what Colab ships and the course must not replace (numpy 2.0.x, IPython 7, ipykernel 6,
ipywidgets 7) and older diffusers, transformers and huggingface_hub than the course needs. torch is the CPU wheel
on this disk (Colab's is a CUDA build of about 2.10, which cannot be installed here). In it the test

1. runs the notebooks' install cell exactly as committed (IPython, `%pip` and all), with the course coming from
   a copy of this checkout instead of GitHub (a non-editable install, as from the git URL);
2. checks that torch, numpy, IPython, ipykernel and ipywidgets are untouched, that the course's own packages were
   brought into their ranges, and that the cell asked for a restart exactly when the kernel had imported
   something the install replaced;
3. copies notebooks, each alone, into an empty folder and executes them there with that runtime's kernel
   (tiny mode, CPU), so nothing may come from the checkout.

The base venv is cached in .cache/colab-venv/<hash of its spec>/ (git-ignored): CI builds it once per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from conftest import NOTEBOOK_TIMES
from run_notebooks import SHUTDOWN, notebooks

from course_utils import links

REPO = Path(__file__).resolve().parents[1]
COLAB_RUNTIME = [
    "torch==2.13.0",  # the CPU wheel on this disk stands in for Colab's CUDA torch
    "numpy==2.0.2",
    "ipython==7.34.0",
    "ipykernel==6.17.1",
    "ipywidgets==7.7.1",
    "matplotlib==3.10.0",
    "pillow==11.1.0",
    "tqdm==4.67.1",
    # older than the course needs: the install cell must bring them into pyproject.toml's ranges
    "diffusers==0.35.2",
    "transformers==4.57.1",
    "huggingface_hub==0.36.0",
]
KEEP = {"torch", "numpy", "ipython", "ipykernel", "ipywidgets"}
# Notebooks executed standalone here: each one that reads package data or depends on where it runs
# (00: the zoo and the doctor; 04: sample images; 07: writes and imports a file in its folder; 09: bench results).
STANDALONE = ["00", "04", "07", "09"]


def run(cmd: list[str], timeout: int = 900, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{(r.stdout + r.stderr)[-4000:]}"
    return r


def versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as md, json, re; print(json.dumps("
            "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in md.distributions()}))")
    return json.loads(run([str(python), "-I", "-c", code]).stdout)  # -I: not the checkout's egg-info in the cwd


def base_venv() -> Path:
    """The imitation runtime before the course is installed, built once per spec."""
    spec = json.dumps([sys.version_info[:2], COLAB_RUNTIME])
    base = REPO / ".cache" / "colab-venv" / hashlib.sha256(spec.encode()).hexdigest()[:12]
    if not (base / "complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(base)])
        py = base / "bin" / "python"
        run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([str(py), "-m", "pip", "install", "-q", *COLAB_RUNTIME], timeout=1800)
        (base / "complete").write_text(spec + "\n")
    return base


def checkout_copy(dest: Path) -> Path:
    """This checkout's files (tracked and new, not ignored), as a git clone would give pip."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO).stdout.split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)
    return dest


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("colab")
    base = base_venv()
    venv = base.parent / f"run-{os.getpid()}"  # beside the base: hard links need the same filesystem
    shutil.rmtree(venv, ignore_errors=True)
    run(["cp", "-al", str(base), str(venv)])  # hard links, so quick; pip replaces files, the base stays untouched
    py = venv / "bin" / "python"
    before = versions(py)

    src = checkout_copy(tmp / "src")
    cell = nbformat.read(notebooks()[0], as_version=4).cells[1].source
    git_url = f"git+{links.REPO_URL}@{links.RELEASE_REF}"
    assert cell.count(git_url) == 1, "the install cell no longer installs from links.REPO_URL@links.RELEASE_REF"
    install = cell.replace(git_url, src.as_uri())
    look_like_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    # A kernel that had already imported huggingface_hub (as a learner's might): the cell must ask for a restart.
    first = tmp / "first.ipy"
    first.write_text(look_like_colab + "import huggingface_hub\n" + install + "\n")
    out = run([str(py), "-m", "IPython", "--quick", "--no-banner", str(first)], timeout=1200, cwd=tmp).stdout
    # The same cell in a fresh kernel afterwards: nothing left to replace, so no restart.
    second = tmp / "second.ipy"
    second.write_text(look_like_colab + install + "\n")
    out += "=== second run\n" + run([str(py), "-m", "IPython", "--quick", "--no-banner", str(second)], cwd=tmp).stdout
    after = versions(py)

    kernels = tmp / "jupyter" / "kernels" / "colab-imitation"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab imitation", "language": "python"}))
    yield {"venv": venv, "py": py, "before": before, "after": after, "out": out, "jupyter": tmp / "jupyter", "tmp": tmp}
    shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.colab
def test_install_cell_leaves_the_runtime_alone(colab):
    before, after = colab["before"], colab["after"]
    changed = {p: (before[p], after.get(p)) for p in KEEP if before.get(p) != after.get(p)}
    assert not changed, f"the install cell replaced the runtime's own packages: {changed}"
    assert "diffusers-course" in after


@pytest.mark.colab
def test_install_cell_brings_the_course_packages_into_range(colab):
    r = run([str(colab["py"]), str(REPO / "tools" / "dep_ranges.py"), "report"])
    assert "outside" not in r.stdout, r.stdout
    for pkg in ("diffusers", "transformers", "huggingface-hub"):
        assert colab["after"][pkg] != colab["before"][pkg], f"{pkg} was not upgraded from the runtime's old one"
    where = run([str(colab["py"]), "-c", "import course_utils; print(course_utils.__file__)"], cwd=colab["tmp"]).stdout
    installed = Path(where.strip()).resolve()
    assert installed.is_relative_to(colab["venv"].resolve()) and "site-packages" in installed.parts, \
        f"not a regular (non-editable) install in the runtime: {installed}"


@pytest.mark.colab
def test_install_cell_says_when_a_restart_is_needed(colab):
    first, second = colab["out"].split("=== second run")
    assert "Restart the runtime" in first and "huggingface-hub" in first.split("Restart the runtime")[1], first[-2000:]
    assert "No restart needed" in second and "Restart the runtime" not in second, second[-2000:]


@pytest.mark.colab
@pytest.mark.notebook
@pytest.mark.parametrize("nb", notebooks(STANDALONE), ids=lambda p: p.stem)
def test_notebook_runs_on_its_own_in_the_hosted_runtime(colab, nb, tmp_path, monkeypatch):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(nb, alone / nb.name)  # the notebook and nothing else, as Colab opens it
    monkeypatch.setenv("JUPYTER_PATH", str(colab["jupyter"]))
    monkeypatch.setenv("MPLBACKEND", "agg")
    t0 = time.perf_counter()
    pm.execute_notebook(str(alone / nb.name), str(tmp_path / nb.name), parameters={"mode": "tiny", "device": "cpu"},
                        cwd=str(alone), kernel_name="colab-imitation", progress_bar=False, execution_timeout=600,
                        shutdown_kernel=SHUTDOWN)
    NOTEBOOK_TIMES[f"{nb.stem} (alone, Colab-like runtime)"] = time.perf_counter() - t0
