# Dalal: two commands. `make run` starts the desk, `make test` checks it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
VPY       := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
STAMP_JS  := static/vendor/.installed

# The first Python 3.12+ found: python3.13, python3.12, python3, then pyenv's installed versions.
PYTHON ?= $(shell bash scripts/find-python.sh)

.PHONY: help run test test-browser lint typecheck pytest install install-dev system-deps assets bench clean

help:
	@echo "make run    - install into .venv, create .env and the databases, start the desk"
	@echo "make test   - install, then ruff, mypy and the whole test suite"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make test-browser - only the browser tests (Playwright + Debian's chromium, tests/browser/)"

$(VENV)/bin/python:
	@if [ -z "$(PYTHON)" ]; then bash scripts/find-python.sh --explain; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	"$(PYTHON)" -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(VENV)/bin/python
	$(VPY) -m pip install --quiet -r requirements.txt
	@touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VPY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(STAMP_RUN)

install: $(STAMP_RUN) $(STAMP_JS)
install-dev: $(STAMP_DEV) $(STAMP_JS)

# Browser libraries (socket.io client, charts) from the npm registry into static/vendor/.
$(STAMP_JS): package.json package-lock.json scripts/assets.sh
	@bash scripts/assets.sh

assets: $(STAMP_JS)

run: install
	$(VPY) app.py serve

lint: install-dev
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .

typecheck: install-dev
	$(VPY) -m mypy

# Programs the tests start for real (redis-server, chromium), from Debian when missing.
system-deps:
	@bash scripts/system-deps.sh

pytest: install-dev system-deps
	$(VPY) -m pytest

test: lint typecheck pytest

# The browser tests alone (they are part of `make test` too); screenshots of failures go to
# tests/artifacts/.
test-browser: install-dev system-deps
	$(VPY) -m pytest -m browser tests/browser

bench: install-dev
	$(VPY) bench/bench_apikey.py
	$(VPY) bench/bench_market.py
	$(VPY) bench/bench_sandbox.py
	$(VPY) bench/bench_http.py
	$(VPY) bench/bench_feed.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache node_modules static/vendor
