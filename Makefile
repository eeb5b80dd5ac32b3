# Two commands matter (see README): `make rehearsal` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BASE   := $(VENV)/.installed-base
SCORECARD ?= scorecard.md

.PHONY: rehearsal test lint typecheck unit install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast]'
	touch $(BASE)

install: $(STAMP)

## The operations rehearsal on the built-in `local` environment; writes $(SCORECARD).
rehearsal: $(BASE)
	$(BIN)/pytest rehearsal_tests --nexus-env=local --scorecard $(SCORECARD)

## The project's own tests: lint, types, then the suite (two workers).
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
