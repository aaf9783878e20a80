"""Every figure equals its numbers and shows its text whole (issue 22).

A run's results are made by `dlr analyze` from predictions with tied scores (a CR model of four
risk levels, a five-stage BCLC), two models with identical scores and continuous ones, with
out-of-fold development predictions; every figure of results/figures and of the report is then
redrawn in this process (tests/figure_checks.py) and checked: the area under each drawn ROC
polyline equals performance.csv's AUC to 1e-6, identical curves are drawn once with both names,
crowded panels band only the highlighted model, and no text is clipped or overlaps another.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlr.cli import main
from figure_checks import captured, check_run, roc_areas, text_problems

COHORTS = ("training", "validation")


def _predictions(n: int = 160, seed: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, out-of-fold predictions): CR with 4 risk levels, BCLC with 5 stages (0-4),
    Radiomics-LR and Radiomics-MLP with the same scores, RCR and DL-ResNet18 continuous."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.4, n)
    ids = [f"P{i:03d}" for i in range(n)]
    cohort = np.where(np.arange(n) < int(n * 0.7), *COHORTS)
    latent = y + rng.normal(0, 1.2, n)
    levels = np.array([0.2, 0.35, 0.5, 0.7])
    scores = {"CR": levels[np.digitize(latent, [-0.3, 0.5, 1.2])],
              "BCLC": np.digitize(latent + rng.normal(0, 1, n), [-0.8, 0.0, 0.8, 1.6]).astype(float),
              "Radiomics-LR": 1 / (1 + np.exp(-(latent + rng.normal(0, 0.8, n))))}
    scores["Radiomics-MLP"] = scores["Radiomics-LR"].copy()
    scores["RCR"] = 1 / (1 + np.exp(-(1.2 * latent + rng.normal(0, 0.6, n) - 0.5)))
    scores["DL-ResNet18"] = 1 / (1 + np.exp(-(0.8 * latent + rng.normal(0, 1.0, n))))
    scanner = rng.choice(["1.5T", "3.0T"], n)
    frame = pd.concat([pd.DataFrame({"patient_id": ids, "cohort": cohort, "model": m, "y_true": y, "y_score": s,
                                     "scanner": scanner}) for m, s in scores.items()], ignore_index=True)
    dev = cohort == COHORTS[0]
    folds = rng.integers(1, 6, n)
    oof = []
    for model in ("CR", "Radiomics-LR", "Radiomics-MLP", "RCR", "DL-ResNet18"):
        s = scores[model][dev]
        if model == "CR":  # the refits' levels move a little: still four-ish tied values
            s = np.round(s + rng.choice([-0.05, 0.0, 0.05], s.size), 2)
        else:
            s = np.clip(s + rng.normal(0, 0.08, s.size), 0.001, 0.999)
        oof.append(pd.DataFrame({"patient_id": np.array(ids)[dev], "cohort": COHORTS[0], "model": model,
                                 "y_true": y[dev], "y_score": s, "scanner": scanner[dev], "fold": folds[dev]}))
    oof = pd.concat(oof, ignore_index=True)
    oof.loc[oof["model"] == "Radiomics-MLP", "y_score"] = oof.loc[oof["model"] == "Radiomics-LR", "y_score"].to_numpy()
    return frame, oof


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("figures") / "run"
    run.mkdir()
    predictions, oof = _predictions()
    predictions.to_csv(run / "predictions.csv", index=False)
    oof.to_csv(run / "predictions_oof.csv", index=False)
    code = main(["analyze", str(run / "predictions.csv"), "--oof", str(run / "predictions_oof.csv"), "--out",
                 str(run / "results"), "--strata", "scanner", "--bootstrap", "30", "--seed", "2", "--no-figures"])
    assert code == 0
    return run


@pytest.fixture(scope="module")
def drawn(run) -> list:
    """Every figure of results/figures and of the report, as drawn (Figure, savefig keywords)."""
    from dlr.analysis.figures import draw_figures
    from dlr.analysis.output import read_analysis
    from dlr.report.figures import draw_report_figures

    with tempfile.TemporaryDirectory() as tmp, captured() as figures:
        draw_figures(read_analysis(run / "results"), Path(tmp) / "results")
        draw_report_figures(run, Path(tmp) / "report", dpi=60)
    return list(figures)


def test_the_run_has_tied_and_identical_scores(run):
    performance = pd.read_csv(run / "results" / "performance.csv")
    auc = performance.set_index(["cohort", "model"])["auc"]
    assert auc[("training (out-of-fold)", "Radiomics-LR")] == auc[("training (out-of-fold)", "Radiomics-MLP")]
    curve = pd.read_csv(run / "results" / "roc_curve.csv")
    cr = curve[(curve["cohort"] == "validation") & (curve["model"] == "CR")]
    # four levels: five points; a staircase through them would need more
    assert len(cr) == 5
    assert (np.diff(cr["fpr"]) > 0).sum() >= 3 and (np.diff(cr["tpr"]) > 0).sum() >= 3


def test_every_roc_curve_encloses_its_stated_auc(run, drawn):
    performance = pd.read_csv(run / "results" / "performance.csv")
    auc = performance.set_index(["cohort", "model"])["auc"]
    cohorts = set(performance["cohort"])
    checked = set()
    for fig, _ in drawn:
        for cohort, models, stated, area in roc_areas(fig, cohorts):
            assert cohort is not None
            for model in models:
                source = cohort if (cohort, model) in auc else cohort.replace(" (out-of-fold)", "")
                assert area == pytest.approx(auc[(source, model)], abs=1e-6), (cohort, model)
                assert abs(stated - auc[(source, model)]) <= 5e-4 + 1e-12
                checked.add((cohort, model))
    # the tied models in every cohort they are drawn in, out of fold included
    for model in ("CR", "BCLC"):
        assert {c for c, m in checked if m == model} >= {"validation"}
    assert ("training (out-of-fold)", "CR") in checked and ("training (out-of-fold)", "BCLC") in checked


def test_a_staircase_would_have_failed(run):
    """The check can fail: CR's validation curve drawn as steps encloses less than its AUC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = pd.read_csv(run / "results" / "roc_curve.csv")
    cr = curve[(curve["cohort"] == "validation") & (curve["model"] == "CR")]
    fig, ax = plt.subplots()
    ax.step(cr["fpr"], cr["tpr"], where="post", label="CR (AUC 0.700)")
    ax.set(xlabel="1 - specificity", title="Validation cohort")
    performance = pd.read_csv(run / "results" / "performance.csv").set_index(["cohort", "model"])["auc"]
    (_, _, _, area), = roc_areas(fig, {"validation"})
    plt.close(fig)
    assert abs(area - performance[("validation", "CR")]) > 0.01


def test_identical_models_are_drawn_once_with_both_names(drawn):
    for fig, _ in drawn:
        for ax in fig.axes:
            labels = [str(line.get_label()) for line in ax.get_lines()]
            # Radiomics-MLP is never drawn apart from Radiomics-LR (the models figure shows the best
            # radiomics classifier alone)
            assert not any(label.startswith("Radiomics-MLP") for label in labels), labels
    named = [str(line.get_label()) for fig, _ in drawn for ax in fig.axes for line in ax.get_lines()]
    assert any(label.startswith("Radiomics-LR = Radiomics-MLP") for label in named)


def test_crowded_roc_panels_band_the_highlighted_model_only(drawn):
    from matplotlib.collections import PolyCollection

    from dlr.report.figures import MAX_ROC_BANDS

    report_rocs = [ax for fig, kwargs in drawn if kwargs.get("bbox_inches") == "tight" for ax in fig.axes
                   if ax.get_xlabel() == "1 - specificity"]
    assert report_rocs
    for ax in report_rocs:
        curves = [line for line in ax.get_lines() if "(AUC" in str(line.get_label())]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == (len(curves) if len(curves) <= MAX_ROC_BANDS else 1)


def test_the_report_panels_are_out_of_fold_and_validation(drawn):
    titles = {ax.get_title() for fig, kwargs in drawn if kwargs.get("bbox_inches") == "tight" for ax in fig.axes
              if ax.get_xlabel() == "1 - specificity"}
    assert titles == {"Training cohort, out of fold", "Validation cohort"}


def test_calibration_panels_show_loess_groups_and_their_cis(run, drawn):
    from dlr.analysis.calibration import MIN_LOESS_LEVELS
    from dlr.analysis.plotting import COHORT_STYLES

    groups = pd.read_csv(run / "results" / "calibration_groups.csv")
    smooth = pd.read_csv(run / "results" / "calibration_smooth.csv")
    panels = [ax for fig, kwargs in drawn if kwargs.get("bbox_inches") == "tight" for ax in fig.axes
              if ax.get_title() in {"CR", "RCR", "DL-ResNet18"} and ax.get_xlim() == (-0.02, 1.02)]
    assert {ax.get_title() for ax in panels} == {"CR", "RCR", "DL-ResNet18"}
    levels = []
    for ax in panels:
        # a curve per cohort, each the rows of calibration_smooth.csv: LOESS, or for a model with few
        # distinct predictions (the 4-level CR in the validation cohort) the observed proportion per level
        for style, cohort in (("-", "training (out-of-fold)"), ("--", "validation")):
            rows = smooth[(smooth["model"] == ax.get_title()) & (smooth["cohort"] == cohort)]
            drawn_lines = [line for line in ax.get_lines() if line.get_linestyle() == style
                           and len(line.get_xdata()) == len(rows) and line.get_marker() in ("None", "", None)]
            assert drawn_lines and np.allclose(drawn_lines[0].get_ydata(), rows["observed"]), (ax.get_title(), cohort)
            levels.append(len(rows))
        points = groups[(groups["model"] == ax.get_title()) & (groups["cohort"] == "validation")]
        markers = [line for line in ax.get_lines() if line.get_marker() == COHORT_STYLES[1]["marker"]]
        assert markers and np.allclose(np.sort(markers[0].get_xdata()), np.sort(points["mean_predicted"]))
        assert ax.collections  # the groups' CIs as error bars
    assert min(levels) < MIN_LOESS_LEVELS <= max(levels)  # both kinds of curve were drawn


def test_no_figure_has_clipped_or_overlapping_text(drawn):
    problems = []
    for fig, kwargs in drawn:
        problems += text_problems(fig, bbox_inches=kwargs.get("bbox_inches"))
    assert not problems, problems[:10]


def test_the_text_check_can_fail():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title("a title far too long to fit on a figure two inches wide, cut at both ends")
    ax.text(0.5, 0.5, "here")
    ax.text(0.5, 0.5, "there")
    found = text_problems(fig)
    plt.close(fig)
    assert any(p.startswith("clipped") for p in found) and any(p.startswith("overlap") for p in found)


def test_check_run_passes_on_the_run(run):
    assert check_run(run) == []


def test_comparators_are_dashed_in_every_figure(drawn):
    from dlr.analysis.plotting import MODEL_LINESTYLES
    from dlr.core.run_folder import COMPARATORS

    assert set(MODEL_LINESTYLES) == set(COMPARATORS)
    for fig, _ in drawn:
        for ax in fig.axes:
            for line in ax.get_lines():
                if str(line.get_label()).startswith("BCLC"):
                    assert line.get_linestyle() == "--"

