# Townsquare: `make run` serves an instance; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck pytest bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/townsquare serve --host $(HOST) --port $(PORT) --data-dir var

# Debian packages the tests start for real (PostgreSQL, Redis, ...), installed when missing.
system-deps:
	scripts/install-system-deps

lint: install
	$(BIN)/ruff format --check townsquare tests bench
	$(BIN)/ruff check townsquare tests bench

typecheck: install
	$(BIN)/mypy townsquare

pytest: install system-deps
	$(BIN)/pytest

test: lint typecheck pytest

bench: install system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
