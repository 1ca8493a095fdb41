# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall when the project's dependencies change.
INSTALLED := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint types imports pytest bench docs clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml | $(BIN)/python
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet -e ".[test,progress,bench,lz4,zstd,docs,dask,ray,joblib,sklearn,s3]"
	# An editable install compiles nothing, as pip does for a regular one: without bytecode
	# (and under PYTHONDONTWRITEBYTECODE) every new process, fork server included, recompiles
	# forklift from source, ~85 ms of a cold start (measured). Python recompiles a stale file.
	$(BIN)/python -m compileall -q src
	touch $@

demo: $(INSTALLED)
	$(BIN)/python -m forklift demo

test: lint types imports docs pytest

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

types: $(INSTALLED)
	$(BIN)/mypy

imports: $(INSTALLED)
	$(BIN)/lint-imports

pytest: $(INSTALLED)
	sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# Seeded fuzzing of load and inspect_file (a short run is part of `make test`).
FUZZ_SEED ?= 1
FUZZ_COUNT ?= 100000
fuzz: $(INSTALLED)
	$(BIN)/python -W ignore -m tests.persist.fuzzing --seed $(FUZZ_SEED) --count $(FUZZ_COUNT)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache
