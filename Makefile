# The two commands of the README: `make test` and `make book`. Both create .venv if missing.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
# The notebooks' kernel must be this environment's Python.
export PATH := $(abspath $(BIN)):$(PATH)
# Nobody watches these runs: the chapters show static figures, not live sliders.
export G2S_HEADLESS := 1

.PHONY: install test book book-full bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,book]"
	touch $(STAMP)

install: $(STAMP)

## Unit tests, then every chapter executed top to bottom in quick mode (nbval).
test: $(STAMP)
	G2S_QUICK=1 $(BIN)/python -m pytest --doctest-modules tests g2s_lite
	G2S_QUICK=1 $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:doctest book

## Execute the notebooks in quick mode (every schedule ÷ 10: about ten minutes on a 2-core
## laptop; cached) and build the HTML book into _build/html.
book: $(STAMP)
	G2S_QUICK=1 $(BIN)/jupyter-book build . --builder html -W --keep-going

## The same with the paper-like schedules: meant for a GPU (hours on a CPU). The execution
## cache does not know the mode, so it is cleared first (and a later `make book` re-runs).
book-full: $(STAMP)
	rm -rf _build/.jupyter_cache
	G2S_QUICK=0 $(BIN)/jupyter-book build . --builder html -W --keep-going
	rm -rf _build/.jupyter_cache

bench: $(STAMP)
	$(BIN)/python -m g2s_lite.bench render
	$(BIN)/python -m g2s_lite.bench reconstruct

clean:
	rm -rf _build .pytest_cache
