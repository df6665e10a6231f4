# Customer churn pipeline. `make help` lists the targets.
# The project folder is the Airflow home (as in Astronomer projects): dags/, plugins/, airflow.cfg.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AIRFLOW := $(BIN)/airflow
UV_VERSION := 0.13.9
export AIRFLOW_HOME ?= $(CURDIR)
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
AIRFLOW_DB := $(AIRFLOW_HOME)/airflow.db
# The embedded source for trying extract_customers: the bundled sample customers in a SQLite file.
SAMPLE_DB ?= $(or $(CHURN_LOCAL_ROOT),$(CURDIR)/local-store)/customers.sqlite
DEMO_LOG ?= logs/demo.log

.DEFAULT_GOAL := help
# The PostgreSQL server the database tests start their own clusters with (what the Debian 12
# package `postgresql` installs); any installed major version is used, this one is installed if none is.
POSTGRES_PACKAGE ?= postgresql-15

.PHONY: help setup demo demo-sqlite sample-db test test-deps test-fast lint bench lock standalone mwaa-bundle clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

setup: $(VENV)/.installed  ## Create .venv with the locked dependencies and the project (editable)

$(AIRFLOW_DB): $(VENV)/.installed
	$(AIRFLOW) db migrate > /dev/null
	@# the generated airflow.cfg loads Airflow's examples by default; this project's home should not
	@sed -i.bak 's/^load_examples = True/load_examples = False/' $(AIRFLOW_HOME)/airflow.cfg && \
		rm -f $(AIRFLOW_HOME)/airflow.cfg.bak

demo: $(AIRFLOW_DB)  ## Run the whole pipeline locally (no AWS) on the bundled sample and print what it did
	@mkdir -p $(dir $(DEMO_LOG))
	@echo "running customer_churn_pipeline with airflow dags test (log: $(DEMO_LOG)) ..."
	@$(AIRFLOW) dags test customer_churn_pipeline > $(DEMO_LOG) 2>&1 || \
		{ echo "the run failed; the end of $(DEMO_LOG):"; tail -n 40 $(DEMO_LOG); \
		  $(BIN)/python -m churn_pipeline.cli summary; exit 1; }
	@$(BIN)/python -m churn_pipeline.cli summary

$(SAMPLE_DB): $(VENV)/.installed include/churn_pipeline/sample_data.py
	$(BIN)/python -m churn_pipeline.sample_data --output $@

sample-db: $(SAMPLE_DB)  ## Write the bundled sample customers into a SQLite database (local-store/customers.sqlite)

# The connection is an AIRFLOW_CONN_* variable: Airflow reads connections from the environment.
demo-sqlite: export AIRFLOW_CONN_CHURN_SAMPLE_DB = {"conn_type": "sqlite", "host": "$(SAMPLE_DB)"}
demo-sqlite: export CHURN_SOURCE_CONN_ID = churn_sample_db
demo-sqlite: export CHURN_SOURCE_QUERY = SELECT * FROM customers
demo-sqlite: $(SAMPLE_DB) demo  ## Like demo, but extract_customers first reads the sample from a SQLite database

test: $(VENV)/.installed test-deps  ## Run the whole test suite (unit, scripts, DAG, end-to-end through Airflow, moto)
	$(BIN)/python -m pytest

test-deps:  ## Install what the tests need besides Python: a PostgreSQL server (apt-get, as root; else says why not)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(POSTGRES_PACKAGE) for the database tests (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends $(POSTGRES_PACKAGE) >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(POSTGRES_PACKAGE) >/dev/null; }; \
	else \
		echo "no PostgreSQL server here and no way to install one (needs root and apt-get): the PostgreSQL tests skip"; \
	fi

test-fast: $(VENV)/.installed  ## Run the tests except the end-to-end Airflow runs
	$(BIN)/python -m pytest -m "not e2e"

lint: $(VENV)/.installed  ## Check the code: ruff (style, imports, bugbear, Airflow rules) and mypy (types)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.installed  ## Measure each step against its floor at 10k, 100k and 1M rows
	$(BIN)/python -m bench.run

mwaa-bundle: $(VENV)/.installed  ## Build build/mwaa/: DAGs folder with the helper package, plugins.zip, requirements.txt
	$(BIN)/python -m churn_pipeline.bundle build/mwaa

standalone: $(AIRFLOW_DB)  ## Start Airflow (UI on http://localhost:8080) with this project's DAG
	$(AIRFLOW) standalone

lock: $(VENV)/.installed  ## Re-resolve requirements-lock.txt from requirements.txt + requirements-dev.txt
	$(BIN)/uv pip compile requirements.txt requirements-dev.txt --python-version 3.11 --no-header \
		--no-annotate -q -o requirements-lock.txt
	@sed -i '1i # Full lock of requirements.txt + requirements-dev.txt for Python 3.11 (uv pip compile). Regenerate: make lock' requirements-lock.txt

clean:  ## Remove local state: the local store, Airflow's database and logs (keeps .venv)
	rm -rf local-store/* logs/* airflow.db airflow.cfg simple_auth_manager_passwords.json.generated
