# Two commands do all the set-up: `make demo` (install, index content/, answer a sample question)
# and `make test` (install, then run the whole test suite; `make test-fast` runs the fast tier).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/moment model prepare
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/moment demo

# The whole suite in 3 processes (most of its time is waiting); a test file stays in one process.
test: setup
	@if [ -x scripts/install-lrs ]; then scripts/install-lrs; fi
	@if [ -x scripts/install-browser ]; then scripts/install-browser; fi
	$(BIN)/python -m pytest -n 3 --dist loadfile

# The inner loop: every test not marked slow (each database test on SQLite only), a few minutes.
test-fast: setup
	@if [ -x scripts/install-lrs ]; then scripts/install-lrs; fi
	@if [ -x scripts/install-browser ]; then scripts/install-browser; fi
	$(BIN)/python -m pytest -m "not slow" -n 3

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-lrs .moment
