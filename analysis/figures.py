"""Figures of an analysis, drawn from its results: ROC, calibration, decision curves and the
net benefit against the reference model per cohort, a forest plot per stratifier, and with
survival columns a Kaplan-Meier figure per cohort and model (``km_<cohort>_<model>``), each as
PNG and SVG.

Drawing is the slowest part of `dlr analyze`, so :class:`FigureWorkers` draws beside the
statistics in forked processes. This module imports nothing heavy at the top, so that the
command line can fork the workers before numpy and pandas load, and the jobs it sends them
are plain data, so the workers never load pandas.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlr.core.tempfiles import private_folder

if TYPE_CHECKING:
    from .pipeline import AnalysisResult, CohortCurves

#: resolution of the PNG figures (the SVG files are vector)
FIGURE_DPI = 150


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "cohort"


@dataclass(frozen=True)
class _Interval:
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class _RocLines:
    """What :func:`dlr.analysis.plotting.plot_roc` reads of a RocCurve, without its module."""

    fpr: list
    tpr: list
    band_specificity: list
    band_sensitivity_low: list
    band_sensitivity_high: list
    auc: _Interval


@dataclass(frozen=True)
class _KmLines:
    """What :func:`dlr.analysis.plotting.plot_km` reads of a KaplanMeier curve."""

    time: object
    survival: object
    ci_low: object
    ci_high: object
    at_risk: object
    n_events: object
    n: int


@dataclass(frozen=True)
class _PValue:
    p_value: float


@dataclass(frozen=True)
class _KmFigure:
    """What :func:`dlr.analysis.plotting.plot_km` reads of a RiskGroupSurvival, without its module."""

    km_high: _KmLines
    km_low: _KmLines
    logrank: _PValue
    hazard_ratio: _Interval
    threshold: float


def time_label(column: str) -> str:
    """The Kaplan-Meier time axis's label from the follow-up column's name
    (``months_to_recurrence`` -> "Time (months to recurrence)")."""
    return f"Time ({str(column).replace('_', ' ')})" if column else "Time"


def _km_plain(fit) -> _KmFigure:
    def lines(km):
        return _KmLines(km.time, km.survival, km.ci_low, km.ci_high, km.at_risk, km.n_events, km.n)

    hr = fit.hazard_ratio
    return _KmFigure(lines(fit.km_high), lines(fit.km_low), _PValue(fit.logrank.p_value),
                     _Interval(hr.estimate, hr.ci_low, hr.ci_high), fit.threshold)


def _plain(curves=None, table=None):
    """Jobs carry plain data (lists, dicts of column arrays), so that the figure processes
    never import pandas or the statistics modules to unpickle them."""
    if curves is not None:
        return {m: _RocLines(c.fpr, c.tpr, c.band_specificity, c.band_sensitivity_low, c.band_sensitivity_high,
                             _Interval(c.auc.estimate, c.auc.ci_low, c.auc.ci_high)) for m, c in curves.items()}
    return {column: table[column].to_numpy() for column in table.columns}


def cohort_figure_jobs(curves: CohortCurves) -> list[tuple]:
    """(kind, stem, data, title) of the ROC, calibration and decision-curve figures of a cohort."""
    cohort, name, jobs = curves.cohort, _safe_name(curves.cohort), []
    if curves.roc:
        jobs.append(("roc", f"roc_{name}", _plain(curves=curves.roc), f"ROC curves, {cohort} cohort"))
    if len(curves.calibration):
        jobs.append(("calibration", f"calibration_{name}",
                     (_plain(table=curves.calibration_groups if len(curves.calibration_groups)
                             else curves.calibration), _plain(table=curves.calibration_smooth)),
                     f"Calibration, {cohort} cohort"))
    shown = tuple(curves.threshold_range)
    if len(curves.decision_curve):
        jobs.append(("decision_curve", f"decision_curve_{name}", (_plain(table=curves.decision_curve), shown),
                     f"Decision curves, {cohort} cohort"))
    differences = curves.decision_curve_differences
    if len(differences) and (differences["model"] != differences["reference"]).any():
        jobs.append(("decision_curve_difference", f"decision_curve_difference_{name}",
                     (_plain(table=differences), shown),
                     f"Net benefit relative to {differences['reference'].iloc[0]}, {cohort} cohort"))
    for model, fit in curves.survival.items():  # --time/--event (contract 5.1): one KM figure per model
        jobs.append(("km", f"km_{name}_{_safe_name(model)}", (_km_plain(fit), time_label(curves.survival_time)),
                     f"{model}: high- vs low-risk group\n{cohort} cohort"))
    return jobs


def figure_jobs(result: AnalysisResult) -> list[tuple]:
    """(kind, stem, data, title) for every figure of an analysis."""
    from .decision_curve import SHOWN_RANGE
    from .pipeline import CohortCurves

    jobs = []
    shown = result.settings.get("decision_curve_range") or SHOWN_RANGE
    differences = result.decision_curve_differences
    for cohort in result.settings["cohorts"]:
        jobs += cohort_figure_jobs(CohortCurves(
            cohort, {m: c for (co, m), c in result.roc.items() if co == cohort},
            result.calibration[result.calibration["cohort"] == cohort],
            result.calibration_smooth[result.calibration_smooth["cohort"] == cohort],
            result.decision_curve[result.decision_curve["cohort"] == cohort],
            differences[differences["cohort"] == cohort], tuple(shown),
            result.calibration_groups[result.calibration_groups["cohort"] == cohort],
            {m: f for (co, m), f in result.survival_fits.items() if co == cohort},
            (result.settings.get("survival") or {}).get("time", "time")))
    for stratifier, rows in result.subgroups.groupby("stratifier", sort=False):
        jobs.append(("forest", f"subgroups_{_safe_name(stratifier)}", _plain(table=rows), f"AUC by {stratifier}"))
    return jobs


def _warm_up() -> None:
    """Import matplotlib and the plotting code and render a small figure once (font cache, text
    layout), while the parent process computes; the drawing forks inherit all of it."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from . import plotting  # noqa: F401

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="warm-up")
    ax.legend()
    ax.set_title("warm-up")
    for fmt in ("png", "svg"):
        fig.savefig(io.BytesIO(), format=fmt, dpi=FIGURE_DPI)


def _draw(kind: str, stem: str, data, title: str, folder: str) -> list[str]:
    """Draw one figure and save it as PNG and SVG; returns the paths written."""
    # Figure and the Agg canvas directly, not pyplot: no GUI backend, no global figure state,
    # and a faster start. Fixed margins instead of bbox_inches="tight", which draws twice.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from . import plotting

    size = {"roc": (5.0, 5.0), "calibration": (5.0, 5.0)}
    margins = dict(left=0.12, right=0.97, bottom=0.1, top=0.93)
    if kind == "calibration":  # as the decision curves, the legend (models, ideal, points, line) beneath
        rows = -(-(len(set(data[0]["model"].tolist())) + 3) // 2)
        bottom, height = 0.5 + 0.16 * rows, 4.4 + 0.3
        size[kind] = (5.0, height + bottom)
        margins = dict(left=0.14, right=0.97, bottom=bottom / (height + bottom), top=1 - 0.3 / (height + bottom))
    if kind in ("decision_curve", "decision_curve_difference"):
        # the legend goes beneath the axes (3.2 in high), three entries a row: the figure grows
        # with it; entries: each model (treat all and none, or the reference, among them) and the band
        rows = -(-(len(set(data[0]["model"].tolist())) + 1) // 3)
        bottom, height = 0.5 + 0.16 * rows, 3.2 + 0.3
        size[kind] = (6.0, height + bottom)
        margins = dict(left=0.16 if kind == "decision_curve_difference" else 0.135, right=0.97, bottom=bottom / (height + bottom), top=1 - 0.3 / (height + bottom))
    if kind == "km":  # the number-at-risk table and its labels take the bottom and left margins
        size["km"] = (6.0, 5.4)
        margins = dict(left=0.18, right=0.96, bottom=1.3 / 5.4, top=1 - 0.55 / 5.4)  # a two-line title
    if kind == "forest":  # the two text columns right of the axes take its right part
        height = plotting.forest_height(data) + 0.4
        size["forest"] = (7.0, height)
        margins = dict(left=0.25, right=0.56, bottom=0.55 / height, top=1 - 0.35 / height)
    written = []
    # a fixed title height spares matplotlib its tick-label search for a place for the title
    with matplotlib.rc_context({"svg.hashsalt": "dlr", "svg.fonttype": "none", "font.size": 9, "axes.titley": 1.01}):
        fig = Figure(figsize=size[kind])
        FigureCanvasAgg(fig)
        fig.subplots_adjust(**margins)
        ax = fig.add_subplot()
        if kind == "roc":
            plotting.plot_roc(data, ax=ax, title=title)
        elif kind == "calibration":
            plotting.plot_calibration(*data, ax=ax, title=title)
        elif kind == "decision_curve":
            plotting.plot_decision_curve(data[0], ax=ax, title=title, threshold_range=data[1])
        elif kind == "decision_curve_difference":
            plotting.plot_net_benefit_difference(data[0], ax=ax, title=title, threshold_range=data[1])
        elif kind == "km":
            plotting.plot_km(data[0], ax=ax, title=title, xlabel=data[1])
        else:
            plotting.plot_forest(data, ax=ax, title=title)
        # the KM figures (one per model and cohort, each with a number-at-risk table) as PNG alone:
        # their SVG would add a third to the cost of `--time/--event`; `dlr report` redraws the best
        # model's from km_curve.csv
        for ext in ("png",) if kind == "km" else ("png", "svg"):
            path = Path(folder) / f"{stem}.{ext}"
            options = ({"metadata": {"Date": None}} if ext == "svg"
                       else {"pil_kwargs": {"compress_level": 1}})  # fast PNG; size barely changes
            if kind == "forest":  # its row labels are as wide as the longest model and cohort name
                options["bbox_inches"] = "tight"
            fig.savefig(path, dpi=FIGURE_DPI, **options)
            written.append(str(path))
    return written


def _draw_share(jobs: list[tuple], folder: str) -> list[str]:
    return [path for job in jobs for path in _draw(*job, folder)]


def _fork_drawer(jobs: list[tuple], folder: str) -> int:
    """Fork a process (inheriting the warm matplotlib) that draws ``jobs``; returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _draw_share(jobs, folder)
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status
            print(f"dlr: a figure failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        os._exit(code)
    return pid


def _figure_server(conn) -> None:
    """Warm up, then fork a drawing process for each figure received.

    Messages: ("draw", jobs, folder) starts drawing them at once; ("finish", jobs, folder)
    draws the last ones, waits for every drawing process and answers ("ok", n_failed); None
    ends the server.
    """
    try:
        os.nice(5)  # the statistics in the parent are the critical path: let them have the CPU first
    except OSError:
        pass
    _warm_up()
    children = []
    while True:
        message = conn.recv()
        if message is None:
            return
        verb, jobs, folder = message
        # one process per figure: the scheduler spreads them over the cores as they free up
        children += [_fork_drawer([job], folder) for job in jobs]
        if verb == "draw":
            continue
        failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in children)
        children = []
        conn.send(("ok", failed))


class FigureWorkers:
    """A process that draws the figures beside the statistics.

    Started through a fork server before the statistics start (a fresh, single-threaded
    interpreter: never a fork of this process, which may have run torch's, XGBoost's or ITK's
    threads), it imports matplotlib and warms up on the second core, then forks a warm
    drawing process for each cohort's figures as soon as :meth:`submit_cohort` hands them over
    (pass it as ``analyze(cohort_done=...)``), one process per figure. The figures go to a
    staging folder that
    :func:`dlr.analysis.output.write_analysis` moves into place. Without a fork server (Windows)
    the figures are drawn in this process. Use as a context manager so the process always ends.
    """

    def __init__(self):
        import multiprocessing

        self.process = self.conn = None
        self.submitted: set[str] = set()
        self.staging = private_folder("figures", mode=0o755)  # the mode results/figures keeps
        if "forkserver" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("forkserver")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_figure_server, args=(child,), daemon=True)
        self.process.start()
        # sending pickles and may wait for the server to read: a thread does it, in order
        self.outbox: queue.Queue = queue.Queue()
        self.sender = threading.Thread(target=self._send_all, daemon=True)
        self.sender.start()

    def _send_all(self) -> None:
        while True:
            message = self.outbox.get()
            try:
                self.conn.send(message)
            except OSError:
                return
            if message is None:
                return

    def submit_cohort(self, curves: CohortCurves) -> None:
        """Start drawing one cohort's figures in the background."""
        jobs = cohort_figure_jobs(curves)
        self.submitted.update(job[1] for job in jobs)
        if self.process is None:
            _draw_share(jobs, str(self.staging))
        else:
            self.outbox.put(("draw", jobs, str(self.staging)))

    def finish(self, jobs: list[tuple]) -> Path:
        """Draw the jobs not submitted yet, wait for every figure, return the staging folder."""
        rest = [job for job in jobs if job[1] not in self.submitted]
        if self.process is None:
            _draw_share(rest, str(self.staging))
            return self.staging
        self.outbox.put(("finish", rest, str(self.staging)))
        _, failed = self.conn.recv()
        if failed:
            raise RuntimeError(f"drawing the figures failed in {failed} process(es); see the messages above")
        return self.staging

    def close(self) -> None:
        if self.process is not None:
            self.outbox.put(None)
            self.sender.join(timeout=10)
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
            self.process = None
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def draw_figures(result: AnalysisResult, folder: Path) -> list[str]:
    """ROC, calibration and decision curves per cohort, and a forest plot per stratifier (PNG + SVG),
    drawn in this process."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _draw_share(figure_jobs(result), str(folder))
