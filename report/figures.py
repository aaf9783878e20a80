"""The report's figures, drawn from a run's saved results only (nothing is fitted here).

Each figure shows the models of one table: the five radiomics classifiers (Table 2); CR, the
best radiomics model, the DL models, RCR and DLRCR (Table 4); the staging systems and indexes
against the best model. Panels A, B, ... are the cohorts (development first), as the paper's
Figures 5-7. One colour per model across every figure (:data:`COLOURS`, the palette of
:mod:`dlr.analysis.plotting`: colour-blind-safe Okabe-Ito and Tol hues); PNG at 300 dpi and
SVG (vector, reproducible bytes).

One drawing path: the ROC curves, calibration, decision curves, the forest plot and the
Kaplan-Meier curves are drawn by :mod:`dlr.analysis.plotting` (as ``results/figures`` are) from
the analysis read back into its result objects (:attr:`RunFacts.analysis`,
:func:`dlr.analysis.output.read_analysis`); the models stage's figures (LASSO, selection flow,
training curves, nomograms) from the tables :class:`RunFacts` reads. Calibration uses the
quantile groups sized to the cohort that the analysis wrote (``calibration_groups.csv``), with
the predictions as a rug beneath. The LASSO figure marks lambda.min and lambda.1se where `dlr
train` recorded them (``models/lasso_cv.csv``). Decision curves are drawn over a stated
clinical range of threshold probabilities (default 0.05-0.80, the risks at which a clinician
would plausibly change adjuvant treatment or surveillance after resection), treat-all dashed.
The forest plot groups the scanner-stratified AUCs by model with an "AUC (95% CI)" column,
events/n per row and each between-level P once. With follow-up, the best model's Kaplan-Meier
curves of its risk groups, one panel per cohort other than the development one.
"""
from __future__ import annotations

import shutil
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlr.analysis.calibration import MIN_LOESS_LEVELS
from dlr.analysis.figures import time_label
from dlr.analysis.plotting import COHORT_STYLE_NAMES, MODEL_COLOURS
from dlr.core import run_folder as rf

from .facts import RunFacts, as_facts
from .tables import MAX_NOMOGRAM_AXES, cohort_text
from .text import DCA_RANGE

OOF_SUFFIX = rf.OOF_SUFFIX
COLOURS = MODEL_COLOURS  # one colour per model, the same in results/figures (dlr.analysis.plotting)
GREYS = ("#555555", "#777777", "#999999", "#BBBBBB")
STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6,
         "font.family": "sans-serif", "svg.hashsalt": "dlr"}


@dataclass(frozen=True)
class FigureRecord:
    """One figure written: its Quarto label, file stem, caption, models and cohorts."""

    id: str
    stem: str
    caption: str
    models: tuple
    cohorts: tuple


def colour(model: str, used: dict) -> str:
    if model in COLOURS:
        return COLOURS[model]
    grey = GREYS[len([m for m in used if m not in COLOURS]) % len(GREYS)]
    warnings.warn(f"figure colour: model {model!r} has no fixed colour; drawn in grey", stacklevel=2)
    return grey


def _safe(name: str) -> str:
    """A model name as part of a label or file stem (``DL-ResNet18`` -> ``dl-resnet18``)."""
    return "".join(c if c.isalnum() else "-" for c in str(name).lower()).strip("-")


def model_groups(facts: RunFacts) -> dict:
    """group name -> models, in the tables' order (only models present in performance.csv); the
    best radiomics model by the rule of the text and tables (:attr:`RunFacts.best_radiomics`)."""
    present = facts.model_names
    classifiers = [m for m in present if m.startswith("Radiomics-")]
    main = [m for m in dict.fromkeys(["CR", facts.best_radiomics, "DL-ResNet10", "DL-ResNet18", "DL-ResNet34", "RCR",
                                      "DLRCR"]) if m and m in present]
    comparators = [m for m in dict.fromkeys([facts.best_model, "BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR"])
                   if m and m in present]
    groups = {"classifiers": classifiers, "models": main, "comparators": comparators if len(comparators) > 1 else []}
    return {k: v for k, v in groups.items() if v}


def _panel_letter(ax, i: int, n: int) -> None:
    """Panel ``i``'s letter, A, B, ..., for a figure of ``n`` panels (none for a single panel)."""
    if n > 1:
        ax.text(-0.14, 1.04, "ABCDEFGH"[i], transform=ax.transAxes, fontsize=11, fontweight="bold", va="bottom")


def _panel_name(i: int, n: int) -> str:
    """``"(A) "`` for panel ``i`` of ``n`` in a caption; ``""`` for a single panel."""
    return f"({'ABCDEFGH'[i]}) " if n > 1 else ""


def _save(fig, out: Path, stem: str, dpi: int) -> None:
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "dlr"}):
        fig.savefig(out / f"{stem}.png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(out / f"{stem}.svg", bbox_inches="tight", metadata={"Date": None})


#: a figure of more panels (cohorts) than this lays them out in rows of :data:`PANEL_COLUMNS`, so
#: that four or more cohorts stay readable at the page's width
MAX_PANELS_IN_A_ROW = 3
PANEL_COLUMNS = 2


def _panels(n: int, *, crowded: bool = False, size: tuple | None = None):
    """A figure of ``n`` panels of ``size`` inches each (default 3.5 x 3.4, 4.0 wide when
    ``crowded``): one row of up to :data:`MAX_PANELS_IN_A_ROW`, else rows of
    :data:`PANEL_COLUMNS`, left to right then down (A, B above C, D); the axes in that order."""
    import matplotlib.pyplot as plt

    width, height = size or ((4.0 if crowded else 3.5), 3.4)
    ncol = n if n <= MAX_PANELS_IN_A_ROW else PANEL_COLUMNS
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(width * ncol, height * nrow), squeeze=False,
                             constrained_layout=True)
    axes = list(axes.flat)
    for spare in axes[n:]:  # an odd number of panels in rows of two: no empty frame
        fig.delaxes(spare)
    return fig, axes[:n]


def _legend(ax, n: int, loc: str) -> None:
    """In the panel for up to five entries; beneath it, in two compact columns, for more."""
    if n > 5:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False, handlelength=1.6,
                  columnspacing=0.9)
    else:
        ax.legend(loc=loc, frameon=False)


#: a panel of more curves than this shows the bootstrap band of its highlighted model only
MAX_ROC_BANDS = 3


def _title(cohort: str) -> str:
    name = cohort[:-len(OOF_SUFFIX)] if cohort.endswith(OOF_SUFFIX) else cohort
    return f"{name[:1].upper()}{name[1:]} cohort" + (", out of fold" if cohort.endswith(OOF_SUFFIX) else "")


def panel_cohorts(facts: RunFacts) -> list:
    """The cohorts of the curve figures' panels (:attr:`RunFacts.panel_cohorts`): the development
    cohort's nested out-of-fold predictions in place of its apparent ones, then the other cohorts."""
    return facts.panel_cohorts


def _shown(table, cohort: str, model: str) -> str:
    """The cohort whose rows show ``model`` in a ``cohort`` panel: a comparator (a staging system
    or index, never fitted) has no out-of-fold rows; its own scores in the development cohort
    are its honest estimate there."""
    if cohort.endswith(OOF_SUFFIX) and model in rf.COMPARATORS and (cohort, model) not in table:
        return cohort[:-len(OOF_SUFFIX)]
    return cohort


def _colours(models, used: dict) -> dict:
    return {m: used.setdefault(m, colour(m, used)) for m in models}


def draw_roc(analysis, models: list, cohorts: list, highlight: str):
    """ROC curves per cohort, drawn by :func:`dlr.analysis.plotting.plot_roc` from the curves the
    analysis saved; the bootstrap bands of every model in a panel of at most
    :data:`MAX_ROC_BANDS` curves, of ``highlight`` alone in a more crowded one (overlapping
    bands hide the curves)."""
    from dlr.analysis.plotting import plot_roc

    if analysis is None or not analysis.roc:
        return None
    fig, axes = _panels(len(cohorts), crowded=len(models) > 5)
    used = {}
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        curves = {m: analysis.roc[(_shown(analysis.roc, cohort, m), m)] for m in models
                  if (_shown(analysis.roc, cohort, m), m) in analysis.roc}
        plot_roc(curves, ax=ax, title=_title(cohort), colours=_colours(curves, used),
                 bands=roc_bands(models, highlight), linewidth=1.3,
                 label=lambda model, curve: f"{model} (AUC {curve.auc.estimate:.3f})")
        _legend(ax, len(models), "lower right")
        _panel_letter(ax, i, len(axes))
    return fig


def roc_bands(models: list, highlight: str) -> list:
    """The models whose bootstrap band a ROC panel of ``models`` draws."""
    return list(models) if len(models) <= MAX_ROC_BANDS else [highlight]


def _highlight(facts: RunFacts, group: str, models: list) -> str:
    """The model a crowded figure of ``group`` highlights: the best radiomics classifier among
    the classifiers, otherwise the analysis's reference (best) model, else the first."""
    chosen = facts.best_radiomics if group == "classifiers" else facts.best_model
    return chosen if chosen in models else models[0]


def _in_order(table: pd.DataFrame, models: list) -> pd.DataFrame:
    """``table``'s rows of ``models``, model by model in that order (the legends' order)."""
    rank = {m: k for k, m in enumerate(models)}
    rows = table[table["model"].isin(rank)]
    return rows.iloc[np.argsort(rows["model"].map(rank).to_numpy(), kind="stable")]


def draw_calibration(analysis, models: list, cohorts: list):
    """Each model's calibration in its own panel, the cohorts told apart by line style and
    marker, drawn by :func:`dlr.analysis.plotting.plot_calibration_cohorts`: the LOESS curve and
    the quantile groups the analysis sized to the cohort with their 95% CIs
    (``calibration_smooth.csv``, ``calibration_groups.csv``); the calibration slope of each
    cohort in the panel's corner (performance.csv)."""
    import matplotlib.pyplot as plt

    from dlr.analysis.plotting import cohort_key, plot_calibration_cohorts

    perf = analysis.performance
    prob = set(perf.loc[perf["brier"].notna(), "model"]) if "brier" in perf else set()
    models = [m for m in models if m in prob]
    groups, smooth = analysis.calibration_groups, analysis.calibration_smooth
    if not len(groups) or not models:
        return None
    slopes = perf.set_index(["cohort", "model"])["cal_slope"] if "cal_slope" in perf else None
    if len(cohorts) > MAX_PANELS_IN_A_ROW:
        return _calibration_grid(groups, smooth, slopes, models, cohorts)
    ncol = min(4, len(models))
    nrow = -(-len(models) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.85 * ncol + 0.3, 1.9 * nrow + 0.55), squeeze=False,
                             constrained_layout=True)
    used = {}
    for i, (ax, model) in enumerate(zip(axes.flat, models)):
        mine = groups[(groups["model"] == model) & groups["cohort"].isin(cohorts)]
        mine = mine.iloc[np.argsort(mine["cohort"].map(cohorts.index).to_numpy(), kind="stable")]
        curve = smooth[(smooth["model"] == model) & smooth["cohort"].isin(cohorts)] if len(smooth) else None
        values = [slopes.get((c, model), float("nan")) if slopes is not None else float("nan") for c in cohorts]
        note = "slope " + " / ".join(f"{v:.2f}" if np.isfinite(v) else "n/a" for v in values)
        plot_calibration_cohorts(mine, curve, ax=ax, title=model, colour=_colours([model], used)[model], note=note)
        row, col = divmod(i, ncol)
        if col == 0:
            ax.set_ylabel("Observed proportion")
        else:
            ax.set_yticklabels([])
        if i + ncol >= len(models):
            ax.set_xlabel("Predicted probability")
        else:
            ax.set_xticklabels([])
    for ax in list(axes.flat)[len(models):]:
        ax.set_axis_off()
    # the cohorts' key in one row, or in rows of two for more than three cohorts (as wide as the panels)
    fig.legend(handles=cohort_key(cohorts, _title), loc="outside lower center",
               ncol=len(cohorts) if len(cohorts) <= MAX_PANELS_IN_A_ROW else PANEL_COLUMNS, frameon=False)
    return fig


def _calibration_grid(groups: pd.DataFrame, smooth: pd.DataFrame, slopes, models: list, cohorts: list):
    """Calibration with more cohorts than one panel can tell apart by line style: one panel per
    model (rows) and cohort (columns), each cohort's LOESS curve and quantile groups with their
    95% CIs and its calibration slope in the corner."""
    import matplotlib.pyplot as plt

    from dlr.analysis.plotting import plot_calibration_cohorts

    nrow, ncol = len(models), len(cohorts)
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.85 * ncol + 0.3, 1.9 * nrow + 0.3), squeeze=False,
                             constrained_layout=True)
    used = {}
    for r, model in enumerate(models):
        for c, cohort in enumerate(cohorts):
            ax = axes[r][c]
            mine = groups[(groups["model"] == model) & (groups["cohort"] == cohort)]
            curve = smooth[(smooth["model"] == model) & (smooth["cohort"] == cohort)] if len(smooth) else None
            slope = slopes.get((cohort, model), float("nan")) if slopes is not None else float("nan")
            plot_calibration_cohorts(mine, curve, ax=ax, title=_title(cohort) if r == 0 else None,
                                     colour=_colours([model], used)[model],
                                     note=f"slope {slope:.2f}" if np.isfinite(slope) else "slope n/a")
            ax.text(0.03, 0.97, model, transform=ax.transAxes, ha="left", va="top", fontweight="bold")
            if c == 0:
                ax.set_ylabel("Observed proportion")
            else:
                ax.set_yticklabels([])
            if r == nrow - 1:
                ax.set_xlabel("Predicted probability")
            else:
                ax.set_xticklabels([])
    return fig


def _dca_banded(analysis, models: list) -> bool:
    """Whether the decision curves of ``models`` are drawn with their bootstrap bands (analyses
    with resamples; at most :data:`dlr.analysis.plotting.MAX_BANDS` models)."""
    from dlr.analysis.plotting import MAX_BANDS

    dca = analysis.decision_curve
    return ("net_benefit_ci_low" in dca and bool(dca["net_benefit_ci_low"].notna().any())
            and len(models) <= MAX_BANDS)


def draw_dca(analysis, models: list, cohorts: list, dca_range):
    """Decision curves per cohort over ``dca_range``, drawn by
    :func:`dlr.analysis.plotting.plot_decision_curve` (treat all dashed, treat none at 0)."""
    from dlr.analysis.plotting import plot_decision_curve

    dca = analysis.decision_curve
    if not len(dca):
        return None
    fig, axes = _panels(len(cohorts))
    used = {}
    colours = _colours(models, used)
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        part = _in_order(dca[dca["cohort"] == cohort], [*models, "treat_all", "treat_none"])
        plot_decision_curve(part, ax=ax, title=_title(cohort), threshold_range=dca_range, colours=colours)
        ax.get_legend().set_bbox_to_anchor((0.5, -0.17))  # clear of the axis label in a narrow panel
        _panel_letter(ax, i, len(axes))
    return fig


def draw_forest(analysis, models: list, cohorts: list):
    """The scanner-stratified AUCs of ``models`` in ``cohorts`` (the development cohort out of
    fold), drawn by :func:`dlr.analysis.plotting.plot_forest`."""
    import matplotlib.pyplot as plt

    from dlr.analysis.plotting import forest_height, plot_forest

    sub = analysis.subgroups
    if not len(sub):
        return None
    sub = sub[sub["model"].isin(models) & sub["cohort"].isin(cohorts)]
    if sub.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.0, forest_height(sub)))
    fig.subplots_adjust(left=0.25, right=0.56)
    plot_forest(sub, ax=ax, colours=_colours(dict.fromkeys(sub["model"]), {}))
    return fig


def draw_lasso(facts: RunFacts):
    import matplotlib.pyplot as plt

    path, cv = facts.table("models/lasso_path.csv"), facts.table("models/lasso_cv.csv")
    if path is None or cv is None or cv.empty:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.0, 3.2), constrained_layout=True)
    for _, f in path.groupby("feature", sort=False):
        a.plot(f["log_lambda"], f["coefficient"], lw=0.7)
    chosen = cv[cv["chosen"].astype(str).str.lower() == "true"]
    for ax in (a, b):
        if len(chosen):
            ax.axvline(chosen["log_lambda"].iloc[0], color="#000000", lw=0.8, ls="--")
    a.set(xlabel="log(λ)", ylabel="Coefficient")
    if len(chosen):
        a.text(chosen["log_lambda"].iloc[0], a.get_ylim()[1], " chosen λ", va="top", fontsize=7)
    b.errorbar(cv["log_lambda"], cv["deviance_mean"], yerr=cv["deviance_se"], fmt="o", ms=2.5, color="#D55E00",
               ecolor="#BBBBBB", elinewidth=0.6)
    for column, colour_, label in (("lambda_min", "#0072B2", "λ min"), ("lambda_1se", "#009E73", "λ 1-SE")):
        marked = cv[cv[column].astype(str).str.lower() == "true"] if column in cv else cv.iloc[:0]
        if len(marked):  # as dlr train recorded them (models/lasso_cv.csv); a run before they were: not drawn
            b.axvline(marked["log_lambda"].iloc[0], color=colour_, lw=0.8, ls=":", label=label)
    b.set(xlabel="log(λ)", ylabel="Binomial deviance (CV mean ± SE)")
    b.legend(frameon=False)
    for ax in (a, b):  # the number of non-zero features on a top axis
        top = ax.secondary_xaxis("top")
        ticks = cv["log_lambda"].to_numpy()[:: max(1, len(cv) // 6)]
        counts = cv["n_nonzero"].to_numpy()[:: max(1, len(cv) // 6)]
        top.set_xticks(ticks, [str(int(c)) for c in counts])
        top.set_xlabel("Non-zero features", fontsize=7)
    _panel_letter(a, 0, 2)
    _panel_letter(b, 1, 2)
    return fig


def draw_flow(facts: RunFacts):
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    counts = facts.table("models/selection_counts.csv")
    if counts is None or counts.empty:
        return None
    n = len(counts)
    fig, ax = plt.subplots(figsize=(7.0, 1.4), constrained_layout=True)
    ax.set(xlim=(0, n), ylim=(0, 1))
    ax.axis("off")
    for i, r in enumerate(counts.itertuples()):
        ax.add_patch(FancyBboxPatch((i + 0.08, 0.25), 0.78, 0.5, boxstyle="round,pad=0.02", fc="#F2F2F2",
                                    ec="#333333", lw=0.7))
        ax.text(i + 0.47, 0.58, f"{int(r.n_features)}", ha="center", va="center", fontsize=11, fontweight="bold")
        ax.text(i + 0.47, 0.37, textwrap.fill(str(r.step), 22, break_on_hyphens=False), ha="center", va="center", fontsize=6.5,
                linespacing=1.1)
        if i < n - 1:
            ax.annotate("", xy=(i + 1.07, 0.5), xytext=(i + 0.89, 0.5), arrowprops={"arrowstyle": "->", "lw": 0.8})
    return fig


def draw_training(facts: RunFacts):
    """The deep arm's training curves (RUN/models/deep/training_log.csv): (A) training and
    held-out-fold loss per optimiser step (log scale), (B) held-out-fold AUC, one colour per
    network."""
    import matplotlib.pyplot as plt

    log = facts.table("models/deep/training_log.csv")
    if log is None or log.empty:
        return None
    from dlr.core.plotting import plot_training_curves

    fig, (a, b) = plt.subplots(1, 2, figsize=(7.0, 3.0), constrained_layout=True)
    used = {}
    plot_training_curves(log, axes=(a, b), colour=lambda name: used.setdefault(name, colour(name, used)),
                         legend_below=True)
    for i, ax in enumerate((a, b)):
        _panel_letter(ax, i, 2)
    return fig


def _nomogram_label(variable: str, unit) -> str:
    """An axis name for display: short lower-case names are laboratory abbreviations (ast ->
    AST), others lose their underscores (tumor_diameter -> Tumor diameter); the unit in brackets."""
    if variable.islower() and "_" not in variable and len(variable) <= 4:
        name = variable.upper()
    elif variable.islower():
        name = variable.replace("_", " ").capitalize()
    else:  # e.g. a radiomics feature's own name, kept whole; a long one broken after an underscore
        name, line = "", ""
        for part in variable.split("_"):
            piece = part if not line else "_" + part
            if line and len(line + piece) > 26:
                name, line = name + line + "_\n", part
            else:
                line += piece
        name += line
    return f"{name} ({unit})" if isinstance(unit, str) and unit else name


def _nomogram_axis(ax, y: float, positions, labels, *, fontsize: float, width_in: float, major=None) -> None:
    """One horizontal nomogram axis at row ``y``: a line, ticks (``major`` ones long and labelled)
    and their labels above it, every other label moved below where neighbours would overlap."""
    positions = np.asarray(positions, dtype=float)
    major = np.ones(positions.size, dtype=bool) if major is None else np.asarray(major, dtype=bool)
    order = np.argsort(positions, kind="stable")
    positions, major, labels = positions[order], major[order], [labels[i] for i in order]
    ax.plot([positions.min(), positions.max()], [y, y], color="#222222", lw=0.8, solid_capstyle="butt")
    labelled = np.flatnonzero(major & np.array([bool(t) for t in labels]))
    units_per_inch = (ax.get_xlim()[1] - ax.get_xlim()[0]) / width_in
    room = 0.8 * units_per_inch * fontsize / 72  # the least space between two labels

    def fits(chosen: np.ndarray, step: int) -> bool:  # labels ``step`` apart on one side do not touch
        if len(chosen) <= step:
            return True
        w = np.array([0.6 * fontsize / 72 * len(labels[k]) * units_per_inch for k in chosen])
        gaps = positions[chosen][step:] - positions[chosen][:-step] - (w[step:] + w[:-step]) / 2
        return bool(gaps.min() >= room)

    # every label above the line; else alternately above and below; else every 2nd, 3rd, ... tick
    # labelled (alternating), always keeping the first
    shown, below = labelled, set()
    if not fits(labelled, 1):
        for every in range(1, max(2, len(labelled))):
            shown = labelled[::every]
            if fits(shown, 2):
                break
        below = set(shown[1::2].tolist()) if len(shown) > 1 else set()
    for k, x in enumerate(positions):
        down = k in below
        length = 0.12 if major[k] else 0.06
        ax.plot([x, x], [y, y + (length if down else -length)], color="#222222", lw=0.7)
    for k in shown:
        down = k in below
        ax.text(positions[k], y + (0.16 if down else -0.16), labels[k], ha="center", va="top" if down else "bottom",
                fontsize=fontsize)


def draw_nomogram(table: pd.DataFrame, axes: pd.DataFrame, *, ax=None, model: str | None = None,
                  outcome: str = "early recurrence", fontsize: float = 7.0):
    """The classic nomogram of one logistic model from ``RUN/models/nomogram.csv`` and
    ``nomogram_axes.csv`` (:mod:`dlr.modeling.nomogram`, ``rms::nomogram``'s scaling): the Points axis
    (0-100) on top, one axis per predictor at each value's points, Total points, and the predicted
    probability of ``outcome`` at the total points where it is reached.

    Parameters
    ----------
    table, axes : DataFrame
        The two files' rows (every model's, or one's).
    ax : matplotlib Axes, optional
        Drawn on (its x axis is the points scale, its y axis the rows); a new figure of 7 in
        width and a height for the rows otherwise.
    model : str, optional
        Which model's rows (default: the first model of ``table``).

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    The Total points axis spans the same width as the Points axis, from 0 to its first tick at
    or above the largest possible total (rms's ``pretty`` ticks, continued at their step where
    they stop short of it); the probability ticks are those whose total points lie on it.
    Nothing is computed here beyond that placement.
    """
    import matplotlib.pyplot as plt

    model = model if model is not None else str(table["model"].iloc[0])
    rows = table[table["model"] == model]
    ticks = axes[axes["model"] == model]
    if rows.empty or ticks.empty:
        raise ValueError(f"no nomogram rows for model {model!r}; the tables hold: "
                         f"{', '.join(map(str, table['model'].unique()))}")
    variables = list(dict.fromkeys(rows["variable"]))
    n_rows = len(variables) + 3
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.42 * n_rows + 0.3), constrained_layout=True)
    ax.set_xlim(-3, 103)
    ax.set_ylim(n_rows - 0.4, -0.75)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xticks([])
    ax.tick_params(axis="y", length=0, pad=8)
    names = ["Points"] + [_nomogram_label(v, rows.loc[rows["variable"] == v, "unit"].iloc[0]) for v in variables]
    names += ["Total points", f"Predicted probability\nof {outcome}"]
    ax.set_yticks(range(n_rows), names, fontsize=fontsize + 0.5)
    if ax.figure.get_layout_engine() is not None:  # the axis labels' margin set, before the widths are measured
        ax.figure.draw_without_rendering()
    width_in = ax.figure.get_size_inches()[0] * ax.get_position().width

    points_ticks = np.arange(0, 101, 2.0)
    major = np.isclose(points_ticks % 10, 0)
    for x in points_ticks[major]:  # reading guides from the Points axis through the predictors' axes
        ax.plot([x, x], [0, len(variables) + 0.3], color="#E3E3E3", lw=0.5, zorder=0)
    _nomogram_axis(ax, 0, points_ticks, [f"{x:g}" for x in points_ticks], fontsize=fontsize, width_in=width_in,
                   major=major)
    for i, variable in enumerate(variables, start=1):
        r = rows[rows["variable"] == variable]
        labels = [str(t).replace("<= ", "≤").replace("> ", ">") for t in r["level_or_value"]]
        _nomogram_axis(ax, i, r["points"].to_numpy(dtype=float), labels, fontsize=fontsize, width_in=width_in)

    best = float(rows.groupby("variable", sort=False)["points"].max().sum())
    totals = np.sort(ticks.loc[ticks["axis"] == "total_points", "total_points"].to_numpy(dtype=float))
    if len(totals) > 1 and totals[-1] < best - 1e-9:  # rms's ticks stop short of the largest total: extend them
        step = totals[1] - totals[0]
        totals = np.r_[totals, totals[-1] + step * np.arange(1, int(np.ceil((best - totals[-1]) / step)) + 1)]
    top = totals[totals >= best - 1e-9][0]
    totals = totals[totals <= top + 1e-9]
    scale = 100.0 / top
    _nomogram_axis(ax, n_rows - 2, totals * scale, [f"{t:g}" for t in totals], fontsize=fontsize, width_in=width_in)
    prob = ticks[(ticks["axis"] == "probability") & ticks["total_points"].between(0, top)]
    if len(prob):
        _nomogram_axis(ax, n_rows - 1, prob["total_points"].to_numpy(dtype=float) * scale,
                       [f"{p:.2f}".rstrip("0").rstrip(".") if p >= 0.01 else f"{p:.3f}" for p in prob["probability"]],
                       fontsize=fontsize, width_in=width_in)
    return ax


def km_cohorts(survival: pd.DataFrame, model: str, dev: str, *, order=()) -> list:
    """The cohorts of the Kaplan-Meier figure: those of ``model`` in survival.csv other than the
    development cohort (and its out-of-fold rows), in ``order`` (the other figures' panels) and
    then survival.csv's; the development cohort when it is the only one."""
    present = [c for c in dict.fromkeys(survival.loc[survival["model"] == model, "cohort"])
               if not str(c).endswith(OOF_SUFFIX)]
    present = [c for c in order if c in present] + [c for c in present if c not in order]
    others = [c for c in present if c != dev]
    return others or [c for c in present if c == dev]


def draw_km(analysis, model: str, cohorts: list, *, xlabel: str = "Time"):
    """Kaplan-Meier curves of ``model``'s high- and low-risk groups, one panel per cohort, drawn by
    :func:`dlr.analysis.plotting.plot_km` from the risk groups the analysis saved (``survival.csv``
    and ``km_curve.csv`` read back as :class:`dlr.analysis.survival.RiskGroupSurvival`)."""
    from dlr.analysis.plotting import plot_km

    fits = [analysis.survival_fits.get((cohort, model)) for cohort in cohorts]
    if not cohorts or any(fit is None for fit in fits):
        return None
    fig, axes = _panels(len(cohorts), size=(3.6, 4.2))
    if len(cohorts) > MAX_PANELS_IN_A_ROW:  # rows of panels: room between a number-at-risk table and the titles below
        fig.get_layout_engine().set(h_pad=0.12)
    for i, (ax, cohort, fit) in enumerate(zip(axes, cohorts, fits)):
        plot_km(fit, ax=ax, title=_title(cohort), xlabel=xlabel)
        _panel_letter(ax, i, len(cohorts))
    return fig


class _Figures:
    """The figures drawn so far: each saved as PNG and SVG into ``out`` and recorded."""

    def __init__(self, out: Path, dpi: int, cohorts: list):
        self.out, self.dpi, self.cohorts, self.records = out, dpi, tuple(cohorts), []

    def keep(self, fig, fid: str, stem: str, caption: str, models, cohorts=None) -> None:
        import matplotlib.pyplot as plt

        if fig is None:
            return
        _save(fig, self.out, stem, self.dpi)
        plt.close(fig)
        self.records.append(FigureRecord(fid, stem, caption, tuple(models),
                                         self.cohorts if cohorts is None else tuple(cohorts)))


_GROUP_NAMES = {"classifiers": "the five radiomics classifiers",
                "models": "the clinical-radiological, radiomics and combined models",
                "comparators": "the best model against the staging systems and inflammation indexes"}


def _curve_figures(figures: _Figures, facts: RunFacts, analysis, dca_range) -> None:
    """ROC curves of every group of models; calibration and decision curves of the classifiers
    and of the main models; the scanner forest plot."""
    cohorts, groups = panel_cohorts(facts), model_groups(facts)

    def panels(group: str = "") -> str:
        def one(i: int, cohort: str) -> str:
            text = f"{_panel_name(i, len(cohorts))}the {cohort_text(_title(cohort))}"
            if cohort == facts.oof_cohort:
                text += (" (each fitted model's nested out-of-fold predictions" + ("; the staging systems and "
                         "indexes, which are not fitted, their own scores" if group == "comparators" else "") + ")")
            return text

        return ", ".join(one(i, c) for i, c in enumerate(cohorts))

    for group, models in groups.items():
        highlight = _highlight(facts, group, models)
        bands = roc_bands(models, highlight)
        figures.keep(draw_roc(analysis, models, cohorts, highlight), f"fig-roc-{group}", f"roc_{group}",
                     f"ROC curves of {_GROUP_NAMES[group]}: {panels(group)}. Shaded: bootstrap 95% CI of the sensitivity"
                     + (f" of {highlight} (the others' bands would hide the curves)" if len(bands) < len(models)
                        else "")
                     + ("; dashed: the staging systems and indexes" if group == "comparators" else "")
                     + "; models with identical curves are drawn once and named together (A = B); legend: AUC.",
                     models)
    styles = ", ".join(f"{cohort_text(_title(c))} {COHORT_STYLE_NAMES[k % len(COHORT_STYLE_NAMES)]}"
                       for k, c in enumerate(cohorts))
    for group in ("classifiers", "models"):
        if group not in groups:
            continue
        models = groups[group]
        layout = (f"one panel per model: {styles}" if len(cohorts) <= MAX_PANELS_IN_A_ROW else
                  "one panel per model (rows) and cohort (columns: "
                  + ", ".join(cohort_text(_title(c)) for c in cohorts) + ")")
        figures.keep(draw_calibration(analysis, models, cohorts), f"fig-calibration-{group}",
                     f"calibration_{group}", f"Calibration of {_GROUP_NAMES[group]}, {layout}. "
                     "Lines: LOESS of the outcome on the predicted probability (a model with fewer than "
                     f"{MIN_LOESS_LEVELS} distinct predictions: "
                     "the observed proportion at each); points: observed proportion in "
                     "quantile groups sized to the cohort, with its 95% CI (Wilson); dotted: ideal calibration; "
                     + ("corner: the calibration slope in each cohort, in that order." if len(cohorts) <= MAX_PANELS_IN_A_ROW
                        else "corner: the calibration slope in the panel's cohort."), models)
        figures.keep(draw_dca(analysis, models, cohorts, dca_range), f"fig-dca-{group}", f"dca_{group}",
                     f"Decision curves of {_GROUP_NAMES[group]}: {panels()}, over threshold probabilities "
                     f"{dca_range[0]:.2f}-{dca_range[1]:.2f}. Dashed: treat all; horizontal: treat none; a curve that "
                     "leaves the panel at the bottom does worse than treating nobody there (its values are in "
                     "results/decision_curve.csv)."
                     + (" Shaded: bootstrap 95% CI of the net benefit." if _dca_banded(analysis, models) else ""),
                     models)
    forest_models = groups.get("models", []) or groups.get("classifiers", [])
    figures.keep(draw_forest(analysis, forest_models, cohorts), "fig-forest", "forest_scanner",
                 "AUCs by scanner within each cohort, grouped by model (square: AUC; line: DeLong 95% CI); "
                 "P: unpaired DeLong test between the scanners"
                 + (f"; the {facts.dev_cohort} cohort's from the nested out-of-fold predictions"
                    if facts.oof_cohort in cohorts else "") + ".", forest_models)


def _model_figures(figures: _Figures, facts: RunFacts) -> None:
    """The models stage's figures: the LASSO, the selection flow, the deep arm's training."""
    figures.keep(draw_lasso(facts), "fig-lasso", "lasso", "LASSO feature selection on the development cohort: (A) "
                 "coefficient paths against log(λ), the dashed line at the chosen λ; (B) 5-fold cross-validated "
                 "binomial deviance (mean ± SE) with λ min and λ 1-SE; top axes: the number of non-zero features.",
                 ())
    figures.keep(draw_flow(facts), "fig-selection-flow", "selection_flow", "Radiomics feature selection: the "
                 "number of features kept at each step, on the development cohort only.", ())
    figures.keep(draw_training(facts), "fig-dl-training", "dl_training", "Training of the deep-learning networks on "
                 "the development cohort, against the optimiser step: (A) class-weighted cross-entropy of the "
                 "training slices (solid) and of the held-out fold in the out-of-fold refits, mean over the folds "
                 "(dashed); (B) the held-out folds' mean AUC, without test-time augmentation (dotted: chance). Every "
                 "fit runs its fixed budget of steps; nothing is chosen on these curves.", ())


def _km_figure(figures: _Figures, facts: RunFacts, analysis) -> None:
    """The best model's Kaplan-Meier curves (with follow-up only)."""
    best = facts.km_model
    if best is None or not analysis.survival_fits:
        return
    survival = analysis.survival
    panels = km_cohorts(survival, best, facts.dev_cohort, order=list(figures.cohorts))
    censored = "n_events" in analysis.km_curves
    time = facts.survival_settings.get("time")
    threshold = float(survival.loc[survival["model"] == best, "threshold"].iloc[0])
    figures.keep(draw_km(analysis, best, panels, xlabel=time_label(time)), "fig-km", "km_best",
                 f"Kaplan-Meier curves of recurrence-free probability in the high- and low-risk groups of {best}: "
                 + ", ".join(f"{_panel_name(i, len(panels))}the {c} cohort" for i, c in enumerate(panels))
                 + f". The groups are split at {best}'s development-cohort threshold ({threshold:.3g}; high risk: "
                 "score at or above it), never re-chosen on the cohort shown. Bands: 95% CI (log); "
                 + ("ticks: censored patients; " if censored else "")
                 + "each panel's legend gives the log-rank P and the Cox hazard ratio of the high-risk group "
                 "(Efron ties, Wald 95% CI); beneath: the number at risk.", (best,), panels)


def _nomograms(figures: _Figures, facts: RunFacts) -> None:
    """The logistic models' nomograms (``models/nomogram.csv``)."""
    nomogram, nomogram_axes = facts.table("models/nomogram.csv"), facts.table("models/nomogram_axes.csv")
    if nomogram is None or nomogram_axes is None:
        return
    for model in dict.fromkeys(nomogram["model"]):
        if nomogram.loc[nomogram["model"] == model, "variable"].nunique() > MAX_NOMOGRAM_AXES:
            continue  # too many axes to draw: a points table instead (report.tables.points_tables)
        fid = "fig-nomogram" if model == "CR" else f"fig-nomogram-{_safe(model)}"
        stem = "nomogram" if model == "CR" else f"nomogram_{_safe(model)}"
        kind = ("clinical-radiological (CR) model" if model == "CR" else
                "radiomics-clinical (RCR) model" if model == "RCR" else f"{model} model")
        figures.keep(draw_nomogram(nomogram, nomogram_axes, model=model).figure, fid, stem,
                     f"Nomogram of the {kind}, fitted on the {facts.dev_cohort} cohort. Each predictor's value is "
                     "read up to the Points axis (0-100, 100 for the largest effect of any predictor); the points of "
                     "all predictors are added on the Total points axis, and the axis beneath converts the total "
                     "into the predicted probability of early recurrence.", (model,), (facts.dev_cohort,))


def _cam_resegmented(facts: RunFacts) -> str:
    """The caption's note that the slices are drawn as acquired while the network saw its tumour
    re-segmented (models/deep/settings.json ``resegment``), or nothing."""
    settings = facts.document("models/deep/settings.json") or {}
    if not settings.get("resegment"):
        return ""
    return (" The slices are drawn as acquired; the network saw each tumour re-segmented by intensity outliers "
            "(such as a necrotic core, set to the tumour's median), so its maps are low there by construction.")


def _cam_caveat(facts: RunFacts) -> str:
    """A warning for the Score-CAM caption when the best network did not beat chance out of fold
    (its maps then show where an unskilled network looked, not a learned signal)."""
    networks = facts.table("models/deep/networks.csv", dtype={"network": str})
    if networks is None or "best" not in networks or facts.oof_cohort is None:
        return ""
    best = networks[networks["best"].astype(str).str.lower() == "true"]
    if best.empty:
        return ""
    model = str(best["network"].iloc[0])
    row = facts.perf(model, facts.oof_cohort)
    if row is None or float(row["auc_ci_low"]) > 0.5:
        return ""
    return (f" Caution: {model}'s out-of-fold AUC ({float(row['auc']):.3f}, 95% CI {float(row['auc_ci_low']):.3f}-"
            f"{float(row['auc_ci_high']):.3f}) does not exceed chance, so these maps show where a network without "
            "demonstrated skill looked, not an image signal it learned.")


def draw_report_figures(run, out, *, dca_range=DCA_RANGE, dpi: int = 300) -> tuple:
    """Every figure of the report from the run's saved results (its folder or its
    :class:`RunFacts`) into ``out`` (PNG and SVG); the records of the figures drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    facts, out = as_facts(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analysis = facts.analysis
    if facts.performance is None or analysis is None:
        return ()
    figures = _Figures(out, dpi, facts.cohorts)
    with plt.rc_context(STYLE):
        _curve_figures(figures, facts, analysis, dca_range)
        _model_figures(figures, facts)
        _km_figure(figures, facts, analysis)
        _nomograms(figures, facts)
    cam = facts.run / "models" / "deep" / "scorecam.png"
    if cam.is_file():  # drawn by `dlr train` (it needs the network); copied, not redrawn
        shutil.copyfile(cam, out / "scorecam.png")
        figures.records.append(FigureRecord(
            "fig-scorecam", "scorecam", "Score-CAM maps of the best network for the most confident correctly and "
            "wrongly classified patients of the validation cohort (rows), at its Youden threshold on the "
            "out-of-fold development predictions: one map per patient (the network sees the phases' middle slices "
            "together, as channels), drawn over each phase; white: the tumour's outline." + _cam_resegmented(facts)
            + _cam_caveat(facts),
            (), ()))
    return tuple(figures.records)
