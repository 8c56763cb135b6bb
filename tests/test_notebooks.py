"""Every notebook, top to bottom, in a fresh kernel with papermill (tiny mode on the CPU by default).

`make test-gpu` sets COURSE_TEST_DEVICE=cuda and COURSE_TEST_MODE=auto.
"""

import os

import pytest
from conftest import NOTEBOOK_TIMES
from run_notebooks import execute, notebooks

MODE = os.environ.get("COURSE_TEST_MODE", "tiny")
DEVICE = os.environ.get("COURSE_TEST_DEVICE", "cpu")


@pytest.mark.notebook
@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(nb, tmp_path):
    NOTEBOOK_TIMES[nb.stem] = execute(nb, tmp_path, mode=MODE, device=DEVICE)
