# QuickSend: two commands for a fresh machine (README "Quick start").
#   make run   set up and start the product on the embedded default, with demo data
#   make test  set up and pass the whole suite (uses DATABASE_URL/REDIS_URL when set)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_WORKERS ?= 2

.PHONY: run test lint format migrate seed sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@$(BIN)/python -m sandbox.demo http://127.0.0.1:$(PORT)
	@echo "QuickSend is starting on http://127.0.0.1:$(PORT)/ (Ctrl+C stops it)"
	PORT=$(PORT) $(BIN)/uvicorn quicksend.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan off

# Production mode (DATABASE_URL/REDIS_URL set) needs these; tests get throwaway values unless you give real ones.
test: export SECRET_KEY ?= insecure-test-secret-key-not-for-production-0123456789
test: export QUICKSEND_ENCRYPTION_KEYS ?= 3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s=
test: export PUBLIC_BASE_URL ?= http://testserver
test: export ALLOWED_HOSTS ?= testserver,127.0.0.1,localhost
# Tests that terminate database backends run last, in a run of their own, so no other test meets the
# connections they kill (pytest exits 5 when the arguments select none of them).
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not faults" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m faults $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var/test*.sqlite3*
