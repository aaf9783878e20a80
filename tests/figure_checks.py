"""Checks that a figure equals its numbers and shows every label whole, for the tests and for a
whole run (`python tests/figure_checks.py RUN` checks every figure of RUN/results/figures and of
the report, redrawn in this process from the run's files).

- :func:`roc_areas`: every ROC curve drawn (a line whose label names a model and its AUC) and
  the area under the drawn polyline, to compare with ``performance.csv``'s AUC: a run of tied
  scores drawn as a staircase encloses less than the AUC it states.
- :func:`text_problems`: text outside the saved canvas (clipped) and texts that overlap.

Figures are captured as they are saved (:func:`captured`), so the checks see exactly what
``dlr analyze`` and ``dlr report`` draw.
"""
from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

#: "MODEL (AUC 0.812)" (the report) or "MODEL: AUC 0.812 (0.70-0.90)" (results/figures);
#: MODEL may be "A = B" (models drawn once)
ROC_LABEL = re.compile(r"^(?P<models>.+?)(?: \(AUC |: AUC )(?P<auc>[0-9.]+)")
OOF = " (out-of-fold)"


@contextmanager
def captured():
    """Every matplotlib Figure saved inside the block, in order (each once), with the keyword
    arguments of its first save (``bbox_inches``)."""
    from matplotlib.figure import Figure

    seen: list = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        if not any(fig is self for fig, _ in seen):
            seen.append((self, dict(kwargs)))
        return original(self, *args, **kwargs)

    Figure.savefig = keep
    try:
        yield seen
    finally:
        Figure.savefig = original


def _cohort_of(title: str, cohorts) -> str | None:
    """The cohort an axes' title names ("Validation cohort", "Training cohort, out of fold",
    "ROC curves, training (out-of-fold) cohort")."""
    text = title.lower()
    oof = "out of fold" in text or "out-of-fold" in text
    for cohort in sorted(cohorts, key=len, reverse=True):
        base = cohort[:-len(OOF)] if cohort.endswith(OOF) else cohort
        if base.lower() in text and cohort.endswith(OOF) == oof:
            return cohort
    return None


def roc_areas(fig, cohorts) -> list[tuple]:
    """(cohort, models, stated AUC, area of the drawn polyline) of every ROC curve of ``fig``."""
    out = []
    for ax in fig.axes:
        if ax.get_xlabel() != "1 - specificity":
            continue
        cohort = _cohort_of(ax.get_title(), cohorts)
        for line in ax.get_lines():
            match = ROC_LABEL.match(str(line.get_label()))
            if not match:
                continue
            x, y = (np.asarray(v, dtype=float) for v in line.get_data())
            if line.get_drawstyle() != "default":  # the points as drawn: a step plot joins them by steps
                from matplotlib.cbook import STEP_LOOKUP_MAP

                x, y = STEP_LOOKUP_MAP[line.get_drawstyle()](x, y)
            area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
            out.append((cohort, tuple(match["models"].split(" = ")), float(match["auc"]), area))
    return out


def _ticks_shown(axis):
    """The tick labels ``axis`` draws: those of ticks inside its view interval."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) or 1.0
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        loc = tick.get_loc()
        if loc is None or not low - 1e-9 * span <= loc <= high + 1e-9 * span:
            continue
        yield from (label for label in (tick.label1, tick.label2) if label.get_visible())


def _texts(fig):
    """The texts ``fig`` draws: figure texts and legends, and per axes its titles, axis labels,
    tick labels in view, texts and legend."""
    found = [*fig.texts, *(t for legend in fig.legends for t in [legend.get_title(), *legend.get_texts()])]
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison and not ax.texts:
            continue
        found += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.axison:
            found += [*_ticks_shown(ax.xaxis), *_ticks_shown(ax.yaxis)]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += [legend.get_title(), *legend.get_texts()]
        for child in ax.child_axes:  # secondary axes (the LASSO's count of features on top)
            found += [*_ticks_shown(child.xaxis), *_ticks_shown(child.yaxis), child.xaxis.label, child.yaxis.label]
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def text_problems(fig, *, bbox_inches=None) -> list[str]:
    """Texts outside the canvas as saved (clipped) and pairs of texts that overlap by more than
    a pixel each way, described."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):  # a pyplot figure, closed after its save
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    if bbox_inches == "tight":
        box = fig.get_tightbbox(renderer).padded(0.1)
        canvas = box.transformed(fig.dpi_scale_trans)
    else:
        canvas = fig.bbox
    problems, boxes = [], []
    for text in _texts(fig):
        extent = text.get_window_extent(renderer)
        if extent.width == 0 or extent.height == 0:
            continue
        if (extent.x0 < canvas.x0 - 1 or extent.y0 < canvas.y0 - 1 or extent.x1 > canvas.x1 + 1
                or extent.y1 > canvas.y1 + 1):
            problems.append(f"clipped: {text.get_text()!r}")
        boxes.append((text.get_text(), extent))
    for i, (a, ea) in enumerate(boxes):
        for b, eb in boxes[i + 1:]:
            overlap_x = min(ea.x1, eb.x1) - max(ea.x0, eb.x0)
            overlap_y = min(ea.y1, eb.y1) - max(ea.y0, eb.y0)
            if overlap_x > 1 and overlap_y > 1:
                problems.append(f"overlap: {a!r} and {b!r}")
    return problems


def _title(fig) -> str:
    names = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return names[0] if names else "(untitled)"


def check_run(run: Path) -> list[str]:
    """Every problem of every figure of ``run``'s results/figures and report, redrawn here (for
    a `dlr predict` run, RUN2 with ``inputs/bundle.json``, the external report's figures)."""
    import tempfile

    import pandas as pd

    from dlr.analysis.figures import draw_figures
    from dlr.analysis.output import read_analysis
    from dlr.report.external import read_external, report_figures
    from dlr.report.figures import draw_report_figures

    performance = pd.read_csv(run / "results" / "performance.csv", dtype={"model": str, "cohort": str})
    auc = performance.set_index(["cohort", "model"])["auc"]
    cohorts = set(performance["cohort"])
    problems = []
    with tempfile.TemporaryDirectory() as tmp, captured() as figures:
        draw_figures(read_analysis(run / "results"), Path(tmp) / "results")
        if (run / "inputs" / "bundle.json").is_file():
            report_figures(read_external(run), Path(tmp) / "report", dpi=72)
        else:
            draw_report_figures(run, Path(tmp) / "report", dpi=72)
        for fig, kwargs in figures:
            name = _title(fig)
            for cohort, models, stated, area in roc_areas(fig, cohorts):
                for model in models:
                    expected = auc.get((cohort, model), auc.get((cohort[:-len(OOF)] if cohort else cohort, model)))
                    if expected is None or abs(area - expected) > 1e-6 or abs(stated - expected) > 5e-4 + 1e-9:
                        problems.append(f"{name}: {model} in {cohort}: drawn area {area:.6f}, stated {stated}, "
                                        f"performance.csv {expected}")
            problems += [f"{name}: {p}" for p in text_problems(fig, bbox_inches=kwargs.get("bbox_inches"))]
    return problems


if __name__ == "__main__":
    found = check_run(Path(sys.argv[1]))
    print("\n".join(found) or "every figure: ROC areas equal their AUCs; no clipped or overlapping text")
    sys.exit(1 if found else 0)
