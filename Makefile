# sfpipe — every target installs what it needs. On a fresh clone: `make demo`, `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
export UV_PYTHON ?= 3.11
# Installed packages get their .pyc at install time: where PYTHONDONTWRITEBYTECODE is set, every
# process would otherwise compile pandas, pyarrow & co. from source on import (about 1 s each).
export UV_COMPILE_BYTECODE ?= 1
UV = $(shell command -v uv 2>/dev/null || echo "$(PY) -m uv")
RUN = $(UV) run --frozen
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: help setup uv venv npm chromium test test-fast lint demo bench up down status env clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || $(PY) -m uv --version >/dev/null 2>&1 || { echo "installing uv with pip"; $(PY) -m pip install --quiet uv; }

venv: uv ## Create .venv from uv.lock
	@$(UV) sync --frozen --quiet

npm: ## Install the Dataform CLI (npm) for `dataform compile`
	@if [ -f dataform/package.json ]; then \
	  if [ ! -d dataform/node_modules/@dataform/cli ]; then \
	    command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ (apt-get install nodejs npm)"; exit 1; }; \
	    cd dataform && npm ci --no-audit --no-fund --loglevel=error; \
	  fi; \
	fi

chromium: ## Install Debian's chromium for the dashboard test
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: apt-get install chromium"; exit 1; fi; }

setup: venv npm ## Everything a developer needs (venv, npm packages)
	@$(RUN) sfpipe devstack check

test: setup chromium ## Run every test (starts the emulators the tests need)
	@$(RUN) pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi; exit $$rc

test-fast: setup ## Only the tests that start no emulator or server
	@$(RUN) pytest -m "not integration and not e2e" $(PYTEST_ARGS)

lint: venv ## ruff and mypy
	@$(RUN) ruff check .
	@$(RUN) ruff format --check . || true
	@$(RUN) mypy libs/sfpipe devstack/sfpipe_devstack services beam/sfpipe_beam

demo: setup ## Run the whole pipeline locally on a generated org (DEMO_ARGS="--scale N"); `make down` stops it
	@$(RUN) sfpipe demo $(DEMO_ARGS)

bench: setup ## Benchmarks; JSON results under bench/results/
	@$(RUN) python -m bench

up: setup ## Start the local devstack
	@$(RUN) sfpipe up

down: venv ## Stop the local devstack
	@$(RUN) sfpipe down

status: venv ## Show the local devstack
	@$(RUN) sfpipe status

env: venv ## Print the export lines a client needs
	@$(RUN) sfpipe env

clean: down ## Remove local state
	rm -rf .sfpipe
