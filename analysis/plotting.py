"""Figures drawn from results objects: ROC with CI band, calibration, decision curves and the
subgroup forest plot. Each function draws on the axes given and returns them; nothing here
computes a statistic, shows a window or saves a file.

Tables may be pandas DataFrames (the CSV files of ``dlr analyze``, read back) or plain
mappings of column name to array: this module needs only numpy, so the figure processes of
`dlr analyze` start without loading pandas.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:
    from .discrimination import RocCurve


def _axes(ax, size=(5.5, 5.0)):
    """The axes given, or new axes on a new figure (pyplot, for interactive use)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def _column(table: Mapping, name: str) -> np.ndarray:
    return np.asarray(table[name])


def _by_model(table: Mapping):
    """(model, row mask) for each model in order of first appearance."""
    models = _column(table, "model")
    for model in dict.fromkeys(models.tolist()):
        yield model, models == model


def plot_roc(curves: dict[str, RocCurve], *, ax=None, title: str | None = None):
    """ROC curves of several models in one cohort, each with its bootstrap sensitivity band.

    Parameters
    ----------
    curves : dict model name -> RocCurve (or any object with its ``fpr``, ``tpr``,
        ``band_*`` and ``auc`` attributes)
    """
    ax = _axes(ax)
    for model, curve in curves.items():
        auc = curve.auc
        label = f"{model}: AUC {auc.estimate:.3f} ({auc.ci_low:.3f}-{auc.ci_high:.3f})"
        (line,) = ax.plot(curve.fpr, curve.tpr, label=label, linewidth=1.6)
        if len(curve.band_specificity):
            ax.fill_between(1 - np.asarray(curve.band_specificity), curve.band_sensitivity_low,
                            curve.band_sensitivity_high, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="x-small", frameon=False)
    return ax


def plot_calibration(bins: Mapping, smooth: Mapping, *, ax=None, title: str | None = None):
    """Calibration curves: binned observed rate (Wilson CI) and LOESS, per model.

    Parameters
    ----------
    bins : table with ``model``, ``mean_predicted``, ``observed``, ``observed_ci_low``,
        ``observed_ci_high`` (``calibration.csv`` rows of one cohort).
    smooth : table with ``model``, ``predicted``, ``observed`` (LOESS rows of one cohort).
    """
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="Ideal")
    smooth_models = _column(smooth, "model")
    for model, rows in _by_model(bins):
        observed = _column(bins, "observed")[rows]
        err = np.clip(np.vstack([observed - _column(bins, "observed_ci_low")[rows],
                                 _column(bins, "observed_ci_high")[rows] - observed]), 0, None)
        points = ax.errorbar(_column(bins, "mean_predicted")[rows], observed, yerr=err, fmt="o", markersize=3.5,
                             capsize=2, linewidth=0.8, label=f"{model} (deciles)")
        mine = smooth_models == model
        if mine.any():
            ax.plot(_column(smooth, "predicted")[mine], _column(smooth, "observed")[mine],
                    color=points[0].get_color(), linewidth=1.4, label=f"{model} (LOESS)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed proportion", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize="x-small", frameon=False)
    return ax


def plot_decision_curve(curves: Mapping, *, ax=None, title: str | None = None):
    """Net benefit against threshold probability, with treat-all and treat-none.

    Parameters
    ----------
    curves : table with ``model``, ``threshold``, ``net_benefit`` (one cohort).
    """
    ax = _axes(ax)
    style = {"treat_all": dict(color="grey", linewidth=1.2, label="Treat all"),
             "treat_none": dict(color="black", linewidth=1.2, label="Treat none")}
    threshold, benefit = _column(curves, "threshold"), _column(curves, "net_benefit").astype(float)
    for model, rows in _by_model(curves):
        ax.plot(threshold[rows], benefit[rows], **style.get(model, dict(linewidth=1.5, label=model)))
    top = max(0.05, float(np.nanmax(benefit)) if benefit.size else 0.05)
    ax.set(xlim=(0, 1), ylim=(-0.05 - 0.1 * top, top * 1.1), xlabel="Threshold probability",
           ylabel="Net benefit", title=title)
    ax.legend(loc="upper right", fontsize="x-small", frameon=False)
    return ax


def plot_forest(subgroups: Mapping, *, ax=None, title: str | None = None):
    """Forest plot of subgroup AUCs with DeLong CIs and the between-level p value.

    Parameters
    ----------
    subgroups : table with ``model``, ``cohort``, ``level``, ``n``, ``auc``, ``auc_ci_low``,
        ``auc_ci_high``, ``p_between`` (``subgroups.csv`` rows of one stratifier).
    """
    auc = _column(subgroups, "auc").astype(float)
    low, high = _column(subgroups, "auc_ci_low").astype(float), _column(subgroups, "auc_ci_high").astype(float)
    p_between = _column(subgroups, "p_between").astype(float)
    ax = _axes(ax, (7.5, 0.28 * auc.size + 1.2))
    y = np.arange(auc.size)[::-1]
    finite = np.isfinite(auc)
    ax.errorbar(auc[finite], y[finite],
                xerr=np.clip(np.vstack([auc[finite] - low[finite], high[finite] - auc[finite]]), 0, None),
                fmt="s", markersize=4, capsize=2, color="black", linewidth=1)
    labels = [f"{m} | {c} | {lv} (n={n})" for m, c, lv, n in zip(
        _column(subgroups, "model"), _column(subgroups, "cohort"), _column(subgroups, "level"),
        _column(subgroups, "n"))]
    ax.set_yticks(y, labels, fontsize="x-small")
    for yi, a, p in zip(y, auc, p_between):
        text = "AUC undefined" if not np.isfinite(a) else (f"P = {p:.3f}" if np.isfinite(p) else "")
        ax.text(1.02, yi, text, fontsize="x-small", va="center", transform=ax.get_yaxis_transform())
    ax.axvline(0.5, linestyle=":", color="grey", linewidth=1)
    ax.set(xlim=(0, 1), xlabel="AUC (95% CI, DeLong)", title=title)
    return ax
