# The front door. `make run` runs the product; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
TEST_SETTINGS := config.settings.test

.PHONY: run test drills lint fmt migrate totp services screenshots bench-audit bench-payments bench-notify bench-webhooks bench-agent bench-sweep bench-load bench-login bench-offline bench-lender-api clean-run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	rm -f $(VENV)/.run-*; touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.dev-* $(VENV)/.run-*; touch $@ $(RUN_STAMP)

## run: the product with demo data on embedded PostgreSQL, http://127.0.0.1:8000/admin/ (DEMO_HOST, DEMO_PORT)
run: $(RUN_STAMP)
	$(BIN)/python tools/run_demo.py

## test: install and start PostgreSQL and Redis if needed, lint, then pytest
test: $(DEV_STAMP) services lint
	$(BIN)/pytest

## drills: the drills of tests/drills at full size, printing their figures (make test runs them small)
drills: $(DEV_STAMP) services
	DRILL_SCALE=full $(BIN)/pytest -m drill -q

## screenshots: run the browser tests and refresh docs/screenshots/
screenshots: $(DEV_STAMP) services
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -m browser

services:
	bash tools/ensure_services.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m tools.lint
	$(BIN)/python -m tools.check_translations

fmt: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## totp: the current login code for a demo user's printed TOTP secret
totp: $(RUN_STAMP)
	@$(BIN)/python tools/totp.py "$(SECRET)"

migrate: $(RUN_STAMP)
	$(BIN)/python manage.py migrate

## bench-audit: p50/p95 of audit_event_record under 8 concurrent writers on one lender
bench-audit: $(DEV_STAMP) services
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python -m tools.bench.audit $(if $(N),--events $(N),)

## bench-payments: payment callbacks (PROVIDER=generic, mpesa or stripe) against gunicorn (2 workers) on PostgreSQL
bench-payments: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.payments $(if $(N),--events $(N),) $(if $(PROVIDER),--provider $(PROVIDER),)

## bench-notify: due reminders sent by one notify worker (N=100000), then delivery reports against gunicorn
bench-notify: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.notify $(if $(N),--messages $(N),)

## bench-lender-api: lender API device-state reads and payments posted with an Idempotency-Key per app core against gunicorn (2 workers) on PostgreSQL then webhook deliveries per second from one worker (N reads, N/4 writes; WEBHOOKS=0 leaves those out)
bench-lender-api: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.lender_api $(if $(N),--reads $(N) --writes $$(( $(N) / 4 )),) $(if $(filter 0,$(WEBHOOKS)),--no-webhooks,)

## bench-webhooks: signed webhook deliveries per second from one webhooks worker to a loopback receiver (N=20000 events)
bench-webhooks: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.webhooks $(if $(N),--events $(N),)

## bench-agent: agent check-ins against gunicorn (2 workers) on PostgreSQL, then 100k FCM pushes
bench-agent: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.agent $(if $(N),--devices $(N),)

## bench-load: a mixed load (check-ins, webhooks, POS sales, customer pages) on gunicorn (2 workers) and a Celery worker, for D seconds (30) or N requests (20000), whichever first; p50/p95/p99 per endpoint, fails on any error
bench-load: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.load $(if $(D),--seconds $(D),) $(if $(N),--requests $(N),)

## bench-sweep: the restriction sweep of N active loans (20 lenders) against its one-statement SQL floor (W=2: also on 2 worker processes)
bench-sweep: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.sweep $(if $(N),--loans $(N),) $(if $(W),--workers $(W),)

## bench-offline: offline unlock codes issued per second for N (100000) payments against the library's own floor, then webhook to "unlocked" for a phone with no network
bench-offline: $(DEV_STAMP) services
	$(BIN)/python -m tools.bench.offline $(if $(N),--codes $(N),)

## bench-login: the customer login's answer time for a customer's number and a stranger's, medians of N (200) of each, asking a code and typing a wrong one
bench-login: $(DEV_STAMP) services
	LOGIN_TIMING_REQUESTS=$(or $(N),200) $(BIN)/pytest -m bench -s -q tests/selfservice/test_views_login_timing.py

clean-run:
	rm -rf .run
