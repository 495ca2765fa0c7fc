# The two commands a new user needs: `make run` and `make test`.
# Each sets up .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
BENCH_READY := $(VENV)/.bench-ready

.PHONY: run demo test lint format diagram clean bench bench-quick

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(READY)

run: $(READY)
	$(BIN)/ipt-workflow serve --dev

demo: $(READY)
	$(BIN)/ipt-workflow demo

test: $(READY)
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

diagram: $(READY)
	$(BIN)/ipt-workflow diagram > docs/phases.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
