# `make run` and `make test` each start from nothing: they create .venv if it is missing and install the project.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run demo test lint typecheck pytest e2e bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/notifier migrate
	$(BIN)/notifier run $(ARGS)

demo: install
	$(BIN)/notifier migrate
	$(BIN)/notifier run --demo $(ARGS)

lint: install
	$(BIN)/ruff check notifier tests bench

typecheck: install
	$(BIN)/mypy

# The schema is built by the test harness with the same migration runner (`notifier migrate`), in a fresh database.
# axe-core (the browser tests' accessibility check) comes from the npm registry, pinned by tests/browser/package-lock.json
AXE := tests/browser/node_modules/axe-core/axe.min.js

$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/browser --no-audit --no-fund; \
	else echo "npm not found: the browser tests will say so (and fail in CI)"; fi

pytest: install $(AXE)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The end-to-end scenarios alone (make test runs them too): real web and worker processes, faults, recovery.
e2e: install
	$(BIN)/pytest tests/e2e -s $(PYTEST_ARGS)

# The originals of the labelled brief set are not in the repository (tests/fixtures/briefs/SOURCES.md): bench/briefs.py
# reads them from REPORTS when they are there, for its archive check and its pass over the service's PDF text.
REPORTS ?= ../shared/fixtures/reports
BRIEFS_ARCHIVE := $(wildcard $(REPORTS)/au-ipswich/ipswich_minutes_archive_2025.json)
BRIEFS_PDFS := $(if $(wildcard $(REPORTS)/us/*.pdf),$(REPORTS)/us)
BRIEFS_ARGS := $(if $(BRIEFS_ARCHIVE),--archive $(BRIEFS_ARCHIVE)) $(if $(BRIEFS_PDFS),--pdfs $(BRIEFS_PDFS))

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/match.py
	$(BIN)/python bench/email_send.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/feeds.py
	$(BIN)/python bench/documents.py
	$(BIN)/python bench/briefs.py $(BRIEFS_ARGS)
	$(BIN)/python bench/freshness.py
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules tests/browser/artifacts
