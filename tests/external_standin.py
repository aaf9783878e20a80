"""A stand-in for the folder `dlr predict` writes (RUN2, contract section 8), assembled from a
development run, for the external-validation report's tests (tests/test_external_report.py)
and for looking at that report by hand:

    python tests/external_standin.py RUN STUDY RUN2 [--dev-label training] [--new validation]

The run's development cohort plays the development cohort and its other cohorts the new
study's: RUN2/results/ is RUN/results/ with ``threshold_source`` = ``bundle`` (the thresholds
carried from development, as `dlr predict` does), RUN2/predictions.csv holds the new cohorts'
rows only, RUN2/clinical/ is Table 1 of the new cohorts' patients (``dlr table1`` on their
rows of STUDY/clinical.csv), RUN2/inputs/bundle.json is written by hand from the run, and
RUN2/results/recalibration.csv is computed by :func:`dlr.analysis.calibration.recalibration`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

import pandas as pd
import yaml

from dlr.analysis.calibration import recalibration

RECALIBRATION_COLUMNS = ["model", "cohort", "n", "n_events", "observed_expected", "citl", "citl_ci_low",
                         "citl_ci_high", "slope", "slope_ci_low", "slope_ci_high"]


def recalibration_table(predictions: pd.DataFrame, models, cohorts) -> pd.DataFrame:
    """``recalibration.csv``: one row per probability model and new cohort."""
    rows = []
    for model in models:
        for cohort in cohorts:
            part = predictions[(predictions["model"] == model) & (predictions["cohort"] == cohort)]
            if part.empty:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = recalibration(part["y_true"].to_numpy(), part["y_score"].to_numpy())
            rows.append({"model": model, "cohort": cohort, **result.to_frame().to_dict("records")[0]})
    return pd.DataFrame(rows, columns=RECALIBRATION_COLUMNS)


def bundle_json(run: Path, study: dict, *, dev_label: str, source: str = "RUN/model") -> dict:
    """A hand-written ``inputs/bundle.json`` with what the run knows of its own bundle."""
    results = json.loads((run / "results" / "results.json").read_text())
    settings = results["settings"]
    dev = settings["dev_cohort"]
    performance = pd.read_csv(run / "results" / "performance.csv")
    rows = performance[performance["cohort"] == dev]
    first = rows.loc[rows["n"].idxmax()]
    members = {"manifest.json": {"sha256": "0" * 64, "bytes": 812},
               "models/CR.json": {"sha256": "1" * 64, "bytes": 2048},
               "thresholds.json": {"sha256": "2" * 64, "bytes": 310}}
    return {
        "source": source,
        "manifest": {"format": "dlr-model-bundle", "format_version": 1, "dlr_version": "0.1.0",
                     "software": {"numpy": "1.26.4", "scikit-learn": "1.5.2", "pyradiomics": "3.0.1a1"},
                     "members": members},
        "dev_cohort": dev,
        "dev_label": dev_label,
        "models": list(settings["models"]),
        "thresholds": {m: float(t) for m, t in settings["thresholds"].items()},
        "probability_models": list(settings["probability_models"]),
        "n_development": int(first["n"]),
        "n_events_development": int(first["n_events"]),
        "phases": list(study.get("phases") or []),
        "harmonization": study.get("harmonization"),
        "recodes_applied": [],
    }


def assemble_run2(run, study, out, *, dev_label: str = "training", new_cohorts=("validation",)) -> Path:
    """RUN2 from the development run ``run`` (with predictions.csv and results/) and its study
    folder ``study`` (clinical.csv, study.yaml); returns ``out``."""
    from dlr.cli import main

    run, study, out = Path(run), Path(study), Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "inputs").mkdir(parents=True)
    shutil.copytree(run / "results", out / "results")
    performance = pd.read_csv(out / "results" / "performance.csv")
    performance["threshold_source"] = "bundle"
    performance.to_csv(out / "results" / "performance.csv", index=False)
    document = json.loads((out / "results" / "results.json").read_text())
    document["settings"]["threshold_source"] = {m: "bundle" for m in document["settings"]["models"]}
    for record in document.get("performance", []):
        record["threshold_source"] = "bundle"
    (out / "results" / "results.json").write_text(json.dumps(document, indent=1))

    predictions = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str, "cohort": str})
    new = predictions[predictions["cohort"].isin(new_cohorts)]
    new.to_csv(out / "predictions.csv", index=False)

    config = yaml.safe_load((study / "study.yaml").read_text())
    shutil.copyfile(study / "study.yaml", out / "inputs" / "study.yaml")
    clinical = pd.read_csv(study / "clinical.csv", dtype=str)
    cohort_column = config.get("cohort_column", "cohort")
    clinical = clinical[clinical[cohort_column].isin(new_cohorts)]
    clinical.to_csv(out / "inputs" / "clinical.csv", index=False)
    code = main(["table1", str(out / "inputs" / "clinical.csv"), "--outcome", config["outcome_column"],
                 "--cohort", cohort_column, "--study", str(study / "study.yaml"), "--out", str(out / "clinical")])
    if code != 0:
        raise RuntimeError(f"dlr table1 failed ({code})")
    (out / "inputs" / "clinical.csv").unlink()

    bundle = bundle_json(run, config, dev_label=dev_label)
    (out / "inputs" / "bundle.json").write_text(json.dumps(bundle, indent=1))
    recalibration_table(new, bundle["probability_models"], list(new_cohorts)).to_csv(
        out / "results" / "recalibration.csv", index=False)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("study")
    parser.add_argument("out")
    parser.add_argument("--dev-label", default="training")
    parser.add_argument("--new", nargs="+", default=["validation"])
    args = parser.parse_args()
    print(assemble_run2(args.run, args.study, args.out, dev_label=args.dev_label, new_cohorts=args.new))
    sys.exit(0)
