"""The split file: one seeded assignment of development patients to inner cross-validation folds.

methods.md G: "One seeded split file (patient ids -> cohort and inner folds) is written once and
used by every model". ``RUN/split.csv`` has ``patient_id``, ``cohort`` and ``fold`` (1..k for
development patients, 0 for every other cohort). Folds are stratified by outcome and drawn from
the development patients alone (ids in clinical.csv order and their outcomes), so that adding,
changing or relabelling a validation patient cannot move a development patient between folds.
Every tuning, every feature-selection CV and every out-of-fold prediction uses these folds, so
the out-of-fold predictions of different models are comparable and a later fusion model never
sees a patient's own fold.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from dlr.core.csvsafe import read_back, write_csv
from dlr.core.errors import InputError
from dlr.core.run_folder import SPLIT
from dlr.core.output import file_sha256, provenance, read_provenance, record_provenance, staged_file

SPLIT_FILE = SPLIT
DEFAULT_FOLDS = 5


class SplitError(InputError):
    """The split file disagrees with the study (patients or cohorts changed) or with the run's
    seed or folds, or the development cohort is too small for the folds."""


def folds_fit(n_events: int, n_non_events: int, n_folds: int) -> bool:
    """Whether ``n_folds`` stratified folds can be drawn: each fold needs a patient of each
    outcome, so at least ``n_folds`` (>= 2) development patients of each outcome are required
    (the rule of :func:`make_split`, which `dlr validate` checks beforehand)."""
    return n_folds >= 2 and min(int(n_events), int(n_non_events)) >= n_folds


def make_split(clinical: pd.DataFrame, *, id_column: str, cohort_column: str, outcome_column: str, dev_cohort: str,
               n_folds: int = DEFAULT_FOLDS, seed: int) -> pd.DataFrame:
    """Stratified k-fold assignment of the development cohort.

    Parameters
    ----------
    clinical : DataFrame
        One row per patient.
    id_column, cohort_column, outcome_column, dev_cohort : str
        As study.yaml.
    n_folds : int
        Folds (default 5, the paper's LASSO CV); each needs at least one patient of each class.
    seed : int

    Returns
    -------
    DataFrame
        ``patient_id``, ``cohort``, ``fold`` in clinical.csv order.
    """
    from sklearn.model_selection import StratifiedKFold

    ids = clinical[id_column].astype(str).to_numpy()
    cohorts = clinical[cohort_column].astype(str).to_numpy()
    dev = cohorts == dev_cohort
    y = clinical[outcome_column].to_numpy()[dev].astype(int)
    if not folds_fit(np.sum(y == 1), np.sum(y == 0), n_folds):
        raise SplitError(f"{n_folds} stratified folds need at least {n_folds} development patients of each outcome; "
                         f"the {dev_cohort!r} cohort has {int(np.sum(y == 1))} with outcome 1 and "
                         f"{int(np.sum(y == 0))} with outcome 0")
    folds = np.zeros(len(ids), dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    dev_positions = np.flatnonzero(dev)
    for k, (_, held) in enumerate(splitter.split(np.zeros((len(y), 1)), y), start=1):
        folds[dev_positions[held]] = k
    return pd.DataFrame({"patient_id": ids, "cohort": cohorts, "fold": folds})


def load_or_make_split(run, clinical: pd.DataFrame, *, id_column: str, cohort_column: str, outcome_column: str,
                       dev_cohort: str, n_folds: int = DEFAULT_FOLDS, seed: int, clinical_path=None) -> pd.DataFrame:
    """``RUN/split.csv``: read it when it exists (and still fits the study), else write it once.

    A new split file gets its entry in ``RUN/provenance.json``: the SHA-256 of ``clinical_path``
    (the study's clinical.csv) when given, else one digest of the patients it was drawn from
    (id, cohort, outcome), and the settings ``n_folds``, ``dev_cohort``, ``outcome_column`` and
    the seed.

    An existing split file is reused only if it was drawn with this ``seed`` and ``n_folds``,
    as its ``RUN/provenance.json`` entry records them; a split file without an entry, or whose
    bytes are not those the entry records (written or edited by hand), is used as it is.

    Raises
    ------
    SplitError
        The file names other patients or cohorts than clinical.csv (the message lists them and
        says to remove the file, or use a new run folder, to re-split); or dlr drew it with
        another seed or number of folds than asked for now (the message names both and the fix).
    """
    path = Path(run) / SPLIT_FILE
    if path.is_file():
        split = read_back(pd.read_csv(path, dtype={"patient_id": str, "cohort": str}))
        if list(split.columns[:3]) != ["patient_id", "cohort", "fold"]:
            raise SplitError(f"{path}: expected columns patient_id, cohort, fold; found {', '.join(split.columns)}")
        _check_split_settings(path, seed=seed, n_folds=n_folds)
        current = dict(zip(clinical[id_column].astype(str), clinical[cohort_column].astype(str)))
        recorded = dict(zip(split["patient_id"], split["cohort"]))
        problems = [f"patient {p!r} is not in the split file" for p in current if p not in recorded]
        problems += [f"patient {p!r} of the split file is not in clinical.csv" for p in recorded if p not in current]
        problems += [f"patient {p!r} is in cohort {current[p]!r} but the split file says {recorded[p]!r}"
                     for p in current if p in recorded and current[p] != recorded[p]]
        if problems:
            listed = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
            raise SplitError(f"{path} no longer matches the study ({len(problems)} difference(s): {listed}). "
                             "Every model of a run shares one split: use a new run folder (or delete split.csv "
                             "and every result of this run) to split again")
        return split.set_index("patient_id").loc[list(current)].reset_index()
    split = make_split(clinical, id_column=id_column, cohort_column=cohort_column, outcome_column=outcome_column,
                       dev_cohort=dev_cohort, n_folds=n_folds, seed=seed)
    with staged_file(path) as tmp:
        write_csv(split, tmp)
    if clinical_path is not None:
        inputs = {"clinical.csv": Path(clinical_path)}
    else:
        rows = zip(clinical[id_column].astype(str), clinical[cohort_column].astype(str),
                   clinical[outcome_column].astype(str))
        inputs = {"patients": hashlib.sha256("".join(f"{i}\t{c}\t{y}\n" for i, c, y in rows).encode()).hexdigest()}
    record_provenance(path.parent, [path.name], provenance(
        inputs=inputs, settings={"n_folds": n_folds, "dev_cohort": dev_cohort, "outcome_column": outcome_column},
        seed=seed))
    return split


def _check_split_settings(path: Path, *, seed: int, n_folds: int) -> None:
    """SplitError when dlr drew ``path`` (its provenance entry matches its bytes) with another
    seed or number of folds than this run asks for."""
    entry = read_provenance(path.parent).get(path.name)
    if not entry or entry.get("sha256") != file_sha256(path):
        return  # hand-written or hand-edited: the user's split, used as it is
    made_seed, made_folds = entry.get("seed"), (entry.get("settings") or {}).get("n_folds")
    if made_seed is not None and int(made_seed) != int(seed):
        raise SplitError(
            f"{path} was drawn with seed {made_seed} ({path.parent / 'provenance.json'}), but this run asks for "
            f"seed {seed}. Every model of a run shares one split: pass --seed {made_seed} to keep this split, "
            f"or delete {path} (and this run's models and results) to draw a new one with seed {seed}, "
            "or use a new run folder")
    if made_folds is not None and int(made_folds) != int(n_folds):
        raise SplitError(
            f"{path} was drawn with {made_folds} folds ({path.parent / 'provenance.json'}), but this run asks for "
            f"{n_folds} (study.yaml n_folds). Every model of a run shares one split: set n_folds: {made_folds} "
            f"in study.yaml to keep this split, or delete {path} (and this run's models and results) to draw "
            f"a new one with {n_folds} folds, or use a new run folder")


# --------------------------------------------------------------------------------------------
# input checks shared by everything fitted on the folds


def outcome_array(y, X, *, purpose: str = "a model") -> np.ndarray:
    """0/1 outcome per row of ``X`` as int; a Series holding X's patients is aligned on the index.

    Raises
    ------
    ValueError
        Wrong length, values other than 0/1 (or missing), or a single class.
    """
    if isinstance(y, pd.Series) and isinstance(X, pd.DataFrame) and not y.index.equals(X.index) \
            and len(y) == len(X) and set(y.index) == set(X.index):
        y = y.reindex(X.index)
    values = np.asarray(y, dtype=float)
    if values.ndim != 1 or values.size != len(X):
        raise ValueError(f"outcome y must be 1-D with one value per patient ({len(X)}), got shape {values.shape}")
    labels = set(np.unique(values).tolist())
    if not labels <= {0.0, 1.0}:
        raise ValueError(f"outcome y must hold only 0 and 1 (no missing values), found {sorted(labels)[:5]}")
    if len(labels) < 2:
        raise ValueError(f"outcome y has a single class ({sorted(labels)}); {purpose} needs both outcomes")
    return values.astype(int)


def fold_array(folds, y: np.ndarray, *, min_labels: int = 2) -> np.ndarray:
    """Integer fold label per patient (the split file's), with at least ``min_labels`` labels.

    Raises
    ------
    ValueError
        Wrong length, labels that are not integers, or too few distinct labels.
    """
    values = np.asarray(folds)
    if values.ndim != 1 or values.size != y.size:
        raise ValueError(f"folds must hold one fold label per patient ({y.size}), got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        as_float = values.astype(float)
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise ValueError("folds must be integer fold labels (from the split file)")
        values = as_float.astype(int)
    labels = np.unique(values)
    if labels.size < min_labels:
        raise ValueError(f"folds must have at least {min_labels} distinct labels here, got {labels.tolist()}")
    return values
