"""What every committed notebook must be: valid, cleanly executed, portable and in the course's shape."""

import json
import re

import nbformat
import pytest
from run_notebooks import bar_text, notebooks

from course_utils.links import colab_url, install_cell, studiolab_url

NBS = notebooks()
ABSOLUTE_PATH = re.compile(r"(/home/|/work/|/root/|/Users/|/tmp/|[A-Z]:\\\\)")


def load(nb):
    return nbformat.read(nb, as_version=4)


def code_cells(book):
    return [c for c in book.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert len(NBS) >= 4


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.stem)
class TestHygiene:
    def test_valid_nbformat(self, nb):
        nbformat.validate(load(nb))

    def test_no_error_outputs(self, nb):
        for c in code_cells(load(nb)):
            assert not [o for o in c.outputs if o.output_type == "error"], c.source[:80]
            for o in c.outputs:
                assert not (o.output_type == "stream" and o.name == "stderr" and "Traceback" in o.text)

    def test_executed_top_to_bottom_in_one_run(self, nb):
        counts = [c.execution_count for c in code_cells(load(nb))]
        assert None not in counts, "some cells were not executed: refresh with tools/run_notebooks.py --refresh"
        assert counts == list(range(1, len(counts) + 1)), f"stale or out-of-order execution: {counts}"

    def test_no_absolute_paths_in_outputs(self, nb):
        text = json.dumps([c.get("outputs", []) for c in load(nb).cells])
        assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text).group(0)

    def test_widget_metadata_renders_on_github(self, nb):
        widgets = load(nb).metadata.get("widgets", {})
        state = widgets.get("application/vnd.jupyter.widget-state+json")
        assert state is None or "state" in state

    def test_progress_bars_read_finished_without_widgets(self, nb):
        """GitHub shows a widget output's text/plain: it must be the bar's finished state, not tqdm's first "0%"."""
        book = load(nb)
        for c in code_cells(book):
            for o in c.outputs:
                view = o.get("data", {}).get("application/vnd.jupyter.widget-view+json")
                text = bar_text(book, view["model_id"]) if view else None
                if text is not None:
                    assert o.data["text/plain"] == text, "refresh with tools/run_notebooks.py --refresh " + nb.stem[:2]

    def test_has_parameters_cell(self, nb):
        cells = [c for c in load(nb).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1
        src = cells[0].source
        for line in ('mode = "auto"', 'device = "auto"', "seed = 0"):
            assert line in src

    def test_parameters_blurb_names_only_parameters_it_has(self, nb):
        book = load(nb)
        params = next(c.source for c in book.cells if "parameters" in c.metadata.get("tags", []))
        names = set(re.findall(r"^(\w+) =", params, re.M))
        blurb = next((c.source for c in book.cells if c.source.startswith("**Parameters.**")), "")
        for sentence in re.findall(r"((?:`\w+`(?:, | and ))*`\w+`) sets? one of those numbers", blurb):
            named = set(re.findall(r"`(\w+)`", sentence))
            assert named <= names, f"the Parameters text names {sorted(named - names)}, which the parameters cell lacks"

    def test_badges_point_to_this_notebook(self, nb):
        first = load(nb).cells[0].source
        path = f"notebooks/{nb.name}"
        assert colab_url(path) in first and studiolab_url(path) in first
        links = re.findall(r"\]\((https://[^)]+)\)", first)
        assert [u for u in links if "/github/" in u] == [colab_url(path), studiolab_url(path)]

    def test_skeleton(self, nb):
        book = load(nb)
        first = book.cells[0].source
        assert first.startswith(f"# {nb.stem[:2]} · ")
        assert "**What you'll learn**" in first and "**What you need**" in first
        md = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
        assert "## Summary" in md and "## Exercises" in md and "<summary>Solution</summary>" in md

    def test_install_cell_only_on_hosted_platforms_and_pinned(self, nb):
        install = code_cells(load(nb))[0].source
        assert 'if "google.colab" in sys.modules or os.path.isdir("/home/studio-lab-user"):' in install
        assert install == install_cell().rstrip("\n"), "run tools/sync_notebook_headers.py"
        for c in code_cells(load(nb))[1:]:
            assert "pip install" not in c.source and "apt-get" not in c.source

    def test_no_pitfalls_in_code(self, nb):
        for c in code_cells(load(nb)):
            src = c.source
            assert ".cuda()" not in src
            assert "torch_dtype" not in src, "torch_dtype is deprecated: use dtype="
            assert "import *" not in src
            assert "notebook_login" not in src and "use_auth_token" not in src
            # the tutorial's hard-coded factor, used to scale latents (naming it for comparison is fine)
            assert not re.search(r"(/\s*0\.18215|0\.18215\s*\*)", src), "read vae.config.scaling_factor instead"

    def test_names_a_real_hub_id_through_resolve_checkpoint(self, nb):
        src = "\n".join(c.source for c in code_cells(load(nb)))
        if nb.stem.startswith("00"):
            return
        assert re.search(r'resolve_checkpoint\("(google/ddpm-cat-256|CompVis/stable-diffusion-v1-4)"', src)


def test_a_figure_quoted_from_this_copy_is_this_copys():
    """09's text quotes the batching ratio of the run that executed the committed copy: a re-execution that changes the
    figure must change the sentence too (python tools/run_notebooks.py --refresh, then edit the markdown)."""
    book = load(next(nb for nb in NBS if nb.stem.startswith("09")))
    md = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    out = "".join(o.get("text", "") for c in code_cells(book) for o in c.outputs if o.output_type == "stream")
    quoted = re.search(r"executed this copy[^)]*\) two passes of 10 steps took ([0-9.]+)× as long", md)
    measured = re.search(r"two passes / one batched pass = ([0-9.]+)", out)
    assert quoted and measured, "09's batching sentence or its output is gone: update this test with them"
    assert quoted.group(1) == measured.group(1), (quoted.group(1), measured.group(1))


def test_finished_bar_text_comes_from_the_saved_state():
    book = load(next(nb for nb in NBS if nb.name.startswith("04")))
    state = book.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    boxes = [k for k, v in state.items() if v["model_name"] == "HBoxModel"]
    assert boxes and all(bar_text(book, k).count("|") == 2 for k in boxes)
    assert "100%" in bar_text(book, boxes[0]) and "0%|" not in bar_text(book, boxes[0]).replace("100%|", "")
    assert bar_text(book, "no-such-model") is None
