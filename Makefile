# Two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

install: $(STAMP)

# Starts the built-in Jira sandbox (jirasim) and BoxSync next to it, on SQLite.
run: $(STAMP)
	$(BIN)/python -m boxsync.sandbox

migrate: $(STAMP)
	$(BIN)/boxsync migrate

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/jirasim_scale.py
	$(BIN)/python bench/request_path.py

clean:
	rm -rf $(VENV) var .pytest_cache
