# The two commands of the README:
#   make demo   the main job: the full ten-method sweep, three seeds, on the demo corpus with tiny offline backbones
#   make test   install everything into .venv (first time only) and run every test
# .ci/run calls `make test` on a clean clone. HF_HUB_OFFLINE=1: nothing is ever downloaded.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RESULTS ?= results
SWEEP_ARGS ?= --jobs 2

.PHONY: install test demo clean

$(BIN)/.installed: setup.py settings.ini constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(BIN)/.installed

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/rsacfn sweep $(RESULTS)/demo_sweep --preset demo --seeds 42,43,44 $(SWEEP_ARGS)

clean:
	rm -rf $(VENV) $(RESULTS) build *.egg-info
