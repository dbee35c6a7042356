# The README's two commands: `make run` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: run test dev lint format bench clean

$(STAMP): setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## run: land sample data if needed, materialise every asset on the embedded engine, print gold
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m lakehouse_dagster.cli run

## test: run the test suite
test: $(STAMP)
	$(BIN)/pytest

## dev: open the Dagster UI on http://127.0.0.1:3000 with the runs of `make run`
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: print wall time and peak memory per asset (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/customers_slice.py

clean:
	rm -rf .lakehouse .dagster_home benchmarks/.work
