# Two entry points: `make demo` (the main job on the embedded store) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck renderer pytest pytest-py312 infra-scan bench bench-profile bench-estate cards clean

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

test: renderer lint typecheck $(INFRA_STAMP) pytest pytest-py312

# The supported Pythons are 3.11 and 3.12: the suite that needs no server runs on 3.12 too,
# in its own venv, wherever a 3.12 interpreter is found (pyenv's included).
PY312 ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python $$(command -v python3.12); do \
  "$$p" -c '' 2>/dev/null && echo "$$p" && break; done)
VENV312 := .venv312
$(VENV312)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	$(VENV312)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(VENV312)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

pytest-py312:
	@if [ -z "$(PY312)" ]; then echo "python3.12 not found: the 3.12 run is skipped"; else \
	  $(MAKE) --no-print-directory $(VENV312)/.installed PY312=$(PY312) && \
	  $(VENV312)/bin/pytest -m "not integration" -q -p no:cacheprovider; fi

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

# One profiled `mlgov sweep` (pyinstrument; PROFILE_ARGS="--tool py-spy" for every thread),
# into bench/raw/profile/ (bench/profile.py --help).
bench-profile: $(BENCH_STAMP)
	$(BIN)/python bench/profile.py $(PROFILE_ARGS)

# The estate benchmark: ESTATE_WORKSPACES workspaces of ESTATE_RUNS runs each at 50 ms,
# swept with the fan-out's parallelism and one after another (bench/estate_bench.py).
ESTATE_WORKSPACES ?= 10
ESTATE_RUNS ?= 10000
bench-estate: $(BENCH_STAMP)
	$(BIN)/python bench/estate_bench.py --workspaces $(ESTATE_WORKSPACES) --runs $(ESTATE_RUNS) --latency-ms 50

clean:
	rm -rf $(VENV) $(VENV312) .venv-infra .mypy_cache .ruff_cache .pytest_cache
