# The README's two commands are `make run` and `make test`; everything else is detail.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck unit clean lock config-docs image-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.runtime

## run: install, show the project's own docs until you ingest yours, serve on $PORT (default 8080) with embedded defaults
run: $(VENV)/.runtime
	$(BIN)/rag-backend serve --demo README.md --demo architecture.md --demo docs

## test: install, then lint, type-check and run the whole suite
test: lint typecheck unit

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev
	@bash scripts/install-browser.sh || echo "chromium not installed: the browser tests will fail (RAG_SKIP_BROWSER=1 skips them)"
	$(BIN)/pytest

## lock: regenerate requirements.lock after changing [project].dependencies
lock:
	scripts/lock.sh

## config-docs: regenerate docs/configuration.md from the Settings model
config-docs: $(VENV)/.runtime
	$(BIN)/python scripts/config_reference.py

## image-check: build the Docker image and check it (heavy; not part of `make test`)
image-check:
	scripts/image-check.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache data
