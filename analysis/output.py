"""Writing an analysis to its folder (contract section 5), atomically, with provenance."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from dlr.core.csvsafe import write_csv
from dlr.core.output import json_safe, provenance, staged_folder
from dlr.core.run_folder import RESULTS_JSON

from .figures import FigureWorkers, draw_figures, figure_jobs
from .pipeline import AnalysisResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisSettings:
    """The options of `dlr analyze` that decide its results: recorded in ``results.json``
    (``provenance.settings``, ``settings``) and replayed, field by field, by `dlr verify`
    (``dlr.package.analysis_settings``). ``oof``: whether out-of-fold predictions were analysed.
    A new option of the analysis that changes its numbers is added here."""

    dev_cohort: str = "training"
    strata: tuple = ()
    reference: Optional[str] = None
    n_bootstrap: Optional[int] = None
    seed: Optional[int] = None
    oof: bool = False
    thresholds: Optional[str] = None
    time: Optional[str] = None
    event: Optional[str] = None
    horizon: Optional[float] = None

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

TABLES = {
    "performance.csv": "performance",
    "comparisons.csv": "comparisons",
    "cohort_tests.csv": "cohort_tests",
    "subgroups.csv": "subgroups",
    "decision_curve.csv": "decision_curve",
    "decision_curve_differences.csv": "decision_curve_differences",
    "calibration.csv": "calibration",
    "calibration_smooth.csv": "calibration_smooth",
    "reclassification.csv": "reclassification",
    "risk_mapping.csv": "risk_mappings",
}


def analysis_provenance(predictions_path, *, oof_path=None, settings=None, seed=None, command=None) -> dict:
    """Provenance of an analysis: :func:`dlr.core.output.provenance` of the predictions file (and,
    when given, of its out-of-fold predictions, input ``oof_predictions``), plus ``input``
    ({path, sha256} of the predictions file) as ``results.json`` has always carried it."""
    inputs = {"predictions": predictions_path}
    if oof_path is not None:
        inputs["oof_predictions"] = oof_path
    info = provenance(inputs=inputs, settings=settings, seed=seed, command=command)
    info["input"] = {"path": str(predictions_path), "sha256": info["inputs"]["predictions"]}
    return info


def _records(frame: pd.DataFrame) -> list[dict]:
    return json_safe(frame.to_dict(orient="records"))


def write_analysis(result: AnalysisResult, out, *, figures: bool = True, provenance_info: dict | None = None,
                   workers: FigureWorkers | None = None) -> Path:
    """Write every table, ``results.json`` and (optionally) the figures into ``out``.

    Everything is written into a temporary sibling folder first and moved into place only
    when complete (:func:`dlr.core.output.staged_folder`), so a failure never leaves a
    half-written result nor clobbers an earlier one; ``provenance_info`` goes into
    ``results.json`` and, per file, into ``provenance.json``.
    """
    out = Path(out)
    with staged_folder(out, provenance_info=provenance_info) as tmp:
        for filename, attribute in TABLES.items():
            write_csv(getattr(result, attribute), tmp / filename)
        # beside calibration.csv, but not in results.json, whose bytes stay as they were
        write_csv(result.calibration_groups, tmp / "calibration_groups.csv")
        curves = [c.to_frame().assign(cohort=k[0], model=k[1]) for k, c in result.roc.items()]
        bands = [c.band_frame().assign(cohort=k[0], model=k[1]) for k, c in result.roc.items()]
        write_csv(_stack(curves, ["cohort", "model", "threshold", "fpr", "tpr"]), tmp / "roc_curve.csv")
        write_csv(_stack(bands, ["cohort", "model", "specificity", "sensitivity_ci_low", "sensitivity_ci_high"]),
                  tmp / "roc_band.csv")
        document = {"settings": result.settings, "warnings": result.warnings,
                    "provenance": provenance_info or {}}
        for filename, attribute in TABLES.items():
            document[attribute] = _records(getattr(result, attribute))
        if "survival" in result.settings:  # --time/--event (contract 5.1); without them nothing changes
            write_csv(result.survival, tmp / "survival.csv")
            write_csv(result.km_curves, tmp / "km_curve.csv")
            document["survival"] = _records(result.survival)
        (tmp / RESULTS_JSON).write_text(json.dumps(json_safe(document), indent=1, allow_nan=False) + "\n")
        if figures:
            logger.info("drawing figures")
            if workers is None:
                draw_figures(result, tmp / "figures")
            else:
                shutil.move(workers.finish(figure_jobs(result)), tmp / "figures")
    return out


def _stack(frames, columns) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def read_analysis(folder) -> AnalysisResult:
    """The inverse of :func:`write_analysis`: the :class:`AnalysisResult` a results folder holds,
    its tables as written, ``settings`` and ``warnings`` from ``results.json``, and the ROC curves
    (``roc_curve.csv``, ``roc_band.csv``, each curve's AUC from ``performance.csv``) as
    :class:`dlr.analysis.discrimination.RocCurve` objects for the figures, and with follow-up the
    risk groups' survival (``survival.csv`` and ``km_curve.csv``) as
    :class:`dlr.analysis.survival.RiskGroupSurvival` objects (:func:`~dlr.analysis.survival.saved_risk_groups`).
    Not stored, so not returned: the bootstrap replicates of each AUC and the survival fits'
    pair counts and Cox internals (NaN or -1 in the objects)."""
    from dlr.core.errors import InputError
    from dlr.core.run_folder import read_json, read_table

    from .discrimination import AUCResult, RocCurve

    folder = Path(folder)
    document = read_json(folder / RESULTS_JSON)
    if document is None:
        raise InputError(f"{folder}: no {RESULTS_JSON}; it is not a results folder of `dlr analyze`")
    text = {"model": str, "cohort": str, "model_a": str, "model_b": str, "cohort_a": str, "cohort_b": str,
            "reference": str}

    def table(name: str, default: pd.DataFrame) -> pd.DataFrame:
        frame = read_table(folder / name, dtype=text)
        return default if frame is None else frame

    empty = pd.DataFrame()
    tables = {attribute: table(filename, empty) for filename, attribute in TABLES.items()}
    performance = tables["performance"]
    roc = {}
    curves, bands = table("roc_curve.csv", empty), table("roc_band.csv", empty)
    for (cohort, model), points in (curves.groupby(["cohort", "model"], sort=False) if len(curves) else ()):
        row = performance[(performance["model"] == model) & (performance["cohort"] == cohort)]
        if row.empty:
            continue
        r = row.iloc[0]
        band = bands[(bands["cohort"] == cohort) & (bands["model"] == model)] if len(bands) else bands
        roc[(cohort, model)] = RocCurve(
            fpr=points["fpr"].to_numpy(dtype=float), tpr=points["tpr"].to_numpy(dtype=float),
            thresholds=points["threshold"].to_numpy(dtype=float),
            band_specificity=band["specificity"].to_numpy(dtype=float) if len(band) else np.array([]),
            band_sensitivity_low=band["sensitivity_ci_low"].to_numpy(dtype=float) if len(band) else np.array([]),
            band_sensitivity_high=band["sensitivity_ci_high"].to_numpy(dtype=float) if len(band) else np.array([]),
            auc=AUCResult(float(r["auc"]), float(r["auc_se"]), float(r["auc_ci_low"]), float(r["auc_ci_high"]),
                          int(r["n"]), int(r["n_events"])))
    extra = {}
    for filename, attribute in (("calibration_groups.csv", "calibration_groups"),
                                ("survival.csv", "survival"), ("km_curve.csv", "km_curves")):
        frame = read_table(folder / filename, dtype=text)
        if frame is not None:
            extra[attribute] = frame
    if len(extra.get("survival", ())) and "km_curves" in extra:
        from .survival import saved_risk_groups

        curves = extra["km_curves"]
        extra["survival_fits"] = {
            (r["cohort"], r["model"]): saved_risk_groups(r, curves[(curves["cohort"] == r["cohort"])
                                                                   & (curves["model"] == r["model"])])
            for r in extra["survival"].to_dict("records")}
    return AnalysisResult(**tables, roc=roc, settings=document.get("settings") or {},
                          warnings=list(document.get("warnings") or []), **extra)
