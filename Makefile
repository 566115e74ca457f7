# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
# Tests, the demo and CI install the pinned versions in .ci/constraints.txt (the lock);
# pyproject.toml keeps version ranges for library users. `make lock` refreshes the lock,
# `make test-latest` runs the tests on the newest releases the ranges allow.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOCK   := .ci/constraints.txt
STAMP  := $(VENV)/.installed-dev
# PIP_CONSTRAINT (not only -c) so that the isolated build environment gets the pinned
# setuptools too.
# Install output goes to a log, shown only when the install fails: setuptools prints an
# informational note on every editable install of a package-dir layout like ours.
PIP    := PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(PY) -m pip install --quiet -c $(LOCK)
QUIET  := > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

.PHONY: test test-latest demo bench bench-quick check docs schema report-screenshots lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) pip $(QUIET)

$(STAMP): pyproject.toml $(LOCK) | $(PY)
	@echo "installing segmint and its pinned dev dependencies into $(VENV)"
	@$(PIP) -e '.[dev]' $(QUIET)
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The newest releases pyproject.toml allows, in a venv of their own: upgrades seen on purpose.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	PIP_CONSTRAINT= .venv-latest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-latest/bin/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/segmint demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PIP) -e '.[dev,bench]' $(QUIET)
	$(PY) -m benchmarks $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

check: $(STAMP)
	$(VENV)/bin/segmint check examples/segmint.toml

# The reference docs generated from the code (config.schema.json, fields.md, events.md,
# imports.md, strategies.md, recommendations.md: segmint.middleware.refdocs.PAGES); a test
# fails when one differs from what the code generates.
docs: $(STAMP)
	$(PY) -m segmint.middleware.refdocs docs

schema: docs

# docs/images/report-*.png: the demo's report page, signed in, in headless chromium (the test
# that checks the page in a real browser takes them).
report-screenshots: $(STAMP)
	SEGMINT_WRITE_SCREENSHOTS=docs/images $(PY) -m pytest -q -p no:randomly \
		tests/middleware/test_report_page.py -k demo_report

# Refresh the lock: pip-compile (pip-tools) in a throwaway venv, every extra, Python 3.11.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --upgrade --all-extras --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml .ci/build.in

clean:
	rm -rf $(VENV) .venv-latest .venv-lock build *.egg-info .pytest_cache
