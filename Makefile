# Two commands on a fresh machine: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint bench clean

$(BIN)/evidence: pyproject.toml setup.py src/evidence/domain/_linetree.c src/evidence/domain/_jcsprep.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.bin/azurite-blob: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/evidence node_modules/.bin/azurite-blob

demo: $(BIN)/evidence
	$(BIN)/evidence demo --workdir var/demo

test: setup
	$(BIN)/python -m pytest -q

lint: $(BIN)/evidence
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(BIN)/evidence
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) node_modules var build dist
