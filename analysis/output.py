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
                   progress=None) -> Path:
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
            draw_figures(result, tmp / "figures")
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


def draw_figures(result: AnalysisResult, folder: Path) -> list[Path]:
    """ROC, calibration and decision curves per cohort, and a forest plot per stratifier (PNG + SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_calibration, plot_decision_curve, plot_forest, plot_roc

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, stem):
        for ext in ("png", "svg"):
            path = folder / f"{stem}.{ext}"
            fig.savefig(path, dpi=200, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
            written.append(path)
        plt.close(fig)

    with plt.rc_context({"svg.hashsalt": "dlr", "font.size": 9}):
        for cohort in result.settings["cohorts"]:
            name = _safe_name(cohort)
            curves = {m: c for (co, m), c in result.roc.items() if co == cohort}
            if curves:
                fig, ax = plt.subplots(figsize=(5.5, 5.0))
                plot_roc(curves, ax=ax, title=f"ROC curves, {cohort} cohort")
                save(fig, f"roc_{name}")
            bins = result.calibration[result.calibration["cohort"] == cohort]
            if len(bins):
                fig, ax = plt.subplots(figsize=(5.5, 5.0))
                smooth = result.calibration_smooth[result.calibration_smooth["cohort"] == cohort]
                plot_calibration(bins, smooth, ax=ax, title=f"Calibration, {cohort} cohort")
                save(fig, f"calibration_{name}")
            dca = result.decision_curve[result.decision_curve["cohort"] == cohort]
            if len(dca):
                fig, ax = plt.subplots(figsize=(6.0, 4.5))
                plot_decision_curve(dca, ax=ax, title=f"Decision curves, {cohort} cohort")
                save(fig, f"decision_curve_{name}")
        for stratifier, rows in result.subgroups.groupby("stratifier", sort=False):
            fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(rows) + 1.2))
            plot_forest(rows, ax=ax, title=f"AUC by {stratifier}")
            save(fig, f"subgroups_{_safe_name(stratifier)}")
    return written
