"""Writing an analysis to its folder (contract section 5), atomically, with provenance."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .pipeline import AnalysisResult

TABLES = {
    "performance.csv": "performance",
    "comparisons.csv": "comparisons",
    "cohort_tests.csv": "cohort_tests",
    "subgroups.csv": "subgroups",
    "decision_curve.csv": "decision_curve",
    "calibration.csv": "calibration",
    "calibration_smooth.csv": "calibration_smooth",
    "reclassification.csv": "reclassification",
    "risk_mapping.csv": "risk_mappings",
}
#: resolution of the PNG figures (the SVG files are vector)
FIGURE_DPI = 150
PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib")


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(input_path=None) -> dict:
    """Input hash, package versions and the git commit of the code, where known."""
    versions = {"python": platform.python_version()}
    for name in ("dlr", *PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {"versions": versions, "git_sha": _git_sha()}
    if input_path is not None:
        info["input"] = {"path": str(input_path), "sha256": file_sha256(input_path)}
    return info


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _json_safe(value):
    """Replace NaN and infinities by None, numpy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return _json_safe(frame.to_dict(orient="records"))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "cohort"


def write_analysis(result: AnalysisResult, out, *, figures: bool = True, provenance_info: dict | None = None,
                   progress=None, workers: "FigureWorkers | None" = None) -> Path:
    """Write every table, ``results.json`` and (optionally) the figures into ``out``.

    Everything is written into a temporary sibling folder first and moved into place only
    when complete, so a failure never leaves a half-written result nor clobbers an earlier one.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for filename, attribute in TABLES.items():
            getattr(result, attribute).to_csv(tmp / filename, index=False)
        curves = [c.to_frame().assign(cohort=k[0], model=k[1]) for k, c in result.roc.items()]
        bands = [c.band_frame().assign(cohort=k[0], model=k[1]) for k, c in result.roc.items()]
        _stack(curves, ["cohort", "model", "threshold", "fpr", "tpr"]).to_csv(tmp / "roc_curve.csv", index=False)
        _stack(bands, ["cohort", "model", "specificity", "sensitivity_ci_low", "sensitivity_ci_high"]).to_csv(
            tmp / "roc_band.csv", index=False)
        document = {"settings": result.settings, "warnings": result.warnings,
                    "provenance": provenance_info or {}}
        for filename, attribute in TABLES.items():
            document[attribute] = _records(getattr(result, attribute))
        (tmp / "results.json").write_text(json.dumps(_json_safe(document), indent=1, allow_nan=False) + "\n")
        if figures:
            if progress:
                progress("drawing figures")
            draw_figures(result, tmp / "figures", workers=workers)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _stack(frames, columns) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _figure_jobs(result: AnalysisResult) -> list[tuple]:
    """(kind, stem, data, title) for every figure of an analysis."""
    jobs = []
    for cohort in result.settings["cohorts"]:
        name = _safe_name(cohort)
        curves = {m: c for (co, m), c in result.roc.items() if co == cohort}
        if curves:
            jobs.append(("roc", f"roc_{name}", curves, f"ROC curves, {cohort} cohort"))
        bins = result.calibration[result.calibration["cohort"] == cohort]
        if len(bins):
            smooth = result.calibration_smooth[result.calibration_smooth["cohort"] == cohort]
            jobs.append(("calibration", f"calibration_{name}", (bins, smooth), f"Calibration, {cohort} cohort"))
        dca = result.decision_curve[result.decision_curve["cohort"] == cohort]
        if len(dca):
            jobs.append(("decision_curve", f"decision_curve_{name}", dca, f"Decision curves, {cohort} cohort"))
    for stratifier, rows in result.subgroups.groupby("stratifier", sort=False):
        jobs.append(("forest", f"subgroups_{_safe_name(stratifier)}", rows, f"AUC by {stratifier}"))
    return jobs


def _warm_up() -> None:
    """Import matplotlib and render a small figure once (font cache, text layout), off the clock."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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

    size = {"roc": (5.0, 5.0), "calibration": (5.0, 5.0), "decision_curve": (6.0, 4.5)}
    margins = dict(left=0.12, right=0.97, bottom=0.1, top=0.93)
    if kind == "forest":
        height = 0.28 * len(data) + 1.2
        size["forest"] = (7.5, height)
        margins = dict(left=0.38, right=0.86, bottom=0.55 / height, top=1 - 0.35 / height)
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
            plotting.plot_decision_curve(data, ax=ax, title=title)
        else:
            plotting.plot_forest(data, ax=ax, title=title)
        for ext in ("png", "svg"):
            path = Path(folder) / f"{stem}.{ext}"
            options = ({"metadata": {"Date": None}} if ext == "svg"
                       else {"pil_kwargs": {"compress_level": 1}})  # fast PNG; size barely changes
            fig.savefig(path, dpi=FIGURE_DPI, **options)
            written.append(str(path))
    return written


def _draw_share(jobs: list[tuple], folder: str) -> list[str]:
    return [path for job in jobs for path in _draw(*job, folder)]


def _figure_server(conn, n_processes: int) -> None:
    """Warm up, then draw each batch of jobs received, split over ``n_processes`` forks."""
    _warm_up()
    while True:
        message = conn.recv()
        if message is None:
            return
        jobs, folder = message
        try:
            children = []
            for k in range(1, n_processes):
                pid = os.fork()  # the fork inherits the warm matplotlib
                if pid == 0:
                    code = 0
                    try:
                        _draw_share(jobs[k::n_processes], folder)
                    except BaseException:  # noqa: BLE001 - reported through the exit status
                        code = 1
                    os._exit(code)
                children.append(pid)
            written = _draw_share(jobs[0::n_processes], folder)
            failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
            if failed:
                raise RuntimeError(f"{len(failed)} figure process(es) failed")
            for k in range(1, n_processes):
                written += [str(Path(folder) / f"{job[1]}.{ext}") for job in jobs[k::n_processes]
                            for ext in ("png", "svg")]
            conn.send(("ok", written))
        except Exception as exc:  # noqa: BLE001 - sent back and raised in the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class FigureWorkers:
    """A process that imports matplotlib while the statistics are computed, then draws.

    It is forked before :func:`analysis.pipeline.analyze` runs, warms up on the second core,
    and, given the figures, forks once more so that ``n_processes`` draw in parallel. Without
    ``fork`` (Windows, macOS spawn) the figures are drawn in this process. Use as a context
    manager so the process always ends.
    """

    def __init__(self, n_processes: int | None = None):
        import multiprocessing

        self.process = self.conn = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        n = n_processes or max(1, min(2, os.cpu_count() or 1))
        self.process = context.Process(target=_figure_server, args=(child, n), daemon=True)
        self.process.start()

    def map(self, jobs: list[tuple], folder: Path) -> list[str]:
        if self.process is None:
            return _draw_share(jobs, str(folder))
        self.conn.send((jobs, str(folder)))
        status, payload = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"drawing the figures failed: {payload}")
        return payload

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
        self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def draw_figures(result: AnalysisResult, folder: Path, *, workers: FigureWorkers | None = None) -> list[str]:
    """ROC, calibration and decision curves per cohort, and a forest plot per stratifier (PNG + SVG).

    Drawn by ``workers`` when given (in parallel), else in this process.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = _figure_jobs(result)
    if workers is not None:
        return workers.map(jobs, folder)
    return _draw_share(jobs, str(folder))
