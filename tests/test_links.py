"""One home, one version, one release ref: every notebook's badges and install cell agree with course_utils.links,
the version is written once, and the course uses no library internals that have moved."""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from dep_ranges import pyproject
from run_notebooks import notebooks
from sync_notebook_headers import expected_install_cell, header_problems, sync

import course_utils
from course_utils import links

GIT_REF = re.compile(r"git\+(https://github\.com/[^@\"]+)@([^\"\s]+)\"")
BLOB_REF = re.compile(r"/github/([^/]+/[^/]+)/blob/([^/]+)/")


def test_every_notebook_agrees_with_links(repo):
    r = subprocess.run([sys.executable, "tools/sync_notebook_headers.py", "--check"], cwd=repo,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"release {links.RELEASE_REF}" in r.stdout


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_badges_open_the_release_that_the_install_cell_installs(nb):
    book = nbformat.read(nb, as_version=4)
    badges = BLOB_REF.findall(book.cells[0].source)
    installs = GIT_REF.findall(book.cells[1].source)
    assert len(badges) == 2 and len(installs) == 1, (badges, installs)
    assert {ref for _, ref in badges} == {installs[0][1]} == {links.RELEASE_REF}
    assert {slug for slug, _ in badges} == {links.REPO_SLUG} and installs[0][0] == links.REPO_URL


def test_release_ref_is_the_package_version_and_the_version_is_written_once(repo):
    assert links.RELEASE_REF == f"v{course_utils.__version__}"
    project = pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "course_utils.__version__"}
    written = [p for p in (repo / "course_utils").rglob("*.py")
               if re.search(rf"""["']{re.escape(course_utils.__version__)}["']""", p.read_text())]
    assert [p.name for p in written] == ["__init__.py"], written


def test_install_cell_keeps_the_runtime_and_says_when_to_restart():
    cell = expected_install_cell()
    assert "%pip install" in cell and "!pip" not in cell, "%pip installs into the kernel's own environment"
    assert "constraints.txt" not in cell and "apt-get" not in cell
    for pkg in ("torch", "numpy", "ipython", "ipykernel", "ipywidgets"):
        assert f'"{pkg}"' in cell
    assert "-c " in cell and "Restart the runtime" in cell and "No restart needed" in cell
    assert max(len(line) for line in cell.splitlines()) <= 125, "a learner reads this cell: keep it narrow"
    compile(cell.replace("%pip", "pass  #"), "install cell", "exec")


def test_sync_rewrites_a_stale_header(tmp_path, repo):
    nb = tmp_path / "01_pipeline_in_four_lines.ipynb"
    shutil.copy(repo / "notebooks" / nb.name, nb)
    book = nbformat.read(nb, as_version=4)
    book.cells[0].source = book.cells[0].source.replace(f"/blob/{links.RELEASE_REF}/", "/blob/main/")
    book.cells[1].source = book.cells[1].source.replace(links.RELEASE_REF, "v0.0.9")
    nbformat.write(book, nb)
    assert header_problems(nb) == ["the badge line of the first cell", "the install cell (the second cell)"]
    assert sync(nb) is True and header_problems(nb) == [] and sync(nb) is False
    title = nbformat.read(nb, as_version=4).cells[0].source
    assert title.startswith("# 01 · ") and "**What you'll learn**" in title


MOVED_INTERNALS = {
    r"\.text_model\b": "CLIPTextModel.text_model was removed in transformers 5.6 (the model is flat now): "
                       "call text_encoder(ids) and read its outputs",
    r"\b_encode_prompt\b": "StableDiffusionPipeline._encode_prompt is private and deprecated: use encode_prompt",
    r"\btorch_dtype\s*=": "torch_dtype= is deprecated in diffusers and transformers: use dtype=",
    r"\buse_auth_token\b": "use_auth_token was removed from huggingface_hub: use token=",
}


def test_course_never_relies_on_moved_internals(repo):
    sources = [p for d in ("course_utils", "recipes", "tools", "benchmarks") for p in (repo / d).rglob("*.py")]
    sources += sorted((repo / "notebooks").glob("*.ipynb"))
    found = []
    for path in sources:
        if path.name == "test_links.py":
            continue
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        else:
            text = path.read_text()
        for pattern, why in MOVED_INTERNALS.items():
            for m in re.finditer(pattern, text):
                line = text[: m.start()].count("\n") + 1
                found.append(f"{path.relative_to(repo)}:{line}: {why}")
    assert not found, "\n".join(found)
