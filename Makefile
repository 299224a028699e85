# The two commands of the README: `make test` and `make book`. Both create .venv if missing.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
# The notebooks' kernel must be this environment's Python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install test book bench clean

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

## Execute the notebooks (cached) and build the HTML book into _build/html.
book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html -W --keep-going

bench: $(STAMP)
	$(BIN)/python -m g2s_lite.bench render
	$(BIN)/python -m g2s_lite.bench reconstruct

clean:
	rm -rf _build .pytest_cache
