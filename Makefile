# spillover — developer entry points. `make test` is what CI runs.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
CLIENT  = tests/e2e/node_modules/.package-lock.json
SHELL_FILES = direnvrc spillover/shell/*.sh spillover/shell/*.bash cron/*.sh .ci/run bench/*.sh tools/*.sh

.PHONY: install quickstart test unit e2e client-fixtures lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

# One command: put `spillover` on PATH (pipx, else uv, else a link to the .venv), wire the
# schedule + direnv + shell hook + statusline, run the first tick, show status (tools/quickstart.sh).
quickstart:
	VENV=$(VENV) MAKE=$(MAKE) PYTHON=$(PYTHON) ./tools/quickstart.sh

# Everything, the real Claude Code end-to-end suite included.
test: install lint $(CLIENT)
	$(PY) -m pytest -q tests

unit: install
	$(PY) -m pytest -q tests --ignore=tests/e2e

# The real Claude Code clients, the oldest supported and the newest tested, pinned in
# tests/e2e/package.json and package-lock.json as npm aliases (npm's "install-scripts" and
# "EBADENGINE" warnings are harmless: the postinstall that links the native binary does run, and the
# native binary does not use Node).
$(CLIENT): tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund
	touch $@

e2e: install $(CLIENT)
	$(PY) -m pytest -q tests/e2e

# Re-record what both real clients write at each usage wall (tests/fixtures/README.md).
client-fixtures: install $(CLIENT)
	$(PY) -m tests.e2e.capture_walls

lint:
	shellcheck -x $(wildcard $(SHELL_FILES))
	for f in $(wildcard spillover/shell/*.zsh); do zsh -n "$$f" || exit 1; done
	for f in $(wildcard spillover/shell/*.fish); do fish --no-execute "$$f" || exit 1; done
	$(PYTHON) -m compileall -q spillover tests bench

# One table of ratios against baselines measured in the same run (see bench/run.py).
bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache tests/e2e/node_modules .bench
