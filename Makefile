# The two commands a new user needs: `make run` and `make test`.
# Each sets up .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
BENCH_READY := $(VENV)/.bench-ready
# What the FHIR tests need beside the service: the R4 models of fhir.resources (they
# need pydantic 1, so a virtualenv of their own) and a real FHIR server (npm).
R4_VENV := .venv-fhir-r4
R4_READY := $(R4_VENV)/.ready
FHIR_SERVER := tests/fhir_server
FHIR_SERVER_READY := $(FHIR_SERVER)/node_modules/.ready

.PHONY: run demo test lint format diagram lock clean bench bench-quick console-screenshots

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(READY)

$(R4_READY): tests/fhir_r4/requirements.txt
	test -x $(R4_VENV)/bin/python || $(PYTHON) -m venv $(R4_VENV)
	$(R4_VENV)/bin/python -m pip install --quiet -r tests/fhir_r4/requirements.txt
	touch $(R4_READY)

$(FHIR_SERVER_READY): $(FHIR_SERVER)/package.json $(FHIR_SERVER)/package-lock.json
	cd $(FHIR_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $(FHIR_SERVER_READY)

run: $(READY)
	$(BIN)/ipt-workflow serve --dev

demo: $(READY)
	$(BIN)/ipt-workflow demo

test: $(READY) $(R4_READY) $(FHIR_SERVER_READY)
	$(BIN)/pytest -q

# Performance lives here, not in `make test`. Needs Debian's wrk (installed if
# missing); BENCH_ARGS passes options, e.g. BENCH_ARGS="--profile /tmp/profile".
$(BENCH_READY): $(READY)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	touch $(BENCH_READY)

bench: $(BENCH_READY)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-quick: $(BENCH_READY)
	$(BIN)/python -m benchmarks.run --quick $(BENCH_ARGS)

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(READY)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The Docker image installs exactly these pins (with their hashes); run after a
# change to the dependencies in pyproject.toml and commit the result.
lock: $(READY)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
		--generate-hashes --no-header --quiet -o requirements.lock

diagram: $(READY)
	$(BIN)/ipt-workflow diagram > docs/phases.md

# The console's pages in Chromium; the screenshots the tests keep become the docs'.
console-screenshots: $(READY)
	$(BIN)/pytest -q tests/console/test_console_in_browser.py
	mkdir -p docs/console
	cp tests/artifacts/*.png docs/console/

clean:
	rm -rf $(VENV) $(R4_VENV) $(FHIR_SERVER)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
