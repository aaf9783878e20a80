"""report/tables.py: the display tables show the saved numbers, rounded for display only.

Two kinds of test. Fast ones on small hand-written run files check each formatting rule
("< 0.001", the CI layout, level order, the deep-learning note, None for absent inputs, the
pipe-table syntax). The slow ones build a real run with the `dlr` commands (synthetic study,
`train`, `analyze --oof`, `table1`, `logistic`, `staging`) once per session and check that
every number shown equals its CSV value rounded, computed here independently with f-strings.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_dlr
from dlr.report.tables import (DL_NOT_RUN, THRESHOLD_GROUP, DisplayTable, agreement_table, best_radiomics_model, calibration_table,
                           delong_table, format_ci, format_count, format_number, format_p, internal_validation_table,
                           level_label, oof_table,
                           pipe_table, reclassification_table, report_tables, sample_size_table, scanner_table,
                           selection_table, staging_table, table1, table2, table3, table4)

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"
IDS = ["tbl-1-characteristics", "tbl-2-classifiers", "tbl-3-logistic", "tbl-4-models", "tbl-s-delong",
       "tbl-s-staging", "tbl-s-scanner", "tbl-s-calibration", "tbl-s-reclassification", "tbl-s-sample-size",
       "tbl-s-agreement", "tbl-s-oof", "tbl-s-selection", "tbl-s-internal-validation"]
EVERY_TABLE = (table1, table2, table3, table4, delong_table, staging_table, scanner_table, calibration_table,
               reclassification_table, sample_size_table, agreement_table, oof_table, internal_validation_table,
               selection_table)


# --- independent display rules (the test's own, not the module's) --------------------------


def p_text(p) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def auc_text(row) -> str:
    return f"{row['auc']:.3f} ({row['auc_ci_low']:.3f}–{row['auc_ci_high']:.3f})"


def or_text(row) -> str:
    return f"{row['odds_ratio']:.2f} ({row['ci_low']:.2f}–{row['ci_high']:.2f})"


def cells(line: str) -> list[str]:
    """The cells of one pipe-table line (``|`` escaped as ``\\|`` is not a separator)."""
    parts = re.split(r"(?<!\\)\|", line)
    assert parts[0].strip() == "" and parts[-1].strip() == "", line
    return [p.strip() for p in parts[1:-1]]


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def pandoc_executable() -> str | None:
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError):
        return shutil.which("pandoc")


def check_pipe_table(table: DisplayTable) -> None:
    """Every line has the frame's number of cells, an alignment row, the caption line with
    the label, the notes after it; and pandoc reads one table of that shape."""
    text = pipe_table(table)
    lines = table_lines(text)
    width = table.frame.shape[1]
    assert len(lines) == table.frame.shape[0] + 2
    assert all(len(cells(line)) == width for line in lines), table.id
    assert all(re.fullmatch(r":?-{3,}:?", c) for c in cells(lines[1]))
    assert f"\n\n: {table.caption} {{#{table.id}}}\n" in text
    if table.notes:
        # as markdown: a footnote symbol such as * escaped
        assert text.rstrip().replace("\\", "").endswith(table.notes.replace("\n", " ").strip())
    exe = pandoc_executable()
    if exe is None:
        return
    doc = json.loads(subprocess.run([exe, "-f", "markdown", "-t", "json"], input=text, capture_output=True,
                                    text=True, check=True).stdout)
    tables = [b for b in doc["blocks"] if b["t"] == "Table"]
    assert len(tables) == 1, table.id
    spec = tables[0]["c"]
    assert len(spec[2]) == width
    assert sum(len(body[3]) for body in spec[4]) == table.frame.shape[0]


# --- fast: formatting -------------------------------------------------------------------------


def test_p_values_round_to_three_decimals_and_small_ones_read_below_0001():
    assert format_p(0.00099999) == "< 0.001"
    assert format_p(1e-12) == "< 0.001"
    assert format_p(0.001) == "0.001"
    assert format_p(0.0460556051012529) == "0.046"
    assert format_p(0.999999999999981) == "1.000"
    assert format_p(float("nan")) == "NA" and format_p(None) == "NA"


def test_estimates_cis_and_counts():
    assert format_ci(0.80392, 0.65011, 0.95738) == "0.804 (0.650–0.957)"
    assert format_ci(2.490, 1.1404, 5.4401, 2) == "2.49 (1.14–5.44)"
    assert format_ci(-0.2096, -0.3131, -0.1062) == "-0.210 (-0.313 to -0.106)"
    assert format_ci(0.5, float("nan"), float("nan")) == "0.500"
    assert format_number(-0.00001) == "0.000"  # never "-0.000"
    assert format_number(2.233988761886801e-16) == "0.000"
    assert format_count(132.0) == "132" and format_count(float("nan")) == "NA"
    assert level_label("<=400") == "≤ 400" and level_label(">5") == "> 5" and level_label("Male") == "Male"


def test_pipe_table_escapes_bars_and_newlines():
    frame = pd.DataFrame({"A | B": ["x|y", "two\nlines"], "C": ["1", ""]})
    table = DisplayTable("tbl-s-test", "A caption with a | bar.", frame, "Notes\non two lines.")
    text = pipe_table(table)
    lines = table_lines(text)
    assert cells(lines[0]) == ["A \\| B", "C"]
    assert cells(lines[2]) == ["x\\|y", "1"] and cells(lines[3]) == ["two lines", ""]
    assert ": A caption with a | bar. {#tbl-s-test}" in text and text.rstrip().endswith("Notes on two lines.")
    check_pipe_table(DisplayTable("tbl-s-test", "Caption.", frame, "Notes."))


# --- fast: hand-written run files ---------------------------------------------------------------


def _perf_row(model, cohort, auc, *, source="out-of-fold", probability=True):
    row = {"model": model, "cohort": cohort, "score_type": "probability" if probability else "index", "n": 40,
           "n_events": 22, "auc": auc, "auc_ci_low": auc - 0.1, "auc_ci_high": min(auc + 0.1, 1.0),
           "threshold": 0.5, "threshold_source": source, "sensitivity": 0.8123, "specificity": 0.6049,
           "accuracy": 0.7254, "ppv": 0.7149, "npv": 0.7351}
    if probability:
        row.update(brier=0.2, cal_intercept=-1e-17, cal_slope=1.0, hl_chi2=3.21, hl_df=8, hl_p=0.92)
    return row


def _mini_run(root: Path, *, deep: bool = False) -> Path:
    """A run folder with hand-written results, Table 1 and logistic files."""
    models = ["CR", "Radiomics-LR", "Radiomics-SVM", "RCR", "BCLC"] + (["DL-ResNet10", "DLRCR"] if deep else [])
    cohorts = ["training", "training (out-of-fold)", "validation"]
    rows = []
    for k, model in enumerate(models):
        for j, cohort in enumerate(cohorts):
            if model == "BCLC" and cohort != "training" and "out-of-fold" in cohort:
                continue
            rows.append(_perf_row(model, cohort, 0.6 + 0.05 * k - 0.02 * j,
                                  source="apparent" if model == "BCLC" else "out-of-fold",
                                  probability=model != "BCLC"))
    (root / "results").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "results" / "performance.csv", index=False)
    tests = [{"model": m, "cohort_a": a, "cohort_b": "validation", "n_a": 40, "n_b": 20, "auc_a": 0.7, "auc_b": 0.6,
              "statistic": 1.0, "df": 30.0, "p_value": p}
             for m, p in zip(models, [0.00042, 0.4364, 0.03, 0.5, 0.9, 0.2, 0.3]) for a in cohorts[:2]]
    pd.DataFrame(tests).to_csv(root / "results" / "cohort_tests.csv", index=False)
    settings = {"dev_cohort": "training", "cohorts": cohorts, "models": models, "reference": "RCR",
                "reference_chosen_by": "highest out-of-fold development AUC", "oof_cohort": cohorts[1],
                "n_bootstrap": 100}
    (root / "results" / "results.json").write_text(json.dumps({"settings": settings}))
    (root / "clinical").mkdir()
    table = pd.DataFrame([
        ["n", "", "20", "20", "9", "11"],
        ["gender", "Male", "15 (75.0%)", "12 (60.0%)", "5 (55.6%)", "9 (81.8%)"],
        ["gender", "Female", "5 (25.0%)", "8 (40.0%)", "4 (44.4%)", "2 (18.2%)"],
        ["afp", ">400", "3 (15.0%)", "9 (45.0%)", "1 (11.1%)", "4 (36.4%)"],   # study.yaml's order, not sorted
        ["afp", "<=400", "17 (85.0%)", "11 (55.0%)", "8 (88.9%)", "7 (63.6%)"],
        ["age", "median (Q1, Q3)", "58.0 (51.0, 64.0)", "60.0 (52.5, 66.0)", "57.0 (50.0, 61.0)", "59.0 (55.0, 63.0)"],
        ["age", "missing", "1", "0", "0", "0"],
    ], columns=["variable", "level", "training: early_recurrence=0", "training: early_recurrence=1",
                "validation: early_recurrence=0", "validation: early_recurrence=1"])
    table.to_csv(root / "clinical" / "table1.csv", index=False)
    t1 = [("gender", "training", "chi-squared (Yates)", 0.3554), ("gender", "validation", "Fisher exact", 1.0),
          ("gender", "between_cohorts", "chi-squared (Yates)", 0.958),
          ("afp", "training", "chi-squared (Yates)", 0.00042), ("afp", "validation", "not testable", np.nan),
          ("afp", "between_cohorts", "Fisher exact", 0.397),
          ("age", "training", "Mann-Whitney U", 0.6041), ("age", "validation", "Mann-Whitney U", 0.758),
          ("age", "between_cohorts", "Mann-Whitney U", 0.642)]
    pd.DataFrame(t1, columns=["variable", "scope", "test", "p_value"]).assign(statistic=np.nan).to_csv(
        root / "clinical" / "table1_tests.csv", index=False)
    uni = pd.DataFrame([["gender", "Female", "Male", 0.5749, 0.2251, 1.4682, 0.2472],
                        ["afp", ">400", "<=400", 2.9474, 1.1005, 7.8940, 0.0315],
                        ["age", "", "", 1.0123, 0.98, 1.04, 0.00004]],
                       columns=["variable", "level", "reference", "odds_ratio", "ci_low", "ci_high", "p_value"])
    uni.to_csv(root / "clinical" / "univariate.csv", index=False)
    uni.iloc[1:].to_csv(root / "clinical" / "multivariate.csv", index=False)
    (root / "clinical" / "selected.txt").write_text("afp\nage\n")
    return root


def test_absent_inputs_give_none(tmp_path):
    for make in EVERY_TABLE:
        assert make(tmp_path) is None, make.__name__
    assert report_tables(tmp_path) == ()
    run = _mini_run(tmp_path / "run")
    assert table1(run, clinical="elsewhere") is None and table3(run, logistic="elsewhere") is None
    assert sample_size_table(run) is None and agreement_table(run) is None and scanner_table(run) is None


def test_table1_keeps_levels_and_shows_p_and_test(tmp_path):
    t = table1(_mini_run(tmp_path))
    f = t.frame
    assert t.id == "tbl-1-characteristics"
    assert list(f["Level"]) == ["Male", "Female", "> 400", "≤ 400", "median (Q1, Q3)", "missing"]
    assert list(f["Characteristic"]) == ["Gender", "", "AFP (ng/mL)", "", "Age (years)", ""]
    # ER (outcome 1) before NER, with group sizes; the cells are table1.csv's
    assert list(f.columns[2:4]) == ["Training cohort (n = 40): ER (n = 20)", "Training cohort (n = 40): NER (n = 20)"]
    assert f.iloc[0, 2] == "12 (60.0%)" and f.iloc[0, 3] == "15 (75.0%)"
    afp = f.iloc[2]
    # each P value carries its test's footnote symbol, named once in the notes (no test column)
    training, validation = "Training cohort (n = 40): P value", [c for c in f.columns if c.startswith("Validation")][-1]
    assert afp[training] == "< 0.001*" and "* chi-squared (Yates)" in t.notes
    assert afp[validation] == "not testable"
    assert afp["Between cohorts: P value"].startswith("0.397") and f.iloc[0][training].startswith("0.355")
    assert f.iloc[3][training] == ""  # once per variable
    assert not [c for c in f.columns if c.endswith("test")]
    check_pipe_table(t)


def test_table2_and_table4_cells_and_notes(tmp_path):
    run = _mini_run(tmp_path)
    t2 = table2(run)
    f = t2.frame
    assert list(f["Model"]) == ["Radiomics-LR", "", "", "Radiomics-SVM", "", ""]
    assert list(f["Cohort"][:3]) == ["Training (apparent)", "Training (out-of-fold)", "Validation"]
    assert f.iloc[0]["AUC (95% CI)"] == "0.650 (0.550–0.750)"
    assert f.iloc[0][f"{THRESHOLD_GROUP}: Sensitivity"].startswith("0.812")
    assert f.iloc[0]["P value vs validation"] == "0.436" and f.iloc[2]["P value vs validation"] == "—"
    assert "out-of-fold predictions (Radiomics-LR and Radiomics-SVM)" in t2.notes
    t4 = table4(run, best_model="Radiomics-SVM")
    models = [m for m in t4.frame["Model"] if m]
    assert models == ["CR", "Radiomics-SVM", "RCR"]
    assert t4.frame.iloc[0]["P value vs validation"] == "< 0.001"
    assert DL_NOT_RUN in t4.notes
    assert "CR" in t4.notes and "apparent" in t2.notes
    deep = table4(_mini_run(tmp_path / "deep", deep=True), best_model="Radiomics-LR")
    assert [m for m in deep.frame["Model"] if m] == ["CR", "Radiomics-LR", "DL-ResNet10", "RCR", "DLRCR"]
    assert DL_NOT_RUN not in deep.notes and "DL-ResNet18 and DL-ResNet34: not in this run" in deep.notes
    for t in (t2, t4, deep):
        check_pipe_table(t)


def test_table3_rows_or_and_p(tmp_path):
    t = table3(_mini_run(tmp_path))
    f = t.frame
    assert list(f["Comparison"]) == ["Female vs Male", "> 400 vs ≤ 400", "per unit"]
    assert f.iloc[1]["Univariate: OR (95% CI)"] == "2.95 (1.10–7.89)" and f.iloc[1]["Univariate: P value"] == "0.032"
    assert f.iloc[0]["Multivariate: OR (95% CI)"] == "—" and f.iloc[2]["Multivariate: P value"] == "< 0.001"
    assert "AFP (ng/mL) and Age (years)" in t.notes
    check_pipe_table(t)


# --- slow: a real run made with the dlr commands ---------------------------------------------------


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Path:
    """A synthetic run: 100 patients (the smallest synthetic study whose CR selection finds a
    factor: at 60 no variable reaches multivariate P < 0.05, so no CR or RCR model), images on a
    coarse grid with the light PyRadiomics parameters so that extraction takes seconds.

    Built once per test session even when xdist spreads these tests over workers (the
    ``xdist_group`` mark does not keep them together under pytest 9): under xdist the run lives
    in the session's shared temporary folder and the first worker builds it under a file lock.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, shared by its workers
    base = base / "report_tables_run"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (base / "DONE").is_file():
                shutil.rmtree(base / "S", ignore_errors=True)
                shutil.rmtree(base / "R", ignore_errors=True)
                _build_run(base / "S", base / "R")
                (base / "DONE").write_text("")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return base / "R"


def _build_run(study: Path, out: Path) -> None:

    def dlr(*args):
        res = run_dlr(*args)
        assert res.returncode == 0, f"dlr {args[0]}: {res.stderr[-3000:]}"

    dlr("synth", "--out", study, "--n", "100")
    config = yaml.safe_load((study / "study.yaml").read_text())
    config["preprocessing"] = {"spacing": [3.0, 3.0, 5.0]}
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dlr("train", study, "--out", out, "--params", LIGHT, "--jobs", "1")
    dlr("analyze", out / "predictions.csv", "--oof", out / "predictions_oof.csv", "--strata", "scanner",
        "--bootstrap", "100", "--out", out / "results", "--no-figures")
    clinical = ["--outcome", "early_recurrence", "--cohort", "cohort", "--study", study / "study.yaml"]
    dlr("table1", study / "clinical.csv", *clinical, "--out", out / "clinical")
    dlr("logistic", study / "clinical.csv", *clinical, "--out", out / "clinical")
    dlr("staging", study / "clinical.csv", "--study", study / "study.yaml", "--out", out / "staging")


def _csv(path, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], **kwargs)



@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_every_table_is_built_with_its_label_and_a_valid_pipe_table(run):
    tables = report_tables(run)
    assert [t.id for t in tables] == IDS
    for t in tables:
        assert t.caption.endswith(".") and t.notes
        assert all(isinstance(v, str) for v in t.frame.to_numpy().ravel()), t.id
        check_pipe_table(t)


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_table2_shows_performance_and_cohort_tests_rounded(run):
    perf = _csv(run / "results" / "performance.csv").set_index(["model", "cohort"])
    tests = _csv(run / "results" / "cohort_tests.csv").set_index(["model", "cohort_a", "cohort_b"])
    frame = table2(run).frame
    model = None
    for _, line in frame.iterrows():
        model = line["Model"] or model
        cohort = line["Cohort"].lower().replace(" (apparent)", "")
        row = perf.loc[(model, cohort)]
        assert line["AUC (95% CI)"] == auc_text(row)
        for column, key in [("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"), ("Specificity", "specificity"),
                            ("PPV", "ppv"), ("NPV", "npv")]:  # with its Wilson CI
            assert line[f"{THRESHOLD_GROUP}: {column}"] == (f"{row[key]:.3f} ({row[key + '_ci_low']:.3f}–"
                                                             f"{row[key + '_ci_high']:.3f})")
        assert line["n (events)"] == f"{int(row['n'])} ({int(row['n_events'])})"
        expected = p_text(tests.loc[(model, cohort, "validation"), "p_value"]) if cohort != "validation" else "—"
        assert line["P value vs validation"] == expected
    # the example the brief names: Radiomics-LR in the validation cohort
    lr = frame.index[frame["Model"] == "Radiomics-LR"][0]
    validation = frame.loc[lr:lr + 2].set_index("Cohort").loc["Validation"]
    assert validation["AUC (95% CI)"] == auc_text(perf.loc[("Radiomics-LR", "validation")])
    assert set(frame["Cohort"]) == {"Training (apparent)", "Training (out-of-fold)", "Validation"}
    assert "out-of-fold predictions" in table2(run).notes


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_table1_keeps_table1_csv_order_and_tests(run):
    source = _csv(run / "clinical" / "table1.csv", dtype=str).fillna("")
    tests = _csv(run / "clinical" / "table1_tests.csv").set_index(["variable", "scope"])
    t = table1(run)
    body = source[source["variable"] != "n"]
    assert list(t.frame["Level"]) == [level_label(lv) for lv in body["level"]]
    er = [c for c in t.frame.columns if c.startswith("Training cohort") and ": ER (" in c][0]
    assert list(t.frame[er]) == list(body["training: early_recurrence=1"])
    firsts = t.frame[t.frame["Characteristic"] != ""]
    column = {scope: [c for c in t.frame.columns if c.startswith(prefix) and c.endswith("P value")][0]
              for scope, prefix in [("training", "Training"), ("validation", "Validation"),
                                    ("between_cohorts", "Between cohorts")]}
    for (_, line), variable in zip(firsts.iterrows(), dict.fromkeys(body["variable"])):
        for scope in column:
            p, test = tests.loc[(variable, scope), "p_value"], tests.loc[(variable, scope), "test"]
            if test == "not testable":
                assert line[column[scope]] == "not testable"
                continue
            mark = line[column[scope]][-1]
            assert line[column[scope]] == (p_text(p) if np.isfinite(p) else "—") + mark
            assert f"{mark} {test}" in t.notes  # the symbol's test, named in the notes


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_table3_shows_the_logistic_files_rounded(run):
    uni = _csv(run / "clinical" / "univariate.csv", dtype={"level": str, "reference": str})
    multi = _csv(run / "clinical" / "multivariate.csv", dtype={"level": str}).fillna({"level": ""})
    frame = table3(run).frame
    assert len(frame) == len(uni)
    for (_, line), (_, row) in zip(frame.iterrows(), uni.iterrows()):
        assert line["Univariate: OR (95% CI)"] == or_text(row) and line["Univariate: P value"] == p_text(row["p_value"])
        match = multi[(multi["variable"] == row["variable"]) & (multi["level"] == ("" if pd.isna(row["level"])
                                                                                    else row["level"]))]
        if len(match):
            assert line["Multivariate: OR (95% CI)"] == or_text(match.iloc[0])
            assert line["Multivariate: P value"] == p_text(match.iloc[0]["p_value"])
        else:
            assert line["Multivariate: OR (95% CI)"] == "—"
    assert len(multi) and (run / "clinical" / "selected.txt").read_text().split()


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_table4_models_best_radiomics_and_the_deep_learning_note(run):
    models = _csv(run / "models" / "models.csv")
    best = models.loc[models["best_classifier"].astype(str) == "True", "model"].iloc[0]
    assert best_radiomics_model(run) == best
    t = table4(run)
    assert [m for m in t.frame["Model"] if m] == ["CR", best, "RCR"]
    assert DL_NOT_RUN in t.notes
    perf = _csv(run / "results" / "performance.csv").set_index(["model", "cohort"])
    cr = t.frame.iloc[0]
    assert cr["AUC (95% CI)"] == auc_text(perf.loc[("CR", "training")])
    other = next(m for m in ("Radiomics-SVM", "Radiomics-LR") if m != best)
    assert [m for m in table4(run, best_model=other).frame["Model"] if m][1] == other


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_supplementary_tables_show_their_files_rounded(run):
    settings = json.loads((run / "results" / "results.json").read_text())["settings"]
    reference = settings["reference"]
    comp = _csv(run / "results" / "comparisons.csv")
    # DeLong matrix: CR (first model) against Radiomics-LR in the training cohort
    row = comp[(comp["cohort"] == "training") & (comp["model_a"] == "CR") & (comp["model_b"] == "Radiomics-LR")].iloc[0]
    matrix = delong_table(run).frame
    cr = matrix[(matrix["Cohort"] == "Training") & (matrix["Model"] == "CR")].iloc[0]
    assert cr["Radiomics-LR"] == f"{row['diff']:.3f} ({p_text(row['p_adjusted'])})"
    # staging systems against the reference model, paired DeLong p
    staging = staging_table(run).frame.set_index("Model")
    assert staging.index[0] == reference
    pair = comp[(comp["cohort"] == "validation") & comp["model_a"].isin(["BCLC", reference])
                & comp["model_b"].isin(["BCLC", reference])].iloc[0]
    assert staging.loc["BCLC", f"Validation: P value vs {reference}"] == p_text(pair["p_value"])
    perf = _csv(run / "results" / "performance.csv").set_index(["model", "cohort"])
    assert staging.loc["BCLC", "Training: AUC (95% CI)"] == auc_text(perf.loc[("BCLC", "training")])
    # scanner strata: the P between once per model and cohort
    sub = _csv(run / "results" / "subgroups.csv", dtype={"level": str})
    scanner = scanner_table(run).frame
    first = sub.iloc[0]
    assert scanner.iloc[0]["AUC (95% CI)"] == auc_text(first) and scanner.iloc[0]["Level"] == first["level"]
    assert scanner.iloc[0]["P value between levels"] == p_text(first["p_between"])
    assert scanner.iloc[1]["P value between levels"] == ""
    assert (scanner["P value between levels"] != "").sum() == len(sub.groupby(["model", "cohort"]))
    # calibration
    cal = calibration_table(run).frame
    rcr = perf.loc[("RCR", "validation")]
    line = cal.iloc[cal.index[cal["Model"] == "RCR"][0] + 2]
    assert line["Cohort"] == "Validation" and line["Calibration slope"] == f"{rcr['cal_slope']:.3f}"
    assert line["Brier score"] == f"{rcr['brier']:.3f}" and line["HL P value"] == p_text(rcr["hl_p"])
    # NRI / IDI
    rec = _csv(run / "results" / "reclassification.csv")
    first = rec.iloc[0]
    shown = reclassification_table(run).frame.iloc[0]
    assert shown["Reference vs model"] == f"{reference} vs {first['model']}"
    assert shown["IDI P value"] == p_text(first["idi_p_value"])
    # sample size: the required minimum against the development cohort
    size = _csv(run / "clinical" / "sample_size.csv").iloc[0]
    frame = sample_size_table(run).frame.set_index("Criterion")
    assert frame.loc["Minimum required (largest of i-iii)", "Patients"] == str(int(size["n_required"]))
    assert frame.loc["Development cohort (actual)", "Patients"] == str(int(size["n_available"]))
    assert frame.loc["Development cohort (actual)", "Events"] == str(int(size["events_available"]))
    # reader agreement: features kept per phase
    icc = _csv(run / "models" / "icc.csv")
    agreement = agreement_table(run)
    ap = agreement.frame.set_index("Phase or feature").loc["AP", "Agreement"]
    kept = icc[icc["feature"].str.startswith("AP_")]
    assert ap.startswith(f"{int(kept['kept'].sum())} of {len(kept)} features with ICC > 0.90")
    assert "no kappa file" in agreement.notes
    # out-of-fold against apparent against validation
    oof = oof_table(run).frame.set_index("Model")
    lr = perf.loc[("Radiomics-LR", "training (out-of-fold)")]
    assert oof.loc["Radiomics-LR", "Out-of-fold AUC (95% CI)"] == auc_text(lr)
    optimism = perf.loc[("Radiomics-LR", "training"), "auc"] - lr["auc"]
    assert oof.loc["Radiomics-LR", "Optimism (apparent − out-of-fold)"] == f"{optimism:.3f}"


@pytest.mark.slow
@pytest.mark.xdist_group("report_tables")
def test_folder_names_are_parameters(run, tmp_path):
    copy = tmp_path / "R"
    shutil.copytree(run, copy)
    shutil.move(copy / "clinical", copy / "clinical_logistic")
    assert table3(copy) is None and sample_size_table(copy) is None
    assert table3(copy, logistic="clinical_logistic").frame.equals(table3(run).frame)
    ids = [t.id for t in report_tables(copy, logistic="clinical_logistic")]
    assert "tbl-3-logistic" in ids and "tbl-1-characteristics" not in ids
