# The two commands a new user needs: `make run` and `make test`.
# Each sets up .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: run demo test lint format diagram console-screenshots clean

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

# The console's pages in Chromium; the screenshots the tests keep become the docs'.
console-screenshots: $(READY)
	$(BIN)/pytest -q tests/console/test_console_in_browser.py
	mkdir -p docs/console
	cp tests/artifacts/*.png docs/console/

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
