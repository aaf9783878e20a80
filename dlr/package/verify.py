"""`dlr verify FILE.zip`: a package's members checked against ``MANIFEST.csv``, the analysis
recomputed from its predictions with the settings ``results/results.json`` records, and every
recomputed number compared with the packaged one (:mod:`dlr.package.compare`). The same check
runs on the staged folder before `dlr package` writes a zip."""
from __future__ import annotations

import csv
import json
import os
import shutil
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlr.core.errors import InputError
from dlr.core.tempfiles import private_folder
from dlr.core.run_folder import HARMONIZATION_STRATA, OOF_PREDICTIONS, PREDICTIONS, UNHARMONISED_PREDICTIONS
from dlr.package.compare import DIFFERENCE_COLUMNS, _difference, compare_csv, compare_json
from dlr.package.layout import MANIFEST, RESULTS, RESULTS_JSON, _sha256, analysis_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_package` found.

    Attributes
    ----------
    identical : bool
        True when no difference was found (every member matches ``MANIFEST.csv`` and every
        recomputed number equals the packaged one).
    differences : DataFrame
        One row per difference: ``file`` (the member, e.g. ``results/performance.csv``),
        ``row`` (for a CSV the line of the file, the header being line 1, as a spreadsheet
        numbers it; for results.json the path of the value's parent, e.g. ``performance[3]``;
        ``-`` for the whole file), ``column`` (the CSV column or JSON key; ``<sha256>`` for a
        member that differs from MANIFEST.csv, ``<file>``, ``<row>`` or ``<column>`` for one
        present on one side only), ``packaged`` and ``recomputed`` (as written), and ``key``
        (the row's text cells, e.g. ``model=CR, cohort=validation``).
    checked : tuple of str
        The members compared with the recomputation.
    n_numbers : int
        Numbers compared.
    settings : dict
        The analysis settings used for the recomputation (from ``results/results.json``).
    """

    identical: bool
    differences: pd.DataFrame
    checked: tuple
    n_numbers: int
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.differences.copy()

    def lines(self) -> list:
        """Each difference as ``file, row R, column C: packaged -> recomputed``."""
        return [f"{d.file}, row {d.row}, column {d.column}: {d.packaged} -> {d.recomputed}"
                for d in self.differences.itertuples()]


def verify_package(zip_path) -> VerifyResult:
    """Recompute the analysis of a reviewer package and compare it with the packaged results.

    Parameters
    ----------
    zip_path : path
        A zip written by :func:`package_run`.

    Returns
    -------
    VerifyResult
        ``identical`` when every member matches ``MANIFEST.csv`` and every recomputed number
        equals the packaged one; ``differences`` lists each one.

    Raises
    ------
    InputError
        A missing, corrupt or non-zip file, or a zip without ``MANIFEST.csv``,
        ``predictions.csv`` or ``results/results.json`` (the message names the file and what is
        missing), or packaged predictions that the analysis refuses.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InputError(f"{zip_path}: no such file; give the reviewer package written by `dlr package`")
    folder = private_folder("verify")
    try:
        logger.info(f"opening {zip_path}")
        _extract(zip_path, folder)
        return _verify_folder(folder, label=str(zip_path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extract(zip_path: Path, folder: Path) -> None:
    """The package's members into ``folder``, within :mod:`dlr.core.archive`'s limits (no member
    outside the folder, no link, no zip bomb)."""
    from dlr.core.archive import safe_extract

    safe_extract(zip_path, folder, required=(MANIFEST, PREDICTIONS, RESULTS_JSON),
                 what="not a dlr reviewer package; write it again with `dlr package RUN --out FILE.zip`")


def _verify_folder(folder: Path, *, label: str) -> VerifyResult:
    """The check of :func:`verify_package` on an extracted (or staged) package folder."""
    from dlr import verbs

    differences = _manifest_differences(folder, label)
    try:
        results = json.loads((folder / RESULTS_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{label}: {RESULTS_JSON} is not readable JSON ({exc})") from None
    if not isinstance(results, dict):
        raise InputError(f"{label}: {RESULTS_JSON} is not a JSON object")
    try:
        settings = analysis_settings(results)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    oof = folder / OOF_PREDICTIONS if settings["oof"] else None
    if oof is not None and not oof.is_file():
        raise InputError(f"{label}: {RESULTS_JSON} records out-of-fold predictions, but {OOF_PREDICTIONS} is missing")
    kwargs = {k: v for k, v in settings.items() if k != "oof"}
    logger.info("recomputing the analysis: " + ", ".join(f"{k} {v}" for k, v in kwargs.items()))
    out = private_folder("recomputed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                verbs.analyze(folder / PREDICTIONS, out / RESULTS, figures=False, oof=oof, **kwargs)
            except InputError as exc:
                raise InputError(f"{label}: the packaged predictions cannot be analysed: "
                                 f"{str(exc).replace(str(folder) + os.sep, '')}") from None
            _recompute_harmonization_strata(folder, out, dev_cohort=kwargs.get("dev_cohort", "training"),
                                            label=label)
        checked, n_numbers = [], 0
        packaged_csv = {p.name for p in (folder / RESULTS).glob("*.csv")}
        recomputed_csv = {p.name for p in (out / RESULTS).glob("*.csv")}
        for name in sorted(packaged_csv | recomputed_csv):
            member = f"{RESULTS}/{name}"
            if name not in recomputed_csv:
                differences.append(_difference(member, "-", "<file>", "(present)", "(not recomputed)"))
                continue
            if name not in packaged_csv:
                differences.append(_difference(member, "-", "<file>", "(missing)", "(recomputed)"))
                continue
            diffs, count = compare_csv(folder / member, out / RESULTS / name, member)
            differences += diffs
            n_numbers += count
            checked.append(member)
        recomputed = json.loads((out / RESULTS_JSON).read_text())
        diffs, count = compare_json(results, recomputed, RESULTS_JSON)
        differences += diffs
        n_numbers += count
        checked.append(RESULTS_JSON)
        diffs, members = _checklist_differences(folder, label)
        differences += diffs
        checked += members
    finally:
        shutil.rmtree(out, ignore_errors=True)
    frame = pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS)
    return VerifyResult(frame.empty, frame, tuple(checked), n_numbers, settings)


def _recompute_harmonization_strata(folder: Path, out: Path, *, dev_cohort: str, label: str) -> None:
    """``results/harmonization_strata.csv`` (a harmonised `dlr run`) recomputed into ``out`` from
    the packaged predictions.csv and models/unharmonised_predictions.csv, by the batch column it
    names; nothing for a package without it."""
    from dlr.analysis.harmonization import write_harmonization_strata

    packaged = folder / HARMONIZATION_STRATA
    if not packaged.is_file() or not (folder / UNHARMONISED_PREDICTIONS).is_file():
        return
    stratifiers = pd.read_csv(packaged, usecols=["stratifier"], dtype=str, keep_default_na=False)["stratifier"]
    if stratifiers.nunique() != 1:
        raise InputError(f"{label}: {HARMONIZATION_STRATA} names {stratifiers.nunique()} stratifiers, not one")
    try:
        write_harmonization_strata(folder / PREDICTIONS, folder / UNHARMONISED_PREDICTIONS, out / HARMONIZATION_STRATA,
                                   stratifier=stratifiers.iloc[0], dev_cohort=dev_cohort)
    except InputError as exc:
        raise InputError(f"{label}: the packaged unharmonised predictions cannot be analysed: "
                         f"{str(exc).replace(str(folder) + os.sep, '')}") from None


def _checklist_differences(folder: Path, label: str) -> tuple[list, list]:
    """The packaged checklists (``report/claim.csv``, ``clear.csv``, ``metrics.csv``,
    ``metrics_score.csv``) against the same checklists filled again from the package's files:
    every cell, as text. Packages without them (made before the checklists) are not checked."""
    from dlr.core.csvsafe import read_back
    from dlr.report.facts import read_run
    from dlr.report.imaging_checklists import CHECKLISTS, fill_checklists
    from dlr.report.text import tripod_facts

    files = {CHECKLISTS[key][1]: key for key in CHECKLISTS}
    files["metrics_score.csv"] = "metrics_score"
    present = [name for name in files if (folder / "report" / name).is_file()]
    if not present:
        return [], []
    try:
        document = json.loads((folder / "settings.json").read_text())
    except (OSError, ValueError):
        document = {}
    facts = read_run(folder, info=(document.get("run") or {}) if isinstance(document, dict) else {},
                     study_yaml=folder / "study.yaml")
    filled = fill_checklists(facts, tripod_facts(facts, renderer="pandoc"))
    differences = []
    for name in present:
        member = f"report/{name}"
        packaged = read_back(pd.read_csv(folder / member, dtype=str, keep_default_na=False))
        again = filled[files[name]].astype(object).where(filled[files[name]].notna(), "")
        again = again.astype(str).replace({"nan": ""})
        if list(packaged.columns) != list(again.columns) or len(packaged) != len(again):
            differences.append(_difference(member, "-", "<file>", f"{len(packaged)} rows", f"{len(again)} rows"))
            continue
        for i in range(len(packaged)):
            for column in packaged.columns:
                a, b = packaged.iat[i, packaged.columns.get_loc(column)], again.iat[i, again.columns.get_loc(column)]
                if a != b and not _same_number(a, b):
                    differences.append(_difference(member, str(i + 2), column, a, b))
    return differences, [f"report/{name}" for name in present]


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _manifest_differences(folder: Path, label: str) -> list:
    try:
        with open(folder / MANIFEST, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{label}: {MANIFEST} is not readable ({exc})") from None
    if not rows or "file" not in rows[0] or "sha256" not in rows[0]:
        raise InputError(f"{label}: {MANIFEST} has no file and sha256 columns")
    listed = {r["file"]: r["sha256"] for r in rows}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    out = []
    for name in sorted(set(listed) | present):
        if name not in present:
            out.append(_difference(name, "-", "<sha256>", listed[name], "(missing)"))
        elif name not in listed:
            out.append(_difference(name, "-", "<sha256>", "(not in MANIFEST.csv)", _sha256(folder / name)))
        else:
            digest = _sha256(folder / name)
            if digest != listed[name]:
                out.append(_difference(name, "-", "<sha256>", listed[name], digest))
    return out
