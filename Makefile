# The two commands of the README: `make run` (embedded default) and `make test` (real services).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# uv trusts the system's certificate store, as pip does (a proxy that inspects TLS has its
# certificate there).
export UV_SYSTEM_CERTS ?= 1
PORT ?= 8000

# The suite and the benchmarks run on PostgreSQL and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) \
	REDIS_URL=redis://127.0.0.1:6379/0 DJANGO_DEBUG=false DJANGO_SECRET_KEY=test-only-secret-key \
	DJANGO_SECURE_SSL_REDIRECT=false CELERY_QUEUE=test-$(shell head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
DEPLOY_ENV := DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=portal.example.org \
	DJANGO_SECRET_KEY=deploy-check-$(shell head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	DJANGO_MFA_ENCRYPTION_KEY=deploy-check-$(shell head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	AUDIT_CHAIN_KEY=deploy-check-$(shell head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	REDIS_URL=redis://127.0.0.1:6379/0 TRUSTED_PROXY_COUNT=1

.PHONY: help install run test lint migrations-check deploy-check services pytest browser-deps \
	screenshots bench

help:
	@echo "make run   - start the portal with demo data on http://localhost:$(PORT)/ (no servers needed)"
	@echo "make test  - lint, checks and the whole suite on PostgreSQL + Redis"
	@echo "make screenshots - the browser suite; also refreshes the README's docs/screenshots/"
	@echo "make bench - shift change at agency scale vs its floor; writes bench/results.md (~30 min)"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(BIN)/uv uv.lock pyproject.toml
	$(BIN)/uv sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

# `make run` is the embedded default over plain HTTP, but not in debug mode: a 404 or a 500 shows
# the portal's own page, not Django's list of every URL and setting. Its secret key is made once
# and kept in var/. It answers this machine only unless HOST is set (HOST=0.0.0.0 make run).
# Links in e-mails, CAP and Atom use SITE_URL: the port it runs on, unless SITE_URL is set.
HOST ?= 127.0.0.1
SITE_URL ?= http://localhost:$(PORT)
RUN_ENV = DJANGO_DEBUG=false DJANGO_SECRET_KEY="$$(cat var/secret-key)" \
	DJANGO_SECURE_SSL_REDIRECT=false DJANGO_SECURE_COOKIES=false DJANGO_LOG_FORMAT=plain \
	SITE_URL="$(SITE_URL)"

run: install
	@mkdir -p var
	@test -s var/secret-key || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > var/secret-key)
	$(RUN_ENV) $(BIN)/python manage.py migrate --no-input -v 0
	$(RUN_ENV) $(BIN)/python manage.py collectstatic --no-input -v 0
	$(RUN_ENV) $(BIN)/python manage.py seed_demo
	@echo
	@echo "  Officer Safety Bulletins is starting on http://localhost:$(PORT)/ (listening on $(HOST))"
	@echo "  Demo sign-ins (password portal-demo-2026):"
	@echo "    officer@demo.test    sworn officer, 17th Precinct"
	@echo "    officer2@demo.test   sworn officer, 75th Precinct"
	@echo "    auxiliary@demo.test  auxiliary officer, 17th Precinct"
	@echo "    sergeant@demo.test   supervisor, 17th Precinct (runs the Day tour's roll call)"
	@echo "    commander@demo.test  supervisor, Manhattan South (one order awaits his approval)"
	@echo "    chief@demo.test      Chief of Department, agency admin"
	@echo "    admin@demo.test      agency admin"
	@echo "  Second step for all of them: authenticator-app secret OFFICERSAFETYDEMOPORTALSECRET234"
	@echo "    (oathtool --totp -b OFFICERSAFETYDEMOPORTALSECRET234), or add a passkey once signed in."
	@echo "  Emails the portal sends are written to var/mail/."
	@echo "  Stop with Ctrl-C."
	@echo
	@mkdir -p var/mail
	$(RUN_ENV) HOST=$(HOST) PORT=$(PORT) EMAIL_URL=filemail:///$(CURDIR)/var/mail \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

services:
	@bash .ci/services

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrations-check: install
	$(TEST_ENV) DATABASE_URL=sqlite://:memory: $(BIN)/python manage.py makemigrations --check --dry-run

deploy-check: install
	$(DEPLOY_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING

# The suite runs in up to four processes (pytest-xdist, one test file to a process): each has
# its own test database, Celery queue and cache key prefix (tests/xdist_env.py). PYTEST_WORKERS=0
# runs it in this process alone.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n > 4 ? 4 : n )))

pytest: install services
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --no-input -v 0
	$(TEST_ENV) $(BIN)/python -m pytest -p tests.xdist_env -n $(PYTEST_WORKERS) --dist loadfile \
		$(PYTEST_ARGS)

# The browser suite (tests/browser) drives Debian's Chromium through Playwright - nothing downloads
# a browser - and injects axe-core, from the npm registry, into the pages it checks.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
AXE := node_modules/axe-core/axe.min.js

browser-deps: /usr/bin/chromium $(AXE)

/usr/bin/chromium:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		chromium chromium-driver

$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

screenshots: install services browser-deps
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --no-input -v 0
	README_SCREENSHOTS=1 $(TEST_ENV) $(BIN)/pytest tests/browser -q $(PYTEST_ARGS)
	@ls -l docs/screenshots/

test: install services browser-deps lint migrations-check deploy-check pytest

# The benchmark: the bench dependency group (the peer, django-notifications-community) on top of
# the dev install, wrk from Debian when missing, PostgreSQL and Redis. Never run by CI.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal_bench
BENCH_ARGS ?=

/usr/bin/wrk:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk

bench: install services /usr/bin/wrk
	$(BIN)/uv sync --frozen --quiet --group bench
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/shift_change.py $(BENCH_ARGS)
	$(BIN)/uv sync --frozen --quiet
