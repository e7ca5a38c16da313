# Set-up and everyday commands. Each target creates .venv itself when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
LINT_PATHS := hub adapters consent fhir_profiles loadtests tests
# Stamps live in the venv, so removing .venv also forgets what was installed into it.
RUN_STAMP := $(VENV)/.installed-embedded
DEV_STAMP := $(VENV)/.installed-embedded-dev

.PHONY: run test lint bench clean

run: $(RUN_STAMP)
	$(BIN)/ehrhub demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy hub adapters

bench: $(RUN_STAMP)
	$(BIN)/python loadtests/bench_ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[embedded]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[embedded,dev]'
	touch $@
