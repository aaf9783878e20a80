"""Figures drawn by more than one stage, from the files the stages exchange."""
from __future__ import annotations

from typing import Callable, Optional

import pandas as pd


def plot_training_curves(log: pd.DataFrame, *, axes, colour: Optional[Callable[[str], str]] = None,
                         legend_below: bool = False):
    """The deep arm's training log (``RUN/models/deep/training_log.csv``) on two axes: (A) the
    training and inner-split class-weighted cross-entropy per epoch (log scale, inner split
    dashed), (B) the inner-split AUC per epoch with each network's best epoch (lowest inner
    loss, the weights kept) marked; one colour per network.

    Parameters
    ----------
    log : DataFrame with ``network``, ``epoch``, ``train_loss``, ``inner_loss``, ``inner_auc``.
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
        a.plot(g["epoch"], g["train_loss"], color=c, lw=1.1, label=f"{name}, training")
        a.plot(g["epoch"], g["inner_loss"], color=c, lw=1.1, ls="--", label=f"{name}, inner split")
        b.plot(g["epoch"], g["inner_auc"], color=c, lw=1.1, label=name)
        best = g.loc[g["inner_loss"].idxmin()]
        b.plot([best["epoch"]], [best["inner_auc"]], "o", color=c, ms=3.5)
    a.set(xlabel="Epoch", ylabel="Class-weighted cross-entropy", yscale="log")
    b.set(xlabel="Epoch", ylabel="Inner-split AUC", ylim=(0, 1))
    for ax in (a, b):
        if legend_below:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        else:
            ax.legend(fontsize=6, frameon=False)
    return a, b
