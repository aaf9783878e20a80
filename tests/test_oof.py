"""`dlr analyze --oof`: out-of-fold development predictions (contract 4.1) add the
`<dev> (out-of-fold)` cohort, choose each model's threshold and the default NRI/IDI reference,
and are validated against the predictions file at the boundary (exit 2 naming the problem)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from dlr.analysis import figures
from dlr.analysis.discrimination import delong_test, roc_auc_delong
from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import PredictionsError, validate_predictions
from dlr.analysis.thresholds import threshold_metrics
from conftest import make_predictions
from dlr.core.output import file_sha256
from dlr.core.stats.roc import youden_threshold
from dlr.cli import main

OOF = "training (out-of-fold)"


def _oof_scores(frame: pd.DataFrame, strength: dict, seed: int = 5) -> pd.DataFrame:
    """Out-of-fold rows for the development patients of the models in ``strength`` (signal per model)."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, k in strength.items():
        g = frame[(frame["cohort"] == "training") & (frame["model"] == model)].copy()
        g["y_score"] = 1 / (1 + np.exp(-(g["y_true"] * k + rng.normal(0, 1, len(g)))))
        rows.append(g)
    return pd.concat(rows, ignore_index=True)


# models A, B, C: apparent development AUC grows from A to C (make_predictions' signal); the
# out-of-fold file has A (strong) and B (weak) only, and misses 5 of B's patients
PREDICTIONS = make_predictions(160, seed=2, models=("A", "B", "C"))
OOF_FRAME = _oof_scores(PREDICTIONS, {"A": 2.0, "B": 0.3})
MISSING_B = OOF_FRAME[OOF_FRAME["model"] == "B"]["patient_id"].iloc[:5].tolist()
OOF_FRAME = OOF_FRAME[~((OOF_FRAME["model"] == "B") & OOF_FRAME["patient_id"].isin(MISSING_B))].reset_index(drop=True)


def _curve(frame, model, cohort=None):
    g = frame[(frame["model"] == model) & ((frame["cohort"] == cohort) if cohort else True)]
    return g["y_true"].to_numpy(), g["y_score"].to_numpy()


@pytest.fixture(scope="module")
def result():
    predictions = validate_predictions(PREDICTIONS, strata=["scanner"], oof=OOF_FRAME)
    return analyze(predictions, strata=["scanner"], n_bootstrap=200, seed=3)


def test_the_case_is_the_one_intended():
    apparent = {m: roc_auc_delong(*_curve(PREDICTIONS, m, "training")).estimate for m in "ABC"}
    oof = {m: roc_auc_delong(*_curve(OOF_FRAME, m)).estimate for m in "AB"}
    assert max(apparent, key=apparent.get) == "C" and apparent["B"] > apparent["A"]
    assert oof["A"] > oof["B"]  # the out-of-fold ranking differs from the apparent one


def test_out_of_fold_rows_are_a_cohort_of_their_own(result):
    perf = result.performance.set_index(["model", "cohort"])
    assert list(dict.fromkeys(result.performance["cohort"])) == ["training", OOF, "validation"]
    assert result.settings["cohorts"] == ["training", OOF, "validation"]
    assert set(perf.xs(OOF, level="cohort").index) == {"A", "B"}  # C has no out-of-fold predictions
    for model in "AB":
        y, s = _curve(OOF_FRAME, model)
        auc = roc_auc_delong(y, s)
        row = perf.loc[(model, OOF)]
        assert row["n"] == y.size and row["n_events"] == y.sum()
        assert_allclose([row["auc"], row["auc_se"], row["auc_ci_low"], row["auc_ci_high"]],
                        [auc.estimate, auc.se, auc.ci_low, auc.ci_high], rtol=1e-12)
        assert row["auc_boot_low"] < row["auc"] < row["auc_boot_high"]
        assert np.isfinite([row["brier"], row["cal_slope"], row["hl_p"]]).all()  # calibration too
        assert_allclose(row["brier"], np.mean((s - y) ** 2), rtol=1e-12)
        ops = threshold_metrics(y, s, row["threshold"])
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (ops.tp, ops.fp, ops.tn, ops.fn)
    assert perf.loc[("B", OOF), "n"] == perf.loc[("B", "training"), "n"] - len(MISSING_B)


def test_thresholds_come_from_the_out_of_fold_predictions_where_they_exist(result):
    perf = result.performance
    for model in "ABC":
        rows = perf[perf["model"] == model]
        if model in "AB":
            expected, source = youden_threshold(*_curve(OOF_FRAME, model)), "out-of-fold"
        else:
            expected, source = youden_threshold(*_curve(PREDICTIONS, model, "training")), "apparent"
        assert (rows["threshold"] == expected).all(), model  # the same on every cohort row, exactly
        assert (rows["threshold_source"] == source).all(), model
        assert result.settings["thresholds"][model] == expected
        assert result.settings["threshold_source"][model] == source
    # and differs from the apparent development threshold
    assert perf.loc[perf["model"] == "A", "threshold"].iloc[0] != youden_threshold(*_curve(PREDICTIONS, "A", "training"))


def test_without_out_of_fold_predictions_every_threshold_is_apparent():
    plain = analyze(validate_predictions(PREDICTIONS), n_bootstrap=0)
    assert (plain.performance["threshold_source"] == "apparent").all()
    assert set(plain.performance["cohort"]) == {"training", "validation"}
    assert plain.settings["oof_cohort"] is None and plain.settings["reference"] == "C"
    assert plain.settings["reference_chosen_by"] == "highest development AUC"


def test_paired_comparisons_within_the_out_of_fold_cohort_use_the_common_patients(result):
    rows = result.comparisons[result.comparisons["cohort"] == OOF]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["model_a"], row["model_b"]) == ("A", "B")
    common = OOF_FRAME.pivot(index="patient_id", columns="model", values="y_score").dropna()
    y = OOF_FRAME.drop_duplicates("patient_id").set_index("patient_id").loc[common.index, "y_true"].to_numpy()
    test = delong_test(y, common["A"].to_numpy(), common["B"].to_numpy())
    assert row["n"] == len(common) == OOF_FRAME["patient_id"].nunique() - len(MISSING_B)
    assert_allclose([row["auc_a"], row["auc_b"], row["diff"], row["z"], row["p_value"]],
                    [test.auc_a, test.auc_b, test.diff, test.statistic, test.p_value], rtol=1e-12)
    assert row["p_adjusted"] == row["p_value"]  # Holm over one comparison
    # the other cohorts' comparisons are those of every pair of the three models
    assert (result.comparisons["cohort"] != OOF).sum() == 2 * 3


def test_default_reference_is_the_best_out_of_fold_model(result):
    assert result.settings["reference"] == "A"  # not C (no out-of-fold predictions), not B (better apparent AUC)
    assert result.settings["reference_chosen_by"] == "highest out-of-fold development AUC"
    assert set(result.reclassification["reference"]) == {"A"}
    assert set(result.reclassification["cohort"]) == {"training", OOF, "validation"}
    # a reference given on the command line wins
    given = analyze(validate_predictions(PREDICTIONS), oof=OOF_FRAME, reference="C", n_bootstrap=0)
    assert given.settings["reference"] == "C" and given.settings["reference_chosen_by"] == "--reference"


def test_the_other_tables_take_the_out_of_fold_cohort_without_breaking(result):
    tests = result.cohort_tests
    assert set(zip(tests["cohort_a"], tests["cohort_b"])) == {("training", "validation"), (OOF, "validation")}
    assert set(tests.loc[tests["cohort_a"] == OOF, "model"]) == {"A", "B"}
    assert set(result.subgroups["cohort"]) == {"training", OOF, "validation"}
    assert set(result.decision_curve.loc[result.decision_curve["cohort"] == OOF, "model"]) == \
        {"A", "B", "treat_all", "treat_none"}
    assert set(result.calibration["cohort"]) == {"training", OOF, "validation"}
    assert {(OOF, "A"), (OOF, "B")} <= set(result.roc)
    stems = {job[1] for job in figures.figure_jobs(result)}
    assert {"roc_training_out-of-fold", "calibration_training_out-of-fold",
            "decision_curve_training_out-of-fold"} <= stems


def _analyze_cli(tmp_path, oof_frame, *options, oof_name="predictions_oof.csv"):
    """`dlr analyze PREDICTIONS --oof FILE OPTIONS` on PREDICTIONS and ``oof_frame`` (None: no
    such file) written into tmp_path: (exit code, the OOF path, the out folder)."""
    predictions, oof, out = tmp_path / "predictions.csv", tmp_path / oof_name, tmp_path / "results"
    PREDICTIONS.to_csv(predictions, index=False)
    if oof_frame is not None:
        oof_frame.to_csv(oof, index=False)
    return main(["analyze", str(predictions), "--oof", str(oof), "--out", str(out), *options]), oof, out


def test_cli_oof_writes_the_rows_settings_and_provenance(tmp_path, capsys):
    code, oof, out = _analyze_cli(tmp_path, OOF_FRAME, "--bootstrap", "50", "--strata", "scanner")
    predictions = tmp_path / "predictions.csv"
    captured = capsys.readouterr()
    assert code == 0, captured.err
    perf = pd.read_csv(out / "performance.csv")
    assert set(perf["cohort"]) == {"training", OOF, "validation"}
    assert set(perf.loc[perf["threshold_source"] == "out-of-fold", "model"]) == {"A", "B"}
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert (comparisons["cohort"] == OOF).sum() == 1
    doc = json.loads((out / "results.json").read_text())
    assert doc["settings"]["oof_predictions"] == str(oof) and doc["settings"]["oof_cohort"] == OOF
    assert doc["settings"]["threshold_source"] == {"A": "out-of-fold", "B": "out-of-fold", "C": "apparent"}
    assert doc["settings"]["reference"] == "A"
    assert {r["cohort"] for r in doc["performance"]} == {"training", OOF, "validation"}
    provenance = doc["provenance"]
    assert provenance["inputs"] == {"predictions": file_sha256(predictions), "oof_predictions": file_sha256(oof)}
    assert provenance["settings"]["oof"] == str(oof)
    assert (out / "figures" / "roc_training_out-of-fold.png").stat().st_size > 3000
    header = captured.out.splitlines()[0]
    assert f"{OOF} AUC (95% CI)" in header  # the terminal table has the out-of-fold column


def _bad(frame, cells):
    f = frame.copy()
    for (row, col), value in cells.items():
        f[col] = f[col].astype(object)
        f.loc[row, col] = value
    return f


VALIDATION_ID = PREDICTIONS.loc[PREDICTIONS["cohort"] == "validation", "patient_id"].iloc[0]
P0 = OOF_FRAME.loc[0, "patient_id"]
P3 = OOF_FRAME.loc[3, "patient_id"]
BAD = {
    "validation_patient": (_bad(OOF_FRAME, {(0, "patient_id"): VALIDATION_ID}),
                           [VALIDATION_ID, "'validation'", "not the development cohort", "model 'A'"]),
    "unknown_patient": (_bad(OOF_FRAME, {(0, "patient_id"): "NOBODY"}), ["'NOBODY'", "line 2", "not in"]),
    "different_y_true": (_bad(OOF_FRAME, {(3, "y_true"): 1 - OOF_FRAME.loc[3, "y_true"]}),
                         [repr(P3), "y_true", "line 5, model 'A'"]),
    "unknown_model": (_bad(OOF_FRAME, {(0, "model"): "RCR"}), ["'RCR'", "not a model of", "'A', 'B', 'C'"]),
    "duplicate_row": (pd.concat([OOF_FRAME, OOF_FRAME.iloc[[4]]]), ["duplicate", OOF_FRAME.loc[4, "patient_id"],
                                                                     "'A'"]),
    "wrong_cohort_name": (OOF_FRAME.assign(cohort=OOF), [f"cohort = '{OOF}'", "development cohort 'training'"]),
    "nan_score": (_bad(OOF_FRAME, {(0, "y_score"): "NaN"}), ["y_score", repr(P0), "line 2"]),
    "missing_column": (OOF_FRAME.drop(columns="y_true"), ["missing column", "y_true"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_oof_input_exits_2_naming_the_file_patient_and_model(case, tmp_path, capsys):
    frame, needles = BAD[case]
    code, oof, out = _analyze_cli(tmp_path, frame, "--bootstrap", "0", "--no-figures", oof_name="oof.csv")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and str(oof) in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_every_disagreement_is_named_once_in_one_message():
    frame = _bad(OOF_FRAME, {(0, "patient_id"): VALIDATION_ID, (3, "y_true"): 1 - OOF_FRAME.loc[3, "y_true"],
                               (5, "model"): "Z", (6, "model"): "Z"})
    with pytest.raises(PredictionsError) as exc:
        validate_predictions(PREDICTIONS, oof=frame, oof_source="oof.csv")
    message = str(exc.value)
    assert message.startswith("oof.csv: does not match the predictions file")
    assert message.count(repr(VALIDATION_ID)) == 1 and message.count("model 'Z'") == 1
    assert message.count(f"patient {P3!r}") == 1


def test_missing_oof_file_exits_2(tmp_path, capsys):
    code, _, _ = _analyze_cli(tmp_path, None, oof_name="nope.csv")
    err = capsys.readouterr().err
    assert code == 2 and "nope.csv" in err and "out-of-fold" in err
