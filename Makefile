# The README's two commands: `make run` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov has its own environment: its dependencies clash with the project's pins.
CHECKOV := .venv-checkov/bin/checkov
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: run test dev lint format bench clean aws-local
AWS_LOCAL_PORT ?= 5000

$(STAMP): setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(CHECKOV): infra/checkov-constraints.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --upgrade pip
	.venv-checkov/bin/pip install --quiet -c infra/checkov-constraints.txt checkov==3.3.30
	touch $(CHECKOV)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## run: land sample data if needed, materialise every asset on the embedded engine, print gold
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m lakehouse_dagster.cli run

## test: run the test suite (with the offline Terraform checks: terraform fmt, HCL assertions, checkov)
test: $(STAMP) $(CHECKOV)
	$(BIN)/pytest

## dev: open the Dagster UI on http://127.0.0.1:3000 with the runs of `make run`
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## aws-local: moto on 127.0.0.1 with the landing bucket (EventBridge), rule, queue + DLQ and stream;
## writes .aws-local.env (load it with `set -a; . ./.aws-local.env; set +a`). `make run` never needs it.
aws-local: $(STAMP)
	$(BIN)/python -m lakehouse_dagster.aws.local serve --port $(AWS_LOCAL_PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: print wall time and peak memory per asset (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/customers_slice.py
	$(BIN)/python benchmarks/retail.py
	$(BIN)/python benchmarks/expectations.py
	$(BIN)/python benchmarks/ledger_lookup.py
	$(BIN)/python benchmarks/events_latency.py

clean:
	rm -rf .lakehouse .dagster_home benchmarks/.work
