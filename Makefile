# Throughline developer commands. `make help` lists them.
#
# Everything runs inside .venv, created on first use from the exact pins in requirements/constraints.txt.
# A stamp file named after a hash of constraints.txt and pyproject.toml makes re-runs instant and reinstalls
# as soon as either file changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt

HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

DEPS_HASH := $(shell cat $(CONSTRAINTS) pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
RUNTIME_STAMP := $(VENV)/.installed-runtime-$(DEPS_HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(DEPS_HASH)

.DEFAULT_GOAL := help
.PHONY: help venv venv-runtime run test lint check-deploy bench

help:
	@echo "make run           migrate, seed the demo data, start the web server and a django-q2 worker"
	@echo "                   (HOST=$(HOST) PORT=$(PORT); Ctrl-C stops both)"
	@echo "make test          the whole pytest suite (PYTEST_ARGS='...' to pass arguments; DATABASE_URL honoured)"
	@echo "make lint          ruff check, ruff format --check, lint-imports, makemigrations --check"
	@echo "make check-deploy  Django's deployment checks under the production settings"
	@echo "make bench         the benchmarks in bench/ (not part of make test)"
	@echo "make venv          create .venv with runtime and dev dependencies"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -qq --upgrade pip

# Runtime dependencies only (enough for `make run`). A dev install of the same hash covers it.
$(RUNTIME_STAMP): | $(VENV)/bin/python
	@if [ -f $(DEV_STAMP) ]; then touch $@; exit 0; fi; \
	set -e; \
	echo "Installing runtime dependencies into $(VENV) ..."; \
	$(PIP) install -qq -c $(CONSTRAINTS) .; \
	rm -rf throughline.egg-info; \
	rm -f $(VENV)/.installed-*; \
	touch $@

# Runtime and dev dependencies (tests, linters).
$(DEV_STAMP): | $(VENV)/bin/python
	@set -e; \
	echo "Installing runtime and dev dependencies into $(VENV) ..."; \
	$(PIP) install -qq -c $(CONSTRAINTS) '.[dev]'; \
	rm -rf throughline.egg-info; \
	rm -f $(VENV)/.installed-*; \
	touch $(RUNTIME_STAMP) $@

venv: $(DEV_STAMP)

venv-runtime: $(RUNTIME_STAMP)

# Static files: no collectstatic here. The local settings run with DEBUG on, where WhiteNoise serves
# straight from static/ (whitenoise.runserver_nostatic + finders) and {% static %} needs no manifest.
run: $(RUNTIME_STAMP)
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py schedule_invoice_runs
	$(PY) manage.py schedule_outbox_sweep
	@echo
	@echo "Throughline is starting at http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	@echo "Sign in with one of the demo logins above. Ctrl-C stops the web server and the worker."
	@echo
	@$(PY) manage.py qcluster & QCLUSTER_PID=$$!; \
	trap 'kill $$QCLUSTER_PID 2>/dev/null || true; wait $$QCLUSTER_PID 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# pytest's exit code 5 means "no tests collected": reported loudly, but not a failure.
test: $(DEV_STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests"; exit 0; fi; \
	exit $$rc

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

check-deploy: $(RUNTIME_STAMP)
	env -u DJANGO_ALLOW_ASYNC_UNSAFE DJANGO_SETTINGS_MODULE=config.settings.production \
	SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(48))')" \
	ALLOWED_HOSTS=example.com \
	$(PY) manage.py check --deploy --fail-level WARNING

# A benchmark is a script bench/<name>.py, run from the repository root with the project importable.
bench: $(DEV_STAMP)
	@set -e; found=0; \
	for script in bench/*.py; do \
		[ -e "$$script" ] || continue; \
		case "$$(basename $$script)" in _*) continue;; esac; \
		found=1; echo "== $$script"; \
		PYTHONPATH=$(CURDIR) $(PY) "$$script" $(BENCH_ARGS); \
	done; \
	if [ $$found -eq 0 ]; then echo "make bench: no benchmarks in bench/"; fi
