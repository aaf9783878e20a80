"""What making a reviewer package and verifying one share: the names of its members
(``MANIFEST.csv``, ``results/results.json``), the types of file it carries, the analysis
settings that ``results.json`` records, and a member's SHA-256."""
from __future__ import annotations

from pathlib import Path

from dlr.core.errors import InputError
from dlr.core.run_folder import RESULTS_DIR

MANIFEST = "MANIFEST.csv"
RESULTS = RESULTS_DIR
RESULTS_JSON = f"{RESULTS}/results.json"
#: members packaged by type; anything else (model weights, images) is left out and listed
TEXT_SUFFIXES = (".csv", ".tsv", ".json", ".yaml", ".yml", ".txt", ".md", ".log", ".html", ".htm", ".css",
                 ".js", ".svg", ".qmd", ".xml", ".tex", ".bib")
BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".pdf")
ZIP_SUFFIXES = (".docx", ".xlsx", ".pptx")


def analysis_settings(results: dict) -> dict:
    """The options of the analysis that ``results.json`` records, as keyword arguments of
    :func:`dlr.verbs.analyze`, the fields of :class:`dlr.analysis.output.AnalysisSettings`.

    The options as given (its provenance's ``settings``: ``reference`` None when it was chosen
    automatically) take precedence over the values the analysis resolved (``settings``).
    """
    from dlr.analysis.output import AnalysisSettings

    resolved = results.get("settings") or {}
    provenance = results.get("provenance") or {}
    given = provenance.get("settings") or {}
    if not isinstance(resolved, dict) or not isinstance(given, dict):
        raise InputError(f"{RESULTS_JSON}: its 'settings' is not a mapping")
    if "dev_cohort" not in resolved and "dev_cohort" not in given:
        raise InputError(f"{RESULTS_JSON}: records no analysis settings (no 'settings.dev_cohort'); "
                         "it was not written by `dlr analyze`")
    seed = resolved.get("seed", provenance.get("seed"))
    settings = {
        "dev_cohort": given.get("dev_cohort", resolved.get("dev_cohort")),
        "strata": list(given.get("strata", resolved.get("strata")) or []),
        "reference": given["reference"] if "reference" in given else resolved.get("reference"),
        "n_bootstrap": given.get("n_bootstrap", resolved.get("n_bootstrap")),
        "seed": seed,
        "oof": bool(resolved.get("oof_predictions") or given.get("oof")
                    or (provenance.get("inputs") or {}).get("oof_predictions")),
    }
    accepted = set(AnalysisSettings.names()) - set(settings)
    for name in sorted(accepted & set(given)):  # options added later (e.g. survival's time and event)
        settings[name] = given[name]
    return settings


def _sha256(path: Path) -> str:
    from dlr.core.output import file_sha256

    return file_sha256(path)
