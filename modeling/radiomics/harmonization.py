"""ComBat harmonisation of radiomics features across batches (scanners), fitted on development patients only.

Contract section 2.1: ``harmonization: {method: combat, batch: scanner}`` in study.yaml. The
batch (location) and scale effects of each feature are estimated on the patients of one fit
(the development cohort, or an out-of-fold refit's training folds) by :func:`fit_combat`, and
the fitted :class:`ComBat` is applied unchanged to any patient whose batch level it has seen
(:meth:`ComBat.transform`): nothing about the patients it transforms enters its parameters.

The method is Johnson, Li & Rabinovic's (2007) empirical Bayes location/scale adjustment with
parametric priors, as neuroCombat 0.2.12 (``neuroCombat(..., eb=True, parametric=True)``,
Fortin et al. 2017/2018) and R's ``sva::ComBat(par.prior = TRUE)`` compute it, with no
covariate: the outcome is never a covariate (it would carry the development patients'
outcomes into every transformed feature, and a new patient has none). ``tests/
test_harmonization.py`` checks the fit and its application against neuroCombat's own result
(``tests/data/combat_reference/``) to 1e-8.

Where this implementation chooses, and why:

* A feature whose pooled variance is 0 on the fitted patients (constant) is passed through
  unchanged (neuroCombat replaces that variance by ``median(var_pooled != 0)``, the median of
  booleans; sva refuses). It takes no part in the priors.
* A batch level with fewer than :data:`MIN_PER_LEVEL` patients among the fitted ones has no
  variance estimate: it is left out of the fit (``unfitted``) and its patients' features are
  passed through unchanged (the identity transform). ``dlr validate`` refuses such a level in
  the development cohort (check ``batch-too-small``); inside an out-of-fold refit it is noted
  in ``models/oof_log.csv``.
* With fewer than two fitted levels there is no batch effect to estimate: the transform is the
  identity (gamma* 0, delta* 1 for the level).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from dlr.core.tables import level_texts

#: the methods study.yaml's ``harmonization.method`` may name
METHODS = ("combat",)
#: patients a batch level needs among the fitted ones for its variance (ddof = 1)
MIN_PER_LEVEL = 2
#: the empirical Bayes iteration's relative-change tolerance (neuroCombat's ``it_sol`` and sva's ``it.sol``)
CONVERGENCE = 1e-4
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class ComBat:
    """A fitted ComBat transform (no covariates).

    Attributes
    ----------
    batch_column : str
        The clinical.csv column holding each patient's batch (study.yaml ``harmonization.batch``).
    levels : tuple of str
        The batch levels fitted (each with at least :data:`MIN_PER_LEVEL` fitted patients), as text.
    n_patients : dict
        Fitted patients per level of ``levels``.
    features : tuple of str
        The features harmonised (positive pooled variance); other columns pass through unchanged.
    grand_mean, var_pooled : ndarray, shape (n_features,)
        The fitted patients' mean of each feature and its pooled within-batch variance (divided
        by the number of fitted patients, as neuroCombat and sva).
    gamma_star, delta_star : ndarray, shape (n_levels, n_features)
        Each level's empirical Bayes location and scale estimates on the standardised scale.
    unfitted : dict
        Levels present among the patients of the fit with too few of them to estimate -> their count.
    """

    batch_column: str
    levels: tuple
    n_patients: dict
    features: tuple
    grand_mean: np.ndarray
    var_pooled: np.ndarray
    gamma_star: np.ndarray
    delta_star: np.ndarray
    unfitted: dict = field(default_factory=dict)

    def transform(self, x: pd.DataFrame, batch, *, unseen: str = "raise") -> pd.DataFrame:
        """The harmonised features of ``x``.

        Parameters
        ----------
        x : DataFrame
            Patients by features; every feature of :attr:`features` must be a column, and finite.
        batch : array-like
            Each row's batch level (read as text, :func:`dlr.core.tables.level_texts`).
        unseen : {"raise", "identity"}
            For a row whose level is neither fitted nor among :attr:`unfitted`: raise
            ValueError naming the level (the development fit, applied to other cohorts), or pass
            it through unchanged (an out-of-fold refit whose training folds lack the level).

        Returns
        -------
        DataFrame
            ``x`` with, for rows of a fitted level, each harmonised feature replaced by
            ``((x - grand_mean) / sqrt(var_pooled) - gamma*) / sqrt(delta*) * sqrt(var_pooled) + grand_mean``.
        """
        if unseen not in ("raise", "identity"):
            raise ValueError(f"unseen must be 'raise' or 'identity', got {unseen!r}")
        levels = _as_levels(batch, len(x))
        strangers = sorted(set(levels) - set(self.levels) - set(self.unfitted))
        if strangers and unseen == "raise":
            raise ValueError(f"batch level(s) {strangers} of {self.batch_column!r} were not among the patients ComBat "
                             f"was fitted on (levels {list(self.levels)}); their batch effect cannot be removed")
        missing = [f for f in self.features if f not in x.columns]
        if missing:
            raise ValueError(f"ComBat was fitted on feature(s) absent here: {missing[:5]}")
        out = x.copy()
        if not self.features or not self.levels:
            return out
        values = x[list(self.features)].to_numpy(dtype=float)
        sd = np.sqrt(self.var_pooled)
        harmonised = values.copy()
        for j, level in enumerate(self.levels):
            rows = levels == level
            if rows.any():
                z = (values[rows] - self.grand_mean) / sd
                harmonised[rows] = (z - self.gamma_star[j]) / np.sqrt(self.delta_star[j]) * sd + self.grand_mean
        out[list(self.features)] = harmonised
        return out

    def parameters(self) -> dict:
        """The fitted numbers for ``models/parameters.json`` (JSON numbers; :meth:`from_parameters` reads them back)."""
        features = list(self.features)
        return {
            "method": "combat",
            "batch": self.batch_column,
            "levels": list(self.levels),
            "n_patients": {lv: int(n) for lv, n in self.n_patients.items()},
            "unfitted_levels": {lv: int(n) for lv, n in self.unfitted.items()},
            "grand_mean": dict(zip(features, map(float, self.grand_mean))),
            "var_pooled": dict(zip(features, map(float, self.var_pooled))),
            "gamma_star": {lv: dict(zip(features, map(float, self.gamma_star[j]))) for j, lv in enumerate(self.levels)},
            "delta_star": {lv: dict(zip(features, map(float, self.delta_star[j]))) for j, lv in enumerate(self.levels)},
        }

    @classmethod
    def from_parameters(cls, params: dict) -> "ComBat":
        """The transform that :meth:`parameters` describes."""
        features = tuple(params["grand_mean"])
        levels = tuple(params["levels"])
        take = lambda mapping: np.array([mapping[f] for f in features], dtype=float)  # noqa: E731
        return cls(params["batch"], levels, dict(params["n_patients"]), features, take(params["grand_mean"]),
                   take(params["var_pooled"]),
                   np.array([take(params["gamma_star"][lv]) for lv in levels]).reshape(len(levels), len(features)),
                   np.array([take(params["delta_star"][lv]) for lv in levels]).reshape(len(levels), len(features)),
                   dict(params.get("unfitted_levels", {})))


def _as_levels(batch, n: int) -> np.ndarray:
    levels = level_texts(pd.Series(np.asarray(batch, dtype=object)))
    if len(levels) != n:
        raise ValueError(f"{len(levels)} batch values for {n} patients")
    if (levels == "").any():
        raise ValueError(f"{int((levels == '').sum())} patient(s) have no batch value")
    return levels


def _it_sol(s: np.ndarray, g_hat, d_hat, g_bar: float, t2: float, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Parametric empirical Bayes estimates of one level (patients x features ``s``): neuroCombat's
    ``it_sol``, sva's ``it.sol`` (the same relative-change stopping rule)."""
    n = s.shape[0]
    g_old, d_old = g_hat.copy(), d_hat.copy()
    for _ in range(MAX_ITERATIONS):
        g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
        sum2 = ((s - g_new) ** 2).sum(axis=0)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        change = max((np.abs(g_new - g_old) / g_old).max(), (np.abs(d_new - d_old) / d_old).max())
        g_old, d_old = g_new, d_new
        if not change > CONVERGENCE:
            return g_new, d_new
    warnings.warn(f"ComBat's empirical Bayes estimates did not converge in {MAX_ITERATIONS} iterations "
                  f"(relative change {change:.3g}); the last ones are used", stacklevel=3)
    return g_new, d_new


def fit_combat(x: pd.DataFrame, batch, *, batch_column: str = "batch") -> ComBat:
    """Fit ComBat (parametric empirical Bayes, no covariates) on the patients of ``x``.

    Parameters
    ----------
    x : DataFrame
        Patients (rows) by features; finite values (missing ones filled beforehand). Features
        with a non-finite value or no variance are passed through, not fitted.
    batch : array-like
        Each patient's batch level (as text).
    batch_column : str
        The column the levels come from, recorded for messages and the parameters.

    Returns
    -------
    ComBat

    Notes
    -----
    With :math:`x_{ij}` patient j of level i, :math:`\\hat\\alpha` the fitted patients' mean and
    :math:`\\hat\\sigma^2` the mean squared deviation from each level's mean, the standardised
    :math:`z_{ij} = (x_{ij} - \\hat\\alpha)/\\hat\\sigma` gives per level and feature
    :math:`\\hat\\gamma_i` (mean) and :math:`\\hat\\delta^2_i` (variance, ddof 1); across
    features, :math:`\\gamma \\sim N(\\bar\\gamma_i, \\tau^2_i)` and
    :math:`\\delta^2 \\sim \\text{InvGamma}(a_i, b_i)` by the method of moments; the posterior
    means :math:`\\gamma^*, \\delta^{2*}` are iterated to a relative change below 1e-4. The
    harmonised value is :math:`\\hat\\sigma (z_{ij} - \\gamma^*_i)/\\delta^*_i + \\hat\\alpha`.
    Matches neuroCombat 0.2.12 ``neuroCombat(dat, covars, batch_col, eb=True,
    parametric=True)`` (and ``neuroCombatFromTraining`` for new patients) to 1e-8, and R
    ``sva::ComBat(dat, batch, mod = NULL, par.prior = TRUE)``.

    References
    ----------
    Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using
    empirical Bayes methods. Biostatistics 2007;8:118-127.
    Fortin JP et al. Harmonization of cortical thickness measurements across scanners and sites.
    NeuroImage 2018;167:104-120.
    """
    levels = _as_levels(batch, len(x))
    names, counts = np.unique(levels, return_counts=True)
    fitted = [str(lv) for lv, n in zip(names, counts) if n >= MIN_PER_LEVEL]
    unfitted = {str(lv): int(n) for lv, n in zip(names, counts) if n < MIN_PER_LEVEL}
    n_patients = {lv: int(n) for lv, n in zip(names, counts) if lv in fitted}
    rows = np.isin(levels, fitted)
    values = x.to_numpy(dtype=float)[rows]
    lv = levels[rows]
    empty = np.zeros((len(fitted), 0))
    if len(fitted) < 2:  # one level (or none): nothing to remove
        return ComBat(batch_column, tuple(fitted), n_patients, (), np.zeros(0), np.zeros(0), empty, empty, unfitted)
    finite = np.isfinite(values).all(axis=0)
    means = np.array([values[lv == level].mean(axis=0) for level in fitted])
    weights = np.array([n_patients[level] for level in fitted], dtype=float) / rows.sum()
    grand = weights @ means
    position = {level: j for j, level in enumerate(fitted)}
    resid = values - means[[position[v] for v in lv]]
    var_pooled = (resid ** 2).mean(axis=0)
    keep = finite & (var_pooled > 0)
    if keep.sum() < 2:
        raise ValueError(f"ComBat needs at least 2 features that vary on the fitted patients, got {int(keep.sum())}")
    grand, var_pooled, values = grand[keep], var_pooled[keep], values[:, keep]
    s = (values - grand) / np.sqrt(var_pooled)
    gamma_star, delta_star = [], []
    for level in fitted:
        z = s[lv == level]
        g_hat = z.mean(axis=0)
        d_hat = z.var(axis=0, ddof=1)
        d_hat[d_hat == 0] = 1.0
        g_bar, t2 = g_hat.mean(), g_hat.var(ddof=1)
        m, s2 = d_hat.mean(), d_hat.var(ddof=1)
        a, b = (2 * s2 + m ** 2) / s2, (m * s2 + m ** 3) / s2
        g, d = _it_sol(z, g_hat, d_hat, g_bar, t2, a, b)
        gamma_star.append(g)
        delta_star.append(d)
    features = tuple(str(c) for c, k in zip(x.columns, keep) if k)
    return ComBat(batch_column, tuple(fitted), n_patients, features, grand, var_pooled, np.array(gamma_star),
                  np.array(delta_star), unfitted)


# --------------------------------------------------------------------------------------------
# the study's batch levels (dlr validate, dlr train)


@dataclass(frozen=True)
class BatchProblem:
    """A batch level ComBat cannot be fitted or applied with.

    Attributes
    ----------
    check : str
        ``batch-missing`` (a patient without a batch value), ``unseen-batch`` (a level of a
        non-development cohort that no development patient has) or ``batch-too-small`` (a
        development level with fewer than :data:`MIN_PER_LEVEL` patients).
    level : str or None
    cohort : str
    patient_ids : tuple of str
    message, fix : str
    """

    check: str
    level: Optional[str]
    cohort: str
    patient_ids: tuple
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}. Fix: {self.fix}"


SHOWN_PATIENTS = 10


def _patients(ids) -> str:
    shown = ", ".join(map(str, ids[:SHOWN_PATIENTS]))
    more = len(ids) - SHOWN_PATIENTS
    return shown + (f" and {more} more" if more > 0 else "")


def batch_problems(frame: pd.DataFrame, config) -> list[BatchProblem]:
    """Every patient and batch level that harmonisation (study.yaml ``harmonization``) cannot handle.

    Parameters
    ----------
    frame : DataFrame
        clinical.csv after study.yaml's recodes (patients with an id).
    config : StudyConfig
        With ``harmonization`` set; its ``batch`` column must be in ``frame``.

    Returns
    -------
    list of BatchProblem
        Patients without a batch value; each level of a non-development cohort that the
        development cohort lacks (ComBat has no estimate for it: the fitted transform would
        not know how to adjust those patients), naming the level, the cohort and the patients;
        each development level with fewer than :data:`MIN_PER_LEVEL` patients (no variance
        estimate). Empty when ``harmonization`` is off or the column is absent (the
        column-missing check reports it).
    """
    spec = config.harmonization
    if spec is None or spec.batch not in frame.columns or config.cohort_column not in frame.columns:
        return []
    column = spec.batch
    ids = frame[config.id_column].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    cohorts = frame[config.cohort_column].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    levels = level_texts(frame[column])
    found = []
    for cohort in dict.fromkeys([*config.cohorts, *cohorts.tolist()]):
        where = (cohorts == cohort) & (levels == "")
        if where.any():
            found.append(BatchProblem(
                "batch-missing", None, cohort, tuple(ids[where]),
                f"{column} (harmonization.batch) is missing for {int(where.sum())} patient(s) of the cohort {cohort!r} "
                f"({_patients(ids[where])}); ComBat needs every patient's batch",
                f"fill in {column} for these patients in clinical.csv, or remove harmonization from study.yaml"))
    dev = cohorts == config.dev_cohort
    dev_levels = sorted(set(levels[dev & (levels != "")]))
    for level in dev_levels:
        where = dev & (levels == level)
        if where.sum() < MIN_PER_LEVEL:
            found.append(BatchProblem(
                "batch-too-small", level, config.dev_cohort, tuple(ids[where]),
                f"{column} (harmonization.batch) is {level!r} for only {int(where.sum())} patient(s) of the "
                f"development cohort {config.dev_cohort!r} ({_patients(ids[where])}); ComBat needs at least "
                f"{MIN_PER_LEVEL} patients of a batch to estimate its variance",
                f"merge {level!r} with a similar batch (declare {column} as a variable with a recode, e.g. "
                f"variables: [{{name: {column}, type: categorical, candidate: false, levels: {dev_levels}, "
                f"recode: {{'{level}': '<another batch>'}}}}]), or remove harmonization from study.yaml"))
    for cohort in dict.fromkeys([*config.cohorts, *cohorts.tolist()]):
        if cohort == config.dev_cohort:
            continue
        other = (cohorts == cohort) & (levels != "") & ~np.isin(levels, dev_levels)
        for level in sorted(set(levels[other])):
            where = other & (levels == level)
            found.append(BatchProblem(
                "unseen-batch", level, cohort, tuple(ids[where]),
                f"{column} (harmonization.batch) is {level!r} for {int(where.sum())} patient(s) of the cohort "
                f"{cohort!r} ({_patients(ids[where])}), a batch no patient of the development cohort "
                f"{config.dev_cohort!r} has (its batches: {', '.join(map(repr, dev_levels)) or 'none'}); ComBat "
                "fitted on the development cohort has no estimate to remove its effect",
                f"map {level!r} to a development batch of the same scanner type (declare {column} as a variable "
                f"with a recode, e.g. variables: [{{name: {column}, type: categorical, candidate: false, "
                f"levels: {dev_levels}, recode: {{'{level}': '{dev_levels[0] if dev_levels else '<batch>'}'}}}}]), "
                "remove those patients, or remove harmonization from study.yaml"))
    return found
