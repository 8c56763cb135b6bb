# The course's commands. A fresh clone needs only:  make run   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on these machines `torch==2.13.0` is a CPU wheel on disk. Elsewhere pick your
# build, e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip -q --disable-pip-version-check

.PHONY: help install run test test-fast test-notebooks test-oldest test-latest test-gpu hub-replica lab lint fonts constraints doctor cache-hub book bench \
        train-ddpm train-sd-vae train-sd-unet train-sd-decoder evaluate-zoo manifest clean

help:
	@echo "make run     install into .venv, execute every notebook in tiny mode, print the timings"
	@echo "make test    install into .venv (or reuse it) and run the whole test suite"
	@echo "make lab     open JupyterLab on notebooks/"
	@echo "make doctor  check this machine (python -m course_utils doctor)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $@

install: $(VENV)/.installed

# The emoji font is needed to build the training data (tests of the dataset and the recipes).
fonts:
	@fc-list 2>/dev/null | grep -q NotoColorEmoji || test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      (apt-get update -qq && apt-get install -y -qq fonts-noto-color-emoji >/dev/null); \
	    else echo "Install the emoji font: sudo apt-get install fonts-noto-color-emoji"; exit 1; fi; }

# make run: two notebooks at a time, each kernel with half the cores (the speed-measuring 09 runs alone at the end);
# JOBS=1 runs them one by one, as a learner in Jupyter does.
JOBS ?= 2
run: install
	$(BIN)/python tools/run_notebooks.py --mode tiny --device cpu --jobs $(JOBS) --out _output

# Every notebook runs in tiny mode and in hub mode (fast workload, offline) on replicas of the real checkpoints.
test: install fonts hub-replica
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not notebook"

test-notebooks: install
	$(BIN)/python -m pytest -m notebook

# The dependency ranges of pyproject.toml, tested at both ends, each in its own venv (README, "Tested versions").
# torch stays TORCH_SPEC in both: here the CPU wheel on disk (a bare newer torch is a multi-GB CUDA build).
# RANGE_TESTS picks the tests (default: the whole suite but the Colab imitation, which builds its own runtime).
RANGE_TESTS ?= -m "not colab"

# Every runtime dependency at the lower bound of its range (tools/dep_ranges.py lower); dev tools float.
test-oldest: fonts
	test -x .venv-oldest/bin/python || $(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip -q install --upgrade pip
	.venv-oldest/bin/python -m pip -q install $(TORCH_SPEC)
	$(PYTHON) tools/dep_ranges.py lower > .venv-oldest/lower-bounds.txt
	.venv-oldest/bin/python -m pip -q install -c .venv-oldest/lower-bounds.txt -e ".[dev]"
	.venv-oldest/bin/python tools/dep_ranges.py report
	.venv-oldest/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	.venv-oldest/bin/python -m pytest $(RANGE_TESTS)

# The newest release of every dependency, even past a range's upper bound (the course itself is installed with
# --no-deps): the report then names each range to widen once the tests pass (RELEASING.md).
test-latest: fonts
	test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip -q install --upgrade pip
	.venv-latest/bin/python -m pip -q install $(TORCH_SPEC)
	.venv-latest/bin/python -m pip -q install --upgrade --upgrade-strategy eager $$($(PYTHON) tools/dep_ranges.py names)
	.venv-latest/bin/python -m pip -q install --no-deps -e .
	.venv-latest/bin/python tools/dep_ranges.py report
	.venv-latest/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	.venv-latest/bin/python -m pytest $(RANGE_TESTS)

# Every notebook on a GPU in hub mode, full size (the real checkpoints when the hub answers, else the replicas):
# wall time and peak GPU memory per notebook -> benchmarks/gpu-notebooks.json -> the README's GPU column.
test-gpu: install hub-replica
	$(BIN)/python tools/gpu_notebooks.py --device cuda

# Replicas of the hub checkpoints (real configs, CLIP's tokenizer, seeded random weights; 4.4 GiB) in their own
# Hugging Face cache, never your real one: HF_HOME=$(HUB_REPLICA_HOME) HF_HUB_OFFLINE=1 runs hub mode on them.
HUB_REPLICA_HOME ?= $(CURDIR)/.cache/hub-replica
hub-replica: install
	HF_HOME=$(HUB_REPLICA_HOME) $(BIN)/python tools/hub_replica.py

lab: install
	$(BIN)/jupyter lab notebooks/

doctor: install
	$(BIN)/python -m course_utils doctor

# Pre-download the real checkpoints for hub mode (a GPU room); offline it says it cannot.
cache-hub: install
	$(BIN)/python -m course_utils cache-hub

# Speed, measured side by side: tiny zoo on a CPU, the real SD v1 architecture on a GPU.
bench: install
	$(BIN)/python benchmarks/bench.py

# The Jupyter Book, offline, from the committed notebooks; warnings are errors.
book: install
	$(BIN)/python tools/build_book.py

lint: install
	$(BIN)/ruff check course_utils recipes tools tests benchmarks

constraints: install
	( echo "# The exact versions \`make test\` ran with (Python 3.11, Linux). Regenerate with \`make constraints\`."; \
	  echo "# torch is pinned in the Makefile (TORCH_SPEC), so that each machine picks its own build."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -iE '^(torch|diffusers-course)==' ) > constraints.txt

# The zoo's recipes (CPU by default; each uses a GPU when one is present).
train-ddpm: install fonts
	$(BIN)/python recipes/train_tiny_ddpm.py
train-sd-vae: install fonts
	$(BIN)/python recipes/train_tiny_sd.py --stage vae
train-sd-unet: install fonts
	$(BIN)/python recipes/train_tiny_sd.py --stage unet
train-sd-decoder: install fonts
	$(BIN)/python recipes/train_tiny_sd.py --stage decoder
evaluate-zoo: install fonts
	$(BIN)/python recipes/evaluate_zoo.py
manifest: install
	$(BIN)/python recipes/make_manifest.py

clean:
	rm -rf _output .pytest_cache
