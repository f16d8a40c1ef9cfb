# The two commands of the README, and the checks CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := $(wildcard app tests migrations bench)

.PHONY: install run test lint typecheck openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## migrate, load the demo data, serve on 127.0.0.1:8000 (SQLite, mail to var/mail)
	$(BIN)/eservice db upgrade
	$(BIN)/eservice demo
	$(BIN)/eservice serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy


test: lint typecheck  ## ruff, mypy, the suite on SQLite and (when ESERVICE_TEST_DATABASE_URL is set) PostgreSQL
	env -u ESERVICE_TEST_DATABASE_URL $(BIN)/pytest -q
	@if [ -n "$$ESERVICE_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$ESERVICE_TEST_DATABASE_URL"; \
		$(BIN)/pytest -q; \
	fi

openapi: $(STAMP)
	$(BIN)/eservice openapi

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
