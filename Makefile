# Two entry points: `make demo` (the main job on the embedded store) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck renderer pytest infra-scan bench cards clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlgov demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Chromium and the npm Adaptive Cards renderer, for the card rendering tests.
renderer:
	scripts/setup_renderer.sh

pytest: $(STAMP)
	$(BIN)/pytest

# checkov (PyPI) in its own venv: it scans the Bicep in infra/ (tests/infra runs the scan).
INFRA_STAMP := .venv-infra/.installed
$(INFRA_STAMP): requirements-infra.txt
	scripts/scan_infra.sh --setup

infra-scan: $(INFRA_STAMP)
	scripts/scan_infra.sh

test: renderer lint typecheck $(INFRA_STAMP) pytest

# Re-render the example cards shown in docs/.
cards: $(STAMP) renderer
	$(BIN)/python scripts/example_cards.py docs/img

# The benchmark (bench/RESULTS.md): the quick size by default; the large one on request with
# `make bench BENCH_SIZES=10000,100000`; BENCH_ARGS passes other flags (bench/run.py --help).
BENCH_SIZES ?= 10000
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --sizes $(BENCH_SIZES) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-infra .mypy_cache .ruff_cache .pytest_cache
