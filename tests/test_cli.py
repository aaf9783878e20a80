"""`dlr analyze` from the command line: bad input exits 2 naming the problem, never a traceback,
never a half-written or clobbered result; same input and seed give byte-identical CSVs."""
from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd
import pytest

from dlr.analysis import figures, output
from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import validate_predictions
from conftest import make_predictions, run_dlr
from dlr.cli import main


def write(frame: pd.DataFrame, path):
    frame.to_csv(path, index=False)
    return path


def analyze_cli(capsys, *args):
    code = main(["analyze", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.err


def edit(frame, **changes):
    f = frame.copy()
    for (row, col), value in changes.get("cells", {}).items():
        f[col] = f[col].astype(object)
        f.loc[row, col] = value
    return f


GOOD = make_predictions(40, seed=1)
P0 = GOOD.loc[0, "patient_id"]
CASES = {
    "nan_score": (edit(GOOD, cells={(0, "y_score"): "NaN"}), [], ["y_score", P0, "line 2"]),
    "text_score": (edit(GOOD, cells={(3, "y_score"): "high"}), [], ["y_score", "'high'", GOOD.loc[3, "patient_id"]]),
    "label_not_binary": (edit(GOOD, cells={(5, "y_true"): 2}), [], ["y_true", "0 or 1", GOOD.loc[5, "patient_id"]]),
    "patient_in_two_cohorts": (edit(GOOD, cells={(40, "cohort"): "validation" if GOOD.loc[40, "cohort"] == "training"
                                                 else "training"}), [], ["more than one cohort", GOOD.loc[40, "patient_id"]]),
    "duplicate_rows": (pd.concat([GOOD, GOOD.iloc[[7]]]), [], ["duplicate", GOOD.loc[7, "patient_id"]]),
    "outcome_differs": (edit(GOOD, cells={(41, "y_true"): 1 - GOOD.loc[41, "y_true"]}), [],
                        ["different outcomes", GOOD.loc[41, "patient_id"]]),
    "missing_column": (GOOD.drop(columns="y_true"), [], ["missing column", "y_true"]),
    "unknown_dev_cohort": (GOOD, ["--dev-cohort", "derivation"], ["'derivation'", "--dev-cohort", "'training'"]),
    "unknown_stratifier": (GOOD, ["--strata", "field_strength"], ["'field_strength'", "scanner"]),
    "unknown_reference": (GOOD, ["--reference", "DLRCR"], ["'DLRCR'", "--reference"]),
    "stratifier_differs": (edit(GOOD, cells={(42, "scanner"): "7T"}), ["--strata", "scanner"],
                           ["scanner", GOOD.loc[42, "patient_id"]]),
    "header_only": (GOOD.iloc[:0], [], ["no rows"]),
    "reserved_model_name": (GOOD.replace({"model": {"B": "treat_all"}}), [], ["'treat_all'", "reserved"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_naming_the_problem(case, tmp_path, capsys):
    frame, extra, needles = CASES[case]
    path = write(frame, tmp_path / "predictions.csv")
    out = tmp_path / "out"
    code, err = analyze_cli(capsys, path, "--out", out, "--bootstrap", "0", "--no-figures", *extra)
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_empty_file_and_missing_file(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, err = analyze_cli(capsys, empty, "--out", tmp_path / "o")
    assert code == 2 and "empty" in err and str(empty) in err
    code, err = analyze_cli(capsys, tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "x.csv"])  # --out missing
    assert exc.value.code == 2
    code, err = analyze_cli(capsys, write(GOOD, tmp_path / "p.csv"), "--out", tmp_path / "o", "--bootstrap", "-1")
    assert code == 2 and "--bootstrap" in err


def test_real_process_exit_code_and_no_traceback(tmp_path):
    path = write(edit(GOOD, cells={(0, "y_score"): "nan"}), tmp_path / "p.csv")
    proc = run_dlr("analyze", path, "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and P0 in proc.stderr
    assert run_dlr("--help").returncode == 0 and run_dlr("analyze", "--help").returncode == 0


def test_failed_write_keeps_the_earlier_result(tmp_path, monkeypatch):
    result = analyze(validate_predictions(GOOD), n_bootstrap=20)
    out = tmp_path / "results"
    output.write_analysis(result, out, figures=False)
    before = (out / "performance.csv").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(output, "draw_figures", broken)  # the name output.py calls
    with pytest.raises(RuntimeError):
        output.write_analysis(result, out, figures=True)
    assert (out / "performance.csv").read_bytes() == before
    assert not (out / "figures").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no temporary folder left


def test_single_class_cohort_is_nan_not_a_crash(tmp_path, capsys):
    frame = GOOD.copy()
    frame.loc[frame["cohort"] == "validation", "y_true"] = 0
    code, err = analyze_cli(capsys, write(frame, tmp_path / "p.csv"), "--out", tmp_path / "o", "--bootstrap", "50",
                            "--strata", "scanner")
    assert code == 0, err
    perf = pd.read_csv(tmp_path / "o" / "performance.csv")
    val = perf[perf["cohort"] == "validation"]
    assert val["auc"].isna().all() and (val["n_events"] == 0).all() and (val["n"] > 0).all()
    assert val["specificity"].notna().all()  # defined: there are controls
    assert "warning:" in err and "validation" in err


@pytest.mark.slow
def test_same_seed_gives_byte_identical_csvs(tmp_path):
    frame = make_predictions(150, seed=3, models=("A", "B", "C"))
    path = write(frame, tmp_path / "p.csv")
    outs = []
    for k, seed in enumerate((11, 11, 12)):
        out = tmp_path / f"o{k}"
        proc = run_dlr("analyze", path, "--out", out, "--bootstrap", "300", "--seed", seed, "--strata", "scanner",
                       "--no-figures")
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    csvs = sorted(p.name for p in outs[0].glob("*.csv"))
    assert len(csvs) >= 8
    match, mismatch, errors = filecmp.cmpfiles(outs[0], outs[1], csvs, shallow=False)
    assert mismatch == [] and errors == []
    docs = [json.loads((o / "results.json").read_text()) for o in outs[:2]]
    for doc in docs:
        del doc["provenance"]["command"]  # names the output folder, which differs
    assert docs[0] == docs[1]
    # a different seed changes the bootstrap columns, and only those
    a, b = (pd.read_csv(o / "performance.csv") for o in (outs[0], outs[2]))
    assert not np.array_equal(a["auc_boot_low"], b["auc_boot_low"])
    pd.testing.assert_series_equal(a["auc_ci_low"], b["auc_ci_low"])


def test_figures_drawn_in_process_and_by_workers_are_the_same_set(tmp_path):
    predictions = validate_predictions(GOOD, strata=["scanner"])
    result = analyze(predictions, strata=["scanner"], n_bootstrap=50)
    inline = figures.draw_figures(result, tmp_path / "inline")
    # ROC, calibration, decision curve and net benefit against the reference per cohort + forest; PNG and SVG
    assert len(inline) == 2 * (4 * 2 + 1)
    with figures.FigureWorkers() as workers:
        streamed = analyze(predictions, strata=["scanner"], n_bootstrap=50, cohort_done=workers.submit_cohort)
        staging = workers.finish(figures.figure_jobs(streamed))
        drawn = sorted(p.name for p in staging.iterdir())
        assert drawn == sorted(p.rsplit("/", 1)[1] for p in inline)
        for name in drawn:
            assert (staging / name).stat().st_size > 3000
        svg = (staging / "roc_training.svg").read_text()
        assert "ROC curves, training cohort" in svg  # text kept as text in the SVG
    assert not staging.exists()  # the staging folder goes with the workers


def test_analyze_ends_with_the_auc_table(tmp_path, capsys):
    """The terminal gets a model x cohort table of AUCs with DeLong CIs, the numbers of performance.csv."""
    path = write(make_predictions(150, models=("A", "B")), tmp_path / "p.csv")
    assert main(["analyze", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0", "--no-figures"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["model", "training", "AUC", "(95%", "CI)", "validation", "AUC", "(95%", "CI)"]
    performance = pd.read_csv(tmp_path / "o" / "performance.csv").set_index(["model", "cohort"])
    for line in lines[1:]:
        model, *cells = line.split()
        assert len(cells) == 4
        for cohort, (auc, ci) in zip(("training", "validation"), zip(cells[::2], cells[1::2])):
            row = performance.loc[(model, cohort)]
            assert auc == f"{row.auc:.3f}" and ci == f"({row.auc_ci_low:.3f}-{row.auc_ci_high:.3f})"
    assert [line.split()[0] for line in lines[1:]] == ["A", "B"]


def test_a_semicolon_separated_predictions_file_is_named_once(tmp_path, capsys):
    path = tmp_path / "p.csv"
    GOOD.to_csv(path, index=False, sep=";")
    code, err = analyze_cli(capsys, path, "--out", tmp_path / "o")
    assert code == 2 and "separated by ';'" in err and str(path) in err and "comma-separated" in err
    assert "missing column" not in err and not (tmp_path / "o").exists()
