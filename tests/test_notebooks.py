"""Every notebook, top to bottom, in a fresh kernel with papermill (tiny mode on the CPU by default).

Each notebook runs once. Cells marked ``# NBVAL_CHECK_OUTPUT`` (the tutorial's printed timesteps and token ids)
must print exactly what the committed notebook shows, in every mode: the same check nbval makes, without a
second execution of the notebook. (``pytest --nbval-lax notebooks/`` still works for a local check.)

Each notebook runs in both modes (issue 11):
- tiny mode, with its default workload;
- hub mode, offline, against replicas of the real checkpoints (``tools/hub_replica.py``: the real configs, seeded
  random weights, in ``.cache/hub-replica``; built here if ``make hub-replica`` has not), with ``fast=True`` on a
  CPU (fewer steps, smaller images, smaller batches; the same code and asserts), the full workload on a GPU.

COURSE_TEST_MODE=tiny or =hub runs one mode only; COURSE_TEST_DEVICE=cuda runs on a GPU. The workload
parameters are described in /work/notes/WORKLOAD.md and each notebook's parameters cell.
"""

import ast
import os

import nbformat
import pytest
from conftest import NOTEBOOK_TIMES, REPO
from run_notebooks import execute, notebooks

MODES = [os.environ["COURSE_TEST_MODE"]] if os.environ.get("COURSE_TEST_MODE") else ["tiny", "hub"]
DEVICE = os.environ.get("COURSE_TEST_DEVICE", "cpu")
MARK = "NBVAL_CHECK_OUTPUT"
#: the Hugging Face home that holds the replicas (git-ignored); `make hub-replica` builds it
REPLICA_HOME = REPO / ".cache" / "hub-replica"
#: every notebook's parameters cell defines these; `fast` too where the notebook runs a model (/work/notes/WORKLOAD.md)
COMMON_PARAMETERS = {"mode": "auto", "device": "auto", "seed": 0}


@pytest.fixture(scope="session")
def replicas():
    """The replicas of the hub checkpoints, built once (a no-op when their stamps match)."""
    from hub_replica import REPLICAS, build

    for repo_id in REPLICAS:
        build(repo_id, REPLICA_HOME / "hub", log=lambda *a: None)
    return REPLICA_HOME


def checked_outputs(path) -> list[tuple[str, str]]:
    """(source, printed text) of every cell marked NBVAL_CHECK_OUTPUT."""
    book = nbformat.read(path, as_version=4)
    found = []
    for cell in book.cells:
        if cell.cell_type == "code" and MARK in cell.source:
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            found.append((cell.source, text))
    return found


def parameters_of(path) -> dict:
    """The names and literal defaults of a notebook's parameters cell."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: one cell tagged 'parameters', not {len(cells)}"
    return {t.id: ast.literal_eval(node.value) for node in ast.parse(cells[0].source).body
            if isinstance(node, ast.Assign) for t in node.targets}


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_workload_parameters(nb):
    """One way across all notebooks: the same names, defaults that run the full lesson, None = the lesson's own."""
    params = parameters_of(nb)
    source = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells
                       if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    expected = dict(COMMON_PARAMETERS)
    if ".from_pretrained(" in source or "UNet2DModel(" in source:  # runs a model: it has a fast mode
        expected["fast"] = False
    if ".from_pretrained(" in source and "resolve_checkpoint(" in source:  # loads a checkpoint: half precision on CUDA
        expected["dtype"] = "auto"
    for name, default in expected.items():
        assert params.get(name, "missing") == default, f"{nb.name}: the parameters cell needs `{name} = {default!r}`"
    if "fast" in params:
        assert "fast" in source, f"{nb.name}: `fast` is a parameter but no cell uses it"
    for name in ("steps", "size", "batch"):
        if name in params:
            assert params[name] is None, f"{nb.name}: `{name}` defaults to None (the lesson's own value)"
            assert f"{name} or " in source, f"{nb.name}: `{name}` is a parameter but no cell uses it (`{name} or ...`)"


@pytest.mark.notebook
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(nb, mode, tmp_path, request, monkeypatch):
    parameters = {}
    if mode == "hub":
        monkeypatch.setenv("HF_HOME", str(request.getfixturevalue("replicas")))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        parameters["fast"] = DEVICE == "cpu"  # the full workloads need a GPU
    key = nb.stem if mode == "tiny" else f"{nb.stem} (hub{', fast' if parameters['fast'] else ''})"
    NOTEBOOK_TIMES[key] = execute(nb, tmp_path, mode=mode, device=DEVICE, parameters=parameters)
    committed, executed = checked_outputs(nb), checked_outputs(tmp_path / nb.name)
    assert len(committed) == len(executed), f"{nb.name}: the {MARK} cells changed between the two copies"
    for (source, want), (_, got) in zip(committed, executed, strict=True):
        assert want.strip(), f"{nb.name}: the committed {MARK} cell has no output:\n{source}"
        assert got == want, f"{nb.name}: this cell printed something else than the committed notebook shows:\n{source}\n" \
                            f"committed: {want!r}\nexecuted:  {got!r}"
