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


def same_lines(lines: Mapping) -> dict:
    """First name -> every name whose drawn arrays equal its own (``lines``: name -> tuple of
    arrays), in ``lines``' order: models with identical scores draw the same line, one hiding
    the other, so each such group is drawn once and named together (:func:`joined`)."""
    groups: dict = {}
    for name, arrays in lines.items():
        arrays = [np.asarray(a, dtype=float) for a in arrays]
        for first in groups:
            theirs = [np.asarray(a, dtype=float) for a in lines[first]]
            if all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in zip(arrays, theirs)):
                groups[first].append(name)
                break
        else:
            groups[name] = [name]
    return groups


def joined(names) -> str:
    """The legend's name of models drawn as one line: ``A = B``."""
    return " = ".join(str(n) for n in names)


def plot_roc(curves: dict[str, RocCurve], *, ax=None, title: str | None = None, colours: Mapping | None = None,
             bands=None, label=None, linewidth: float = 1.6):
    """ROC curves of several models in one cohort, each with its bootstrap sensitivity band.

    The empirical curve joins its points by straight lines, as pROC draws it: a run of tied
    scores is one diagonal segment (a staircase would enclose less area than the AUC it states).
    Models with the same curve are drawn once, named together (``A = B``).

    Parameters
    ----------
    curves : dict model name -> RocCurve (or any object with its ``fpr``, ``tpr``,
        ``band_*`` and ``auc`` attributes)
    colours : model -> colour, optional (default: :data:`MODEL_COLOURS`, else matplotlib's cycle)
    bands : collection of model names, optional
        The models whose band is drawn (default: every model's).
    label : callable (model, curve) -> str, optional
        The legend's text (default "model: AUC (95% CI)").
    """
    ax = _axes(ax)
    for model, names in same_lines({m: (c.fpr, c.tpr) for m, c in curves.items()}).items():
        curve, auc, name = curves[model], curves[model].auc, joined(names)
        text = label(name, curve) if label else f"{name}: AUC {auc.estimate:.3f} ({auc.ci_low:.3f}-{auc.ci_high:.3f})"
        chosen = (colours or {}).get(model, MODEL_COLOURS.get(str(model)))
        style = {"color": chosen} if chosen is not None else {}
        (line,) = ax.plot(curve.fpr, curve.tpr, label=text, linewidth=linewidth,
                          linestyle=MODEL_LINESTYLES.get(str(model), "-"), **style)
        if len(curve.band_specificity) and (bands is None or any(n in bands for n in names)):
            ax.fill_between(1 - np.asarray(curve.band_specificity), curve.band_sensitivity_low,
                            curve.band_sensitivity_high, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="x-small", frameon=False)
    return ax


def plot_calibration(bins: Mapping, smooth: Mapping | None = None, *, ax=None, title: str | None = None,
                     colours: Mapping | None = None, max_bands: int | None = None):
    """Calibration curves: the observed proportion in groups of predicted risk (with its CI) and
    the LOESS curve, per model, in one colour each; models with the same groups drawn once and
    named together (``A = B``).

    Parameters
    ----------
    bins : table with ``model``, ``mean_predicted``, ``observed`` and optionally
        ``observed_ci_low``, ``observed_ci_high`` (``calibration.csv`` or
        ``calibration_groups.csv`` rows of one cohort).
    smooth : table with ``model``, ``predicted``, ``observed`` (LOESS rows of one cohort), optional.
    colours : model -> colour, optional (default: :data:`MODEL_COLOURS`, else matplotlib's cycle).
    max_bands : int, optional
        The groups' CIs are drawn for at most this many models (default :data:`MAX_BANDS`):
        beyond, a dozen overlapping error bars per group hide the curves.

    Notes
    -----
    The line is ``calibration_smooth.csv``'s: LOESS, or for a model with few distinct
    predictions the observed proportion per level
    (:func:`dlr.analysis.calibration.calibration_curve`). Without it a model's points are
    joined by a line. The legend goes
    beneath the axes. (The report draws one panel per model instead:
    :func:`plot_calibration_cohorts`.)
    """
    from matplotlib.lines import Line2D

    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    smooth_models = _column(smooth, "model") if smooth is not None and len(_column(smooth, "model")) else None
    models = [m for m, _ in _by_model(bins)]
    has_ci = "observed_ci_low" in bins and "observed_ci_high" in bins and \
        len(models) <= (MAX_BANDS if max_bands is None else max_bands)
    points = "quantile groups" if "group" in bins else "deciles"
    together = same_lines({m: (_column(bins, "mean_predicted")[rows], _column(bins, "observed")[rows])
                           for m, rows in _by_model(bins)})
    handles = []
    for k, (model, rows) in enumerate(_by_model(bins)):
        if model not in together:
            continue  # drawn with the model whose groups it shares
        chosen = (colours or {}).get(model, model_colour(model, k, len(models)))
        observed = _column(bins, "observed").astype(float)[rows]
        predicted = _column(bins, "mean_predicted").astype(float)[rows]
        order = np.argsort(predicted, kind="stable")
        err = None
        if has_ci:
            err = np.clip(np.vstack([observed - _column(bins, "observed_ci_low").astype(float)[rows],
                                     _column(bins, "observed_ci_high").astype(float)[rows] - observed]), 0, None)
            err = err[:, order]
        smoothed = smooth_models is not None and bool((smooth_models == model).any())
        ax.errorbar(predicted[order], observed[order], yerr=err, fmt="o-" if not smoothed else "o", markersize=3.2,
                    capsize=1.8, elinewidth=0.7, linewidth=0 if smoothed else 1.1, color=chosen)
        if smoothed:
            mine = smooth_models == model
            ax.plot(_column(smooth, "predicted")[mine], _column(smooth, "observed")[mine], color=chosen, linewidth=1.3)
        handles.append(Line2D([], [], color=chosen, marker="o", markersize=3.2, linewidth=1.3,
                              label=joined(together[model])))
    handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1, label="Ideal"))
    handles.append(Line2D([], [], color="black", marker="o", markersize=3.2, linewidth=0,
                          label=f"Points: {points}" + (" (95% CI)" if has_ci else "")))
    if smooth_models is not None:
        handles.append(Line2D([], [], color="black", linewidth=1.3, label="Line: LOESS (or per level)"))
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="Predicted probability", ylabel="Observed proportion", title=title)
    ax.set_aspect("equal")
    _legend_below(ax, handles, ncol=2)  # two a row: the points' and the line's entries are long
    return ax


#: how the cohorts of one model's calibration panel are told apart (its colour is the model's)
COHORT_STYLES = ({"linestyle": "-", "marker": "o", "markerfacecolor": None},
                 {"linestyle": "--", "marker": "s", "markerfacecolor": "white"},
                 {"linestyle": ":", "marker": "^", "markerfacecolor": "white"},
                 {"linestyle": "-.", "marker": "D", "markerfacecolor": None},
                 {"linestyle": (0, (5, 1.5, 1, 1.5, 1, 1.5)), "marker": "v", "markerfacecolor": "white"})
#: :data:`COHORT_STYLES` in words, for captions
COHORT_STYLE_NAMES = ("solid line and filled circles", "dashed line and open squares",
                      "dotted line and open triangles", "dash-dotted line and filled diamonds",
                      "dash-dot-dotted line and open downward triangles")


def plot_calibration_cohorts(bins: Mapping, smooth: Mapping | None = None, *, ax=None, title: str | None = None,
                             colour=None, note: str | None = None):
    """One model's calibration in several cohorts: per cohort its LOESS curve and the observed
    proportion in its quantile groups with the 95% CI, told apart by line style and marker
    (:data:`COHORT_STYLES`, in the order of the cohorts' first rows), in the model's colour.

    Parameters
    ----------
    bins : table with ``cohort``, ``mean_predicted``, ``observed``, ``observed_ci_low`` and
        ``observed_ci_high`` (``calibration_groups.csv`` rows of one model).
    smooth : table with ``cohort``, ``predicted``, ``observed`` (``calibration_smooth.csv`` rows
        of the model), optional.
    note : text written in the panel's lower right (the calibration slopes, say).
    """
    ax = _axes(ax, size=(3.0, 3.0))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=0.8)
    cohorts = _column(bins, "cohort")
    for k, cohort in enumerate(dict.fromkeys(cohorts.tolist())):
        style = COHORT_STYLES[k % len(COHORT_STYLES)]
        rows = cohorts == cohort
        predicted = _column(bins, "mean_predicted").astype(float)[rows]
        observed = _column(bins, "observed").astype(float)[rows]
        err = np.clip(np.vstack([observed - _column(bins, "observed_ci_low").astype(float)[rows],
                                 _column(bins, "observed_ci_high").astype(float)[rows] - observed]), 0, None)
        face = style["markerfacecolor"] or colour
        ax.errorbar(predicted, observed, yerr=err, fmt=style["marker"], markersize=3.0, capsize=1.5, elinewidth=0.6,
                    color=colour, markerfacecolor=face, markeredgewidth=0.8, linewidth=0)
        if smooth is not None and len(_column(smooth, "cohort")):
            mine = _column(smooth, "cohort") == cohort
            ax.plot(_column(smooth, "predicted")[mine], _column(smooth, "observed")[mine], color=colour,
                    linestyle=style["linestyle"], linewidth=1.1)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=title)
    ax.set_aspect("equal")
    if note:
        ax.text(0.97, 0.03, note, transform=ax.transAxes, ha="right", va="bottom", fontsize="x-small")
    return ax


def cohort_key(cohorts, label=str):
    """Legend handles of :func:`plot_calibration_cohorts`' cohort styles, in black."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="black", linewidth=1.1, markersize=3.0, label=label(cohort),
                   **{k: v for k, v in COHORT_STYLES[i % len(COHORT_STYLES)].items() if v is not None})
            for i, cohort in enumerate(cohorts)]


def _zone(threshold: np.ndarray, threshold_range) -> tuple[tuple[float, float], np.ndarray]:
    """The x limits and the mask of thresholds inside them."""
    low, high = threshold_range if threshold_range is not None else (0.0, 1.0)
    return (float(low), float(high)), (threshold >= low - 1e-12) & (threshold <= high + 1e-12)


#: above this many models the decision-curve figures draw lines only: overlapping bands hide them
MAX_BANDS = 6


#: one colour per model of a dlr run, in every figure (results/figures and the report alike):
#: colour-blind-safe Okabe-Ito and Tol hues
MODEL_COLOURS = {
    "CR": "#E69F00", "Radiomics-LR": "#0072B2", "Radiomics-SVM": "#009E73", "Radiomics-KNN": "#CC79A7",
    "Radiomics-XGBoost": "#D55E00", "Radiomics-MLP": "#56B4E9", "DL-ResNet10": "#882255", "DL-ResNet18": "#44AA99",
    "DL-ResNet34": "#999933", "RCR": "#000000", "DLRCR": "#AA4499", "BCLC": "#332288", "CNLC": "#117733",
    "ERASL": "#88CCEE", "NLR": "#DDCC77", "PLR": "#CC6677", "LMR": "#661100",
}
#: a second channel beside the colour: the staging systems and indexes are dashed, so that no two
#: curves of one figure are told apart by hue alone (17 models outnumber any colour-blind-safe palette)
MODEL_LINESTYLES = {name: (0, (4, 1.5)) for name in ("BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR")}


def _colour(k: int, n: int):
    """The k-th of n model colours: the property cycle, or tab20 beyond its 10 colours."""
    if n <= 10:
        return f"C{k}"
    import matplotlib

    return matplotlib.colormaps["tab20"](k % 20)


def model_colour(model, k: int, n: int):
    """``model``'s own colour (:data:`MODEL_COLOURS`), else the k-th of n (another tool's model names)."""
    return MODEL_COLOURS.get(str(model), _colour(k, n))


def _legend_below(ax, handles, ncol: int = 3):
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=ncol, fontsize="x-small",
              frameon=False, handlelength=2.2, columnspacing=1.4)


def plot_decision_curve(curves: Mapping, *, ax=None, title: str | None = None, threshold_range=None,
                        max_bands: int = MAX_BANDS, colours: Mapping | None = None):
    """Net benefit against threshold probability with bootstrap bands, treat all and treat none.

    Parameters
    ----------
    curves : table with ``model``, ``threshold``, ``net_benefit`` and optionally
        ``net_benefit_ci_low``, ``net_benefit_ci_high`` (``decision_curve.csv`` rows of one
        cohort, with its ``treat_all`` and ``treat_none`` rows).
    threshold_range : (low, high), optional
        The threshold probabilities shown (default 0 to 1).
    max_bands : int
        Bands are drawn for at most this many models (lines only beyond).
    colours : model -> colour, optional (default: :data:`MODEL_COLOURS`, else matplotlib's cycle)

    Notes
    -----
    Each model is a line with a light band (its 95% percentile bootstrap interval, where the
    table has one), treat all is dashed and treat none the line at 0. The y axis runs from
    just below 0 to a little above the cohort's prevalence, which no net benefit exceeds
    (the prevalence is read off the treat-all curve: (NB + w)/(1 + w), w = t/(1 - t)).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax = _axes(ax)
    threshold, benefit = _column(curves, "threshold").astype(float), _column(curves, "net_benefit").astype(float)
    n_models = len([m for m, _ in _by_model(curves) if m not in ("treat_all", "treat_none")])
    banded = "net_benefit_ci_low" in curves and "net_benefit_ci_high" in curves and n_models <= max_bands
    (x0, x1), zone = _zone(threshold, threshold_range)
    together = same_lines({m: (threshold[rows], benefit[rows]) for m, rows in _by_model(curves)
                           if m not in ("treat_all", "treat_none")})
    handles, top, k = [], float("nan"), 0
    for model, rows in _by_model(curves):
        keep = rows & zone
        x, y = threshold[keep], benefit[keep]
        if model == "treat_none" or (model != "treat_all" and model not in together):
            continue  # treat none is the line at 0; a model with another's curve is drawn with it
        if model == "treat_all":
            style = dict(color="#555555", linewidth=1.1, linestyle="--")
            label = "Treat all"
            w = x / (1 - x)
            prevalence = (y + w) / (1 + w)
            top = np.nanmax([top, *prevalence]) if prevalence.size else top
        else:
            style = dict(color=(colours or {}).get(model, model_colour(model, k, n_models)), linewidth=1.5)
            label, k = joined(together[model]), k + 1
        (line,) = ax.plot(x, y, **style)
        handles.append(Line2D([], [], label=label, **style))
        if banded and model != "treat_all":
            low = _column(curves, "net_benefit_ci_low").astype(float)[keep]
            high = _column(curves, "net_benefit_ci_high").astype(float)[keep]
            if np.isfinite(low).any():
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.13, linewidth=0)
    ax.axhline(0.0, color="black", linewidth=1.0)
    handles.append(Line2D([], [], color="black", linewidth=1.0, label="Treat none"))
    if banded and np.isfinite(_column(curves, "net_benefit_ci_low").astype(float)).any():
        handles.append(Patch(color="grey", alpha=0.3, linewidth=0, label="95% CI (bootstrap)"))
    if not np.isfinite(top):
        top = float(np.nanmax(benefit[zone])) if np.isfinite(benefit[zone]).any() else 0.05
    top = max(top, 0.01)
    ax.set(xlim=(x0, x1), ylim=(-min(0.05, 0.5 * top), 1.08 * top), xlabel="Threshold probability",
           ylabel="Net benefit", title=title)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    _legend_below(ax, handles)
    return ax


def plot_net_benefit_difference(differences: Mapping, *, ax=None, title: str | None = None,
                                threshold_range=None, max_bands: int = MAX_BANDS):
    """Difference in net benefit of each model against the reference model, per 100 patients,
    with its paired bootstrap band.

    Parameters
    ----------
    differences : table with ``model``, ``reference``, ``threshold``, ``nb_diff``,
        ``nb_diff_ci_low``, ``nb_diff_ci_high`` (``decision_curve_differences.csv`` rows of one
        cohort).
    threshold_range : (low, high), optional
    max_bands : int
        Bands are drawn for at most this many models besides the reference (lines only beyond).

    Notes
    -----
    Drawn as 100 x (NB_model - NB_reference): the net number of extra true positives (at equal
    false positives) per 100 patients; the reference is the line at 0, so a model whose band
    lies above it does better than the reference at that threshold. Colours follow the order
    of the models as in :func:`plot_decision_curve`; models with the same differences are drawn
    once, named together (``A = B``).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax = _axes(ax)
    threshold = _column(differences, "threshold").astype(float)
    diff = 100 * _column(differences, "nb_diff").astype(float)
    low, high = (100 * _column(differences, c).astype(float) for c in ("nb_diff_ci_low", "nb_diff_ci_high"))
    references = _column(differences, "reference")
    reference = str(references[0]) if references.size else "reference"
    (x0, x1), zone = _zone(threshold, threshold_range)
    handles, shown = [], [np.zeros(1)]
    n_models = len(list(_by_model(differences)))
    banded = n_models - 1 <= max_bands
    together = same_lines({m: (threshold[rows], diff[rows]) for m, rows in _by_model(differences) if m != reference})
    for k, (model, rows) in enumerate(_by_model(differences)):
        if model == reference or model not in together:
            continue  # a model with another's differences is drawn with it
        keep = rows & zone
        style = dict(color=model_colour(model, k, n_models), linewidth=1.5)
        ax.plot(threshold[keep], diff[keep], **style)
        handles.append(Line2D([], [], label=joined(together[model]), **style))
        if banded and np.isfinite(low[keep]).any():
            ax.fill_between(threshold[keep], low[keep], high[keep], color=style["color"], alpha=0.13, linewidth=0)
            shown += [low[keep], high[keep]]
        shown.append(diff[keep])
    ax.axhline(0.0, color="black", linewidth=1.0)
    handles.append(Line2D([], [], color="black", linewidth=1.0, label=f"{reference} (reference)"))
    if banded and np.isfinite(low[zone]).any():
        handles.append(Patch(color="grey", alpha=0.3, linewidth=0, label="95% CI (paired bootstrap)"))
    values = np.concatenate(shown)
    values = values[np.isfinite(values)]
    y0, y1 = float(values.min()), float(values.max())
    pad = 0.08 * max(y1 - y0, 1.0)
    ax.set(xlim=(x0, x1), ylim=(y0 - pad, y1 + pad), xlabel="Threshold probability",
           ylabel="Difference in net benefit\n(net true positives per 100 patients)", title=title)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    _legend_below(ax, handles)
    return ax


def _forest_rows(subgroups: Mapping) -> list[tuple]:
    """The forest plot's rows: per (model, cohort, stratifier), in order of first appearance, a
    heading (kind "head", its text, the between-level P) and then each level (kind "level", its
    text, the row's index)."""
    model, cohort = _column(subgroups, "model"), _column(subgroups, "cohort")
    stratifier = _column(subgroups, "stratifier") if "stratifier" in subgroups else np.full(model.size, "")
    level, p_between = _column(subgroups, "level"), _column(subgroups, "p_between").astype(float)
    keys = list(dict.fromkeys(zip(model.tolist(), cohort.tolist(), stratifier.tolist())))
    rows = []
    for key in keys:
        members = np.flatnonzero((model == key[0]) & (cohort == key[1]) & (stratifier == key[2]))
        p = p_between[members][np.isfinite(p_between[members])]
        rows.append(("head", f"{key[0]}, {key[1]}", _p_text(float(p[0])) if p.size else "", key[0]))
        rows += [("level", f"   {key[2]} {level[i]}".rstrip() if key[2] else f"   {level[i]}", i, key[0])
                 for i in members]
    return rows


def forest_height(subgroups: Mapping) -> float:
    """The height in inches of a :func:`plot_forest` figure of ``subgroups``."""
    return 0.22 * len(_forest_rows(subgroups)) + 0.8


def plot_forest(subgroups: Mapping, *, ax=None, title: str | None = None, colours: Mapping | None = None):
    """Forest plot of subgroup AUCs with DeLong CIs, grouped by model and cohort.

    Parameters
    ----------
    subgroups : table with ``model``, ``cohort``, ``stratifier`` (optional), ``level``, ``n``,
        ``n_events``, ``auc``, ``auc_ci_low``, ``auc_ci_high``, ``p_between`` (``subgroups.csv``).
    colours : model -> colour, optional (default: :data:`MODEL_COLOURS`, else matplotlib's cycle).

    Notes
    -----
    Each model and cohort is a heading with the unpaired DeLong P between its levels, once; each
    level a row with its square (AUC) and line (95% CI) in the model's colour, and two text
    columns right of the axes: "AUC (95% CI)" and events/n. The axes take the left part of the
    figure: leave the right ~45% of its width to those columns (e.g. ``subplots_adjust(left=0.25,
    right=0.56)``, :func:`forest_height` for the height).
    """
    rows = _forest_rows(subgroups)
    ax = _axes(ax, (7.0, forest_height(subgroups)))
    auc = _column(subgroups, "auc").astype(float)
    low, high = _column(subgroups, "auc_ci_low").astype(float), _column(subgroups, "auc_ci_high").astype(float)
    n, events = _column(subgroups, "n"), _column(subgroups, "n_events")
    models = list(dict.fromkeys(r[3] for r in rows))
    text = ax.get_yaxis_transform()  # x in axes fractions, y in rows
    for y, (kind, label, index, model) in enumerate(rows):
        yy = len(rows) - y
        ax.text(-0.02, yy, label, transform=text, ha="right", va="center",
                fontweight="bold" if kind == "head" else "normal")
        if kind == "head":
            ax.text(1.95, yy, index, transform=text, ha="left", va="center")
            continue
        chosen = (colours or {}).get(model, model_colour(model, models.index(model), len(models)))
        if np.isfinite(auc[index]) and np.isfinite(low[index]) and np.isfinite(high[index]):
            ax.plot([low[index], high[index]], [yy, yy], color=chosen, linewidth=1.1)
            ax.plot(auc[index], yy, "s", color=chosen, markersize=4)
            shown = f"{auc[index]:.3f} ({low[index]:.3f}-{high[index]:.3f})"
        elif np.isfinite(auc[index]):  # a level whose DeLong variance is undefined (say, one event): no CI
            ax.plot(auc[index], yy, "s", color=chosen, markersize=4)
            shown = f"{auc[index]:.3f} (CI undefined)"
        else:
            shown = "AUC undefined"
        ax.text(1.02, yy, shown, transform=text, ha="left", va="center")
        ax.text(1.95, yy, f"{int(events[index])}/{int(n[index])}", transform=text, ha="left", va="center")
    top = len(rows) + 1
    ax.text(1.02, top, "AUC (95% CI)", transform=text, ha="left", va="center", fontweight="bold")
    ax.text(1.95, top, "Events/n; P", transform=text, ha="left", va="center", fontweight="bold")
    ax.axvline(0.5, color="#888888", linewidth=0.6, linestyle=":")
    ax.set(xlim=(0.2, 1.0), ylim=(0.3, top + 0.7), yticks=[], xlabel="AUC (95% CI, DeLong)", title=title)
    ax.spines["left"].set_visible(False)
    return ax


#: high- and low-risk colours of the Kaplan-Meier figures (colour-blind safe, print as two greys)
KM_COLOURS = {"high": "#c0392b", "low": "#2166ac"}


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "P undefined"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def _free_corner(groups, end: float, box=(0.62, 0.25)) -> str:
    """The corner of the axes whose legend-sized box covers the fewest points of the curves and
    bands (lower left first on ties: the place KM curves, which start at 1, leave free). Much
    cheaper than matplotlib's ``loc="best"``, which searches again at every save."""
    grid = np.linspace(0.0, end, 120)
    points = []
    for _, km in groups:
        if km.n == 0:
            continue
        t = np.asarray(km.time, dtype=float)
        k = np.searchsorted(t, grid[grid <= t[-1]], side="right") - 1
        for column in (km.survival, km.ci_low, km.ci_high):
            y = np.asarray(column, dtype=float)[k]
            points.append(np.c_[grid[: k.size] / end, np.nan_to_num(y, nan=0.0) / 1.02])
    if not points:
        return "lower left"
    xy = np.concatenate(points)
    w, h = box
    corners = {"lower left": (0, 0), "upper right": (1 - w, 1 - h), "lower right": (1 - w, 0), "upper left": (0, 1 - h),
               "center right": (1 - w, 0.5 - h / 2)}
    covered = {name: int(np.sum((xy[:, 0] >= x) & (xy[:, 0] <= x + w) & (xy[:, 1] >= y) & (xy[:, 1] <= y + h)))
               for name, (x, y) in corners.items()}
    return min(covered, key=covered.get)


def plot_km(result, *, ax=None, title: str | None = None, xlabel: str = "Time",
            ylabel: str = "Recurrence-free probability", at_risk_ticks=None):
    """Kaplan-Meier curves of the high- and low-risk groups with 95% bands and a number-at-risk table.

    Parameters
    ----------
    result : :class:`dlr.analysis.survival.RiskGroupSurvival` (or any object with its ``km_high``,
        ``km_low`` (``time``, ``survival``, ``ci_low``, ``ci_high``, ``at_risk``, ``n_events``,
        ``n``), ``logrank.p_value``, ``hazard_ratio`` (``estimate``, ``ci_low``, ``ci_high``) and
        ``threshold`` attributes).
    xlabel, ylabel : str
        Axis labels (e.g. the time column and its unit).
    at_risk_ticks : array, optional
        Times of the x ticks and of the number-at-risk table (default: matplotlib's ticks).

    Notes
    -----
    Steps are drawn after each time (right-continuous) up to each group's last follow-up,
    censored patients as ticks on the curve; the band is the result's (the log band). The
    numbers at risk under the axis are read off the curves: at time t, the ``at_risk`` of the
    first curve time >= t (0 past the last). The legend, in the corner where it hides the least
    of the curves and bands, gives the log-rank P and the Cox hazard ratio of the high-risk group.
    """
    from matplotlib.lines import Line2D

    ax = _axes(ax, (6.0, 5.6))
    groups = [(name, getattr(result, f"km_{name}")) for name in ("high", "low")]
    end = max([float(np.max(km.time)) for _, km in groups if km.n > 0] + [1.0])
    handles = []
    for name, km in groups:
        colour = KM_COLOURS[name]
        sign = "\u2265" if name == "high" else "<"
        handles.append(Line2D([], [], color=colour, linewidth=1.6,
                              label=f"{name.capitalize()} risk (score {sign} {result.threshold:.3g}), n = {km.n}"))
        if km.n == 0:
            continue
        t = np.asarray(km.time, dtype=float)
        s = np.asarray(km.survival, dtype=float)
        ax.fill_between(t, np.asarray(km.ci_low, dtype=float), np.asarray(km.ci_high, dtype=float), step="post",
                        color=colour, alpha=0.14, linewidth=0)
        ax.step(t, s, where="post", color=colour, linewidth=1.6)
        at_risk = np.asarray(km.at_risk, dtype=float)
        censored = at_risk - np.r_[at_risk[1:], 0.0] - np.asarray(km.n_events, dtype=float)
        # censoring ticks as one path of short vertical strokes (one SVG element, not one per patient)
        x, y = t[censored > 0], s[censored > 0]
        strokes = np.full((x.size, 3, 2), np.nan)
        strokes[:, 0], strokes[:, 1] = np.c_[x, y - 0.012], np.c_[x, y + 0.012]
        ax.plot(strokes[:, :, 0].ravel(), strokes[:, :, 1].ravel(), color=colour, linewidth=0.7)
    ax.set(xlim=(0, end), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel, title=title)
    ticks = np.asarray(at_risk_ticks if at_risk_ticks is not None else ax.get_xticks(), dtype=float)
    ticks = ticks[(ticks >= 0) & (ticks <= end * (1 + 1e-9))]
    ax.set_xticks(ticks)
    ax.set_xlim(0, end)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)

    hr = result.hazard_ratio
    hr_text = (f"HR (high vs low) {hr.estimate:.2f}, 95% CI {hr.ci_low:.2f}\u2013{hr.ci_high:.2f}"
               if np.isfinite(hr.estimate) else "HR undefined")
    ax.legend(handles=handles, loc=_free_corner(groups, end), fontsize="small", title_fontsize="small",
              alignment="left", title=f"Log-rank {_p_text(result.logrank.p_value)}\n{hr_text}", framealpha=0.9,
              edgecolor="#cccccc")

    # number at risk beneath the x axis, aligned with the ticks
    ax.text(-0.2, -0.2, "Number at risk", transform=ax.transAxes, ha="left", va="center", fontsize="small",
            fontweight="bold")
    for row, (name, km) in enumerate(groups):
        y = -0.26 - 0.06 * row
        ax.text(-0.07, y, f"{name.capitalize()} risk", transform=ax.transAxes, ha="right", va="center",
                fontsize="small", color=KM_COLOURS[name])
        t = np.asarray(km.time, dtype=float)
        at_risk = np.asarray(km.at_risk, dtype=int)
        for tick in ticks:
            k = int(np.searchsorted(t, tick, side="left"))
            ax.text(tick, y, str(int(at_risk[k]) if k < t.size else 0), transform=ax.get_xaxis_transform(),
                    ha="center", va="center", fontsize="small", color=KM_COLOURS[name])
    return ax
