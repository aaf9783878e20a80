"""The external-validation report's own figures, drawn from a `dlr predict` run's saved results.

`dlr analyze` draws every model in one panel per cohort (``results/figures/roc_<cohort>.png``
and the like): with a bundle of 17 models that is 17 curves and 17 bands in a panel. The report
draws its figures instead, as the main report does (:mod:`dlr.report.figures`, whose layout,
colours, legends and titles it reuses): the **key models** (:func:`figure_models`: CR, the best
radiomics classifier, the best network, RCR and DLRCR, those present), one panel per cohort,
the development cohort's out-of-fold predictions first where the bundle carries them.

=====================  =====================================================================
figure                 what is drawn, from which file of ``RUN2/results/``
=====================  =====================================================================
``roc_models``         ROC curves of the key models per cohort (``roc_curve.csv``; the band
                       of the highlighted model only, ``roc_band.csv``); legend: the AUC of
                       ``performance.csv``
``roc_comparators``    the staging systems and indexes (dashed) against RCR, likewise
``calibration_models`` one panel per key probability model, each new cohort's LOESS curve and
                       quantile groups (``calibration_smooth.csv``, ``calibration_groups.csv``)
``dca_models``         decision curves of the key models per new cohort, treat all and treat
                       none (``decision_curve.csv``)
``dca_difference``     their net benefit minus the reference model's per new cohort
                       (``decision_curve_differences.csv``)
``km``                 Kaplan-Meier curves of the reference model's risk groups per new
                       cohort (``survival.csv``, ``km_curve.csv``)
``forest_<stratum>``   the key models' AUCs by each stratifier (``subgroups.csv``)
=====================  =====================================================================

Nothing is computed here: every curve is a file's rows as they are, every AUC in a legend is
``performance.csv``'s (:func:`dlr.analysis.output.read_analysis` puts it on the curve), and
each caption says what is drawn and where the models left out are.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlr.core import run_folder as rf

from .figures import (COHORT_STYLE_NAMES, MAX_PANELS_IN_A_ROW, STYLE, _colours, _dca_banded, _in_order, _legend,
                      _panel_letter, _panel_name, _panels, _save, _shown, _title, draw_calibration, draw_dca,
                      draw_km)
from .tables import cohort_text
from .text import _list


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the external report: its Quarto label, the include group it goes into
    (``roc``, ``calibration``, ``dca``, ``km``, ``forest``), its file stem, caption, models and
    cohorts."""

    id: str
    group: str
    stem: str
    caption: str
    models: tuple = ()
    cohorts: tuple = ()


# ------------------------------------------------------------------------------------------
# which models


def _best_by_development_auc(ext, candidates) -> str | None:
    """Of ``candidates``, the model of highest out-of-fold development AUC in performance.csv
    (else of highest apparent development AUC): the rule by which `dlr train` chose the best
    radiomics classifier and the best network."""
    perf = ext.performance
    rows = perf[perf["model"].isin(list(candidates))]
    for cohort in ([ext.oof] if ext.oof else []) + [ext.dev]:
        mine = rows[(rows["cohort"] == cohort) & np.isfinite(rows["auc"].astype(float))]
        if len(mine):
            return str(mine.loc[mine["auc"].astype(float).idxmax(), "model"])
    return None


def chosen_on(ext, models) -> str:
    """How :func:`_best_by_development_auc` chose among ``models``: by their out-of-fold
    development AUC where performance.csv has one, else by the apparent one."""
    perf = ext.performance
    has_oof = ext.oof and bool(((perf["cohort"] == ext.oof) & perf["model"].isin(list(models))).any())
    return "out-of-fold development AUC" if has_oof else "apparent development AUC"


def best_radiomics(ext) -> str | None:
    """The best radiomics classifier by the rule of the report's title (:func:`dlr.core.run_folder.best_radiomics`)."""
    return rf.best_radiomics(None, ext.performance, ext.dev)


def best_network(ext) -> str | None:
    """The network of highest out-of-fold development AUC (else apparent), as `dlr train` chose
    the network it fused into DLRCR (``models/deep/settings.json``'s ``best_network``, which
    the bundle does not carry)."""
    return _best_by_development_auc(ext, [m for m in ext.models if m in rf.DEEP_NETWORK_MODELS])


def figure_models(ext) -> list:
    """The key models of the figures, in order: CR, the best radiomics classifier, the best
    network (each of highest out-of-fold development AUC), RCR and DLRCR, those the run has;
    else the report's key models (:attr:`ExternalFacts.key_models`)."""
    order = ("CR", best_radiomics(ext), best_network(ext), "RCR", "DLRCR")
    found = [m for m in dict.fromkeys(order) if m and m in ext.models]
    return found or list(ext.key_models)


def comparators(ext) -> list:
    """The staging systems and indexes of the run (drawn dashed), in the bundle's order."""
    return [m for m in ext.models if m in rf.COMPARATORS]


def highlight(ext, models: list) -> str:
    """The model whose band a ROC figure draws: the analysis' reference model (results.json),
    else RCR, else the first."""
    for model in (ext.settings.get("reference"), "RCR"):
        if model in models:
            return model
    return models[0]


def _reference_words(ext) -> str:
    """"the analysis' reference model: highest out-of-fold development AUC" (results.json)."""
    chosen_by = ext.settings.get("reference_chosen_by")
    return "the analysis' reference model" + (f": {chosen_by}" if chosen_by else "")


def models_text(ext, models: list) -> str:
    """``models`` for a caption, the best classifier and network named as chosen."""
    said = []
    for model in models:
        if model in rf.RADIOMICS_MODELS and model == best_radiomics(ext):
            said.append(f"{model} (the radiomics classifier of highest "
                        f"{chosen_on(ext, rf.RADIOMICS_MODELS)})")
        elif model in rf.DEEP_NETWORK_MODELS and model == best_network(ext):
            said.append(f"{model} (the network of highest {chosen_on(ext, rf.DEEP_NETWORK_MODELS)})")
        else:
            said.append(model)
    return _list(said)


# ------------------------------------------------------------------------------------------
# captions


def _counts(ext, cohort: str) -> str:
    n, e = ext.counts(cohort)
    return f"{n} patients, {e} events"


def panels_text(ext, cohorts: list, *, comparators_in_oof: bool = False) -> str:
    """What each panel shows: ``(A) the development cohort's nested out-of-fold predictions
    carried in the bundle (n patients, e events), for comparison; (B) the validation cohort
    (n patients, e events), applied unchanged``."""
    said = []
    for i, cohort in enumerate(cohorts):
        name = _panel_name(i, len(cohorts))
        if cohort == ext.oof:
            text = (f"{name}the {ext.dev} cohort's nested out-of-fold predictions carried in the bundle "
                    f"({_counts(ext, cohort)}), for comparison")
            if comparators_in_oof:
                text += ("; the staging systems and indexes, which have no out-of-fold predictions, from their "
                         f"scores on the {ext.dev} cohort")
        elif cohort == ext.dev:
            text = (f"{name}the {ext.dev} cohort's apparent predictions carried in the bundle "
                    f"({_counts(ext, cohort)}; the models scored the patients they were fitted on), for comparison")
        else:
            text = (f"{name}the {cohort_text(_title(cohort))} of the new study ({_counts(ext, cohort)}), "
                    "applied unchanged")
        said.append(text)
    return "; ".join(said)


# ------------------------------------------------------------------------------------------
# drawing


def roc_label(model: str, curve) -> str:
    """A ROC legend's entry: ``MODEL (AUC 0.812)``, the AUC of performance.csv."""
    return f"{model} (AUC {curve.auc.estimate:.3f})"


def draw_roc_panels(analysis, models: list, cohorts: list, highlight_model: str):
    """ROC curves of ``models``, one panel per cohort, drawn by
    :func:`dlr.analysis.plotting.plot_roc` from the curves the analysis saved; the bootstrap
    band of ``highlight_model`` alone (overlapping bands hide the curves); a comparator in an
    out-of-fold panel from its development scores (:func:`dlr.report.figures._shown`)."""
    from dlr.analysis.plotting import plot_roc

    if analysis is None or not analysis.roc:
        return None
    fig, axes = _panels(len(cohorts))
    used = {}
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        curves = {m: analysis.roc[(_shown(analysis.roc, cohort, m), m)] for m in models
                  if (_shown(analysis.roc, cohort, m), m) in analysis.roc}
        plot_roc(curves, ax=ax, title=_title(cohort), colours=_colours(curves, used), bands=[highlight_model],
                 linewidth=1.3, label=roc_label)
        _legend(ax, len(curves), "lower right")
        _panel_letter(ax, i, len(axes))
    return fig


def draw_dca_difference(analysis, models: list, cohorts: list, dca_range):
    """Each model's net benefit minus the reference model's, one panel per cohort, drawn by
    :func:`dlr.analysis.plotting.plot_net_benefit_difference` from
    ``decision_curve_differences.csv``."""
    from dlr.analysis.plotting import plot_net_benefit_difference

    table = analysis.decision_curve_differences
    if not len(table):
        return None
    fig, axes = _panels(len(cohorts))
    drawn = False
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        part = _in_order(table[table["cohort"] == cohort], models)
        if part.empty:
            ax.set_axis_off()
            continue
        plot_net_benefit_difference(part, ax=ax, title=_title(cohort), threshold_range=dca_range)
        ax.get_legend().set_bbox_to_anchor((0.5, -0.17))  # clear of the axis label in a narrow panel
        _panel_letter(ax, i, len(axes))
        drawn = True
    if not drawn:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    return fig


def draw_forest(analysis, models: list, cohorts: list, stratifier: str):
    """The AUCs of ``models`` by ``stratifier`` in ``cohorts`` (``subgroups.csv``), model by
    model and cohort by cohort in those orders, drawn by :func:`dlr.analysis.plotting.plot_forest`
    as the main report draws its forest plot."""
    import matplotlib.pyplot as plt

    from dlr.analysis.plotting import forest_height, plot_forest

    sub = analysis.subgroups
    if not len(sub):
        return None
    if "stratifier" in sub:
        sub = sub[sub["stratifier"] == stratifier]
    sub = _in_order(sub[sub["cohort"].isin(cohorts)], models)
    if sub.empty:
        return None
    rank = {(m, c): k for k, (m, c) in enumerate((m, c) for m in models for c in cohorts)}
    keys = [rank[(m, c)] for m, c in zip(sub["model"], sub["cohort"])]
    sub = sub.iloc[np.argsort(np.asarray(keys), kind="stable")]
    fig, ax = plt.subplots(figsize=(7.0, forest_height(sub)))
    fig.subplots_adjust(left=0.25, right=0.56)
    plot_forest(sub, ax=ax, colours=_colours(dict.fromkeys(sub["model"]), {}))
    return fig


def _dca_difference_banded(analysis, models: list, reference: str) -> bool:
    """Whether :func:`draw_dca_difference` draws bands: CIs in the file and at most
    :data:`dlr.analysis.plotting.MAX_BANDS` models besides the reference."""
    from dlr.analysis.plotting import MAX_BANDS

    table = analysis.decision_curve_differences
    return ("nb_diff_ci_low" in table and bool(table["nb_diff_ci_low"].notna().any())
            and len([m for m in models if m != reference]) <= MAX_BANDS)


class _Drawn:
    """The figures drawn so far, each saved (PNG and SVG) into ``out`` and recorded."""

    def __init__(self, out: Path, dpi: int):
        self.out, self.dpi, self.records = out, dpi, []

    def keep(self, fig, fid: str, group: str, stem: str, caption: str, models, cohorts) -> None:
        import matplotlib.pyplot as plt

        if fig is None:
            return
        _save(fig, self.out, stem, self.dpi)
        plt.close(fig)
        self.records.append(ReportFigure(fid, group, stem, caption, tuple(models), tuple(cohorts)))


def _roc_figures(drawn: _Drawn, ext, analysis, models: list) -> None:
    cohorts = [ext.oof or ext.dev, *ext.new_cohorts]
    top = highlight(ext, models)
    reference = ext.settings.get("reference")
    why = f" ({_reference_words(ext)})" if top == reference else ""
    drawn.keep(draw_roc_panels(analysis, models, cohorts, top), "fig-roc-models", "roc", "roc_models",
               f"ROC curves of the key models, {models_text(ext, models)}: {panels_text(ext, cohorts)}. "
               f"Shaded: the bootstrap 95% CI of the sensitivity of {top}{why} only, the other bands left out so as "
               "not to hide the curves; dotted: chance; models with identical curves are drawn once and named "
               "together (A = B); legend: the AUC of each model (performance.csv; every model of the bundle is in "
               "the discrimination table).",
               models, cohorts)
    staging = comparators(ext)
    if not staging:
        return
    against = "RCR" if "RCR" in ext.models else top
    shown = [against, *staging]
    drawn.keep(draw_roc_panels(analysis, shown, cohorts, against), "fig-roc-comparators", "roc", "roc_comparators",
               f"ROC curves of the staging systems and indexes ({_list(staging)}; dashed) against {against} "
               f"(solid): {panels_text(ext, cohorts, comparators_in_oof=cohorts[0] == ext.oof)}. Shaded: the "
               f"bootstrap 95% CI of the sensitivity of {against} only; dotted: chance; models with identical curves "
               "are drawn once and named together (A = B); legend: the AUC of each model (performance.csv, as in the "
               "discrimination table).",
               shown, cohorts)


def _calibration_figure(drawn: _Drawn, ext, analysis, models: list) -> None:
    probability = [m for m in models if m in ext.probability_models]
    cohorts = list(ext.new_cohorts)
    if not probability or not cohorts:
        return
    from dlr.analysis.calibration import MIN_LOESS_LEVELS

    styles = ", ".join(f"the {cohort_text(_title(c))} {COHORT_STYLE_NAMES[k % len(COHORT_STYLE_NAMES)]}"
                       for k, c in enumerate(cohorts))
    layout = (f"one panel per model, {styles}" if len(cohorts) <= MAX_PANELS_IN_A_ROW else
              "one panel per model (rows) and new cohort (columns: "
              + ", ".join(cohort_text(_title(c)) for c in cohorts) + ")")
    others = [m for m in ext.probability_models if m not in probability]
    drawn.keep(draw_calibration(analysis, probability, cohorts), "fig-calibration-models", "calibration",
               "calibration_models",
               f"Calibration of the key probability models, {models_text(ext, probability)}, in the new study's "
               f"cohorts, as applied from the bundle (not recalibrated): {layout}. Lines: LOESS of the outcome on "
               f"the predicted probability (a model with fewer than {MIN_LOESS_LEVELS} distinct predictions: the "
               "observed proportion at each); points: observed proportion in quantile groups sized to the cohort, "
               "with its 95% CI (Wilson); dotted: ideal calibration; corner: the calibration slope in "
               + ("each cohort, in that order" if len(cohorts) <= MAX_PANELS_IN_A_ROW else "the panel's cohort")
               + "." + (f" The other probability models ({_list(others)}): the calibration table." if others else ""),
               probability, cohorts)


def _dca_figures(drawn: _Drawn, ext, analysis, models: list, dca_range) -> None:
    cohorts = list(ext.new_cohorts)
    if not cohorts:
        return
    lo, hi = dca_range
    drawn.keep(draw_dca(analysis, models, cohorts, dca_range), "fig-dca-models", "dca", "dca_models",
               f"Decision curves of the key models, {models_text(ext, models)}, over threshold probabilities "
               f"{lo:.2f}-{hi:.2f}: {panels_text(ext, cohorts)}. Dashed: treat all; horizontal: treat none; a curve "
               "that leaves the panel at the bottom does worse than treating nobody there. Every model's net benefit "
               "is in results/decision_curve.csv."
               + (" Shaded: bootstrap 95% CI of the net benefit." if _dca_banded(analysis, models) else ""),
               models, cohorts)
    table = analysis.decision_curve_differences
    if not len(table) or "reference" not in table:
        return
    reference = str(table["reference"].iloc[0])
    shown = [m for m in models if m != reference]
    if not shown:
        return
    drawn.keep(draw_dca_difference(analysis, [*shown, reference], cohorts, dca_range), "fig-dca-difference", "dca",
               "dca_difference",
               f"Net benefit of {_list(shown)} minus that of {reference} ({_reference_words(ext)}), as net true "
               f"positives per 100 patients, over threshold probabilities {lo:.2f}-{hi:.2f}: "
               f"{panels_text(ext, cohorts)}. The line at 0 is {reference}. "
               + ("Shaded: 95% paired bootstrap CI of the difference. "
                  if _dca_difference_banded(analysis, [*shown, reference], reference) else "")
               + "Every model's difference is in results/decision_curve_differences.csv.",
               [*shown, reference], cohorts)


def _km_figure(drawn: _Drawn, ext, analysis) -> None:
    """The Kaplan-Meier curves of the reference model's risk groups in each new cohort, drawn by
    :func:`dlr.report.figures.draw_km` (with follow-up only)."""
    from dlr.analysis.figures import time_label

    model = ext.facts.km_model
    survival = analysis.survival
    if model is None or not analysis.survival_fits or survival is None or not len(survival):
        return
    cohorts = [c for c in ext.new_cohorts if ((survival["model"] == model) & (survival["cohort"] == c)).any()]
    if not cohorts:
        return
    which = f" ({_reference_words(ext)})" if model == ext.settings.get("reference") else ""
    threshold = float(survival.loc[survival["model"] == model, "threshold"].iloc[0])
    censored = "n_events" in analysis.km_curves
    drawn.keep(draw_km(analysis, model, cohorts, xlabel=time_label(ext.facts.survival_settings.get("time"))),
               "fig-km", "km", "km",
               "Kaplan-Meier curves of recurrence-free probability in the high- and low-risk groups of "
               f"{model}{which}: "
               + "; ".join(f"{_panel_name(i, len(cohorts))}the {cohort_text(_title(c))} of the new study "
                           f"({_counts(ext, c)})" for i, c in enumerate(cohorts))
               + f". The groups are split at {model}'s development threshold carried in the bundle ({threshold:.3g}; "
               "high risk: score at or above it), never re-chosen on the new patients. Bands: 95% CI (log); "
               + ("ticks: censored patients; " if censored else "")
               + "each panel's legend gives the log-rank P and the Cox hazard ratio of the high-risk group (Efron "
               "ties, Wald 95% CI); beneath: the number at risk. Every model's risk groups: the time-to-recurrence "
               "table.", (model,), cohorts)


def _forest_figures(drawn: _Drawn, ext, analysis, models: list) -> None:
    cohorts = [ext.oof or ext.dev, *ext.new_cohorts]
    from dlr.analysis.figures import _safe_name

    for k, stratifier in enumerate(ext.settings.get("strata") or [], start=1):
        dev = (f"the {ext.dev} cohort's out-of-fold predictions, for comparison" if cohorts[0] == ext.oof else
               f"the {ext.dev} cohort's apparent predictions, for comparison")
        drawn.keep(draw_forest(analysis, models, cohorts, stratifier), f"fig-forest-{k}", "forest",
                   f"forest_{_safe_name(stratifier)}",
                   f"AUC by {stratifier} of the key models, {_list(models)}, grouped by model and cohort ({dev}, "
                   "then the new study's cohorts): square, the AUC; line, its DeLong 95% CI; P, the unpaired DeLong "
                   "test between the levels. Every model's subgroup AUCs are in results/subgroups.csv.",
                   models, cohorts)


def draw_external_figures(ext, out, *, dca_range, dpi: int = 300) -> list:
    """Draw the external report's figures from RUN2's saved results into ``out`` (PNG and SVG).

    Parameters
    ----------
    ext : ExternalFacts
        The run as :func:`dlr.report.external.read_external` reads it.
    out : path-like
        The folder the figures are written into.
    dca_range : (low, high)
        The decision curves' threshold probabilities (results.json's ``decision_curve_range``,
        else :data:`dlr.analysis.decision_curve.SHOWN_RANGE`).

    Returns
    -------
    list of ReportFigure
        The figures drawn, in the report's order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    analysis = ext.facts.analysis
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if analysis is None:
        return []
    drawn = _Drawn(out, dpi)
    models = figure_models(ext)
    with plt.rc_context(STYLE):
        _roc_figures(drawn, ext, analysis, models)
        _calibration_figure(drawn, ext, analysis, models)
        _dca_figures(drawn, ext, analysis, models, tuple(dca_range))
        _km_figure(drawn, ext, analysis)
        _forest_figures(drawn, ext, analysis, models)
    return drawn.records


__all__ = ["ReportFigure", "draw_external_figures", "figure_models", "best_network", "best_radiomics"]
