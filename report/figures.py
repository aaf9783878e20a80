"""The report's figures, drawn from a run's saved results only (nothing is fitted here).

Each figure shows the models of one table: the five radiomics classifiers (Table 2); CR, the
best radiomics model, the DL models, RCR and DLRCR (Table 4); the staging systems and indexes
against the best model. Panels A, B, ... are the cohorts (development first), as the paper's
Figures 5-7. One colour per model across every figure (:data:`COLOURS`, colour-blind-safe
Okabe-Ito and Tol hues); PNG at 300 dpi and SVG (vector, reproducible bytes).

Calibration curves use the quantile groups sized to the cohort that the analysis wrote
(``results/calibration_groups.csv``; the report computes no statistic), with the predictions'
distribution as a rug beneath. The LASSO figure marks lambda.min and lambda.1se where `dlr
train` recorded them (``models/lasso_cv.csv``). Decision curves are drawn over
a stated clinical range of threshold probabilities (default 0.05-0.80, the risks at which a
clinician would plausibly change adjuvant treatment or surveillance after resection), treat-all
dashed. The forest plot groups the scanner-stratified AUCs by model with an "AUC (95% CI)"
column, events/n per row and each between-level P once. With follow-up (``results/survival.csv``,
``km_curve.csv``), the best model's Kaplan-Meier curves of its risk groups, one panel per cohort
other than the development one, drawn by :func:`dlr.analysis.plotting.plot_km`; the logistic models'
nomograms from ``models/nomogram.csv`` (:func:`draw_nomogram`).
"""
from __future__ import annotations

import shutil
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from dlr.analysis.plotting import MODEL_COLOURS
from dlr.core import run_folder as rf

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


def _csv(path: Path):
    return rf.read_table(path)


def model_groups(run: Path) -> dict:
    """group name -> models, in the tables' order (only models present in performance.csv)."""
    perf = _csv(run / "results" / "performance.csv")
    present = [] if perf is None else list(dict.fromkeys(perf["model"]))
    models = _csv(run / "models" / "models.csv")
    best_rad = None
    if models is not None and "best_classifier" in models:
        rows = models[models["best_classifier"].astype(str).str.lower() == "true"]
        best_rad = None if rows.empty else rows["model"].iloc[0]
    results = rf.read_json(run / rf.RESULTS_DIR / rf.RESULTS_JSON) or {}
    best = results.get("settings", {}).get("reference")
    classifiers = [m for m in present if m.startswith("Radiomics-")]
    main = [m for m in dict.fromkeys(["CR", best_rad, "DL-ResNet10", "DL-ResNet18", "DL-ResNet34", "RCR", "DLRCR"])
            if m and m in present]
    comparators = [m for m in dict.fromkeys([best, "BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR"]) if m and m in present]
    groups = {"classifiers": classifiers, "models": main, "comparators": comparators if len(comparators) > 1 else []}
    return {k: v for k, v in groups.items() if v}


def _cohorts(perf: pd.DataFrame, dev: str) -> list:
    names = [c for c in dict.fromkeys(perf["cohort"]) if not c.endswith(OOF_SUFFIX)]
    return sorted(names, key=lambda c: (c != dev, names.index(c)))


def _panel_letter(ax, i: int) -> None:
    ax.text(-0.14, 1.04, "ABCDEFGH"[i], transform=ax.transAxes, fontsize=11, fontweight="bold", va="bottom")


def _save(fig, out: Path, stem: str, dpi: int) -> None:
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "dlr"}):
        fig.savefig(out / f"{stem}.png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(out / f"{stem}.svg", bbox_inches="tight", metadata={"Date": None})


def _panels(n: int):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(3.5 * n, 3.4), squeeze=False, constrained_layout=True)
    return fig, list(axes[0])


def _legend(ax, n: int, loc: str) -> None:
    """In the panel for up to five entries; beneath it, in two columns, for more (the comparators)."""
    if n > 5:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    else:
        ax.legend(loc=loc, frameon=False)


def draw_roc(run: Path, group: str, models: list, cohorts: list, perf: pd.DataFrame, analysis=None):
    """ROC curves per cohort, drawn by :func:`dlr.analysis.plotting.plot_roc` from the curves the
    analysis saved (:func:`dlr.analysis.output.read_analysis`); the bands of every model, or, for
    the comparators, of the best model alone (seven overlapping bands hide the curves)."""
    from dlr.analysis.plotting import plot_roc

    analysis = analysis if analysis is not None else _analysis(run)
    if analysis is None or not analysis.roc:
        return None
    fig, axes = _panels(len(cohorts))
    used = {}
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        curves = {m: analysis.roc[(cohort, m)] for m in models if (cohort, m) in analysis.roc}
        colours = {m: used.setdefault(m, colour(m, used)) for m in curves}
        plot_roc(curves, ax=ax, title=f"{cohort[:1].upper()}{cohort[1:]} cohort", colours=colours,
                 bands=models[:1] if group == "comparators" else models, linewidth=1.3,
                 label=lambda model, curve: f"{model} (AUC {curve.auc.estimate:.3f})")
        _legend(ax, len(models), "lower right")
        _panel_letter(ax, i)
    return fig


def _analysis(run: Path):
    """The run's analysis as result objects (None without results/)."""
    from dlr.analysis.output import read_analysis

    folder = run / rf.RESULTS_DIR
    return read_analysis(folder) if (folder / rf.RESULTS_JSON).is_file() else None


def _calibration_groups(run: Path) -> pd.DataFrame | None:
    """results/calibration_groups.csv as the analysis wrote it (the report groups nothing itself)."""
    return _csv(run / "results" / "calibration_groups.csv")


def draw_calibration(run: Path, models: list, cohorts: list, perf: pd.DataFrame, predictions: pd.DataFrame):
    groups = _calibration_groups(run)
    prob = set(perf.loc[perf["brier"].notna(), "model"]) if "brier" in perf else set()
    models = [m for m in models if m in prob]
    if groups is None or not models:
        return None
    fig, axes = _panels(len(cohorts))
    used = {}
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        for k, model in enumerate(models):
            c = used.setdefault(model, colour(model, used))
            g = groups[(groups["cohort"] == cohort) & (groups["model"] == model)].sort_values("mean_predicted")
            if g.empty:
                continue
            row = perf[(perf["model"] == model) & (perf["cohort"] == cohort)]
            slope = f", slope {row['cal_slope'].iloc[0]:.2f}" if len(row) and "cal_slope" in row else ""
            ax.plot(g["mean_predicted"], g["observed"], marker="o", ms=3, lw=1.1, color=c, label=f"{model}{slope}")
            scores = predictions[(predictions["cohort"] == cohort) & (predictions["model"] == model)]["y_score"]
            ax.plot(scores, np.full(len(scores), -0.03 - 0.025 * k), "|", color=c, ms=4, alpha=0.6, mew=0.6)
        ax.plot([0, 1], [0, 1], color="#888888", lw=0.6, ls=":", label="Ideal")
        ax.set(xlim=(0, 1), ylim=(-0.04 - 0.025 * len(models), 1.02), xlabel="Predicted probability",
               ylabel="Observed proportion", title=f"{cohort[:1].upper()}{cohort[1:]} cohort")
        # beneath the panel: a miscalibrated curve runs through either upper or lower corner
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
        _panel_letter(ax, i)
    return fig


def _dca_has_bands(run: Path) -> bool:
    """Whether decision_curve.csv carries bootstrap bands (analyses with resamples, since they exist)."""
    dca = _csv(run / "results" / "decision_curve.csv")
    return dca is not None and "net_benefit_ci_low" in dca and bool(dca["net_benefit_ci_low"].notna().any())


def draw_dca(run: Path, models: list, cohorts: list, dca_range):
    dca = _csv(run / "results" / "decision_curve.csv")
    if dca is None:
        return None
    fig, axes = _panels(len(cohorts))
    used = {}
    lo, hi = dca_range
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        part = dca[(dca["cohort"] == cohort) & dca["threshold"].between(lo, hi)]
        top = 0.0
        for model in models:
            c = used.setdefault(model, colour(model, used))
            m = part[part["model"] == model]
            if len(m):
                ax.plot(m["threshold"], m["net_benefit"], color=c, lw=1.2, label=model)
                top = max(top, float(m["net_benefit"].max()))
                if "net_benefit_ci_low" in m and m["net_benefit_ci_low"].notna().any():  # bootstrap band
                    ax.fill_between(m["threshold"], m["net_benefit_ci_low"], m["net_benefit_ci_high"], color=c,
                                    alpha=0.12, lw=0)
        treat_all = part[part["model"] == "treat_all"]
        ax.plot(treat_all["threshold"], treat_all["net_benefit"], color="#555555", lw=0.9, ls="--", label="Treat all")
        ax.axhline(0, color="#555555", lw=0.9, label="Treat none")
        top = max(top, float(treat_all["net_benefit"].max()) if len(treat_all) else 0.0)
        ax.set(xlim=(lo, hi), ylim=(-0.05, max(top * 1.1, 0.05)), xlabel="Threshold probability",
               ylabel="Net benefit", title=f"{cohort[:1].upper()}{cohort[1:]} cohort")
        _legend(ax, len(models) + 2, "upper right")  # beneath the panel when the bands would hide it
        _panel_letter(ax, i)
    return fig


def draw_forest(run: Path, models: list):
    import matplotlib.pyplot as plt

    sub = _csv(run / "results" / "subgroups.csv")
    if sub is None or sub.empty:
        return None
    sub = sub[sub["model"].isin(models) & ~sub["cohort"].str.endswith(OOF_SUFFIX)]
    if sub.empty:
        return None
    rows = []
    for (model, cohort, strat), part in sub.groupby(["model", "cohort", "stratifier"], sort=False):
        p = part["p_between"].dropna()
        rows.append(("head", f"{model}, {cohort}", None, f"P = {p.iloc[0]:.3f}" if len(p) and p.iloc[0] >= 0.001
                     else ("P < 0.001" if len(p) else ""), model))
        for r in part.itertuples():
            rows.append(("level", f"   {strat} {r.level}", r, f"{int(r.n_events)}/{int(r.n)}", model))
    fig, ax = plt.subplots(figsize=(7.0, 0.22 * len(rows) + 0.8))
    fig.subplots_adjust(left=0.25, right=0.56)
    used = {}
    for y, (kind, label, r, extra, model) in enumerate(rows):
        yy = len(rows) - y
        ax.text(-0.02, yy, label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontweight="bold" if kind == "head" else "normal")
        if kind == "head":
            ax.text(1.95, yy, extra, transform=ax.get_yaxis_transform(), ha="left", va="center")
            continue
        c = used.setdefault(model, colour(model, used))
        if np.isfinite(r.auc):
            ax.plot([r.auc_ci_low, r.auc_ci_high], [yy, yy], color=c, lw=1.1)
            ax.plot(r.auc, yy, "s", color=c, ms=4)
        ax.text(1.02, yy, f"{r.auc:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})", transform=ax.get_yaxis_transform(),
                ha="left", va="center")
        ax.text(1.95, yy, extra, transform=ax.get_yaxis_transform(), ha="left", va="center")
    top = len(rows) + 1
    ax.text(1.02, top, "AUC (95% CI)", transform=ax.get_yaxis_transform(), ha="left", fontweight="bold")
    ax.text(1.95, top, "Events/n; P", transform=ax.get_yaxis_transform(), ha="left", fontweight="bold")
    ax.axvline(0.5, color="#888888", lw=0.6, ls=":")
    ax.set(xlim=(0.2, 1.0), ylim=(0.3, top + 0.7), yticks=[], xlabel="AUC (95% CI)")
    ax.spines["left"].set_visible(False)
    return fig


def draw_lasso(run: Path):
    import matplotlib.pyplot as plt

    path, cv = _csv(run / "models" / "lasso_path.csv"), _csv(run / "models" / "lasso_cv.csv")
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
    _panel_letter(a, 0)
    _panel_letter(b, 1)
    return fig


def draw_flow(run: Path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    counts = _csv(run / "models" / "selection_counts.csv")
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


def draw_training(run: Path):
    """The deep arm's training curves (RUN/models/deep/training_log.csv): (A) training and
    held-out-fold loss per optimiser step (log scale), (B) held-out-fold AUC, one colour per
    network."""
    import matplotlib.pyplot as plt

    log = _csv(run / "models" / "deep" / "training_log.csv")
    if log is None or log.empty:
        return None
    from dlr.core.plotting import plot_training_curves

    fig, (a, b) = plt.subplots(1, 2, figsize=(7.0, 3.0), constrained_layout=True)
    used = {}
    plot_training_curves(log, axes=(a, b), colour=lambda name: used.setdefault(name, colour(name, used)),
                         legend_below=True)
    for i, ax in enumerate((a, b)):
        _panel_letter(ax, i)
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


def _km_curve(rows: pd.DataFrame, n: int) -> SimpleNamespace:
    """One risk group's curve as :func:`dlr.analysis.plotting.plot_km` reads it, from its
    ``km_curve.csv`` rows. Without an ``n_events`` column (analyses before it was written) the
    events are taken as every drop of the number at risk, so that no censoring tick is drawn."""
    rows = rows.sort_values("time", kind="stable")
    at_risk = rows["at_risk"].to_numpy(dtype=float)
    if "n_events" in rows and rows["n_events"].notna().all():
        events = rows["n_events"].to_numpy(dtype=float)
    else:
        events = at_risk - np.r_[at_risk[1:], 0.0][: at_risk.size]
    return SimpleNamespace(time=rows["time"].to_numpy(dtype=float), survival=rows["survival"].to_numpy(dtype=float),
                           ci_low=rows["ci_low"].to_numpy(dtype=float), ci_high=rows["ci_high"].to_numpy(dtype=float),
                           at_risk=at_risk, n_events=events, n=int(n))


def km_model(run: Path, best: str | None) -> str | None:
    """The model of the Kaplan-Meier figure: ``best`` (results.json's reference) when
    survival.csv has it, else survival.csv's first model; None without survival.csv."""
    survival = _csv(run / "results" / "survival.csv")
    if survival is None or survival.empty:
        return None
    models = list(dict.fromkeys(survival["model"]))
    return best if best in models else models[0]


def km_cohorts(survival: pd.DataFrame, model: str, dev: str, *, order=()) -> list:
    """The cohorts of the Kaplan-Meier figure: those of ``model`` in survival.csv other than the
    development cohort (and its out-of-fold rows), in ``order`` (the other figures' panels) and
    then survival.csv's; the development cohort when it is the only one."""
    present = [c for c in dict.fromkeys(survival.loc[survival["model"] == model, "cohort"])
               if not str(c).endswith(OOF_SUFFIX)]
    present = [c for c in order if c in present] + [c for c in present if c not in order]
    others = [c for c in present if c != dev]
    return others or [c for c in present if c == dev]


def draw_km(run: Path, model: str, cohorts: list, *, xlabel: str = "Time"):
    """Kaplan-Meier curves of ``model``'s high- and low-risk groups, one panel per cohort, from
    ``results/km_curve.csv`` and ``results/survival.csv`` (the log-rank P, the hazard ratio and
    the threshold of each panel's legend); drawn by :func:`dlr.analysis.plotting.plot_km`."""
    from dlr.analysis.plotting import plot_km

    survival, curves = _csv(run / "results" / "survival.csv"), _csv(run / "results" / "km_curve.csv")
    if survival is None or curves is None or not cohorts:
        return None
    fig, axes = _panels(len(cohorts))
    fig.set_size_inches(3.6 * len(cohorts), 4.2)
    for i, (ax, cohort) in enumerate(zip(axes, cohorts)):
        row = survival[(survival["model"] == model) & (survival["cohort"] == cohort)].iloc[0]
        part = curves[(curves["model"] == model) & (curves["cohort"] == cohort)]
        sizes = {"high": int(row["n_high"]), "low": int(row["n"]) - int(row["n_high"])}
        groups = {g: _km_curve(part[part["group"] == g], sizes[g]) for g in ("high", "low")}
        result = SimpleNamespace(km_high=groups["high"], km_low=groups["low"],
                                 logrank=SimpleNamespace(p_value=float(row["logrank_p"])),
                                 hazard_ratio=SimpleNamespace(estimate=float(row["hr"]), ci_low=float(row["hr_ci_low"]),
                                                              ci_high=float(row["hr_ci_high"])),
                                 threshold=float(row["threshold"]))
        plot_km(result, ax=ax, title=f"{cohort[:1].upper()}{cohort[1:]} cohort", xlabel=xlabel)
        _panel_letter(ax, i)
    return fig


def draw_report_figures(run, out, *, dca_range=(0.05, 0.80), dpi: int = 300) -> tuple:
    """Every figure of the report from ``run``'s saved results into ``out`` (PNG and SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    perf = _csv(run / "results" / "performance.csv")
    if perf is None:
        return ()
    results = rf.read_json(run / rf.RESULTS_DIR / rf.RESULTS_JSON) or {}
    dev = results.get("settings", {}).get("dev_cohort", "training")
    cohorts = _cohorts(perf, dev)
    predictions = _csv(run / rf.PREDICTIONS)
    groups = model_groups(run)
    analysis = _analysis(run)
    panels = ", ".join(f"({'ABCDEFGH'[i]}) the {c} cohort" for i, c in enumerate(cohorts))
    names = {"classifiers": "the five radiomics classifiers", "models": "the clinical-radiological, radiomics and "
             "combined models", "comparators": "the best model against the staging systems and inflammation indexes"}
    records = []
    with plt.rc_context(STYLE):
        def keep(fig, fid, stem, caption, models, cohorts_=tuple(cohorts)):
            if fig is None:
                return
            _save(fig, out, stem, dpi)
            plt.close(fig)
            records.append(FigureRecord(fid, stem, caption, tuple(models), tuple(cohorts_)))

        for group, models in groups.items():
            keep(draw_roc(run, group, models, cohorts, perf, analysis), f"fig-roc-{group}", f"roc_{group}",
                 f"ROC curves of {names[group]}: {panels}. Shaded "
                 + ("band: bootstrap 95% CI of the best model's sensitivity; " if group == "comparators" else
                    "bands: bootstrap 95% CI of the sensitivity; ") + "legend: AUC.", models)
        for group in ("classifiers", "models"):
            if group in groups and predictions is not None:
                keep(draw_calibration(run, groups[group], cohorts, perf, predictions), f"fig-calibration-{group}",
                     f"calibration_{group}", f"Calibration curves of {names[group]}: {panels}. Points: observed "
                     "proportion in quantile groups sized to the cohort; ticks beneath: each patient's prediction; "
                     "dotted: ideal calibration; legend: calibration slope.", groups[group])
                keep(draw_dca(run, groups[group], cohorts, dca_range), f"fig-dca-{group}", f"dca_{group}",
                     f"Decision curves of {names[group]}: {panels}, over threshold probabilities "
                     f"{dca_range[0]:.2f}-{dca_range[1]:.2f}. Dashed: treat all; horizontal: treat none."
                     + (" Shaded: bootstrap 95% CI of the net benefit." if _dca_has_bands(run) else ""),
                     groups[group])
        forest_models = groups.get("models", []) or groups.get("classifiers", [])
        keep(draw_forest(run, forest_models), "fig-forest", "forest_scanner",
             "AUCs by scanner within each cohort, grouped by model (square: AUC; line: DeLong 95% CI); "
             "P: unpaired DeLong test between the scanners.", forest_models)
        keep(draw_lasso(run), "fig-lasso", "lasso", "LASSO feature selection on the development cohort: (A) "
             "coefficient paths against log(λ), the dashed line at the chosen λ; (B) 5-fold cross-validated "
             "binomial deviance (mean ± SE) with λ min and λ 1-SE; top axes: the number of non-zero features.", ())
        keep(draw_flow(run), "fig-selection-flow", "selection_flow", "Radiomics feature selection: the number of "
             "features kept at each step, on the development cohort only.", ())
        keep(draw_training(run), "fig-dl-training", "dl_training", "Training of the deep-learning networks on the "
             "development cohort, against the optimiser step: (A) class-weighted cross-entropy of the training "
             "slices (solid) and of the held-out fold in the out-of-fold refits, mean over the folds (dashed); "
             "(B) the held-out folds' mean AUC, without test-time augmentation (dotted: chance). Every fit runs its "
             "fixed budget of steps; nothing is chosen on these curves.",
             ())
        best = km_model(run, results.get("settings", {}).get("reference"))
        if best is not None:
            survival = _csv(run / "results" / "survival.csv")
            km_panels = km_cohorts(survival, best, dev, order=cohorts)
            ticks = _csv(run / "results" / "km_curve.csv")
            censored = ticks is not None and "n_events" in ticks
            follow = results.get("settings", {}).get("survival") or {}
            time = follow.get("time") if isinstance(follow, dict) else None
            keep(draw_km(run, best, km_panels, xlabel=f"Time ({time})" if time else "Time"), "fig-km", "km_best",
                 f"Kaplan-Meier curves of recurrence-free probability in the high- and low-risk groups of {best}: "
                 + ", ".join(f"({'ABCDEFGH'[i]}) the {c} cohort" for i, c in enumerate(km_panels))
                 + f". The groups are split at {best}'s development-cohort threshold "
                 f"({float(survival.loc[survival['model'] == best, 'threshold'].iloc[0]):.3g}; high risk: score at "
                 "or above it), never re-chosen on the cohort shown. Bands: 95% CI (log); "
                 + ("ticks: censored patients; " if censored else "")
                 + "each panel's legend gives the log-rank P and the Cox hazard ratio of the high-risk group "
                 "(Efron ties, Wald 95% CI); beneath: the number at risk.", (best,), tuple(km_panels))
        nomogram = _csv(run / "models" / "nomogram.csv")
        nomogram_axes = _csv(run / "models" / "nomogram_axes.csv")
        if nomogram is not None and nomogram_axes is not None:
            for model in dict.fromkeys(nomogram["model"]):
                fid = "fig-nomogram" if model == "CR" else f"fig-nomogram-{_safe(model)}"
                stem = "nomogram" if model == "CR" else f"nomogram_{_safe(model)}"
                kind = ("clinical-radiological (CR) model" if model == "CR" else
                        "radiomics-clinical (RCR) model" if model == "RCR" else f"{model} model")
                keep(draw_nomogram(nomogram, nomogram_axes, model=model).figure, fid, stem,
                     f"Nomogram of the {kind}, fitted on the {dev} cohort. Each predictor's value is read up to "
                     "the Points axis (0-100, 100 for the largest effect of any predictor); the points of all "
                     "predictors are added on the Total points axis, and the axis beneath converts the total "
                     "into the predicted probability of early recurrence.", (model,), (dev,))
    cam = run / "models" / "deep" / "scorecam.png"
    if cam.is_file():  # drawn by `dlr train` (it needs the network); copied, not redrawn
        shutil.copyfile(cam, out / "scorecam.png")
        records.append(FigureRecord("fig-scorecam", "scorecam", "Score-CAM maps of the best network for the most "
                                    "confident correctly and wrongly classified patients of the validation cohort "
                                    "(rows), at its Youden threshold on the out-of-fold development predictions: "
                                    "one map per patient (the network sees the phases' middle slices together, as "
                                    "channels), drawn over each phase; white: the tumour's outline.", (), ()))
    return tuple(records)
