# The two commands of the README:
#   make demo   the main job: write the demo corpus, check it reads back, summarise it
#   make test   install everything into .venv (first time only) and run every test
# .ci/run calls `make test` on a clean clone. HF_HUB_OFFLINE=1: nothing is ever downloaded.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RESULTS ?= results

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
	HF_HUB_OFFLINE=1 $(BIN)/rsacfn demo-corpus $(RESULTS)/demo_corpus

clean:
	rm -rf $(VENV) $(RESULTS) build *.egg-info
