# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: test demo bench bench-quick check lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/segmint demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

check: $(STAMP)
	$(VENV)/bin/segmint check examples/segmint.toml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
