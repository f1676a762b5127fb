# The two commands of the README:
#   make demo   the main job: the full ten-method sweep, three seeds, on the demo corpus with tiny offline backbones
#   make test   install everything into .venv (first time only) and run every test
#   (make demo installs only what it runs on; make test and make install add the tools: pytest, nbdev, JupyterLab)
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

# setuptools' banner on every editable install ("Editable installation ... be careful with folders") says nothing here
QUIET_BUILD = PYTHONWARNINGS="ignore:Editable installation"
# pip compiles the libraries' bytecode on one core (40 of its 60 s); compileall -j 0 does it on all of them. Like pip,
# it leaves a file that is not Python 3.11 (torch ships one for 3.12) uncompiled
COMPILE = $(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true

# what `make demo` needs: rsacfn and the libraries it runs on
$(BIN)/.installed-run: setup.py settings.ini constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e .
	$(COMPILE)
	touch $@

# and what the tests, the notebooks and JupyterLab need
$(BIN)/.installed: $(BIN)/.installed-run
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e ".[dev]"
	$(COMPILE)
	mkdir -p $(dir $(LAB_HOOK))
	echo '{"ContentsManager": {"pre_save_hook": "nbdev.clean.clean_jupyter"}}' > $(LAB_HOOK)
	touch $@

install: $(BIN)/.installed

# two workers, each given whole test files, the longest first (tests/conftest.py); one torch thread per process
TEST_WORKERS ?= 2
# ruff first (lint only, ruff.toml): a mistake it finds costs a second, not the test run
test: install
	$(BIN)/ruff check --quiet rsacfn tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

# the inner loop: every test not marked slow (no training, notebooks, sweeps or subprocesses of the program)
test-quick: install
	$(BIN)/ruff check --quiet rsacfn tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m 'not slow' --durations=5 tests

demo: $(BIN)/.installed-run
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
