"""AUCs by batch level with and without ComBat harmonisation: the harmonisation's sensitivity analysis.

With study.yaml ``harmonization`` (contract 2.1), ``RUN/predictions.csv`` holds the harmonised
models and ``RUN/models/unharmonised_predictions.csv`` the same radiomics models and RCR refitted
on the development cohort without ComBat (`dlr train`; the same patients, folds, seed and RCR
classifier, no out-of-fold refits), both in the predictions format (contract section 4).
:func:`harmonization_strata` estimates, for each of those models, each cohort and each level of
the batch column (the scanner), the AUC with its DeLong 95% CI from both files, by
:func:`dlr.analysis.subgroups.stratified_auc`, as ``results/subgroups.csv`` does;
:func:`write_harmonization_strata` writes the table as ``results/harmonization_strata.csv``
(the analysis stage of `dlr run`).

No test between the harmonised and the unharmonised AUCs is made: the two models score the same
patients, but the unharmonised ones are a sensitivity analysis, read beside the others.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dlr.core.errors import InputError

from .subgroups import stratified_auc

COLUMNS = ["model", "cohort", "harmonised", "stratifier", "level", "n", "n_events", "auc", "auc_ci_low",
           "auc_ci_high"]


@dataclass(frozen=True)
class HarmonizationStrata:
    """The AUCs by batch level of the models fitted with and without harmonisation.

    Attributes
    ----------
    table : DataFrame
        One row per model, cohort, fit (``harmonised`` True: ComBat; False: the refit without
        it) and level of ``stratifier``: ``n``, ``n_events``, ``auc`` (Mann-Whitney) and
        ``auc_ci_low``, ``auc_ci_high`` (DeLong 95% CI); NaN AUC for a level with one outcome
        class. Rows ordered by model (as in the unharmonised predictions), cohort (as in the
        harmonised ones), harmonised before unharmonised, level (sorted).
    """

    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table


def harmonization_strata(harmonised: pd.DataFrame, unharmonised: pd.DataFrame, *,
                         stratifier: str) -> HarmonizationStrata:
    """AUCs with DeLong 95% CIs within each level of ``stratifier``, for each model of
    ``unharmonised`` and each cohort, from both predictions tables.

    Parameters
    ----------
    harmonised : DataFrame
        Predictions (contract section 4: ``patient_id``, ``cohort``, ``model``, ``y_true``,
        ``y_score``) of the harmonised models, e.g. ``RUN/predictions.csv``; its other models
        are not used.
    unharmonised : DataFrame
        Predictions of the same models fitted without harmonisation, with the column
        ``stratifier`` (each patient's batch level).
    stratifier : str
        The patient attribute to stratify by; each patient's level is read from
        ``unharmonised`` (and used for both tables), so ``harmonised`` need not carry it.

    Returns
    -------
    HarmonizationStrata

    Notes
    -----
    Each level's AUC and CI are :func:`dlr.analysis.subgroups.stratified_auc`'s (Mann-Whitney
    AUC, DeLong variance, pROC ``ci.auc(method = "delong")``), so the harmonised rows equal the
    ``results/subgroups.csv`` rows of the same model, cohort and level. A level with a single
    outcome class has NaN AUC, its counts, and an :class:`UndefinedStatisticWarning` naming the
    model, cohort and fit.

    References
    ----------
    DeLong ER et al. Biometrics 1988;44:837-845. Johnson WE, Li C, Rabinovic A. Biostatistics
    2007;8:118-127 (ComBat).
    """
    if stratifier not in unharmonised.columns:
        raise ValueError(f"the unharmonised predictions have no column {stratifier!r} (the batch levels); found "
                         f"{', '.join(map(str, unharmonised.columns))}")
    patients = unharmonised.drop_duplicates("patient_id").set_index("patient_id")[stratifier]
    models = list(dict.fromkeys(unharmonised["model"]))
    absent = [m for m in models if m not in set(harmonised["model"])]
    if absent:
        raise ValueError(f"model(s) {', '.join(absent)} of the unharmonised predictions have no harmonised predictions")
    cohorts = list(dict.fromkeys(harmonised["cohort"]))
    frames = []
    for model in models:
        for cohort in cohorts:
            for flag, source in ((True, harmonised), (False, unharmonised)):
                rows = source[(source["model"] == model) & (source["cohort"] == cohort)]
                if rows.empty:
                    continue
                frames.append(_levels(rows, patients, model=model, cohort=cohort, harmonised=flag,
                                      stratifier=stratifier))
    table = pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)
    return HarmonizationStrata(table)


def _levels(rows: pd.DataFrame, patients: pd.Series, *, model: str, cohort: str, harmonised: bool,
            stratifier: str) -> pd.DataFrame:
    """:func:`stratified_auc` of one model's rows of one cohort, each level's warning naming them."""
    levels = rows["patient_id"].map(patients).to_numpy(dtype=object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = stratified_auc(rows["y_true"].to_numpy(dtype=int), rows["y_score"].to_numpy(dtype=float), levels)
    fit = "with ComBat" if harmonised else "without ComBat"
    for w in caught:
        warnings.warn(f"{model}, {cohort}, {fit}: {w.message}", w.category, stacklevel=3)
    return result.levels.assign(model=model, cohort=cohort, harmonised=harmonised, stratifier=stratifier)


def write_harmonization_strata(predictions, unharmonised, out, *, stratifier: str, dev_cohort: str = "training",
                               command=None) -> HarmonizationStrata:
    """Read both predictions files (validated as `dlr analyze` reads one), compute
    :func:`harmonization_strata` and write it to ``out`` (full precision) with its entry in the
    folder's ``provenance.json`` (the two files' SHA-256, the stratifier)."""
    from dlr.core.csvsafe import write_csv
    from dlr.core.output import provenance, record_provenance, staged_file

    from .predictions import read_predictions

    out = Path(out)
    harmonised = read_predictions(predictions, dev_cohort=dev_cohort).frame
    plain = read_predictions(unharmonised, dev_cohort=dev_cohort, strata=[stratifier]).frame
    try:
        result = harmonization_strata(harmonised, plain, stratifier=stratifier)
    except ValueError as exc:
        raise InputError(f"{unharmonised}: {exc}") from None
    with staged_file(out) as tmp:
        write_csv(result.table, tmp)
    info = provenance(inputs={"predictions": Path(predictions), "unharmonised_predictions": Path(unharmonised)},
                      settings={"stratifier": stratifier, "dev_cohort": dev_cohort}, command=command)
    record_provenance(out.parent, [out.name], info)
    return result


__all__ = ["HarmonizationStrata", "harmonization_strata", "write_harmonization_strata", "COLUMNS"]
