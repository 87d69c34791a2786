# paystream: developer entry points. Configuration is environment variables read by
# settings.py only; the TEST profile below runs beside the default (dev) profile.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
PY         := $(VENV)/bin/python
PAYSTREAM  := $(VENV)/bin/paystream
STACK      := $(PY) -m stack
VENV_STAMP := $(VENV)/.installed

# The TEST profile: every test target runs with exactly these (ports and data dir
# differ from the dev defaults, so both stacks can be up at once).
TEST_ENV := \
	DB_PORT=15432 \
	REDIS_PORT=16379 \
	KAFKA_BROKERS=127.0.0.1:19092 \
	PAYSTREAM_KAFKA_CONTROLLER_PORT=19093 \
	PAYSTREAM_DATA_DIR=/var/tmp/paystream/test \
	SERVER_PORT=18080 \
	PAYSTREAM_SIMULATOR_PORT=18090 \
	UPI_CORE_ENDPOINT=http://127.0.0.1:18090 \
	METRICS_PORT=19090 \
	PAYSTREAM_WORKER_WEB_PORT=16066

# `make stack-up PROFILE=test` (or clean-stack, stack-status ...) targets the test stack.
PROFILE ?= dev
ifeq ($(PROFILE),test)
PROFILE_ENV := $(TEST_ENV)
else ifeq ($(PROFILE),dev)
PROFILE_ENV :=
else
$(error PROFILE must be dev or test, not '$(PROFILE)')
endif

WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: help venv stack-up stack-down stack-status db-migrate db-seed topics \
	run run-dev run-prod test test-unit test-integration test-coverage lint bench clean-stack

help:
	@echo "make venv | stack-up | stack-down | stack-status | clean-stack  [PROFILE=dev|test]"
	@echo "make db-migrate | db-seed | topics | run | run-dev | run-prod [WORKERS=n]"
	@echo "make test | test-unit | test-integration | test-coverage | lint | bench"

venv: $(VENV_STAMP)

# Re-installs only when pyproject.toml changes.
$(VENV_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

stack-up: venv
	env $(PROFILE_ENV) $(STACK) up

stack-down: venv
	env $(PROFILE_ENV) $(STACK) down

stack-status: venv
	env $(PROFILE_ENV) $(STACK) status

clean-stack: venv
	env $(PROFILE_ENV) $(STACK) clean

db-migrate: venv stack-up
	env $(PROFILE_ENV) $(PAYSTREAM) db-migrate

db-seed: venv stack-up
	env $(PROFILE_ENV) $(PAYSTREAM) db-seed

topics: venv stack-up
	env $(PROFILE_ENV) $(PAYSTREAM) topics

# Simulator, worker(s) and ingress in the foreground; Ctrl-C stops them.
run: venv stack-up db-migrate topics
	env $(PROFILE_ENV) $(PAYSTREAM) run

run-dev: venv stack-up db-migrate topics
	env $(PROFILE_ENV) PAYSTREAM_LOG_LEVEL=DEBUG $(PAYSTREAM) run

run-prod: venv stack-up db-migrate topics
	env $(PROFILE_ENV) WORKERS=$(WORKERS) $(PAYSTREAM) run

# The whole suite against the TEST stack; make fails when pytest fails.
test: venv
	env $(TEST_ENV) $(STACK) up
	env $(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	env $(TEST_ENV) $(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	env $(TEST_ENV) $(STACK) up
	env $(TEST_ENV) $(PY) -m pytest tests/integration tests/e2e $(PYTEST_ARGS)

test-coverage: venv
	env $(TEST_ENV) $(STACK) up
	status=0; env $(TEST_ENV) $(PY) -m coverage run --source=. --omit='$(VENV)/*,tests/*' \
		-m pytest $(PYTEST_ARGS) || status=$$?; \
	$(PY) -m coverage report --skip-empty; exit $$status

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy domain schemas

# Benchmarks run on the TEST stack and ports, so a running `make run` is left alone.
bench: venv
	env $(TEST_ENV) $(STACK) up
	env $(TEST_ENV) $(PY) -m bench $(BENCH_ARGS)
