# The README's two commands: `make run` and `make test`. Each creates .venv if needed.
# `make run` also starts the project-local warehouse (PostgreSQL in .warehouse/); `make dashboard`
# shows it in a browser; `make warehouse-stop` stops it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov has its own environment: its dependencies clash with the project's pins.
CHECKOV := .venv-checkov/bin/checkov
# The MLflow UI has its own environment too: mlflow 3.17 (the UI's package) caps pyarrow below the project's pin.
MLFLOW_UI := .venv-mlflow/bin/mlflow
MLFLOW_DIR := .mlflow
MLFLOW_PORT ?= 5001
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# make splits paths at spaces: refuse such a folder at once, rather than fail halfway.
ifneq ($(words $(CURDIR)),1)
$(error The project's folder "$(CURDIR)" holds a space, which make cannot handle: clone or move it to a folder without spaces)
endif

WAREHOUSE_DIR := .warehouse
DEV_WARNINGS := ignore:Function `dev_command` is superseded
DASHBOARD_PORT ?= 8501
AWS_LOCAL_PORT ?= 5000
DAGSTER_PORT ?= 3000
# Test processes (pytest-xdist), each with its own engine, PostgreSQL and moto; a test file stays on one.
TEST_WORKERS ?= 2

.PHONY: run check-settings test dev mlflow-ui lint format bench wheel clean warehouse warehouse-stop dashboard system-packages aws-local

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

$(MLFLOW_UI): scripts/mlflow-ui-constraints.txt
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet --upgrade pip
	.venv-mlflow/bin/pip install --quiet -c scripts/mlflow-ui-constraints.txt mlflow==3.17.2
	touch $(MLFLOW_UI)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## run: land sample data if needed, materialise every asset on the embedded engine, load the
## warehouse, print gold and where the dashboard is
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml check-settings warehouse
	$(BIN)/python -m lakehouse_dagster.cli run

## check-settings: the deployment's settings (environment variables), before anything starts
check-settings: $(STAMP)
	$(BIN)/python -m lakehouse_dagster.cli check

## warehouse: start the project-local PostgreSQL (data in .warehouse/, 127.0.0.1 only)
warehouse: $(STAMP)
	$(BIN)/python -m lakehouse_dagster.serving.local_server start --dir $(WAREHOUSE_DIR)

## warehouse-stop: stop it (the data stays in .warehouse/ for the next start)
warehouse-stop: $(STAMP)
	$(BIN)/python -m lakehouse_dagster.serving.local_server stop --dir $(WAREHOUSE_DIR)

## dashboard: the BI dashboard over the warehouse on http://127.0.0.1:8501
dashboard: $(STAMP) warehouse
	$(BIN)/streamlit run lakehouse_dagster/dashboard/app.py --server.address 127.0.0.1 \
		--server.port $(DASHBOARD_PORT) --server.headless true --browser.gatherUsageStats false \
		--client.toolbarMode viewer

## system-packages: the Debian packages besides Python (PostgreSQL server, Chromium for a test)
system-packages:
	bash scripts/system_packages.sh

## test: run the test suite (with the offline Terraform checks: terraform fmt, HCL assertions, checkov)
test: $(STAMP) $(CHECKOV)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## dev: open the Dagster UI on http://127.0.0.1:3000 with the runs of `make run`
# (Dagster 1.13 suggests `dg dev`, from a package this project does not install: that notice is silenced.)
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	PYTHONWARNINGS='$(DEV_WARNINGS)' $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

## mlflow-ui: the MLflow UI on http://127.0.0.1:5001 over the project-local store of `make run`
## (.mlflow/: the churn model's runs, metrics, registered versions and the champion alias)
mlflow-ui: $(MLFLOW_UI)
	mkdir -p $(MLFLOW_DIR)/artifacts
	$(MLFLOW_UI) ui --backend-store-uri sqlite:///$(CURDIR)/$(MLFLOW_DIR)/mlflow.db \
		--default-artifact-root $(CURDIR)/$(MLFLOW_DIR)/artifacts --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

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
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/customers_slice.py
	$(BIN)/python benchmarks/retail.py
	$(BIN)/python benchmarks/expectations.py
	$(BIN)/python benchmarks/ledger_lookup.py
	$(BIN)/python benchmarks/pipes_overhead.py
	$(BIN)/python benchmarks/warehouse_load.py
	$(BIN)/python benchmarks/cdc_incremental.py
	$(BIN)/python benchmarks/events_latency.py
	$(BIN)/python benchmarks/maintenance.py
	$(BIN)/python benchmarks/fixed_overhead.py

## wheel: build dist/lakehouse_dagster-<version>-py3-none-any.whl, what Databricks clusters install
## (its core dependencies only; see docs/deploying-to-databricks.md)
wheel: $(STAMP)
	rm -rf build dist/lakehouse_dagster-*.whl
	$(BIN)/pip wheel --quiet --no-deps -w dist .
	@ls dist/lakehouse_dagster-*.whl

clean:
	if [ -x $(BIN)/python ]; then $(BIN)/python -m lakehouse_dagster.serving.local_server stop --dir $(WAREHOUSE_DIR); fi
	rm -rf .lakehouse .dagster_home .warehouse .mlflow benchmarks/.work build dist
