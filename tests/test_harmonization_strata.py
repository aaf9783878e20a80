"""The harmonisation's sensitivity analysis (issue 23 scope 5): with study.yaml ``harmonization``
the development chain is refitted without ComBat (``models/unharmonised_predictions.csv``), and
the report shows the scanner-stratified AUCs with and without it
(``results/harmonization_strata.csv``, the supplement's ``tbl-s-harmonization``)."""
from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose

from conftest import REPO, make_predictions, run_dlr
from dlr.analysis.discrimination import roc_auc_delong
from dlr.analysis.harmonization import COLUMNS, harmonization_strata
from dlr.core.csvsafe import write_csv
from dlr.core.errors import UndefinedStatisticWarning
from dlr.report.tables import format_ci, harmonization_table

# one xdist worker runs the module's trains
pytestmark = pytest.mark.xdist_group("harmonization_strata")

HARMONIZATION = {"method": "combat", "batch": "scanner"}
LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"


def _pairwise_auc(y, s) -> float:
    """The O(n^2) oracle: P(case scored above control), ties one half."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    cases, controls = s[y == 1], s[y == 0]
    if not cases.size or not controls.size:
        return float("nan")
    diff = cases[:, None] - controls[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def _with_and_without(n: int = 160):
    """Harmonised predictions of RCR, Radiomics-LR and CR, and unharmonised ones of the first two
    (the same patients and outcomes, other scores); a third scanner level of three patients
    without an event in the validation cohort."""
    harmonised = make_predictions(n, seed=4, models=("Radiomics-LR", "RCR", "CR"))
    rng = np.random.default_rng(11)
    odd = harmonised["patient_id"].isin(["P0150", "P0151", "P0152"])
    harmonised.loc[odd, "scanner"] = "X"
    harmonised.loc[odd, "y_true"] = 0
    unharmonised = harmonised[harmonised["model"] != "CR"].copy()
    unharmonised["y_score"] = np.round(unharmonised["y_score"] + rng.normal(0, 0.15, len(unharmonised)), 2)  # ties
    return harmonised, unharmonised.reset_index(drop=True)


def test_the_table_with_and_without_harmonisation_equals_rank_auc_per_level():
    harmonised, unharmonised = _with_and_without()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the harmonised file need not carry the batch: each patient's level is the unharmonised file's
        table = harmonization_strata(harmonised.drop(columns="scanner"), unharmonised, stratifier="scanner").table
    assert list(table.columns) == COLUMNS
    assert list(dict.fromkeys(table["model"])) == ["Radiomics-LR", "RCR"]  # CR: no unharmonised fit, left out
    assert list(dict.fromkeys(table["cohort"])) == ["training", "validation"]
    assert (table["stratifier"] == "scanner").all()
    undefined = [str(w.message) for w in caught if issubclass(w.category, UndefinedStatisticWarning)]
    assert len(undefined) == 4 and all("validation" in m and "'X'" in m for m in undefined), undefined
    assert {m.split(":")[0] for m in undefined} == {f"{m}, validation, {f} ComBat" for m in ("Radiomics-LR", "RCR")
                                                    for f in ("with", "without")}
    checked = 0
    for (model, cohort, flag), rows in table.groupby(["model", "cohort", "harmonised"], sort=False):
        source = harmonised if flag else unharmonised
        scored = source[(source["model"] == model) & (source["cohort"] == cohort)]
        assert list(rows["level"]) == sorted(set(scored["scanner"]))
        for r in rows.itertuples():
            inside = scored[scored["scanner"] == r.level]
            y, s = inside["y_true"].to_numpy(), inside["y_score"].to_numpy()
            assert (r.n, r.n_events) == (len(inside), int(y.sum()))
            if r.level == "X":  # one outcome class: NaN and its counts
                assert np.isnan(r.auc) and (r.n, r.n_events) == (3, 0)
                continue
            assert_allclose(r.auc, _pairwise_auc(y, s), rtol=0, atol=1e-12)
            ci = roc_auc_delong(y, s)  # the CI of results/subgroups.csv (DeLong)
            assert_allclose([r.auc_ci_low, r.auc_ci_high], [ci.ci_low, ci.ci_high], rtol=0, atol=1e-12)
            checked += 1
    assert checked == 2 * 2 * 2 + 2 * 2 * 2  # models x fits x (2 training levels + 2 defined validation levels)
    # the two fits differ where the scores do
    lr = table[(table["model"] == "Radiomics-LR") & (table["cohort"] == "training")]
    assert not np.allclose(lr.loc[lr["harmonised"], "auc"], lr.loc[~lr["harmonised"], "auc"])
    with pytest.raises(ValueError, match="'site'"):
        harmonization_strata(harmonised, unharmonised, stratifier="site")


def test_the_supplement_table_shows_both_fits_side_by_side_from_the_file(tmp_path):
    harmonised, unharmonised = _with_and_without()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedStatisticWarning)
        table = harmonization_strata(harmonised, unharmonised, stratifier="scanner").table
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    assert harmonization_table(run) is None  # no file: no table (and no section, build.py)
    write_csv(table, run / "results" / "harmonization_strata.csv")
    shown = harmonization_table(run)
    assert shown.id == "tbl-s-harmonization"
    assert shown.caption == "Scanner-stratified AUC with and without ComBat harmonisation."
    frame = shown.frame
    assert list(frame.columns) == ["Model", "Cohort", "MRI scanner", "n", "Events", "AUC with ComBat (95% CI)",
                                   "AUC without ComBat (95% CI)"]
    assert len(frame) == 2 * (2 + 3)  # a row per model, cohort and level, both fits on it
    assert list(frame["Model"]) == ["Radiomics-LR"] + [""] * 4 + ["RCR"] + [""] * 4
    for k, r in enumerate(frame.itertuples(index=False)):
        model = "Radiomics-LR" if k < 5 else "RCR"
        cohort = "training" if k % 5 < 2 else "validation"
        level = r[2]
        pair = table[(table["model"] == model) & (table["cohort"] == cohort) & (table["level"] == level)]
        with_, without = pair[pair["harmonised"]].iloc[0], pair[~pair["harmonised"]].iloc[0]
        assert r[3] == str(with_["n"]) and r[4] == str(with_["n_events"])
        assert r[5] == format_ci(with_["auc"], with_["auc_ci_low"], with_["auc_ci_high"])
        assert r[6] == format_ci(without["auc"], without["auc_ci_low"], without["auc_ci_high"])
    assert frame.iloc[4, 5] == frame.iloc[4, 6] == "NA"  # level X: one outcome class
    assert "sensitivity analysis" in shown.notes and "No test compares the two fits" in shown.notes


@pytest.mark.parametrize("present", [True, False])
def test_the_supplement_has_the_section_only_with_the_table(tmp_path, present):
    """report/_supplement.qmd rendered (pandoc fallback) with the table, and without it: no
    heading, no caption, nothing left of the section."""
    from dlr.report.build import GENERATED, SOURCES
    from dlr.report.render import render_report
    from dlr.report.tables import pipe_table

    src = tmp_path / "src"
    src.mkdir()
    supplement = (SOURCES / "_supplement.qmd").read_text()
    (src / "_supplement.qmd").write_text(supplement)
    (src / "_quarto.yml").write_text("project:\n  type: default\n")
    (src / "index.qmd").write_text(f"---\nmetadata-files:\n  - {GENERATED}/values.yml\nnumber-sections: true\n---\n\n"
                                   "{{< include _supplement.qmd >}}\n")
    for include in re.findall(r"\{\{< include (\S+) >\}\}", supplement):
        (src / include).parent.mkdir(parents=True, exist_ok=True)
        (src / include).write_text("")
    if present:
        harmonised, unharmonised = _with_and_without()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedStatisticWarning)
            table = harmonization_strata(harmonised, unharmonised, stratifier="scanner").table
        (tmp_path / "run" / "results").mkdir(parents=True)
        write_csv(table, tmp_path / "run" / "results" / "harmonization_strata.csv")
        (src / GENERATED / "tables" / "tbl-s-harmonization.md").write_text(
            pipe_table(harmonization_table(tmp_path / "run")) + "\n")
    (src / GENERATED / "values.yml").write_text(yaml.safe_dump({"dlr": {"has-harmonization-strata": present}}))
    render_report(src, tmp_path / "out", formats=("html",), renderer="pandoc")
    html = re.sub(r"\s+", " ", (tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    shown = ["with and without harmonisation", 'id="sec-supplement-harmonization"', 'id="tbl-s-harmonization"',
             "Scanner-stratified AUC with and without ComBat harmonisation", "AUC without ComBat", "Radiomics-LR"]
    assert [text in html for text in shown] == [present] * len(shown)
    assert "Scanner-stratified discrimination" in html  # the section before it, either way


# --------------------------------------------------------------------------------------------
# the unharmonised refit sees development patients only


def _clinical_study(root: Path) -> Path:
    """The synthetic study's clinical data (no images) with harmonisation on; 100 patients, so
    that CR (and with it RCR) has a factor."""
    from dlr.modeling.synthetic import synthesize_study

    synthesize_study(root, n=100, images=False)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["phases"] = []
    config["harmonization"] = dict(HARMONIZATION)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _features(root: Path, run: Path, *, seed: int = 3, p: int = 16) -> None:
    """``RUN/features/radiomics.csv``: features with an outcome signal and a strong 3.0 T gain and
    offset; reader 2 for 24 patients of both cohorts."""
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(clinical), p))
    x[:, :4] += 1.2 * clinical["early_recurrence"].to_numpy()[:, None]
    high = (clinical["scanner"] == "3.0T").to_numpy()
    x[high] = x[high] * 1.8 + 2.0
    columns = [f"AP_original_firstorder_F{i:02d}" for i in range(p)]
    reader1 = pd.DataFrame(x, columns=columns)
    reader1.insert(0, "reader", 1)
    reader1.insert(0, "patient_id", clinical["patient_id"])
    rows = np.r_[0:12, len(clinical) - 12:len(clinical)]  # training and validation patients
    reader2 = reader1.iloc[rows].copy()
    reader2["reader"] = 2
    reader2[columns] += rng.normal(0, 0.05, (len(rows), p))
    (run / "features").mkdir(parents=True, exist_ok=True)
    pd.concat([reader1, reader2], ignore_index=True).to_csv(run / "features" / "radiomics.csv", index=False,
                                                            float_format="%.17g")


def _altered(data, config):
    """``data`` with every validation patient's features (both readers) changed and outcome flipped."""
    other = copy.deepcopy(data)
    validation = list(other.ids[other.cohort == "validation"])
    assert validation
    other.features.loc[validation] = other.features.loc[validation] * 3.0 + 5.0
    seen = [p for p in validation if p in other.reader2.index]
    assert seen  # reader 2 has validation patients too
    other.reader2.loc[seen] = other.reader2.loc[seen] * 3.0 + 5.0
    flip = other.cohort == "validation"
    other.y = np.where(flip, 1 - other.y, other.y)
    other.clinical.loc[validation, config.outcome_column] = 1 - other.clinical.loc[validation, config.outcome_column]
    return other


def _fitted(fit) -> str:
    """Every fitted number of the unharmonised refit, as text."""
    from dlr.modeling import classifiers as clf

    sel = fit.selection
    return clf.parameters_json({
        "medians": {k: float(v) for k, v in fit.medians.items()},
        "icc_kept": list(sel.icc.kept) if sel.icc is not None else None,
        "univariate_kept": list(sel.univariate.kept),
        "lasso": {"C": float(sel.lasso.chosen_C), "intercept": float(sel.lasso.intercept),
                  "coefficients": {r.feature: float(r.coefficient) for r in sel.lasso.selected.itertuples()}},
        "models": {name: clf.fitted_parameters(model) for name, model in fit.tuned.items()},
        "cr": fit.cr.parameters()})


def test_the_unharmonised_refit_sees_no_validation_patient(tmp_path, monkeypatch):
    """Every validation patient's features changed and outcome flipped: the unharmonised refit's
    parameters and its development predictions do not move (its validation predictions do), and
    it fits no ComBat."""
    from dlr.modeling import classifiers as clf
    from dlr.modeling import train
    from dlr.modeling.clinical import fit_cr
    from dlr.modeling.study import load_study

    root = _clinical_study(tmp_path / "S")
    run = tmp_path / "run"
    _features(root, run)
    study = load_study(root, check_images=False)
    config = study.config
    _, data = train._study_data(study, run, ("clinical", "radiomics"), n_folds=5, seed=config.seed)
    assert data.batch is not None
    dev = data.cohort == config.dev_cohort
    # two of the five classifiers keep the test short; the property does not depend on which
    monkeypatch.setattr(clf, "CLASSIFIERS", ("LR", "KNN"))

    def no_combat(*args, **kwargs):
        raise AssertionError("the unharmonised refit fitted ComBat")

    monkeypatch.setattr(train, "fit_combat", no_combat)
    refits = []

    def recording(*args, **kwargs):
        refits.append(train_fit_unharmonised(*args, **kwargs))
        return refits[-1]

    train_fit_unharmonised = train._fit_unharmonised
    monkeypatch.setattr(train, "_fit_unharmonised", recording)
    kwargs = {"arms": ("clinical", "radiomics"), "seed": config.seed, "lasso_rule": "min", "icc_threshold": 0.9,
              "alpha": 0.05}
    tables = []
    for each in (data, _altered(data, config)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cr = fit_cr(each.clinical.reset_index(drop=True), config, dev_ids=each.ids[dev], alpha=0.05)
            harmonised = train._ArmFit(cr, None, None, {}, "LR")  # what the unharmonised refit takes from it
            tables.append(train._unharmonised_predictions(each, config, harmonised, dev, kwargs))
    before, after = tables
    assert list(dict.fromkeys(before["model"])) == ["Radiomics-LR", "Radiomics-KNN", "RCR"]
    assert list(before.columns[:5]) == ["patient_id", "cohort", "model", "y_true", "y_score"]
    assert "scanner" in before.columns and len(before) == 3 * len(data.ids)
    assert all(r.combat is None and r.tuned["RCR"].name == "LR" for r in refits)
    assert _fitted(refits[0]) == _fitted(refits[1])
    is_dev = before["cohort"] == config.dev_cohort
    pd.testing.assert_frame_equal(before[is_dev].reset_index(drop=True), after[is_dev].reset_index(drop=True),
                                  check_exact=True)
    for model in ("Radiomics-LR", "RCR"):  # the validation patients were scored on their own features
        rows = ~is_dev & (before["model"] == model)
        assert not np.allclose(before.loc[rows, "y_score"], after.loc[rows, "y_score"])
    assert (before.loc[~is_dev, "y_true"].to_numpy() == 1 - after.loc[~is_dev, "y_true"].to_numpy()).all()


# --------------------------------------------------------------------------------------------
# the whole run


@pytest.mark.slow
def test_a_harmonised_run_writes_both_files_and_the_report_shows_the_table(tmp_path):
    """`dlr run --arms clinical,radiomics` of a small synthetic study with ComBat on the scanner
    (one phase, its native grid, the light PyRadiomics parameters)."""
    from dlr.core.csvsafe import read_back
    from dlr.package.compare import compare_csv
    from dlr.package.verify import _recompute_harmonization_strata
    from dlr.report.audit import audit_text, report_text

    root = tmp_path / "S"
    res = run_dlr("synth", "--out", root, "--n", "50")
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load((root / "study.yaml").read_text())
    config.update({"phases": ["AP"], "preprocessing": {"spacing": [3.0, 3.0, 5.0]}, "radiomics_params": str(LIGHT),
                   "harmonization": dict(HARMONIZATION)})
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = tmp_path / "run"
    res = run_dlr("run", root, "--out", run, "--arms", "clinical,radiomics", "--bootstrap", "20", "--jobs", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "refitting the development chain without ComBat" in (run / "run.log").read_text()

    def csv(name):
        return read_back(pd.read_csv(run / name, dtype={"patient_id": str, "level": str},
                                     keep_default_na=False, na_values=[""]))

    predictions, plain = csv("predictions.csv"), csv("models/unharmonised_predictions.csv")
    radiomics = [m for m in dict.fromkeys(predictions["model"]) if m.startswith("Radiomics-") or m == "RCR"]
    assert list(dict.fromkeys(plain["model"])) == radiomics
    assert list(plain.columns) == list(predictions.columns)  # contract 4's columns, the scanner among them
    assert set(plain["patient_id"]) == set(predictions["patient_id"])
    models_provenance = json.loads((run / "models" / "provenance.json").read_text())
    assert "unharmonised_predictions.csv" in models_provenance["artefacts"]  # written with models/

    strata = csv("results/harmonization_strata.csv")
    assert list(strata.columns) == COLUMNS and set(strata["harmonised"]) == {True, False}
    assert set(strata["model"]) == set(radiomics)
    # the harmonised rows are results/subgroups.csv's (the same models, cohorts, levels, CI method)
    subgroups = csv("results/subgroups.csv")
    merged = strata[strata["harmonised"]].merge(subgroups, on=["model", "cohort", "level"], suffixes=("", "_s"))
    assert len(merged) == strata["harmonised"].sum()
    assert_allclose(merged[["auc", "auc_ci_low", "auc_ci_high"]].to_numpy(float),
                    merged[["auc_s", "auc_ci_low_s", "auc_ci_high_s"]].to_numpy(float), rtol=0, atol=1e-12)
    stage = json.loads((run / "stages" / "analysis.json").read_text())
    assert "models/unharmonised_predictions.csv" in stage["inputs"]
    assert "results/harmonization_strata.csv" in stage["outputs"]

    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert 'id="tbl-s-harmonization"' in html and "Scanner-stratified AUC with and without ComBat" in html
    assert 'id="sec-supplement-harmonization"' in html
    assert "No radiomics models without harmonisation were fitted" not in html
    assert "refitted without ComBat" in html and "sensitivity analysis" in html
    # every number of the new section and sentences is a cell of the run's files (the report audit's checks)
    paragraphs = [re.sub(r"\s+", " ", p) for p in report_text(html).split("\n\n")]
    text = " ".join(paragraphs)
    start = text.rindex("Scanner-stratified discrimination with and without harmonisation")  # the body's, not the contents'
    section = text[start:text.index("Calibration statistics", start)]
    sentences = [p for p in paragraphs if "without ComBat" in p or "refitted without it" in p]
    assert len(sentences) >= 2  # the methods' and the results' (and the table's notes)
    findings = audit_text(" ".join([section, *sentences]), run)
    assert all(f.result == "ok" for f in findings), [f for f in findings if f.result != "ok"]
    triples = [f for f in findings if f.check == "estimate and CI from one row"]
    assert len(triples) >= len(strata[np.isfinite(strata["auc_ci_low"])])

    # `dlr verify` recomputes the table from the two predictions files
    out = tmp_path / "recomputed"
    _recompute_harmonization_strata(run, out, dev_cohort="training", label="run")
    differences, count = compare_csv(run / "results/harmonization_strata.csv",
                                     out / "results/harmonization_strata.csv", "results/harmonization_strata.csv")
    assert not differences and count >= 4 * len(strata)
