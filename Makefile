# Two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-checked

.PHONY: run test install migrate bench mutation clean

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

# Mutation testing of connect/, jira/, crypto.py and sync/ (config: [tool.mutmut] in pyproject.toml).
# Not part of `make test`: a fresh full run takes tens of minutes on 2 cores. Runs at the lowest CPU
# priority; results stay in mutants/ (`$(BIN)/mutmut results`, `$(BIN)/mutmut show NAME`).
# BOXSYNC_SHARED_DIR: the mutated copy runs from mutants/, one level below the repository.
MUTATION_JOBS ?= 2
# Progress every 250 mutants instead of mutmut's spinner.
MUTATION_PROGRESS = /^[^ ]+ [0-9]+\/[0-9]+ / { split($$2, n, "/"); last = $$0; \
	if (int(n[1] / 250) != step) { step = int(n[1] / 250); print; fflush() } next } \
	/^[^ ]+ (Running|Generating|Listing|Filtering)/ { next } NF { print; fflush() } END { if (last) print last }
mutation: $(STAMP)
	rm -rf mutants
	BOXSYNC_SHARED_DIR=$${BOXSYNC_SHARED_DIR:-$(abspath ..)/shared} bash -o pipefail -c \
		'nice -n 19 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) | tr "\r" "\n" | awk '"'"'$(MUTATION_PROGRESS)'"'"
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
		caught = s["killed"] + s["timeout"]; survived, untested = s["survived"], s["no_tests"]; \
		judged = caught + survived + untested + s["suspicious"]; \
		print(f"mutation score: {100 * caught / max(judged, 1):.1f}% ({caught} of {judged} mutants caught; " \
		      f"{survived} survived, {untested} without tests)")'

bench: $(STAMP)
	$(BIN)/python bench/jirasim_scale.py
	$(BIN)/python bench/request_path.py

clean:
	rm -rf $(VENV) var .pytest_cache mutants
