# The two commands of the README:
#   make demo   the main job: the full ten-method sweep, three seeds, on the demo corpus with tiny offline backbones
#   make test   install everything into .venv (first time only) and run every test
# and for exploring:
#   make lab    JupyterLab on the notebooks with the project's kernel (127.0.0.1 only; works as root)
#   make readme README.md from nbs/index.ipynb
# .ci/run calls `make test` on a clean clone. HF_HUB_OFFLINE=1: nothing is ever downloaded.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RESULTS ?= results
SWEEP_ARGS ?= --jobs 2
LAB_PORT ?= 8888
# JupyterLab started from .venv reads .venv/etc/jupyter: every save goes through nbdev_clean (settings.ini: jupyter_hooks)
LAB_HOOK := $(VENV)/etc/jupyter/jupyter_server_config.json

.PHONY: install test test-quick demo lab notebooks readme clean

$(BIN)/.installed: setup.py settings.ini constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	mkdir -p $(dir $(LAB_HOOK))
	echo '{"ContentsManager": {"pre_save_hook": "nbdev.clean.clean_jupyter"}}' > $(LAB_HOOK)
	touch $@

install: $(BIN)/.installed

# two workers, each given whole test files, the longest first (tests/conftest.py); one torch thread per process
TEST_WORKERS ?= 2
test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

# the inner loop: every test not marked slow (no training, notebooks, sweeps or subprocesses of the program)
test-quick: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m 'not slow' --durations=5 tests

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/rsacfn sweep $(RESULTS)/demo_sweep --preset demo --seeds 42,43,44 $(SWEEP_ARGS)

lab: install
	cd nbs && HF_HUB_OFFLINE=1 $(abspath $(BIN))/jupyter lab --ip 127.0.0.1 --port $(LAB_PORT) --allow-root

# run every notebook and keep its outputs (what GitHub shows), then clean metadata the nbdev way
notebooks: install
	HF_HUB_OFFLINE=1 TQDM_DISABLE=1 $(BIN)/python tests/run_notebooks.py nbs
	$(BIN)/nbdev_clean

# README.md from nbs/index.ipynb: nbdev_readme where Quarto is installed, else the same conversion without it
readme: install
	if command -v quarto >/dev/null; then $(BIN)/nbdev_readme; else $(BIN)/python .ci/readme.py; fi

clean:
	rm -rf $(VENV) $(RESULTS) build *.egg-info
