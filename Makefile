# Developer entry points. Every target that runs a tool bootstraps first (scripts/bootstrap.sh:
# RabbitMQ, .venv, the project), so a fresh clone on Debian needs only `make test`.
# Extra arguments: make test PYTEST_ARGS='-k flow -x'   make demo DEMO_ARGS='--dossiers 50'

.DEFAULT_GOAL := help
SHELL := /bin/bash

BIN := .venv/bin
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: help setup demo test test-fast check fmt bench bench-quick clean outage-screenshots

help: ## list the targets
	@echo "make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## install what is missing: RabbitMQ, .venv, the project (idempotent)
	@bash scripts/bootstrap.sh

demo: setup ## run the whole flow locally (private RabbitMQ node, simulators, traffic)
	$(BIN)/hub demo $(DEMO_ARGS)

# The PostgreSQL rerun: every integration, end-to-end and browser suite runs a second time with
# HUB_TEST_STORE=postgresql (each test's hub on a database of its own on a private server, see
# docs/testing.md), so a new suite runs on both back-ends by default. It takes about as long as
# the first run (17-23 min on two cores), browser suites and bad-input corpus included. Left out:
# ... its subject is SQLite itself:
PG_SKIP := tests/integration/test_store_group_commit.py# the SQLite writer's group commit
PG_SKIP += tests/integration/test_file_modes.py# the modes of the SQLite file and its -wal/-shm
# ... it picks its back-ends itself, PostgreSQL included, in the first run already:
PG_SKIP += tests/integration/test_duties.py# each case on SQLite and on PostgreSQL
PG_SKIP += tests/integration/test_competing_duties.py# replicas sharing one PostgreSQL store
PG_SKIP += tests/integration/test_replica_delivery.py# replicas sharing one PostgreSQL store
PG_SKIP += tests/integration/test_store_restart.py# a PostgreSQL server of its own, restarted
PG_SKIP += tests/integration/test_store_postgresql.py# the PostgreSQL back-end's own promises
PG_SKIP += tests/integration/test_dashboard_replicas.py# replicas on PostgreSQL; one hub on SQLite
PG_SKIP += tests/integration/test_replica_sessions.py# replicas sharing one PostgreSQL store
PG_SKIP += tests/integration/test_alerts_hand_over.py# replicas sharing one PostgreSQL store
PG_SKIP += tests/e2e/test_replica_kill.py# three replicas sharing one PostgreSQL store
# ... its hubs make their own store, not the test's (a SQLite file in their folder):
PG_SKIP += tests/e2e/test_demo.py# `hub demo`, as a newcomer runs it
PG_SKIP += tests/e2e/test_bench_quick.py# `python -m bench --quick`: the bench makes its hubs
PG_SKIP += tests/e2e/test_bench_scale.py# the bench's scale phase: SQLite and a PostgreSQL of its own
PG_SKIP += tests/e2e/test_bench_recovery.py# the bench's recovery phase: the bench makes its hubs
# (the store contract suite, tests/contract, runs on both back-ends in the first run)
PG_RERUN := tests/integration tests/e2e tests/browser $(addprefix --ignore=,$(PG_SKIP))

test: check ## the checks, then the whole test suite, slow end-to-end tests included (CI runs this)
	$(PYTEST) $(PYTEST_ARGS)
	HUB_TEST_STORE=postgresql $(PYTEST) $(PG_RERUN) $(PYTEST_ARGS)

test-fast: setup ## the quick loop: no broker, no PostgreSQL, no browser, no slow tests
	$(PYTEST) -m "not slow and not broker and not browser and not postgres" $(PYTEST_ARGS)

outage-screenshots: setup ## the operators' outage guide's screenshots, taken again (docs/how-to)
	HUB_SCREENSHOTS_DIR=docs/how-to/img/outage $(PYTEST) tests/browser/test_outage_walkthrough.py

check: setup ## formatting, lint and strict typing
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy --strict hub connectors schemas sims tests bench
	$(BIN)/lint-imports

fmt: setup ## format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup ## the benchmarks: every figure against its target; exits non-zero on a miss
	$(BIN)/python -m bench

bench-quick: setup ## a smoke run of the benchmarks (a few minutes): timing reported, not judged
	$(BIN)/python -m bench --quick

clean: ## remove var/ (demo data) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist test-artifacts
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
