# Two commands on a fresh machine: `make run` and `make test` (see README.md).
# Everything is installed into .venv from pyproject.toml, pinned by constraints.txt.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The TypeScript SDK's npm packages (clients/typescript), installed exactly from its lockfile.
TS := clients/typescript
TS_STAMP := $(TS)/node_modules/.package-lock.json

.PHONY: install run test lint gen check-gen bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(TS_STAMP)

# Only where Node.js is: without it the TypeScript SDK is neither regenerated nor tested, and
# make says so (its test fails instead under CI=true).
$(TS_STAMP): $(TS)/package.json $(TS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(TS) --ignore-scripts --no-audit --no-fund; \
	else \
	  echo "npm not found: the TypeScript SDK (clients/typescript) is not installed; install Node.js 20+"; \
	fi

## Starts the control plane, the edge and the web console on SQLite with a demo callback, and
## prints their URLs.
## (Python only: running the service needs no npm packages.)
run: $(STAMP)
	$(PY) scripts/run.py

## Every test: unit, store and API on SQLite and PostgreSQL, sync, runner, edge, end to end, and
## the console in headless Chromium (tests/console; screenshots in tests/console/screenshots/).
## The TypeScript SDK's tests run with them (tests/clients/test_typescript_sdk.py) where Node.js is.
test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code

## Regenerates clients/boomerang/v1 and clients/typescript/src/gen from proto/.
gen: install
	PYTHON=$(PY) scripts/gen_proto.sh

## Fails when the checked-in generated code differs from what proto/ generates.
check-gen: gen
	git diff --exit-code -- clients/boomerang/v1 $(TS)/src/gen || \
	  (echo "generated code is stale: run 'make gen' and commit" >&2; exit 1)
	test -z "$$(git status --porcelain -- clients/boomerang/v1 $(TS)/src/gen)" || \
	  (echo "untracked generated files: run 'make gen' and commit" >&2; exit 1)

bench: install
	$(PY) bench/callback_path.py
	$(PY) bench/priority.py
	$(PY) bench/connector_path.py

clean:
	rm -rf $(VENV) .boomerang .pytest_cache .ruff_cache
