"""Figures drawn by more than one stage, from the files the stages exchange."""
from __future__ import annotations

from typing import Callable, Optional

import pandas as pd


def plot_training_curves(log: pd.DataFrame, *, axes, colour: Optional[Callable[[str], str]] = None,
                         legend_below: bool = False):
    """The deep arm's training log (``RUN/models/deep/training_log.csv``) on two axes against the
    optimiser step: (A) the class-weighted cross-entropy of the training slices of the
    development fit (solid) and of the held-out fold's patients in the out-of-fold refits, the
    mean over the folds (dashed; log scale); (B) the held-out folds' mean AUC. Nothing is chosen
    on the held-out curves: every fit runs its fixed budget of steps. One colour per network.

    Parameters
    ----------
    log : DataFrame with ``network``, ``fit`` (``development`` or ``fold k``), ``epoch``,
        ``step``, ``train_loss``, ``held_out_loss``, ``held_out_auc``.
    axes : two matplotlib Axes.
    colour : network name -> colour (default: the property cycle, C0, C1, ...).
    legend_below : legends beneath the panels (the report) instead of inside them.

    Returns
    -------
    the two Axes.
    """
    a, b = axes
    for k, (name, g) in enumerate(log.groupby("network", sort=False)):
        c = colour(name) if colour is not None else f"C{k}"
        development = g[g["fit"] == "development"]
        a.plot(development["step"], development["train_loss"], color=c, lw=1.1, label=f"{name}, training")
        folds = g[g["fit"] != "development"].groupby("epoch")[["step", "held_out_loss", "held_out_auc"]].mean()
        if len(folds):
            a.plot(folds["step"], folds["held_out_loss"], color=c, lw=1.1, ls="--", label=f"{name}, held-out folds")
            b.plot(folds["step"], folds["held_out_auc"], color=c, lw=1.1, label=name)
    b.axhline(0.5, color="0.6", lw=0.8, ls=":")
    a.set(xlabel="Optimiser step", ylabel="Class-weighted cross-entropy", yscale="log")
    b.set(xlabel="Optimiser step", ylabel="Held-out fold AUC (mean)", ylim=(0, 1))
    for ax in (a, b):
        if legend_below:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        else:
            ax.legend(fontsize=6, frameon=False)
    return a, b
