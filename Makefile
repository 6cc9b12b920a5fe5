# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install the project (with its dev extra) when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= runs/demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint format clean mutation

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py --out $(OUT)

# BTDNET_REQUIRE_EXTRAS=1: a test skipped because a dev-extra package (rasterio, ...) cannot
# be imported fails instead (tests/conftest.py): the dev extra is installed above.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	BTDNET_REQUIRE_EXTRAS=1 $(PY) -m pytest -q

# Mutation testing of the modules in mutation.toml, each against its own tests (not in CI;
# hours for every mutant on 2 cores, so a seeded sample per module: MUTATION_ARGS="--sample 0"
# runs all of them, "--module metrics" only matching modules). See docs/testing.md.
MUTATION_ARGS ?=
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,mutation]'
	OMP_NUM_THREADS=1 nice -n 19 $(PY) scripts/mutation.py --out runs/mutation $(MUTATION_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
