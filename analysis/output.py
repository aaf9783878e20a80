"""Writing an analysis to its folder (contract section 5), atomically, with provenance."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .figures import FigureWorkers, draw_figures, figure_jobs
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
PACKAGES = ("numpy", "scipy", "pandas", "matplotlib")


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


def write_analysis(result: AnalysisResult, out, *, figures: bool = True, provenance_info: dict | None = None,
                   progress=None, workers: FigureWorkers | None = None) -> Path:
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
            if workers is None:
                draw_figures(result, tmp / "figures")
            else:
                shutil.move(workers.finish(figure_jobs(result)), tmp / "figures")
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


def read_table(path, *, what: str = "table") -> pd.DataFrame:
    """Read a CSV table given on the command line; InputError naming the file when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the path of the {what} CSV")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; the {what} needs a header row and one row per patient") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    if frame.empty:
        raise InputError(f"{path}: the file has a header but no rows")
    return frame


def write_files(out, files: dict) -> Path:
    """Write several result files into ``out`` all or nothing.

    Each file (a DataFrame, written as CSV at full precision, or text) goes to a temporary
    name first; the temporaries are renamed over the final names only once all are written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staged = [(out / f".{name}.tmp-{os.getpid()}", out / name, content) for name, content in files.items()]
    try:
        for tmp, _, content in staged:
            if isinstance(content, pd.DataFrame):
                content.to_csv(tmp, index=False)
            else:
                tmp.write_text(content)
    except BaseException:
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final, _ in staged:
        os.replace(tmp, final)
    return out
