import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
sys.path.insert(0, str(REPO / "tools"))

NOTEBOOK_TIMES: dict[str, float] = {}
# Kernels started by the tests (papermill, nbval) have no live frontend: explorers show static grids.
os.environ.setdefault("COURSE_STATIC", "1")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ddpm_path() -> str:
    from course_utils import resolve_checkpoint

    return resolve_checkpoint("google/ddpm-cat-256", "tiny", verbose=False)


@pytest.fixture(scope="session")
def sd_path() -> str:
    from course_utils import resolve_checkpoint

    return resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)


def pytest_terminal_summary(terminalreporter):
    if not NOTEBOOK_TIMES:
        return
    from run_notebooks import machine, table

    mode = os.environ.get("COURSE_TEST_MODE", "tiny")
    device = os.environ.get("COURSE_TEST_DEVICE", "cpu")
    terminalreporter.write_sep("=", f"notebook wall times (papermill, mode={mode}, device={device}, {machine()})")
    terminalreporter.write_line(table(dict(sorted(NOTEBOOK_TIMES.items()))))
