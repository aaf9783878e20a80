"""Shared fixtures: paths to the public reference cases (tests/data, see its README.md) and a
runner for the `dlr` command."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # public reference cases and real data, shipped with the repository
ASAH = DATA / "reference" / "asah"


@pytest.fixture(scope="session")
def asah_dir() -> Path:
    return ASAH


def run_dlr(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run `dlr ARGS` as a separate process, as a user would."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "dlr.cli", *map(str, args)], capture_output=True, text=True, encoding="utf-8",
                          cwd=cwd or REPO, env=env, timeout=600)


def make_predictions(n: int = 120, *, seed: int = 0, models=("A", "B"), cohorts=("training", "validation"),
                     probability: bool = True) -> pd.DataFrame:
    """A small predictions table in the contract's long form with a `scanner` attribute."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.4, n)
    cohort = np.where(np.arange(n) < int(n * 0.65), cohorts[0], cohorts[-1])
    scanner = rng.choice(["1.5T", "3.0T"], n)
    rows = []
    for k, model in enumerate(models):
        signal = y * (0.8 + 0.4 * k) + rng.normal(0, 1, n)
        score = 1 / (1 + np.exp(-signal)) if probability else np.round(signal * 2)
        rows.append(pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(n)], "cohort": cohort, "model": model,
                                  "y_true": y, "y_score": score, "scanner": scanner}))
    return pd.concat(rows, ignore_index=True)


def r_cell(v) -> str:
    """A value as the R reference cases (tests/r/) store it: 17 significant digits (R and Python
    read back the same double); floats keep a '.' so that integral floats (stage scores) are
    read back as floats and integers (labels) as integers."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    text = f"{float(v):.17g}"
    return text if any(c in text for c in ".en") else text + ".0"


def read_long_csv(path: Path) -> dict[str, dict[str, float]]:
    """A long CSV (case, key, value) written by a script of tests/r/: case -> key -> value ("NA" -> NaN)."""
    results: dict[str, dict[str, float]] = {}
    with Path(path).open(newline="") as fh:
        for row in csv.DictReader(fh):
            results.setdefault(row["case"], {})[row["key"]] = float("nan") if row["value"] == "NA" else float(row["value"])
    return results
