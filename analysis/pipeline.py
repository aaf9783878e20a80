"""`dlr analyze`: a validated predictions table in, every validation statistic out.

Nothing here is fitted on a non-development patient: thresholds and the index-to-risk
mappings come from the development cohort and are applied unchanged to every other cohort.
"""
from __future__ import annotations

import contextlib
import itertools
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .calibration import calibration_curve, calibration_summary
from .decision_curve import (THRESHOLDS, RiskMapping, decision_curve_frame, fit_risk_mapping, net_benefit,
                             net_benefit_treat_all)
from .multiplicity import holm_adjust
from .discrimination import (RocCurve, bootstrap_auc, delong_placements, delong_test, delong_unpaired_test, percentile_interval,
                             roc_curve, stratified_resamples)
from .predictions import Predictions
from .reclassification import reclassification
from .subgroups import stratified_auc
from .thresholds import threshold_metrics, youden_threshold

DEFAULT_BOOTSTRAP = 2000
DEFAULT_SEED = 20240101

PERFORMANCE_COLUMNS = [
    "model", "cohort", "score_type", "n", "n_events", "auc", "auc_se", "auc_ci_low", "auc_ci_high",
    "auc_boot_low", "auc_boot_high", "threshold", "tp", "fp", "tn", "fn",
    "sensitivity", "sensitivity_ci_low", "sensitivity_ci_high", "specificity", "specificity_ci_low",
    "specificity_ci_high", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "ppv", "ppv_ci_low", "ppv_ci_high",
    "npv", "npv_ci_low", "npv_ci_high", "brier", "cal_intercept", "cal_slope", "hl_chi2", "hl_df", "hl_p",
]
COMPARISON_COLUMNS = ["cohort", "model_a", "model_b", "n", "auc_a", "auc_b", "diff", "diff_ci_low",
                      "diff_ci_high", "diff_boot_low", "diff_boot_high", "z", "p_value", "p_adjusted"]
COHORT_TEST_COLUMNS = ["model", "cohort_a", "cohort_b", "n_a", "n_b", "auc_a", "auc_b", "statistic", "df",
                       "p_value"]
SUBGROUP_COLUMNS = ["model", "cohort", "stratifier", "level", "n", "n_events", "auc", "auc_ci_low",
                    "auc_ci_high", "p_between", "test_between"]
CALIBRATION_COLUMNS = ["cohort", "model", "bin", "n", "mean_predicted", "observed", "observed_ci_low",
                       "observed_ci_high"]
RECLASSIFICATION_COLUMNS = ["cohort", "reference", "model", "n", "n_events", "nri", "nri_events",
                            "nri_nonevents", "nri_ci_low", "nri_ci_high", "nri_p_value", "idi", "idi_ci_low",
                            "idi_ci_high", "idi_p_value"]


@dataclass(frozen=True)
class AnalysisResult:
    """Every statistic of one analysis, as the tables of contract section 5.

    Attributes
    ----------
    performance, comparisons, cohort_tests, subgroups, decision_curve, calibration : DataFrame
        The tables written as CSV files of the same names.
    calibration_smooth : DataFrame
        LOESS calibration curves (``cohort``, ``model``, ``predicted``, ``observed``).
    reclassification : DataFrame
        NRI and IDI of the reference model against each other model, per cohort.
    risk_mappings : DataFrame
        Development-cohort logistic maps of index scores to risk (``model``, ``intercept``,
        ``slope``, ``n``).
    roc : dict
        (cohort, model) -> RocCurve, for figures and ``roc_curve.csv``.
    settings : dict
        Development cohort, reference model, strata, bootstrap resamples, seed, models.
    warnings : list of str
        Undefined statistics and other warnings, each naming the model and cohort.
    """

    performance: pd.DataFrame
    comparisons: pd.DataFrame
    cohort_tests: pd.DataFrame
    subgroups: pd.DataFrame
    decision_curve: pd.DataFrame
    calibration: pd.DataFrame
    calibration_smooth: pd.DataFrame
    reclassification: pd.DataFrame
    risk_mappings: pd.DataFrame
    roc: dict = field(repr=False)
    settings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


@dataclass(frozen=True)
class CohortCurves:
    """The curves of one cohort, handed to ``analyze(cohort_done=...)`` as soon as they exist
    (so that figures can be drawn while the next cohort is computed).

    Attributes
    ----------
    cohort : str
    roc : dict model -> RocCurve
    calibration, calibration_smooth, decision_curve : DataFrame
        This cohort's rows of the tables of the same names.
    """

    cohort: str
    roc: dict
    calibration: pd.DataFrame
    calibration_smooth: pd.DataFrame
    decision_curve: pd.DataFrame


class _WarningLog:
    """Collects warnings raised inside labelled blocks as 'label: message' lines."""

    def __init__(self):
        self.lines: list[str] = []

    @contextlib.contextmanager
    def context(self, label: str):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for w in caught:
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
                continue
            line = f"{label}: {w.message}"
            if line not in self.lines:
                self.lines.append(line)


def _frame(rows, columns) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def analyze(predictions: Predictions, *, strata=(), reference: str | None = None,
            n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED,
            progress: Callable[[str], None] | None = None,
            cohort_done: Callable[[CohortCurves], None] | None = None) -> AnalysisResult:
    """Compute every statistic of contract section 5 from validated predictions.

    Parameters
    ----------
    predictions : Predictions
        From :func:`analysis.predictions.read_predictions`.
    strata : sequence of str, keyword-only
        Patient attribute columns to stratify AUCs by.
    reference : str, optional
        Model whose NRI/IDI against every other model is reported; default the model with the
        highest AUC in the development cohort (never chosen on validation data).
    n_bootstrap : int
        Stratified bootstrap resamples per cohort, shared by all models (0 disables).
    seed : int
        Seeds one SeedSequence; cohort k draws from its k-th spawned child.
    progress : callable, optional
        Called with a short message at each stage.
    cohort_done : callable, optional
        Called with each cohort's :class:`CohortCurves` once they are computed.
    """
    say = progress or (lambda message: None)
    log = _WarningLog()
    frame = predictions.frame
    dev = predictions.dev_cohort
    models, cohorts = predictions.models, predictions.cohorts
    scores = frame.pivot(index="patient_id", columns="model", values="y_score").reindex(columns=list(models))
    patients = frame.drop_duplicates("patient_id").set_index("patient_id")
    outcome = patients["y_true"].reindex(scores.index).to_numpy()
    cohort_of = patients["cohort"].reindex(scores.index).to_numpy()

    def present(cohort, model):
        idx = np.flatnonzero((cohort_of == cohort) & scores[model].notna().to_numpy())
        return idx, outcome[idx], scores[model].to_numpy()[idx]

    # ---- fitted on the development cohort only
    say(f"development cohort {dev!r}: Youden thresholds and index-to-risk maps")
    thresholds: dict[str, float] = {}
    mappings: dict[str, RiskMapping] = {}
    for model in models:
        _, y, s = present(dev, model)
        with log.context(f"model {model}, cohort {dev} (development)"):
            thresholds[model] = youden_threshold(y, s)
            if model not in predictions.probability_models:
                mappings[model] = fit_risk_mapping(y, s)

    def risk(model, s):
        return s if model in predictions.probability_models else mappings[model].predict(s)

    if reference is None:
        dev_auc = {m: _auc_or_nan(*present(dev, m)[1:]) for m in models}
        finite = {m: a for m, a in dev_auc.items() if np.isfinite(a)}
        reference = max(finite, key=finite.get) if finite else models[0]

    children = np.random.SeedSequence(seed).spawn(len(cohorts))
    perf_rows, comp_rows, cal_rows, smooth_rows, dca_frames, recl_rows = [], [], [], [], [], []
    roc: dict[tuple[str, str], RocCurve] = {}
    for k, cohort in enumerate(cohorts):
        members = np.flatnonzero(cohort_of == cohort)
        say(f"cohort {cohort!r}: {members.size} patients, {len(models)} models, {n_bootstrap} bootstrap resamples")
        resamples = (stratified_resamples(outcome[members], n_bootstrap, rng=np.random.default_rng(children[k]))
                     if n_bootstrap > 0 else None)
        position = {p: i for i, p in enumerate(members)}  # patient row -> column in the resamples
        boot: dict[str, np.ndarray] = {}
        for model in models:
            idx, y, s = present(cohort, model)
            if idx.size == 0:
                continue
            label = f"model {model}, cohort {cohort}"
            sub = resamples.subset([position[i] for i in idx]) if resamples is not None else None
            with log.context(label):
                curve = roc_curve(y, s, resamples=sub)
                roc[(cohort, model)] = curve
                boot[model] = curve.auc_replicates if sub is not None else np.array([np.nan])
                boot_low, boot_high = percentile_interval(boot[model])
                ops = threshold_metrics(y, s, thresholds[model])
                row = {"model": model, "cohort": cohort,
                       "score_type": "probability" if model in predictions.probability_models else "index",
                       "n": curve.auc.n, "n_events": curve.auc.n_events, "auc": curve.auc.estimate,
                       "auc_se": curve.auc.se, "auc_ci_low": curve.auc.ci_low, "auc_ci_high": curve.auc.ci_high,
                       "auc_boot_low": boot_low, "auc_boot_high": boot_high}
                row.update({c: getattr(ops, c) for c in PERFORMANCE_COLUMNS if hasattr(ops, c)})
                if model in predictions.probability_models:
                    cal = calibration_summary(y, s)
                    row.update(brier=cal.brier, cal_intercept=cal.intercept, cal_slope=cal.slope,
                               hl_chi2=cal.hl_chi2, hl_df=cal.hl_df, hl_p=cal.hl_p)
                    curve_cal = calibration_curve(y, s)
                    cal_rows.append(curve_cal.bins.assign(cohort=cohort, model=model))
                    smooth_rows.append(curve_cal.smooth.assign(cohort=cohort, model=model))
                perf_rows.append(row)
                r = risk(model, s)
                if np.all(np.isfinite(r)):
                    dca_frames.append(decision_curve_frame(cohort, model, net_benefit(y, r)))
        y_all = outcome[members]
        dca_frames.append(decision_curve_frame(cohort, "treat_all", net_benefit_treat_all(y_all)))
        dca_frames.append(decision_curve_frame(cohort, "treat_none", np.zeros(THRESHOLDS.size)))
        if cohort_done is not None:
            cohort_done(CohortCurves(
                cohort, {m: c for (co, m), c in roc.items() if co == cohort},
                _concat([f for f in cal_rows if f["cohort"].iloc[0] == cohort], CALIBRATION_COLUMNS),
                _concat([f for f in smooth_rows if f["cohort"].iloc[0] == cohort], ["cohort", "model", "predicted",
                                                                                     "observed"]),
                _concat([f for f in dca_frames if f["cohort"].iloc[0] == cohort],
                        ["cohort", "model", "threshold", "net_benefit"])))

        # ---- paired DeLong tests within the cohort
        cohort_comp = []
        for a, b in itertools.combinations(models, 2):
            both = np.flatnonzero((cohort_of == cohort) & scores[a].notna().to_numpy() & scores[b].notna().to_numpy())
            if both.size == 0:
                continue
            y = outcome[both]
            sa, sb = scores[a].to_numpy()[both], scores[b].to_numpy()[both]
            with log.context(f"{a} vs {b}, cohort {cohort}"):
                test = delong_test(y, sa, sb)
                if resamples is None:
                    diffs = np.array([np.nan])
                elif both.size == members.size and a in boot and b in boot and boot[a].size == boot[b].size:
                    diffs = boot[a] - boot[b]
                else:
                    sub = resamples.subset([position[i] for i in both])
                    diffs = bootstrap_auc(sa, sub) - bootstrap_auc(sb, sub)
                d_low, d_high = percentile_interval(diffs)
            cohort_comp.append({"cohort": cohort, "model_a": a, "model_b": b, "n": both.size,
                                "auc_a": test.auc_a, "auc_b": test.auc_b, "diff": test.diff,
                                "diff_ci_low": test.diff_ci_low, "diff_ci_high": test.diff_ci_high,
                                "diff_boot_low": d_low, "diff_boot_high": d_high, "z": test.statistic,
                                "p_value": test.p_value})
        _holm(cohort_comp)
        comp_rows.extend(cohort_comp)

        # ---- NRI / IDI of the reference model against each other model
        for model in models:
            if model == reference:
                continue
            both = np.flatnonzero((cohort_of == cohort) & scores[model].notna().to_numpy()
                                  & scores[reference].notna().to_numpy())
            if both.size == 0:
                continue
            with log.context(f"NRI/IDI {reference} vs {model}, cohort {cohort}"):
                new = risk(reference, scores[reference].to_numpy()[both])
                old = risk(model, scores[model].to_numpy()[both])
                if not (np.all(np.isfinite(new)) and np.all(np.isfinite(old))):
                    warnings.warn("no risk scale (the development-cohort mapping is undefined)")
                    continue
                sub = resamples.subset([position[i] for i in both]) if resamples is not None else None
                rec = reclassification(outcome[both], new, old, resamples=sub)
            recl_rows.append({"cohort": cohort, "reference": reference, "model": model,
                              **{c: getattr(rec, c) for c in RECLASSIFICATION_COLUMNS if hasattr(rec, c)}})

    # ---- development cohort against each other cohort, per model (unpaired DeLong)
    say("unpaired DeLong tests between cohorts; subgroups")
    cohort_rows = []
    for model in models:
        _, ya, sa = present(dev, model)
        for other in cohorts[1:]:
            _, yb, sb = present(other, model)
            if yb.size == 0 or ya.size == 0:
                continue
            with log.context(f"model {model}, {dev} vs {other}"):
                test = delong_unpaired_test(ya, sa, yb, sb)
            cohort_rows.append({"model": model, "cohort_a": dev, "cohort_b": other, "n_a": ya.size, "n_b": yb.size,
                                "auc_a": test.auc_a, "auc_b": test.auc_b, "statistic": test.statistic,
                                "df": test.df, "p_value": test.p_value})

    sub_frames = []
    for stratifier in strata:
        levels = patients[stratifier].reindex(scores.index).to_numpy()
        for model in models:
            for cohort in cohorts:
                idx, y, s = present(cohort, model)
                if idx.size == 0:
                    continue
                with log.context(f"model {model}, cohort {cohort}, {stratifier}"):
                    res = stratified_auc(y, s, levels[idx])
                sub_frames.append(res.levels.assign(model=model, cohort=cohort, stratifier=stratifier))

    mapping_rows = [{"model": m, "fitted_on": dev, "intercept": r.intercept, "slope": r.slope, "n": r.n}
                    for m, r in mappings.items()]
    settings = {"dev_cohort": dev, "cohorts": list(cohorts), "models": list(models),
                "probability_models": [m for m in models if m in predictions.probability_models],
                "reference": reference, "strata": list(strata), "n_bootstrap": n_bootstrap, "seed": seed,
                "thresholds": {m: thresholds[m] for m in models}}
    return AnalysisResult(
        performance=_frame(perf_rows, PERFORMANCE_COLUMNS),
        comparisons=_frame(comp_rows, COMPARISON_COLUMNS),
        cohort_tests=_frame(cohort_rows, COHORT_TEST_COLUMNS),
        subgroups=_concat(sub_frames, SUBGROUP_COLUMNS),
        decision_curve=_concat(dca_frames, ["cohort", "model", "threshold", "net_benefit"]),
        calibration=_concat(cal_rows, CALIBRATION_COLUMNS),
        calibration_smooth=_concat(smooth_rows, ["cohort", "model", "predicted", "observed"]),
        reclassification=_frame(recl_rows, RECLASSIFICATION_COLUMNS),
        risk_mappings=_frame(mapping_rows, ["model", "fitted_on", "intercept", "slope", "n"]),
        roc=roc, settings=settings, warnings=log.lines,
    )


def _auc_or_nan(y, s) -> float:
    """Mann-Whitney AUC, NaN without a warning when a class is empty (to pick the reference)."""
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return delong_placements(y, s).auc


def _concat(frames, columns) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _holm(rows: list[dict]) -> None:
    """Add ``p_adjusted`` (Holm) over the rows' finite p values, in place."""
    adjusted = holm_adjust([r["p_value"] for r in rows])
    for r, q in zip(rows, adjusted):
        r["p_adjusted"] = float(q)
