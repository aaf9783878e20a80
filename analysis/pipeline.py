"""`dlr analyze`: a validated predictions table in, every validation statistic out.

Nothing here is fitted on a non-development patient: thresholds and the index-to-risk
mappings come from the development cohort and are applied unchanged to every other cohort.

With out-of-fold development predictions (contract 4.1, ``Predictions.oof``) their patients
form one more cohort, ``"<dev> (out-of-fold)"``, analysed like the others (performance,
paired comparisons, calibration, decision curves, ROC, NRI/IDI, subgroups, and the unpaired
test against each non-development cohort), and each model that has them gets its Youden
threshold from them (``threshold_source`` = ``out-of-fold``; else ``apparent``, from its
development predictions). The default NRI/IDI reference is then the model with the best
out-of-fold AUC. Risk maps of index scores stay fitted on the development predictions.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from dlr.core.errors import InputError, UndefinedStatisticWarning
from dlr.core.stats.roc import youden_threshold
from .calibration import GROUP_COLUMNS, calibration_curve, calibration_summary, grouped_calibration
from .defaults import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from .decision_curve import (DIFFERENCE_COLUMNS, SHOWN_RANGE, DecisionCurve, RiskMapping, compare_decision_curves,
                             decision_curve, fit_risk_mapping, net_benefit_difference, treat_all_curve,
                             treat_none_curve)
from .decision_curve import threshold_range as threshold_range_of
from .discrimination import (bootstrap_auc, delong_placements, delong_test,
                             delong_unpaired_test, percentile_interval, roc_curve, stratified_resamples)
from .multiplicity import holm_adjust
from .predictions import REQUIRED, Predictions, attach_oof, attach_survival
from .reclassification import reclassification
from .subgroups import stratified_auc
from .survival import DEFAULT_HORIZON, KM_COLUMNS, SURVIVAL_COLUMNS, risk_group_survival
from .thresholds import threshold_metrics

logger = logging.getLogger(__name__)


PERFORMANCE_COLUMNS = [
    "model", "cohort", "score_type", "n", "n_events", "auc", "auc_se", "auc_ci_low", "auc_ci_high",
    "auc_boot_low", "auc_boot_high", "threshold", "threshold_source", "tp", "fp", "tn", "fn",
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
DCA_COLUMNS = ["cohort", "model", "threshold", "net_benefit", "net_benefit_ci_low", "net_benefit_ci_high"]
#: ``decision_curve_differences.csv``: each model against the reference model, per cohort and threshold
DCA_DIFFERENCE_COLUMNS = ["cohort", "model", "reference"] + DIFFERENCE_COLUMNS
SMOOTH_COLUMNS = ["cohort", "model", "predicted", "observed"]
CALIBRATION_COLUMNS = ["cohort", "model", "bin", "n", "mean_predicted", "observed", "observed_ci_low",
                       "observed_ci_high"]
#: ``calibration_groups.csv``: quantile groups sized to the cohort (analysis.calibration.grouped_calibration)
CALIBRATION_GROUP_COLUMNS = ["cohort", "model"] + GROUP_COLUMNS
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
        Development cohort, the cohorts of the tables in order (with the out-of-fold one, when
        there is one, after the development cohort), the out-of-fold cohort and file, reference
        model and how it was chosen, strata, bootstrap resamples, seed, models, thresholds and
        where each came from.
    warnings : list of str
        Undefined statistics and other warnings, each naming the model and cohort.
    calibration_groups : DataFrame
        Calibration in quantile groups sized to the cohort (``cohort``, ``model``, ``group``,
        ``n``, ``mean_predicted``, ``observed``, ``observed_ci_low``, ``observed_ci_high``;
        :func:`dlr.analysis.calibration.grouped_calibration`), every probability model and cohort.
    decision_curve_differences : DataFrame
        Net benefit of each model minus the reference model's (paired bootstrap CI), and each
        model's interventions avoided per 100 patients against treat all, per cohort and
        threshold (``DCA_DIFFERENCE_COLUMNS``).
    survival, km_curves : DataFrame
        With ``analyze(time=..., event=...)`` (contract 5.1): ``survival.csv`` (one row per model
        and cohort, :data:`dlr.analysis.survival.SURVIVAL_COLUMNS`) and ``km_curve.csv``
        (:data:`dlr.analysis.survival.KM_COLUMNS`); empty without them.
    survival_fits : dict
        (cohort, model) -> :class:`dlr.analysis.survival.RiskGroupSurvival`, for the figures.
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
    calibration_groups: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CALIBRATION_GROUP_COLUMNS))
    decision_curve_differences: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=DCA_DIFFERENCE_COLUMNS))
    survival: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SURVIVAL_COLUMNS))
    km_curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=KM_COLUMNS))
    survival_fits: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class CohortCurves:
    """The curves of one cohort, handed to ``analyze(cohort_done=...)`` as soon as they exist
    (so that figures can be drawn while the next cohort is computed).

    Attributes
    ----------
    cohort : str
    roc : dict model -> RocCurve
    calibration, calibration_smooth, decision_curve, decision_curve_differences : DataFrame
        This cohort's rows of the tables of the same names.
    calibration_groups : DataFrame
        This cohort's rows of ``calibration_groups.csv`` (groups sized to the cohort: the figure's points).
    threshold_range : (float, float)
        The threshold probabilities the decision-curve figures show.
    survival : dict
        With survival columns: model -> :class:`dlr.analysis.survival.RiskGroupSurvival` (the KM figures).
    survival_time : str
        The time column (the KM figures' axis label).
    """

    cohort: str
    roc: dict
    calibration: pd.DataFrame
    calibration_smooth: pd.DataFrame
    decision_curve: pd.DataFrame
    decision_curve_differences: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=DCA_DIFFERENCE_COLUMNS))
    threshold_range: tuple = SHOWN_RANGE
    calibration_groups: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CALIBRATION_GROUP_COLUMNS))
    survival: dict = field(default_factory=dict, repr=False)
    survival_time: str = "time"


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


class _Scores:
    """The predictions as a patient x model matrix, with each patient's outcome and cohort."""

    def __init__(self, frame: pd.DataFrame, models):
        self.matrix = frame.pivot(index="patient_id", columns="model", values="y_score").reindex(
            columns=list(models))
        self.patients = frame.drop_duplicates("patient_id").set_index("patient_id").reindex(self.matrix.index)
        self.outcome = self.patients["y_true"].to_numpy()
        self.cohort_of = self.patients["cohort"].to_numpy()
        self._scored = {m: self.matrix[m].notna().to_numpy() for m in models}
        self._values = {m: self.matrix[m].to_numpy() for m in models}

    def rows(self, cohort: str, *models: str) -> np.ndarray:
        """Positions of the cohort's patients scored by every one of ``models``."""
        keep = self.cohort_of == cohort
        for m in models:
            keep = keep & self._scored[m]
        return np.flatnonzero(keep)

    def score(self, model: str, rows: np.ndarray) -> np.ndarray:
        return self._values[model][rows]

    def curve(self, cohort: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(y, score) of one model in one cohort."""
        rows = self.rows(cohort, model)
        return self.outcome[rows], self.score(model, rows)


def _oof_scores(predictions: Predictions) -> _Scores | None:
    """The out-of-fold predictions as the cohort ``predictions.oof_cohort``, with each patient's
    attributes (strata) from the predictions file."""
    if predictions.oof is None:
        return None
    attributes = predictions.frame.drop_duplicates("patient_id").set_index("patient_id")[predictions.attributes()]
    frame = predictions.oof.assign(cohort=predictions.oof_cohort)[list(REQUIRED)]
    frame = frame.join(attributes, on="patient_id")
    return _Scores(frame, predictions.oof_models)


@dataclass(frozen=True)
class DevelopmentFit:
    """What is fitted on the development cohort and carried unchanged to the others.

    ``threshold_source``: model -> ``"out-of-fold"`` (its threshold was chosen on its
    out-of-fold development predictions), ``"apparent"`` (on its development predictions) or
    ``"bundle"`` (carried in a model bundle, :func:`frozen_development`).
    """

    thresholds: dict
    mappings: dict
    probability_models: frozenset
    threshold_source: dict = field(default_factory=dict)

    def risk(self, model: str, score: np.ndarray) -> np.ndarray:
        """Predicted risk: the score of a probability model, else the development-fitted map."""
        return score if model in self.probability_models else self.mappings[model].predict(score)


_DevelopmentFit = DevelopmentFit


def frozen_development(thresholds: dict, risk_maps: dict, probability_models) -> DevelopmentFit:
    """The development cohort's thresholds and index-to-risk maps as a model bundle carries them
    (`dlr predict`, contract section 8): applied as they are, never chosen again here.

    ``risk_maps``: model -> ``{"intercept", "slope", "n"}`` for each index score.
    """
    mappings = {m: RiskMapping(float(r["intercept"]), float(r["slope"]), int(r["n"])) for m, r in risk_maps.items()}
    return DevelopmentFit({m: float(t) for m, t in thresholds.items()}, mappings, frozenset(probability_models),
                          {m: "bundle" for m in thresholds})


def _fit_development(data: _Scores, predictions: Predictions, log: _WarningLog,
                     oof: _Scores | None = None) -> _DevelopmentFit:
    dev = predictions.dev_cohort
    thresholds, mappings, sources = {}, {}, {}
    oof_models = set(predictions.oof_models)
    for model in predictions.models:
        y, s = data.curve(dev, model)
        if model in oof_models:
            with log.context(f"model {model}, cohort {predictions.oof_cohort} (threshold)"):
                thresholds[model] = youden_threshold(*oof.curve(predictions.oof_cohort, model))
            sources[model] = "out-of-fold"
        with log.context(f"model {model}, cohort {dev} (development)"):
            if model not in oof_models:
                thresholds[model] = youden_threshold(y, s)
                sources[model] = "apparent"
            if model not in predictions.probability_models:
                mappings[model] = fit_risk_mapping(y, s)
    return _DevelopmentFit(thresholds, mappings, predictions.probability_models, sources)


@dataclass
class _CohortPart:
    """The per-model statistics of one cohort."""

    performance: list = field(default_factory=list)
    roc: dict = field(default_factory=dict)
    calibration: list = field(default_factory=list)
    smooth: list = field(default_factory=list)
    decision_curve: list = field(default_factory=list)
    calibration_groups: list = field(default_factory=list)
    #: model -> DecisionCurve on the model's patients, and treat all on the whole cohort
    net_benefit: dict = field(default_factory=dict)
    treat_all: DecisionCurve | None = None
    decision_curve_differences: list = field(default_factory=list)

    def curves(self, cohort: str, threshold_range=SHOWN_RANGE) -> CohortCurves:
        return CohortCurves(cohort, self.roc, _concat(self.calibration, CALIBRATION_COLUMNS),
                            _concat(self.smooth, SMOOTH_COLUMNS), _concat(self.decision_curve, DCA_COLUMNS),
                            _concat(self.decision_curve_differences, DCA_DIFFERENCE_COLUMNS), tuple(threshold_range),
                            _concat(self.calibration_groups, CALIBRATION_GROUP_COLUMNS))


def _cohort_statistics(data: _Scores, cohort: str, models, fit: _DevelopmentFit, resamples, position,
                       log: _WarningLog) -> _CohortPart:
    """Discrimination, operating point, calibration and net benefit of every model in a cohort."""
    part = _CohortPart()
    # a large cohort takes a while per model: say which model is under way
    verbose = resamples is not None and resamples.y_true.size * resamples.n_resamples > 5e7
    for k, model in enumerate(models):
        rows = data.rows(cohort, model)
        if rows.size == 0:
            continue
        if verbose:
            logger.info(f"cohort {cohort!r}: model {model} ({k + 1}/{len(models)})")
        y, s = data.outcome[rows], data.score(model, rows)
        probability = model in fit.probability_models
        with log.context(f"model {model}, cohort {cohort}"):
            sub = resamples.subset(position[rows]) if resamples is not None else None
            curve = roc_curve(y, s, resamples=sub)
            part.roc[model] = curve
            boot_low, boot_high = percentile_interval(curve.auc_replicates if sub is not None else [np.nan])
            ops = threshold_metrics(y, s, fit.thresholds[model])
            row = {"model": model, "cohort": cohort, "score_type": "probability" if probability else "index",
                   "n": curve.auc.n, "n_events": curve.auc.n_events, "auc": curve.auc.estimate,
                   "auc_se": curve.auc.se, "auc_ci_low": curve.auc.ci_low, "auc_ci_high": curve.auc.ci_high,
                   "auc_boot_low": boot_low, "auc_boot_high": boot_high,
                   "threshold_source": fit.threshold_source[model]}
            row.update({c: getattr(ops, c) for c in PERFORMANCE_COLUMNS if hasattr(ops, c)})
            if probability:
                cal = calibration_summary(y, s)
                row.update(brier=cal.brier, cal_intercept=cal.intercept, cal_slope=cal.slope,
                           hl_chi2=cal.hl_chi2, hl_df=cal.hl_df, hl_p=cal.hl_p)
                curve_cal = calibration_curve(y, s)
                part.calibration.append(curve_cal.bins.assign(cohort=cohort, model=model))
                part.smooth.append(curve_cal.smooth.assign(cohort=cohort, model=model))
                part.calibration_groups.append(grouped_calibration(y, s).groups.assign(cohort=cohort, model=model))
            part.performance.append(row)
            risk = fit.risk(model, s)
            if np.all(np.isfinite(risk)):
                part.net_benefit[model] = decision_curve(y, risk, resamples=sub)
                part.decision_curve.append(_curve_frame(cohort, model, part.net_benefit[model]))
    y_all = data.outcome[data.cohort_of == cohort]
    part.treat_all = treat_all_curve(y_all, resamples=resamples)
    part.decision_curve.append(_curve_frame(cohort, "treat_all", part.treat_all))
    part.decision_curve.append(_curve_frame(cohort, "treat_none", treat_none_curve()))
    return part


def _curve_frame(cohort: str, model: str, curve: DecisionCurve) -> pd.DataFrame:
    return curve.to_frame().assign(cohort=cohort, model=model)[DCA_COLUMNS]


def _decision_differences(data: _Scores, cohort: str, models, reference: str, fit: _DevelopmentFit,
                          part: _CohortPart, resamples, position, log: _WarningLog) -> list[pd.DataFrame]:
    """Net benefit of each model (the reference included, whose difference is 0) minus the
    reference's on their common patients, paired over the cohort's resamples, and each model's
    interventions avoided against treating those patients all.

    Risks are those of the decision curves: probabilities as given, index scores through the
    development-cohort map, which is not refitted on any resample (of the development cohort
    either).
    """
    out = []
    n_cohort = int(np.sum(data.cohort_of == cohort))
    for model in models:
        rows = data.rows(cohort, model, reference)
        if rows.size == 0:
            continue
        with log.context(f"net benefit {model} vs {reference}, cohort {cohort}"):
            y = data.outcome[rows]
            risks = _risk_pair(fit, data, model, reference, rows)
            if risks is None:
                continue
            risk, risk_ref = risks
            if rows.size == n_cohort:  # both score every patient: the curves' replicates are paired already
                diff = compare_decision_curves(part.net_benefit[model], part.net_benefit[reference], part.treat_all)
            else:
                sub = resamples.subset(position[rows]) if resamples is not None else None
                diff = net_benefit_difference(y, risk, risk_ref, resamples=sub)
        out.append(diff.to_frame().assign(cohort=cohort, model=model, reference=reference)[DCA_DIFFERENCE_COLUMNS])
    return out


def _paired_comparisons(data: _Scores, cohort: str, models, part: _CohortPart, resamples, position,
                        log: _WarningLog) -> list[dict]:
    """Paired DeLong test (and bootstrap CI of the difference) of every pair of models; Holm."""
    rows_out = []
    n_cohort = int(np.sum(data.cohort_of == cohort))
    for a, b in itertools.combinations(models, 2):
        rows = data.rows(cohort, a, b)
        if rows.size == 0:
            continue
        y, sa, sb = data.outcome[rows], data.score(a, rows), data.score(b, rows)
        with log.context(f"{a} vs {b}, cohort {cohort}"):
            test = delong_test(y, sa, sb)
            if resamples is None:
                diffs = np.array([np.nan])
            elif rows.size == n_cohort:  # both models score every patient: reuse the replicates
                diffs = part.roc[a].auc_replicates - part.roc[b].auc_replicates
            else:
                sub = resamples.subset(position[rows])
                diffs = bootstrap_auc(sa, sub) - bootstrap_auc(sb, sub)
            d_low, d_high = percentile_interval(diffs)
        rows_out.append({"cohort": cohort, "model_a": a, "model_b": b, "n": rows.size, "auc_a": test.auc_a,
                         "auc_b": test.auc_b, "diff": test.diff, "diff_ci_low": test.diff_ci_low,
                         "diff_ci_high": test.diff_ci_high, "diff_boot_low": d_low, "diff_boot_high": d_high,
                         "z": test.statistic, "p_value": test.p_value})
    for row, q in zip(rows_out, holm_adjust([r["p_value"] for r in rows_out])):
        row["p_adjusted"] = float(q)
    return rows_out


def _risk_pair(fit: _DevelopmentFit, data: _Scores, a: str, b: str, rows) -> tuple | None:
    """The risks of models ``a`` and ``b`` for ``rows`` (index scores through their development
    maps); None, with a warning, where either has no risk scale."""
    risk_a, risk_b = fit.risk(a, data.score(a, rows)), fit.risk(b, data.score(b, rows))
    if not (np.all(np.isfinite(risk_a)) and np.all(np.isfinite(risk_b))):
        warnings.warn("no risk scale (the development-cohort mapping is undefined)", UndefinedStatisticWarning)
        return None
    return risk_a, risk_b


def _reclassification_rows(data: _Scores, cohort: str, models, reference: str, fit: _DevelopmentFit,
                           resamples, position, log: _WarningLog) -> list[dict]:
    """NRI and IDI of the reference model against each other model, on their common patients."""
    out = []
    for model in models:
        rows = data.rows(cohort, model, reference)
        if model == reference or rows.size == 0:
            continue
        with log.context(f"NRI/IDI {reference} vs {model}, cohort {cohort}"):
            risks = _risk_pair(fit, data, reference, model, rows)
            if risks is None:
                continue
            new, old = risks
            sub = resamples.subset(position[rows]) if resamples is not None else None
            rec = reclassification(data.outcome[rows], new, old, resamples=sub)
        out.append({"cohort": cohort, "reference": reference, "model": model,
                    **{c: getattr(rec, c) for c in RECLASSIFICATION_COLUMNS if hasattr(rec, c)}})
    return out


def _cohort_tests(data: _Scores, dev: str, others, models, log: _WarningLog,
                  data_a: _Scores | None = None) -> list[dict]:
    """Unpaired DeLong test of each model's AUC in cohort ``dev`` (of ``data_a``, default
    ``data``) against each other cohort of ``data``."""
    data_a = data if data_a is None else data_a
    out = []
    for model in models:
        ya, sa = data_a.curve(dev, model)
        for other in others:
            yb, sb = data.curve(other, model)
            if ya.size == 0 or yb.size == 0:
                continue
            with log.context(f"model {model}, {dev} vs {other}"):
                test = delong_unpaired_test(ya, sa, yb, sb)
            out.append({"model": model, "cohort_a": dev, "cohort_b": other, "n_a": ya.size, "n_b": yb.size,
                        "auc_a": test.auc_a, "auc_b": test.auc_b, "statistic": test.statistic, "df": test.df,
                        "p_value": test.p_value})
    return out


def _subgroup_frames(sources, strata, models, log: _WarningLog) -> list[pd.DataFrame]:
    """Subgroup AUCs; ``sources`` is a list of (cohort, its _Scores, its models)."""
    out = []
    for stratifier in strata:
        levels_of = {cohort: data.patients[stratifier].to_numpy() for cohort, data, _ in sources}
        for model in models:
            for cohort, data, present in sources:
                if model not in present:
                    continue
                rows = data.rows(cohort, model)
                if rows.size == 0:
                    continue
                levels = levels_of[cohort]
                with log.context(f"model {model}, cohort {cohort}, {stratifier}"):
                    res = stratified_auc(data.outcome[rows], data.score(model, rows), levels[rows])
                out.append(res.levels.assign(model=model, cohort=cohort, stratifier=stratifier))
    return out


def analyze(predictions: Predictions, *, strata=(), reference: str | None = None,
            n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED, oof=None,
            threshold_range=None, time: str | None = None, event: str | None = None,
            horizon: float = DEFAULT_HORIZON,
            cohort_done: Callable[[CohortCurves], None] | None = None,
            development: DevelopmentFit | None = None) -> AnalysisResult:
    """Compute every statistic of contract section 5 from validated predictions.

    Parameters
    ----------
    predictions : Predictions
        From :func:`dlr.analysis.predictions.read_predictions`; its out-of-fold development
        predictions (``predictions.oof``), when it has them, add the cohort
        ``"<dev> (out-of-fold)"`` and give each of their models its threshold.
    strata : sequence of str, keyword-only
        Patient attribute columns to stratify AUCs by.
    reference : str, optional
        Model whose NRI/IDI against every other model is reported; default the model with the
        highest out-of-fold development AUC when ``predictions`` has out-of-fold predictions
        (models without them are then not eligible), else the highest development AUC (never
        chosen on validation data).
    n_bootstrap : int
        Stratified bootstrap resamples per cohort, shared by all models and statistics (AUC,
        paired differences, ROC and decision-curve bands, NRI/IDI; 0 disables).
    seed : int
        Seeds one SeedSequence; cohort k draws from its k-th spawned child, the out-of-fold
        cohort from the child after the last cohort's.
    oof : DataFrame or path, optional
        Out-of-fold development predictions to attach here (:func:`dlr.analysis.predictions.attach_oof`)
        instead of when reading.
    time, event : str, optional
        Patient columns of the time to recurrence or censoring and the event (1 = recurrence,
        0 = censored; contract 5.1), validated here (:func:`dlr.analysis.predictions.attach_survival`)
        unless ``predictions`` was read with them: adds ``survival`` and ``km_curves``, every model
        and cohort (the out-of-fold one too), risk groups split at the development threshold.
    horizon : float
        Time at which the cumulative incidence of ``survival.csv`` is read (same unit as ``time``).
    threshold_range : (low, high) or ``"LOW:HIGH"``, optional
        Threshold probabilities the decision-curve figures show (0 < low < high < 1;
        :func:`dlr.analysis.decision_curve.threshold_range`), recorded as
        ``settings["decision_curve_range"]``; the tables keep every threshold 0.01-0.99.
        Default: :data:`dlr.analysis.decision_curve.SHOWN_RANGE`, 0.05-0.80 (and None in the
        settings).
    Each stage is logged (:mod:`dlr.core.progress`).
    cohort_done : callable, optional
        Called with each cohort's :class:`CohortCurves` once they are computed.
    development : DevelopmentFit, optional
        Thresholds and risk maps carried from elsewhere (a model bundle's, :func:`frozen_development`)
        instead of chosen on the development rows; every model needs a threshold. The other
        cohorts then draw their bootstrap seeds first, in order, and the development cohort
        after them, so that a cohort scored by `dlr predict` gets the resamples it had in the
        `dlr run` that made the bundle.
    """
    if oof is not None:
        predictions = attach_oof(predictions, oof)
    if (time, event) != (None, None) and (time, event) != (predictions.time, predictions.event):
        predictions = attach_survival(predictions, time=time, event=event)
    if predictions.time is not None and not (np.isfinite(horizon) and horizon > 0):
        raise InputError(f"--horizon must be a time > 0 in the unit of {predictions.time!r}, got {horizon}")
    shown = threshold_range if threshold_range is None else threshold_range_of(threshold_range)
    log = _WarningLog()
    dev, models, cohorts = predictions.dev_cohort, predictions.models, predictions.cohorts
    data = _Scores(predictions.frame, models)
    oof = _oof_scores(predictions)
    oof_cohort, oof_models = predictions.oof_cohort, predictions.oof_models

    if development is None:
        logger.info(f"development cohort {dev!r}: Youden thresholds"
                    f"{' (on the out-of-fold predictions where there are some)' if oof is not None else ''} "
                    "and index-to-risk maps")
    else:
        logger.info(f"development cohort {dev!r}: thresholds and index-to-risk maps carried as given (a model bundle's)")
    if development is None:
        fit = _fit_development(data, predictions, log, oof)
    else:
        absent = [m for m in models if m not in development.thresholds]
        unmapped = [m for m in models if m not in development.probability_models and m not in development.mappings]
        if absent or unmapped:
            raise InputError(f"the carried development fit has no threshold for {', '.join(absent) or '-'} and no risk "
                             f"map for {', '.join(unmapped) or '-'}")
        fit = development
    if reference is not None:
        chosen_by = "--reference"
    elif oof is not None and any(np.isfinite(_auc_or_nan(*oof.curve(oof_cohort, m))) for m in oof_models):
        oof_auc = {m: _auc_or_nan(*oof.curve(oof_cohort, m)) for m in oof_models}
        finite = {m: a for m, a in oof_auc.items() if np.isfinite(a)}
        reference = max(finite, key=finite.get)
        chosen_by = "highest out-of-fold development AUC"
    else:
        dev_auc = {m: _auc_or_nan(*data.curve(dev, m)) for m in models}
        finite = {m: a for m, a in dev_auc.items() if np.isfinite(a)}
        reference = max(finite, key=finite.get) if finite else models[0]
        chosen_by = "highest development AUC" if finite else "first model (no development AUC is defined)"

    # (cohort, its scores, its models, its seed child): the out-of-fold cohort right after the
    # development one, seeded by the next child after the file's cohorts, so that adding it
    # changes no other cohort's resamples
    children = np.random.SeedSequence(seed).spawn(len(cohorts) + (oof is not None))
    if development is not None:  # the development cohort's child after the others' (see the docstring)
        children = [children[len(cohorts) - 1], *children[:len(cohorts) - 1], *children[len(cohorts):]]
    plan = [(cohort, data, models, children[k]) for k, cohort in enumerate(cohorts)]
    if oof is not None:
        plan.insert(1, (oof_cohort, oof, oof_models, children[len(cohorts)]))
    parts, comparisons, reclass = [], [], []
    survival_rows, km_frames, survival_fits = [], [], {}
    for cohort, scores, present, child in plan:
        members = np.flatnonzero(scores.cohort_of == cohort)
        logger.info(f"cohort {cohort!r}: {members.size} patients, {len(present)} models, {n_bootstrap} bootstrap "
                    "resamples")
        resamples = (stratified_resamples(scores.outcome[members], n_bootstrap, rng=np.random.default_rng(child))
                     if n_bootstrap > 0 else None)
        position = np.full(scores.outcome.size, -1)  # patient row -> column of the cohort's resamples
        position[members] = np.arange(members.size)
        part = _cohort_statistics(scores, cohort, present, fit, resamples, position, log)
        if reference in present:
            part.decision_curve_differences = _decision_differences(scores, cohort, present, reference, fit, part,
                                                                    resamples, position, log)
        survival = {}
        if predictions.time is not None:  # before the curves go out, so that the KM figures are drawn early
            rows_s, frames_s, survival = _cohort_survival(scores, cohort, present, predictions, fit, horizon, log)
            survival_rows += rows_s
            km_frames += frames_s
            survival_fits.update({(cohort, m): r for m, r in survival.items()})
        if cohort_done is not None:
            curves = part.curves(cohort, shown or SHOWN_RANGE)
            cohort_done(dataclasses.replace(curves, survival=survival, survival_time=predictions.time or "time")
                        if survival else curves)
        parts.append(part)
        comparisons += _paired_comparisons(scores, cohort, present, part, resamples, position, log)
        if reference in present:
            reclass += _reclassification_rows(scores, cohort, present, reference, fit, resamples, position, log)

    logger.info("unpaired DeLong tests between cohorts; subgroups")
    cohort_rows = _cohort_tests(data, dev, cohorts[1:], models, log)
    if oof is not None:
        cohort_rows += _cohort_tests(data, oof_cohort, cohorts[1:], oof_models, log, data_a=oof)
    subgroup_frames = _subgroup_frames([(c, d, m) for c, d, m, _ in plan], strata, models, log)

    table_cohorts = [c for c, *_ in plan]
    mapping_rows = [{"model": m, "fitted_on": dev, "intercept": r.intercept, "slope": r.slope, "n": r.n}
                    for m, r in fit.mappings.items()]
    settings = {"dev_cohort": dev, "cohorts": table_cohorts, "models": list(models),
                "probability_models": [m for m in models if m in fit.probability_models],
                "reference": reference, "reference_chosen_by": chosen_by, "strata": list(strata),
                "n_bootstrap": n_bootstrap, "seed": seed,
                "thresholds": {m: fit.thresholds[m] for m in models},
                "threshold_source": {m: fit.threshold_source[m] for m in models},
                "oof_cohort": oof_cohort, "oof_predictions": predictions.oof_source,
                "oof_models": list(oof_models),
                "decision_curve_range": None if shown is None else list(shown)}
    if predictions.time is not None:  # only then: results.json of an analysis without them is unchanged
        settings["survival"] = {"time": predictions.time, "event": predictions.event, "horizon": float(horizon)}
    return AnalysisResult(
        performance=_frame([r for p in parts for r in p.performance], PERFORMANCE_COLUMNS),
        comparisons=_frame(comparisons, COMPARISON_COLUMNS),
        cohort_tests=_frame(cohort_rows, COHORT_TEST_COLUMNS),
        subgroups=_concat(subgroup_frames, SUBGROUP_COLUMNS),
        decision_curve=_concat([f for p in parts for f in p.decision_curve], DCA_COLUMNS),
        calibration=_concat([f for p in parts for f in p.calibration], CALIBRATION_COLUMNS),
        calibration_smooth=_concat([f for p in parts for f in p.smooth], SMOOTH_COLUMNS),
        reclassification=_frame(reclass, RECLASSIFICATION_COLUMNS),
        risk_mappings=_frame(mapping_rows, ["model", "fitted_on", "intercept", "slope", "n"]),
        roc={(cohort, m): c for cohort, p in zip(table_cohorts, parts) for m, c in p.roc.items()},
        settings=settings, warnings=log.lines,
        survival=_frame(survival_rows, SURVIVAL_COLUMNS), km_curves=_concat(km_frames, KM_COLUMNS),
        survival_fits=survival_fits,
        calibration_groups=_concat([f for p in parts for f in p.calibration_groups], CALIBRATION_GROUP_COLUMNS),
        decision_curve_differences=_concat([f for p in parts for f in p.decision_curve_differences],
                                           DCA_DIFFERENCE_COLUMNS),
    )


def _cohort_survival(scores: _Scores, cohort: str, present, predictions: Predictions, fit: _DevelopmentFit,
                     horizon: float, log: _WarningLog) -> tuple[list, list, dict]:
    """``survival.csv`` rows, ``km_curve.csv`` frames and model -> RiskGroupSurvival of every
    model of one cohort, split at the model's development threshold."""
    rows, curves, fits = [], [], {}
    time = scores.patients[predictions.time].to_numpy(dtype=float)
    event = scores.patients[predictions.event].to_numpy(dtype=int)
    for model in present:
        members = scores.rows(cohort, model)
        if members.size == 0:
            continue
        with log.context(f"model {model}, cohort {cohort} (survival)"):
            result = risk_group_survival(time[members], event[members], scores.score(model, members),
                                         fit.thresholds[model], horizon=horizon)
        fits[model] = result
        rows.append({"model": model, "cohort": cohort, **result.row()})
        curves.append(result.curve_frame().assign(cohort=cohort, model=model)[KM_COLUMNS])
    return rows, curves, fits


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
