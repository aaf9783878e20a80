"""The report's survival, nomogram and internal-validation results (issue 13), from a run's files.

The run is built once (module fixture) from small real computations, not from hand-written
numbers: a predictions file of two models (CR and RCR) in three cohorts with a time to recurrence
and a recurrence event, analysed by ``dlr analyze --time --event`` (``survival.csv``,
``km_curve.csv``, ``decision_curve_differences.csv``); ``models/internal_validation.csv`` from
:func:`dlr.modeling.internal_validation.validate_logistic` (Harrell's bootstrap of a logistic model on
the development cohort); ``models/nomogram.csv`` and ``nomogram_axes.csv`` from
:func:`dlr.modeling.nomogram.build_nomogram`. Each test then reads those files back the way the report
does and checks that what the report shows is what the files hold.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_predictions
from dlr.cli import main
from dlr.report.build import FIGURE_SLOTS, TABLE_SLOTS, TEXT_SECTIONS, prepare_sources
from dlr.report.facts import km_model, read_run
from dlr.report.figures import draw_km, draw_report_figures, km_cohorts
from dlr.report.tables import internal_validation_table, pipe_table, report_tables

TIME, EVENT = "months_to_recurrence", "recurrence"
COHORTS = ("training", "validation", "external")


def _with_follow_up(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Times to recurrence or censoring that an event shortens, and three cohorts."""
    rng = np.random.default_rng(seed)
    patients = frame.drop_duplicates("patient_id")[["patient_id", "y_true"]].reset_index(drop=True)
    early = patients["y_true"].to_numpy() == 1
    time = np.round(np.where(early, rng.uniform(1, 24, len(patients)), rng.uniform(6, 72, len(patients))), 1)
    event = np.where(early, 1, (rng.random(len(patients)) < 0.35).astype(int))
    extra = patients.assign(**{TIME: time, EVENT: event}).drop(columns="y_true")
    out = frame.merge(extra, on="patient_id", how="left")
    number = out["patient_id"].str[1:].astype(int)
    out.loc[(out["cohort"] == "validation") & (number % 2 == 1), "cohort"] = "external"
    return out


def _write_models(run: Path, predictions: pd.DataFrame) -> None:
    """models/internal_validation.csv and the nomogram files, from real fits on the development cohort."""
    from dlr.modeling.internal_validation import internal_validation_table as iv_frame
    from dlr.modeling.internal_validation import validate_logistic
    from dlr.modeling.nomogram import build_nomogram, numeric_axis

    dev = predictions[(predictions["cohort"] == "training") & (predictions["model"] == "CR")]
    rng = np.random.default_rng(5)
    ast = np.round(30 + 25 * dev["y_true"].to_numpy() + rng.normal(0, 15, len(dev)), 0)
    size = np.round(3 + 2 * dev["y_true"].to_numpy() + rng.normal(0, 2, len(dev)), 1)
    X = np.column_stack([ast, size])
    validation = validate_logistic(X, dev["y_true"].to_numpy(), n_resamples=40, seed=11, model="CR")
    models = run / "models"
    models.mkdir(parents=True, exist_ok=True)
    iv_frame([validation]).to_csv(models / "internal_validation.csv", index=False)
    beta0, b_ast, b_size = -3.0, 0.04, 0.3
    axes = [numeric_axis("ast", b_ast, ast, unit="U/L"), numeric_axis("tumor_diameter", b_size, size, unit="cm")]
    nomogram = build_nomogram(axes, beta0, beta0 + b_ast * ast + b_size * size, model="CR")
    nomogram.table.to_csv(models / "nomogram.csv", index=False)
    nomogram.axes.to_csv(models / "nomogram_axes.csv", index=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report_survival") / "run"
    run.mkdir()
    predictions = _with_follow_up(make_predictions(150, seed=4, models=("CR", "RCR")))
    predictions.to_csv(run / "predictions.csv", index=False)
    code = main(["analyze", str(run / "predictions.csv"), "--out", str(run / "results"), "--reference", "RCR",
                 "--time", TIME, "--event", EVENT, "--bootstrap", "40", "--seed", "1", "--no-figures"])
    assert code == 0
    _write_models(run, predictions)
    return run


def _copy(run: Path, target: Path, *, drop=(), edit=None) -> Path:
    """A copy of ``run`` without the files ``drop`` (paths under the run), ``edit`` applied."""
    shutil.copytree(run, target)
    for name in drop:
        (target / name).unlink()
    if edit is not None:
        edit(target)
    return target


def _survival(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "results" / "survival.csv")


# --------------------------------------------------------------------------- the files of the run


def test_the_run_has_what_the_report_reads(run):
    assert {"survival.csv", "km_curve.csv", "decision_curve_differences.csv"} <= \
        {p.name for p in (run / "results").iterdir()}
    assert set(_survival(run)["cohort"]) >= set(COHORTS)
    settings = json.loads((run / "results" / "results.json").read_text())["settings"]
    assert settings["reference"] == "RCR" and settings["survival"]["time"] == TIME


# --------------------------------------------------------------------------- Kaplan-Meier figure


def test_km_figure_panels_are_the_non_development_cohorts_with_survival_csvs_p(run, tmp_path):
    import matplotlib.pyplot as plt

    survival = _survival(run)
    assert km_model(survival, "RCR") == "RCR"
    assert km_cohorts(survival, "RCR", "training", order=COHORTS) == ["validation", "external"]
    # neither the development cohort nor its out-of-fold rows; the other figures' order
    perf = pd.read_csv(run / "results" / "performance.csv")
    order = [c for c in dict.fromkeys(perf["cohort"]) if c in ("validation", "external")]
    cohorts = km_cohorts(survival, "RCR", "training", order=order)
    assert cohorts == order
    fig = draw_km(read_run(run).analysis, "RCR", cohorts, xlabel=f"Time ({TIME})")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == [f"{c.capitalize()} cohort" for c in cohorts]
    for ax, cohort in zip(axes, cohorts):
        row = survival[(survival["model"] == "RCR") & (survival["cohort"] == cohort)].iloc[0]
        title = ax.get_legend().get_title().get_text()
        p = row["logrank_p"]
        assert (f"P = {p:.3f}" if p >= 0.001 else "P < 0.001") in title
        assert f"HR (high vs low) {row['hr']:.2f}" in title
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"n = {int(row['n_high'])}" in labels[0] and f"n = {int(row['n'] - row['n_high'])}" in labels[1]
        assert ax.get_xlabel() == f"Time ({TIME})"
    plt.close(fig)

    records = {r.id: r for r in draw_report_figures(run, tmp_path / "figures", dpi=60)}
    km = records["fig-km"]
    assert km.stem == "km_best" and km.models == ("RCR",) and km.cohorts == tuple(cohorts)
    assert (tmp_path / "figures" / "km_best.png").is_file()
    assert "never re-chosen" in km.caption and "log-rank P" in km.caption and "Efron" in km.caption
    assert f"(A) the {cohorts[0]} cohort, (B) the {cohorts[1]} cohort" in km.caption
    assert "ticks: censored patients" in km.caption
    assert "fig-km" in FIGURE_SLOTS


def test_km_model_falls_back_to_the_first_model_of_survival_csv(run):
    assert km_model(_survival(run), "DLRCR") == _survival(run)["model"].iloc[0]
    assert km_model(_survival(run), None) == _survival(run)["model"].iloc[0]


def test_only_the_development_cohort_gives_its_panel():
    frame = pd.DataFrame({"model": ["CR", "CR"], "cohort": ["training", "training (out-of-fold)"]})
    assert km_cohorts(frame, "CR", "training") == ["training"]


def test_an_empty_risk_group_is_drawn_as_empty(run, tmp_path):
    import matplotlib.pyplot as plt

    def all_high(target):  # every validation patient at or above the threshold: no low-risk curve
        results = target / "results"
        survival = pd.read_csv(results / "survival.csv")
        survival.loc[survival["cohort"] == "validation", "n_high"] = survival["n"]
        survival.to_csv(results / "survival.csv", index=False)
        km = pd.read_csv(results / "km_curve.csv")
        km[~((km["cohort"] == "validation") & (km["group"] == "low"))].to_csv(results / "km_curve.csv", index=False)

    fig = draw_km(read_run(_copy(run, tmp_path / "r", edit=all_high)).analysis, "RCR", ["validation"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[1].endswith("n = 0")
    plt.close(fig)


def _censoring_ticks(ax) -> int:
    """Lines drawn as NaN-separated strokes (plot_km's censoring ticks) with at least one stroke."""
    return sum(1 for line in ax.get_lines() if len(line.get_xdata()) and np.isnan(line.get_xdata()).any())


def test_without_n_events_the_curves_have_no_censoring_ticks(run, tmp_path):
    import matplotlib.pyplot as plt

    def drop_events(target):
        path = target / "results" / "km_curve.csv"
        pd.read_csv(path, float_precision="round_trip").drop(columns="n_events").to_csv(path, index=False)

    old = _copy(run, tmp_path / "old", edit=drop_events)
    cohorts = km_cohorts(_survival(run), "RCR", "training", order=COHORTS)
    with_ticks = draw_km(read_run(run).analysis, "RCR", cohorts)
    without = draw_km(read_run(old).analysis, "RCR", cohorts)
    assert all(_censoring_ticks(ax) > 0 for ax in with_ticks.axes if ax.get_title())
    assert all(_censoring_ticks(ax) == 0 for ax in without.axes if ax.get_title())
    # the curves themselves are the same
    for a, b in zip(with_ticks.axes, without.axes):
        steps_a = [line.get_ydata() for line in a.get_lines() if line.get_drawstyle() == "steps-post"]
        steps_b = [line.get_ydata() for line in b.get_lines() if line.get_drawstyle() == "steps-post"]
        assert len(steps_a) == len(steps_b) and all(np.array_equal(x, y) for x, y in zip(steps_a, steps_b))
    plt.close("all")
    record = {r.id: r for r in draw_report_figures(old, tmp_path / "f", dpi=60)}["fig-km"]
    assert "censored" not in record.caption


# --------------------------------------------------------------------------- nomogram


def test_the_nomogram_figure_exists_only_with_nomogram_csv(run, tmp_path):
    made = {r.id: r for r in draw_report_figures(run, tmp_path / "a", dpi=60)}
    assert made["fig-nomogram"].stem == "nomogram" and made["fig-nomogram"].models == ("CR",)
    assert "Total points" in made["fig-nomogram"].caption and "probability" in made["fig-nomogram"].caption
    assert (tmp_path / "a" / "nomogram.png").is_file()
    assert "fig-nomogram-rcr" not in made  # nomogram.csv holds CR only
    bare = _copy(run, tmp_path / "bare", drop=("models/nomogram.csv", "models/nomogram_axes.csv"))
    assert not any(r.id.startswith("fig-nomogram") for r in draw_report_figures(bare, tmp_path / "b", dpi=60))


# --------------------------------------------------------------------------- internal validation


def test_internal_validation_table_shows_the_csv(run):
    iv = pd.read_csv(run / "models" / "internal_validation.csv").set_index("index")
    table = internal_validation_table(run)
    assert table.id == "tbl-s-internal-validation" and "tbl-s-internal-validation" in TABLE_SLOTS
    frame = table.frame
    assert list(frame["Measure"]) == ["AUC (C index)", "Calibration slope", "Recalibration intercept (slope free)", "Brier score"]
    assert list(frame["Model"]) == ["CR", "", "", ""] and frame["Procedure"].iloc[0] == "Fixed factors"
    auc = frame.iloc[0]
    apparent, optimism = iv.loc["AUC", "apparent"], iv.loc["AUC", "optimism"]
    assert optimism > 0  # a refit on its own resample looks better than on the original patients
    assert auc["Apparent"] == f"{apparent:.3f}"
    assert auc["Optimism-corrected"] == f"{apparent - optimism:.3f}" == f"{iv.loc['AUC', 'corrected']:.3f}"
    assert auc["Optimism (± SE)"] == f"{optimism:.3f} ± {iv.loc['AUC', 'optimism_se']:.3f}"
    assert auc["Resamples used"] == "40/40"
    slope = frame.iloc[1]
    assert slope["Apparent"] == "1.000" and slope["Optimism-corrected"] == f"{iv.loc['Slope', 'corrected']:.3f}"
    assert "B = 40" in table.notes and "Harrell" in table.notes and "selection repeated" not in table.notes.lower()
    assert "tbl-s-internal-validation" in [t.id for t in report_tables(run)]
    assert "{#tbl-s-internal-validation}" in pipe_table(table)


def test_failed_resamples_are_named_in_the_notes(run, tmp_path):
    def fail(target):
        path = target / "models" / "internal_validation.csv"
        frame = pd.read_csv(path)
        frame = pd.concat([frame, frame.assign(procedure="selection repeated", n_failed=3, n_no_factor=2,
                                               failures="3 x no finite maximum likelihood (resamples 1, 5, 9)")])
        frame.to_csv(path, index=False)

    table = internal_validation_table(_copy(run, tmp_path / "r", edit=fail))
    assert list(table.frame["Procedure"])[4] == "Selection repeated"
    assert "3 of 40 refits failed" in table.notes and "resamples 1, 5, 9" in table.notes
    assert "on 2 resamples no factor was selected" in table.notes
    assert "Selection repeated:" in table.notes


def test_no_internal_validation_csv_gives_no_table(run, tmp_path):
    assert internal_validation_table(_copy(run, tmp_path / "r", drop=("models/internal_validation.csv",))) is None


# --------------------------------------------------------------------------- text and placement


def _prepared(run: Path, source: Path) -> dict:
    made = prepare_sources(run, source, renderer="pandoc test", dpi=60)
    made["text"] = {name: (source / "_generated" / "text" / f"{name}.md").read_text() for name in TEXT_SECTIONS}
    made["figure_md"] = {slot: (source / "_generated" / "figures" / f"{slot}.md").read_text()
                         for slot in FIGURE_SLOTS}
    return made


@pytest.fixture(scope="module")
def prepared(run, tmp_path_factory) -> dict:
    return _prepared(run, tmp_path_factory.mktemp("report_survival_src"))


def test_the_report_text_quotes_the_survival_statistics(run, prepared):
    made = prepared
    text = made["text"]["results-survival"]
    survival = _survival(run)
    for model in ("CR", "RCR"):
        for cohort in ("training", "validation", "external"):
            row = survival[(survival["model"] == model) & (survival["cohort"] == cohort)].iloc[0]
            line = next(x for x in text.splitlines() if x.startswith(f"- **{model}**, {cohort} ("))
            assert f"Harrell's C {row['c_index']:.3f} (SE {row['c_index_se']:.3f})" in line
            p = row["logrank_p"]
            assert (f"log-rank P = {p:.3f}" if p >= 0.001 else "log-rank P < 0.001") in line
            assert f"HR {row['hr']:.2f} (95% CI {row['hr_ci_low']:.2f}-{row['hr_ci_high']:.2f})" in line
            if math.isfinite(row["cuminc_high"]):
                assert f"{row['cuminc_high']:.2f} (95% CI" in line and "at 24 months" in line
    assert "@fig-km" in text
    km = made["figure_md"]["fig-km"]
    assert km.startswith("![Kaplan-Meier curves") and "{#fig-km}" in km
    assert made["figure_md"]["fig-nomogram"].strip().endswith("{#fig-nomogram}")
    assert "@fig-nomogram" in made["text"]["results-models"]
    iv = pd.read_csv(run / "models" / "internal_validation.csv").set_index("index")
    assert f"corrected to {iv.loc['AUC', 'corrected']:.3f}" in made["text"]["results-models"]
    assert "@tbl-s-internal-validation" in made["text"]["results-models"]
    assert "Harrell's bootstrap (B = 40)" in made["text"]["methods-models"]
    assert "Harrell's C" in made["text"]["methods-performance"]


def test_the_utility_text_quotes_the_decision_curve_differences(run, prepared):
    made = prepared
    text = made["text"]["results-utility"]
    d = pd.read_csv(run / "results" / "decision_curve_differences.csv")
    first = made["facts"].cohorts[1]  # the first cohort after the development one
    own = d[(d["cohort"] == first) & (d["model"] == "RCR") & np.isclose(d["threshold"], 0.2)].iloc[0]
    assert f"In the {first} cohort, at threshold probabilities 0.20 and 0.40, RCR avoided " \
           f"{own['interventions_avoided']:.1f} (95% CI" in text
    rival = d[(d["cohort"] == first) & (d["model"] == "CR") & np.isclose(d["threshold"], 0.2)].iloc[0]
    assert f"CR's net benefit differed from RCR's by {rival['nb_diff']:.3f}" in text


def test_the_tripod_checklist_points_at_the_new_results(run, prepared):
    made = prepared
    rows = made["tripod"].set_index("item")
    assert "nomogram of CR" in rows.loc["22", "value"]
    assert "Harrell's bootstrap" in rows.loc["12c", "value"]
    assert "Time to recurrence: Harrell's C" in rows.loc["23a", "value"]


def test_a_run_without_survival_csv_says_so_and_has_no_km_figure(run, tmp_path):
    def forget(target):  # an analysis without --time/--event: no survival files, no settings.survival
        path = target / "results" / "results.json"
        results = json.loads(path.read_text())
        results["settings"].pop("survival", None)
        path.write_text(json.dumps(results))

    bare = _copy(run, tmp_path / "bare", drop=("results/survival.csv", "results/km_curve.csv"), edit=forget)
    made = _prepared(bare, tmp_path / "src")
    assert made["text"]["results-survival"].startswith("The study named no follow-up columns")
    assert "fig-km" not in {r.id for r in made["figures"]}
    assert made["figure_md"]["fig-km"] == ""
    assert "Harrell's C" not in made["text"]["methods-performance"]
    assert "Time to recurrence" not in made["tripod"].set_index("item").loc["23a", "value"]


def test_the_report_renders_the_new_sections(run, tmp_path):
    from dlr.report.build import build_report
    from dlr.report.render import renderer_name

    try:
        renderer_name("pandoc")
    except Exception as exc:  # no pandoc on this machine
        pytest.skip(f"pandoc fallback unavailable: {exc}")
    target = _copy(run, tmp_path / "run")
    build_report(target, formats=("html",), renderer="pandoc")
    html = (target / "report" / "index.html").read_text()
    assert 'id="sec-results-survival"' in html and 'id="sec-supplement-internal-validation"' in html
    assert 'id="fig-km"' in html and 'id="fig-nomogram"' in html and 'id="tbl-s-internal-validation"' in html
    assert (target / "report" / "figures" / "km_best.png").is_file()


def test_each_stated_difference_is_the_reference_minus_the_other(run):
    """Issue 22: Results said "Radiomics-LR vs CR: difference -0.067" where Radiomics-LR's AUC
    was the higher (comparisons.csv's diff is model_a - model_b, the sentence read it backwards)."""
    import re

    from dlr.report import text
    from dlr.report.facts import read_run

    facts = read_run(run)
    lines = [line for line in text.results_performance(facts, tables=set(), figures=set()).splitlines()
             if " against " in line and "difference" in line]
    assert lines
    for line in lines:
        best, other, cohort, word, stated = re.search(
            r"- (\S+) against (\S+) in the (\S+) cohort: AUC [\d.]+, (higher|lower) than \S+ [\d.]+ "
            r"\(difference (-?[\d.]+)", line).groups()
        auc = {m: float(facts.perf(m, cohort)["auc"]) for m in (best, other)}
        assert float(stated) == pytest.approx(auc[best] - auc[other], abs=6e-4), line
        assert (word == "higher") == (auc[best] > auc[other])
