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
# setup.py imports numpy and therefore needs --no-build-isolation; numpy < 2.4 and scipy < 1.16
# are antspyx 0.6.3's bounds (the deep arm's registration), installed first so that PyRadiomics
# is built against the numpy that stays. (PyPI's 3.1.0 sdist,
# the newest, calls itself 3.0.1a1 once built, so it cannot be pinned as ==3.1.0.)
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet "numpy>=1.26,<2.4" "scipy>=1.11,<1.16" versioneer
	$(BIN)/python -m pip install --quiet --no-build-isolation pyradiomics
	$(BIN)/python -m pip install --quiet -e ".[imaging,dev]"
	touch $(STAMP)

# The embedded synthetic study (165 patients, three phases) from images to the report:
# `dlr demo` = `dlr synth` + `dlr run` (cached: a second `make demo` does no work).
demo: $(STAMP)
	$(BIN)/dlr demo --out $(RUN)
	@echo "Report: $(abspath $(RUN))/report/index.html (and index.docx; checklists: report/tripod_ai.csv, claim.csv, clear.csv, metrics.csv)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_analyze.py

clean:
	rm -rf $(VENV) runs .pytest_cache
