"""Figures drawn from results objects: ROC with CI band, calibration, decision curves and the
subgroup forest plot. Each function draws on the axes given and returns them; nothing here
computes a statistic, shows a window or saves a file."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .discrimination import RocCurve


def _axes(ax, size=(5.5, 5.0)):
    """The axes given, or new axes on a new figure (pyplot, for interactive use)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def plot_roc(curves: dict[str, RocCurve], *, ax=None, title: str | None = None):
    """ROC curves of several models in one cohort, each with its bootstrap sensitivity band.

    Parameters
    ----------
    curves : dict model name -> RocCurve
    """
    ax = _axes(ax)
    for model, curve in curves.items():
        auc = curve.auc
        label = f"{model}: AUC {auc.estimate:.3f} ({auc.ci_low:.3f}-{auc.ci_high:.3f})"
        (line,) = ax.plot(curve.fpr, curve.tpr, label=label, linewidth=1.6)
        if curve.band_specificity.size:
            ax.fill_between(1 - curve.band_specificity, curve.band_sensitivity_low, curve.band_sensitivity_high,
                            color=line.get_color(), alpha=0.12, linewidth=0)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="x-small", frameon=False)
    return ax


def plot_calibration(bins: pd.DataFrame, smooth: pd.DataFrame, *, ax=None, title: str | None = None):
    """Calibration curves: binned observed rate (Wilson CI) and LOESS, per model.

    Parameters
    ----------
    bins : DataFrame with ``model``, ``mean_predicted``, ``observed``, ``observed_ci_low``,
        ``observed_ci_high`` (``calibration.csv`` rows of one cohort).
    smooth : DataFrame with ``model``, ``predicted``, ``observed`` (LOESS rows of one cohort).
    """
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="Ideal")
    for model, b in bins.groupby("model", sort=False):
        err = np.clip(np.vstack([b["observed"] - b["observed_ci_low"], b["observed_ci_high"] - b["observed"]]), 0, None)
        points = ax.errorbar(b["mean_predicted"], b["observed"], yerr=err, fmt="o", markersize=3.5, capsize=2,
                             linewidth=0.8, label=f"{model} (deciles)")
        s = smooth[smooth["model"] == model]
        if len(s):
            ax.plot(s["predicted"], s["observed"], color=points[0].get_color(), linewidth=1.4,
                    label=f"{model} (LOESS)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed proportion", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize="x-small", frameon=False)
    return ax


def plot_decision_curve(curves: pd.DataFrame, *, ax=None, title: str | None = None):
    """Net benefit against threshold probability, with treat-all and treat-none.

    Parameters
    ----------
    curves : DataFrame with ``model``, ``threshold``, ``net_benefit`` (one cohort).
    """
    ax = _axes(ax)
    style = {"treat_all": dict(color="grey", linewidth=1.2, label="Treat all"),
             "treat_none": dict(color="black", linewidth=1.2, label="Treat none")}
    for model, c in curves.groupby("model", sort=False):
        ax.plot(c["threshold"], c["net_benefit"], **style.get(model, dict(linewidth=1.5, label=model)))
    top = max(0.05, float(np.nanmax(curves["net_benefit"])) if len(curves) else 0.05)
    ax.set(xlim=(0, 1), ylim=(-0.05 - 0.1 * top, top * 1.1), xlabel="Threshold probability",
           ylabel="Net benefit", title=title)
    ax.legend(loc="upper right", fontsize="x-small", frameon=False)
    return ax


def plot_forest(subgroups: pd.DataFrame, *, ax=None, title: str | None = None):
    """Forest plot of subgroup AUCs with DeLong CIs and the between-level p value.

    Parameters
    ----------
    subgroups : DataFrame with ``model``, ``cohort``, ``level``, ``n``, ``auc``,
        ``auc_ci_low``, ``auc_ci_high``, ``p_between`` (``subgroups.csv`` rows of one
        stratifier).
    """
    rows = subgroups.reset_index(drop=True)
    ax = _axes(ax, (7.5, 0.28 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    finite = rows["auc"].notna().to_numpy()
    ax.errorbar(rows.loc[finite, "auc"], y[finite],
                xerr=np.clip(np.vstack([rows.loc[finite, "auc"] - rows.loc[finite, "auc_ci_low"],
                                        rows.loc[finite, "auc_ci_high"] - rows.loc[finite, "auc"]]), 0, None),
                fmt="s", markersize=4, capsize=2, color="black", linewidth=1)
    labels = [f"{r.model} | {r.cohort} | {r.level} (n={r.n})" for r in rows.itertuples()]
    ax.set_yticks(y, labels, fontsize="x-small")
    for yi, r in zip(y, rows.itertuples()):
        text = "AUC undefined" if not np.isfinite(r.auc) else (
            f"P = {r.p_between:.3f}" if np.isfinite(r.p_between) else "")
        ax.text(1.02, yi, text, fontsize="x-small", va="center", transform=ax.get_yaxis_transform())
    ax.axvline(0.5, linestyle=":", color="grey", linewidth=1)
    ax.set(xlim=(0, 1), xlabel="AUC (95% CI, DeLong)", title=title)
    return ax
