# dlr: one command from a study to a report; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := runs/demo

.PHONY: setup demo test test-quick bench clean

setup: $(STAMP)

# Order matters: the pinned CPU torch before anything that depends on torch (an
# unpinned torch pulls a multi-GB CUDA build), numpy before PyRadiomics, whose
# setup.py imports numpy and therefore needs --no-build-isolation. (PyPI's 3.1.0 sdist,
# the newest, calls itself 3.0.1a1 once built, so it cannot be pinned as ==3.1.0.)
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet "numpy>=1.26" versioneer
	$(BIN)/python -m pip install --quiet --no-build-isolation pyradiomics
	$(BIN)/python -m pip install --quiet -e ".[imaging,dev]"
	touch $(STAMP)

# Until the modelling pipeline exists, the demo analyses the public reference case.
demo: $(STAMP)
	@echo "dlr demo: the modelling pipeline is not built yet; analysing the public reference"
	@echo "case tests/data/reference/asah (pROC's aSAH data) with dlr analyze instead."
	$(BIN)/dlr analyze tests/data/reference/asah/predictions.csv --dev-cohort train \
	    --strata gender --out $(RUN)/results
	@echo "Results: $(RUN)/results (performance.csv, comparisons.csv, figures/ ...)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_analyze.py

clean:
	rm -rf $(VENV) runs .pytest_cache
