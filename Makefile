# Two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-checked

.PHONY: run test install migrate bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium (and Node), installed when missing; see tests/support/system_packages.sh.
$(CHROMIUM):
	sh tests/support/system_packages.sh

# Playwright (a dev extra) must drive that chromium: launch, load a page, screenshot. Checked once
# per venv or chromium change; the stamp keeps it out of every later run.
$(BROWSER_STAMP): $(STAMP) $(CHROMIUM)
	$(BIN)/python -m tests.support.browser
	@touch $@

# Starts the built-in Jira sandbox (jirasim) and BoxSync next to it, on SQLite.
run: $(STAMP)
	$(BIN)/python -m boxsync.sandbox

migrate: $(STAMP)
	$(BIN)/boxsync migrate

test: $(STAMP) $(BROWSER_STAMP)
	@command -v node >/dev/null || sh tests/support/system_packages.sh
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/jirasim_scale.py
	$(BIN)/python bench/request_path.py

clean:
	rm -rf $(VENV) var .pytest_cache
