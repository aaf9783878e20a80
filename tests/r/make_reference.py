"""Regenerate the R reference files of tests/r/ from the committed case files in tests/r/cases/.

    .venv/bin/python tests/r/make_reference.py                # rewrite tests/r/*.csv and versions.txt
    .venv/bin/python tests/r/make_reference.py --out DIR      # write them into DIR instead
    .venv/bin/python tests/r/make_reference.py --write-cases  # first rewrite tests/r/cases/ from the
                                                              # Python generators (fixed seeds) in the tests

Needs Rscript (or $RSCRIPT) with the R packages pROC, rms, psych and survival. The steps:

1. ``versions.R`` writes the R, BLAS/LAPACK and package versions to OUT/versions.txt (stops if a
   package is missing);
2. each script of ``JOBS`` reads its case files and writes one long CSV (case, key, value; 17
   significant digits) to OUT;
3. ``echo_cases.R`` reads every case file back as the scripts do, and this driver checks that R
   parsed exactly the doubles (and strings) that Python parses from the same files.

The value tests (tests/test_r_reference.py, tests/test_agreement.py, tests/test_tables.py) read the
committed files and need no R; the ``r_reference`` test runs this driver with ``--out`` into a
temporary folder and compares. ``--write-cases`` is only needed when a generated case is added or
changed; the tests check that the committed cases equal what their generators produce. It first
runs the R scripts of ``R_CASES``, which write cases from R's own data (the survival package's
rotterdam and gbsg), then the Python generators.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

R_DIR = Path(__file__).resolve().parent
CASES = R_DIR / "cases"
TESTS = R_DIR.parent
REPO = TESTS.parent

#: (R script, its case files relative to cases/, the reference file it writes)
JOBS = [
    ("reference.R", ["reference/manifest.csv"], "reference_values.csv"),
    ("psych_agreement.R", ["psych_kappa_readers.csv", "psych_icc_ratings.csv"], "psych_agreement.csv"),
    ("base_tests.R", ["base_tests_data.csv"], "base_tests.csv"),
    ("survival.R", ["survival/rotterdam_gbsg_predictions.csv", "survival/rotterdam_gbsg_thresholds.csv",
                    "survival/ties_predictions.csv", "survival/ties_thresholds.csv"], "survival.csv"),
    ("internal_validation.R", ["internal_validation/data.csv", "internal_validation/resamples.csv"],
     "internal_validation.csv"),
]
#: (R script, arguments before the output path, the case file it writes): R-made cases, written
#: by --write-cases before the Python writers (which read them, e.g. to choose thresholds)
R_CASES = [("survival.R", ["case"], "survival/rotterdam_gbsg_predictions.csv")]
VERSIONS = "versions.txt"
REFERENCE_FILES = [out for _, _, out in JOBS] + [VERSIONS]
REQUIRED_PACKAGES = ("pROC", "rms", "psych", "survival")

#: test modules whose ``write_r_cases(cases_dir)`` writes their generated cases
CASE_WRITERS = ["test_r_reference.py", "test_agreement.py", "test_tables.py", "test_survival.py",
                "test_internal_validation.py"]


def rscript() -> str:
    path = os.environ.get("RSCRIPT") or shutil.which("Rscript")
    if not path:
        raise SystemExit("Rscript not found on PATH (or set RSCRIPT)")
    return path


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, encoding="utf-8", timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def write_cases(cases_dir: Path = CASES) -> None:
    """Rewrite the case files: first those R makes (``R_CASES``), then those of the generators
    in the test modules."""
    r = rscript()
    for script, arguments, case in R_CASES:
        (cases_dir / case).parent.mkdir(parents=True, exist_ok=True)
        _run([r, str(R_DIR / script), *arguments, str(cases_dir / case)])
    sys.path[:0] = [str(REPO), str(TESTS)]
    for name in CASE_WRITERS:
        spec = importlib.util.spec_from_file_location(f"_r_cases_{Path(name).stem}", TESTS / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.write_r_cases(cases_dir)


def case_files(cases_dir: Path = CASES) -> list[Path]:
    return sorted(cases_dir.rglob("*.csv"))


def _same_cell(python: str, r: str) -> bool:
    """Whether R read the cell as Python does: the same double, or the same string."""
    try:
        return float(python) == float(r)
    except ValueError:  # strings (cohort, ratings' categories, file names)
        return python == r


def check_r_reads_cases(r: str, cases_dir: Path = CASES) -> int:
    """Assert that R's read.csv parses every case file to the values Python parses; cells checked."""
    files = case_files(cases_dir)
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        _run([r, str(R_DIR / "echo_cases.R"), tmp, *map(str, files)])
        for i, path in enumerate(files, start=1):
            with path.open(newline="") as fh:
                ours = list(csv.reader(fh))
            with (Path(tmp) / f"{i}.csv").open(newline="") as fh:
                theirs = list(csv.reader(fh))
            if ours[0] != theirs[0] or len(ours) != len(theirs):
                raise SystemExit(f"R read {path} with other columns or rows: {theirs[0]} ({len(theirs)} rows)")
            for row, (a, b) in enumerate(zip(ours[1:], theirs[1:]), start=2):
                for col, x, y in zip(ours[0], a, b):
                    if not _same_cell(x, y):
                        raise SystemExit(f"{path}:{row} column {col}: Python reads {x!r}, R reads {y!r}")
                    checked += 1
    return checked


def regenerate(out: Path = R_DIR, cases_dir: Path = CASES) -> None:
    r = rscript()
    out.mkdir(parents=True, exist_ok=True)
    _run([r, str(R_DIR / "versions.R"), str(out / VERSIONS)])
    missing = [line for line in (out / VERSIONS).read_text().splitlines() if line.endswith(": MISSING")]
    if missing:
        raise SystemExit(f"R packages missing ({', '.join(missing)}); need {', '.join(REQUIRED_PACKAGES)}")
    for script, inputs, result in JOBS:
        _run([r, str(R_DIR / script), *(str(cases_dir / f) for f in inputs), str(out / result)])
        print(f"wrote {out / result}")
    print(f"R read all {check_r_reads_cases(r, cases_dir)} case cells as Python does")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=R_DIR, help="folder for the reference files (default tests/r)")
    parser.add_argument("--write-cases", action="store_true",
                        help="first rewrite tests/r/cases/ from the Python generators in the tests")
    args = parser.parse_args(argv)
    if args.write_cases:
        write_cases()
        print(f"wrote the case files under {CASES}")
    regenerate(args.out)


if __name__ == "__main__":
    main()
