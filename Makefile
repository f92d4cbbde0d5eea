# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need first.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
DEMO_STAMP = $(VENV)/.demo-installed

export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install check lint format test demo bench emulator cassettes notebooks-clear clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e . --group dev
	touch $(STAMP)

check: install
	$(VENV)/bin/ruff check langchain_ailib_resilience tests benchmarks scripts
	$(VENV)/bin/ruff format --check langchain_ailib_resilience tests benchmarks scripts
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix langchain_ailib_resilience tests benchmarks scripts
	$(VENV)/bin/ruff format langchain_ailib_resilience tests benchmarks scripts

test: install check
	$(VENV)/bin/pytest

# The demo needs only the package and its demo extra, not the dev toolset: a newcomer sees it in seconds.
demo: $(DEMO_STAMP)
	$(VENV)/bin/ailib-resilience demo --watch

$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[demo]"
	touch $(DEMO_STAMP)

emulator: install
	$(VENV)/bin/ailib-resilience emulator

bench: install
	$(PY) -m pip install --quiet -e . --group bench
	$(PY) -m benchmarks --duration 30

cassettes: install
	$(PY) scripts/record_cassettes.py

notebooks-clear: install
	$(PY) scripts/clear_notebooks.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
