"""Every notebook, top to bottom, in a fresh kernel with papermill (tiny mode on the CPU by default).

Each notebook runs once. Cells marked ``# NBVAL_CHECK_OUTPUT`` (the tutorial's printed timesteps and token ids)
must print exactly what the committed notebook shows, in every mode: the same check nbval makes, without a
second execution of the notebook. (``pytest --nbval-lax notebooks/`` still works for a local check.)

`make test-gpu` sets COURSE_TEST_DEVICE=cuda and COURSE_TEST_MODE=hub.
"""

import os

import nbformat
import pytest
from conftest import NOTEBOOK_TIMES
from run_notebooks import execute, notebooks

MODE = os.environ.get("COURSE_TEST_MODE", "tiny")
DEVICE = os.environ.get("COURSE_TEST_DEVICE", "cpu")
MARK = "NBVAL_CHECK_OUTPUT"


def checked_outputs(path) -> list[tuple[str, str]]:
    """(source, printed text) of every cell marked NBVAL_CHECK_OUTPUT."""
    book = nbformat.read(path, as_version=4)
    found = []
    for cell in book.cells:
        if cell.cell_type == "code" and MARK in cell.source:
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            found.append((cell.source, text))
    return found


@pytest.mark.notebook
@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(nb, tmp_path):
    NOTEBOOK_TIMES[nb.stem] = execute(nb, tmp_path, mode=MODE, device=DEVICE)
    committed, executed = checked_outputs(nb), checked_outputs(tmp_path / nb.name)
    assert len(committed) == len(executed), f"{nb.name}: the {MARK} cells changed between the two copies"
    for (source, want), (_, got) in zip(committed, executed, strict=True):
        assert want.strip(), f"{nb.name}: the committed {MARK} cell has no output:\n{source}"
        assert got == want, f"{nb.name}: this cell printed something else than the committed notebook shows:\n{source}\n" \
                            f"committed: {want!r}\nexecuted:  {got!r}"
