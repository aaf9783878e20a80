"""Internal validation corrected for optimism: Harrell's bootstrap of the logistic models (CR, and
RCR when its classifier is LR), as ``rms::validate(lrm(...), B = 200)``: ``RUN/models/internal_validation.csv``.

The procedure (Harrell, Lee & Mark 1996; Steyerberg 2019, ch. 17)
-----------------------------------------------------------------
On the development cohort only: draw B resamples of its patients with replacement
(``rng = np.random.default_rng(seed)``, ``rng.integers(0, n, size=(B, n))``, train's ``--seed``);
refit the model on each resample; evaluate each refit on its resample (``train``: its apparent
performance) and on the original development cohort (``test``). For each index,

    optimism = mean_b (train_b - test_b),   corrected = apparent - optimism,

where ``apparent`` is the original model's index on the development cohort. A resample whose
refit fails (no finite maximum likelihood, a single outcome class) is left out and counted
(``n_failed``, reasons in ``failures``), as ``rms``'s "Divergence or singularity in k samples";
an index undefined on a resample is left out of that index's means alone (``n_resamples`` counts
the resamples each index used, as the ``n`` column of ``rms``'s table).

Two procedures (``procedure`` column)
-------------------------------------
``fixed factors``
    The model's predictors as they were chosen, refitted on each resample: what
    ``validate(lrm(y ~ x1 + x2, x = TRUE, y = TRUE), B = 200)`` does (without ``bw = TRUE``).
    For RCR (L2-penalised LR) its features and its tuned penalty C are kept and the pipeline
    (median imputation, z-scores, logistic regression) is refitted: the analogue of validating a
    penalised ``lrm`` with its penalty matrix fixed.
``selection repeated``
    The CR model's whole two-step selection (univariate p < alpha, then multivariate p < alpha,
    :func:`dlr.modeling.clinical.fit_cr`) redone on each resample, then refitted on the factors it
    selects: the factors were chosen from these data, so the optimism of that choice is counted
    too. A resample on which no factor is selected gets the intercept-only model (each patient's
    risk is the resample's event rate; ``rms`` refits this null model when ``bw = TRUE``
    removes every factor): it stays in the means, counted in ``n_no_factor``, because dropping
    it would keep only the resamples where selection looked best. RCR's selection (ICC, tests,
    LASSO, tuning) is not repeated here: about 20 s per refit; its nested out-of-fold
    predictions (``RUN/predictions_oof.csv``) are the honest figure for the whole chain.

Indexes (``index`` column; ``rms``'s names and definitions, ``validate.lrm``'s ``discrim``)
---------------------------------------------------------------------------------------
With lp the linear predictor (log odds) and n patients:

* ``Dxy``: Somers' rank correlation of lp and y, 2 (C - 0.5) (``Hmisc::somers2``); ``AUC`` =
  Dxy / 2 + 0.5 (the C index) is added as its own row (optimism Dxy's / 2).
* ``R2``: Nagelkerke's, (1 - exp(-LR / n)) / (1 - exp(-L0 / n)), LR the model likelihood-ratio
  chi-squared, L0 the null deviance.
* ``Intercept``, ``Slope``: the calibration line, logistic regression of y on lp. On the
  sample a model was fitted on by maximum likelihood they are 0 and 1 exactly (rms's apparent
  and training values); for a penalised refit (RCR) they are estimated on its resample too.
  Corrected slope = mean test slope: the shrinkage factor.
* ``Emax``: the largest |p - plogis(a + b logit p)| over p in [0, 1] (step 0.0005), a and b the
  corrected intercept and slope; as rms, ``apparent`` and ``train_mean`` are 0 and the
  corrected value is in ``test_mean``, ``optimism`` and ``corrected``.
* ``D`` = (LR - 1) / n (discrimination), ``U`` = (deviance of lp taken as it is - deviance of
  the recalibrated lp - 2) / n (unreliability; -2 / n where the model is its own fit), ``Q`` =
  D - U (quality).
* ``Brier``: mean (plogis(lp) - y)^2 (rms's ``B``).
* ``g``: Gini's mean difference of lp (the g-index, log-odds scale); ``gp``: of the
  probabilities. On the test sample both are of the recalibrated lp, as rms.

On the test sample, R2, D and LR are of the recalibrated lp (a + b lp), as ``rms``.

Where a patient's factor is missing, the CR model is fitted and evaluated on complete cases: the
fixed-factors resamples are drawn from the development patients with complete factors (the
patients ``lrm`` would use); the selection-repeated ones from every development patient, each
refit evaluated on the patients with complete data for the factors it selected.

References
----------
Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
Efron B, Tibshirani R. An Introduction to the Bootstrap. Chapman & Hall 1993, section 17.6.
Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, chapter 17.
Harrell FE. rms: Regression Modeling Strategies (R package), ``validate.lrm``, ``predab.resample``.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import InputError
from dlr.core.stats.logistic import fit_logistic
from dlr.core.stats.roc import rank_auc

from .clinical import CRModelError, NoCRFactorError, design, fit_cr

logger = logging.getLogger(__name__)

#: B of ``dlr train --validate-b`` (0 skips the internal validation)
DEFAULT_RESAMPLES = 200
FIXED = "fixed factors"
REPEATED = "selection repeated"
PROCEDURES = (FIXED, REPEATED)
#: indexes computed on each resample, in ``rms``'s order (its ``B`` is ``Brier`` here)
MEASURED = ("Dxy", "R2", "Intercept", "Slope", "D", "U", "Q", "Brier", "g", "gp")
#: rows of the table, per model and procedure
INDEXES = ("Dxy", "AUC", "R2", "Intercept", "Slope", "Emax", "D", "U", "Q", "Brier", "g", "gp")
COLUMNS = ["model", "procedure", "index", "apparent", "train_mean", "test_mean", "optimism", "corrected",
           "optimism_se", "n_resamples", "n_failed", "n_no_factor", "n_requested", "failures"]
FILE = "internal_validation.csv"


class _ResampleFailure(Exception):
    """The refit on one resample failed; the message says why."""


# --------------------------------------------------------------------------------------------
# indexes


def gini_md(x) -> float:
    """Gini's mean difference: the mean of |x_i - x_j| over all pairs i != j.

    Notes
    -----
    With x sorted, 2 sum_i (2 i - n - 1) x_(i) / (n (n - 1)); ``Hmisc::GiniMd``. NaN for n < 2.
    """
    x = np.sort(np.asarray(x, dtype=float))
    n = x.size
    if n < 2:
        return float("nan")
    w = 2.0 * np.arange(1, n + 1) - n - 1
    return float(2.0 * np.sum(w * x) / (n * (n - 1.0)))


def _deviance(y: np.ndarray, lp: np.ndarray) -> float:
    return float(2.0 * np.sum(np.logaddexp(0.0, lp) - y * lp))


def _null_deviance(y: np.ndarray) -> float:
    events, n = float(y.sum()), y.size
    if events in (0.0, float(n)):
        return 0.0
    p = events / n
    return float(-2.0 * (events * np.log(p) + (n - events) * np.log1p(-p)))


def logistic_indexes(lp, y, *, own_fit: bool) -> dict:
    """``rms``'s indexes of linear predictor ``lp`` (log odds) for outcomes ``y``.

    Parameters
    ----------
    lp : array (n,)
    y : array of 0/1 (n,)
    own_fit : bool
        True when ``lp`` is a maximum-likelihood fit on these very patients (``validate.lrm``'s
        ``evalfit = TRUE``: calibration intercept 0 and slope 1 by construction, the fit's own
        likelihood ratio); False to recalibrate, logistic regression of y on lp (its
        ``evalfit = FALSE``, the test sample).

    Returns
    -------
    dict
        ``MEASURED`` -> value (NaN where undefined, e.g. one outcome class or a recalibration
        without a finite maximum).

    Notes
    -----
    See the module docstring. A constant lp (the intercept-only model) recalibrates with slope
    1 and intercept logit(mean y) - lp (calibration in the large), likelihood ratio 0.
    """
    lp = np.asarray(lp, dtype=float)
    y = np.asarray(y, dtype=float)
    n = y.size
    dev0 = _null_deviance(y)
    brier = float(np.mean((special.expit(lp) - y) ** 2)) if n else float("nan")
    dxy = 2.0 * rank_auc(y.astype(int), lp) - 1.0 if n else float("nan")
    if own_fit:
        a, b = 0.0, 1.0
        lr = dev0 - _deviance(y, lp)
        u = -2.0 / n
        recalibrated = lp
    else:
        if np.ptp(lp) == 0.0:
            ybar = float(y.mean())
            a, b = (float(special.logit(ybar)) - float(lp[0]), 1.0) if 0.0 < ybar < 1.0 else (np.nan, np.nan)
        else:
            a, b = fit_logistic(y, np.column_stack([np.ones(n), lp]))
        recalibrated = a + b * lp
        dev_refit = _deviance(y, recalibrated) if np.isfinite(a) else float("nan")
        lr = dev0 - dev_refit
        u = (_deviance(y, lp) - dev_refit - 2.0) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = (1.0 - np.exp(-lr / n)) / (1.0 - np.exp(-dev0 / n)) if dev0 > 0 else float("nan")
    d = (lr - 1.0) / n
    finite = np.isfinite(a) and np.isfinite(b)
    g = gini_md(b * lp) if finite else float("nan")
    gp = gini_md(special.expit(recalibrated)) if finite else float("nan")
    return {"Dxy": dxy, "R2": float(r2), "Intercept": float(a), "Slope": float(b), "D": float(d), "U": float(u),
            "Q": float(d - u), "Brier": brier, "g": g, "gp": gp}


def emax(intercept: float, slope: float) -> float:
    """The largest absolute difference between p and the calibrated plogis(a + b logit p),
    p = 0, 0.0005, ..., 1 (``validate.lrm``'s ``Emax``, ``emax.lim = c(0, 1)``)."""
    p = np.arange(2001) * 5e-4
    with np.errstate(divide="ignore", invalid="ignore"):
        calibrated = special.expit(intercept + slope * special.logit(p))
        diff = np.abs(p - calibrated)
    return float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")


# --------------------------------------------------------------------------------------------
# the bootstrap


@dataclass(frozen=True)
class InternalValidation:
    """Harrell's bootstrap of one model by one procedure.

    Attributes
    ----------
    model, procedure : str
    apparent : dict
        ``MEASURED`` -> the original model's index on the development cohort.
    train, test : ndarray (B, len(MEASURED))
        Each resample's refit on its resample and on the development cohort (NaN rows for
        failed resamples).
    failures : tuple of (int, str)
        1-based resample number and reason of each failed refit.
    no_factor : tuple of int
        Resamples whose repeated selection chose no factor (intercept-only model).
    n_requested : int
        B.
    """

    model: str
    procedure: str
    apparent: dict
    train: np.ndarray
    test: np.ndarray
    failures: tuple
    no_factor: tuple
    n_requested: int

    def to_frame(self) -> pd.DataFrame:
        """The rows of ``internal_validation.csv`` (``COLUMNS``), one per index of ``INDEXES``."""
        rows = {}
        for k, name in enumerate(MEASURED):
            ok = np.isfinite(self.train[:, k]) & np.isfinite(self.test[:, k])
            n = int(ok.sum())
            train = float(self.train[ok, k].mean()) if n else float("nan")
            test = float(self.test[ok, k].mean()) if n else float("nan")
            spread = self.train[ok, k] - self.test[ok, k]
            se = float(spread.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
            optimism = train - test
            rows[name] = {"apparent": self.apparent[name], "train_mean": train, "test_mean": test,
                          "optimism": optimism, "corrected": self.apparent[name] - optimism, "optimism_se": se,
                          "n_resamples": n}
        dxy = rows["Dxy"]
        rows["AUC"] = {**{key: dxy[key] / 2.0 + 0.5 for key in ("apparent", "train_mean", "test_mean", "corrected")},
                       "optimism": dxy["optimism"] / 2.0, "optimism_se": dxy["optimism_se"] / 2.0,
                       "n_resamples": dxy["n_resamples"]}
        e = emax(rows["Intercept"]["corrected"], rows["Slope"]["corrected"])
        rows["Emax"] = {"apparent": 0.0, "train_mean": 0.0, "test_mean": e, "optimism": e, "corrected": e,
                        "optimism_se": float("nan"), "n_resamples": dxy["n_resamples"]}
        reasons: dict = {}
        for b, reason in self.failures:
            reasons.setdefault(reason, []).append(b)
        failures = "; ".join(f"{len(bs)} x {reason} (resample{'s' if len(bs) > 1 else ''} "
                             f"{', '.join(map(str, bs[:10]))}{', ...' if len(bs) > 10 else ''})"
                             for reason, bs in reasons.items())
        frame = pd.DataFrame([{"model": self.model, "procedure": self.procedure, "index": name, **rows[name],
                               "n_failed": len(self.failures), "n_no_factor": len(self.no_factor),
                               "n_requested": self.n_requested, "failures": failures} for name in INDEXES])
        return frame[COLUMNS]


def draw_resamples(n: int, n_resamples: int, *, seed=None) -> np.ndarray:
    """``(n_resamples, n)`` row positions drawn with replacement: ``default_rng(seed).integers(0, n, ...)``."""
    if n < 2:
        raise InputError(f"internal validation needs at least 2 development patients, got {n}")
    if n_resamples < 1:
        raise InputError(f"the number of bootstrap resamples must be 1 or more, got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), int(n)))


def _check_resamples(resamples, n: int) -> np.ndarray:
    idx = np.asarray(resamples)
    if idx.ndim != 2 or idx.shape[1] != n or not np.issubdtype(idx.dtype, np.integer) or idx.size == 0:
        raise ValueError(f"resamples must be an integer array (B, {n}) of row positions, got shape {idx.shape} "
                         f"and type {idx.dtype}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"resamples hold row positions outside 0..{n - 1}")
    return idx


def bootstrap_validation(y, apparent_lp, refit: Callable, *, model: str, procedure: str, resamples,
                         own_fit: bool = True) -> InternalValidation:
    """Harrell's bootstrap of the model refitted by ``refit``.

    Parameters
    ----------
    y : array of 0/1 (n,)
        The development patients' outcomes.
    apparent_lp : array (n,)
        The original model's linear predictor (NaN where it cannot score a patient).
    refit : callable
        ``refit(positions) -> (lp, null)``: the model refitted on the rows ``positions`` (a
        resample, duplicates included) and its linear predictor for all n patients (NaN where
        undefined), ``null`` True for an intercept-only model; raises ``_ResampleFailure``.
    model, procedure : str
        Labels of the rows.
    resamples : int array (B, n)
    own_fit : bool
        Whether each refit is an unpenalised maximum-likelihood fit (then its resample's
        calibration intercept and slope are 0 and 1), see :func:`logistic_indexes`.
    Every 50 resamples a progress message is logged (:mod:`dlr.core.progress`).

    Returns
    -------
    InternalValidation
    """
    y = np.asarray(y, dtype=float)
    lp0 = np.asarray(apparent_lp, dtype=float)
    resamples = _check_resamples(resamples, y.size)
    scored = np.isfinite(lp0)
    apparent = logistic_indexes(lp0[scored], y[scored], own_fit=own_fit)
    n_res = resamples.shape[0]
    train = np.full((n_res, len(MEASURED)), np.nan)
    test = np.full((n_res, len(MEASURED)), np.nan)
    failures, no_factor = [], []
    for b, rows in enumerate(resamples):
        if b and b % 50 == 0:
            logger.info(f"internal validation of {model} ({procedure}): {b} of {n_res} resamples")
        if np.unique(y[rows]).size < 2:
            failures.append((b + 1, "a single outcome class"))
            continue
        try:
            lp, null = refit(rows)
        except _ResampleFailure as exc:
            failures.append((b + 1, str(exc)))
            continue
        lp = np.asarray(lp, dtype=float)
        if null:
            no_factor.append(b + 1)
        on_train = lp[rows]
        keep = np.isfinite(on_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            train[b] = [logistic_indexes(on_train[keep], y[rows][keep], own_fit=own_fit or null)[k] for k in MEASURED]
            ok = np.isfinite(lp)
            test[b] = [logistic_indexes(lp[ok], y[ok], own_fit=False)[k] for k in MEASURED]
    return InternalValidation(model, procedure, apparent, train, test, tuple(failures), tuple(no_factor), n_res)


def _logistic_refit(y: np.ndarray, exog: np.ndarray) -> Callable:
    def refit(rows):
        beta = fit_logistic(y[rows], exog[rows])
        if not np.all(np.isfinite(beta)):
            raise _ResampleFailure("no finite maximum likelihood (separation or a constant column)")
        return exog @ beta, False
    return refit


def validate_logistic(X, y, *, n_resamples: int = DEFAULT_RESAMPLES, seed=None, resamples=None,
                      model: str = "logistic") -> InternalValidation:
    """Harrell's bootstrap of an unpenalised logistic regression of ``y`` on the columns of ``X``.

    Parameters
    ----------
    X : array (n, k)
        Design columns (no intercept column; no missing value).
    y : array of 0/1 (n,)
    n_resamples : int
        B (ignored when ``resamples`` is given).
    seed : int, optional
        ``np.random.default_rng(seed)`` draws the resamples.
    resamples : int array (B, n), optional
        Row positions of each resample (0-based), instead of drawing them.

    Returns
    -------
    InternalValidation
        Procedure ``fixed factors``.

    Notes
    -----
    Matches ``validate(lrm(y ~ x1 + ... + xk, x = TRUE, y = TRUE), B = B)`` run on the same
    resamples (tests/r/internal_validation.R): every index of its table.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(X, dtype=float).reshape(y.size, -1)
    if not np.all(np.isfinite(x)):
        raise ValueError("X holds missing or infinite values; pass complete cases")
    exog = np.column_stack([np.ones(y.size), x])
    beta = fit_logistic(y, exog)
    if not np.all(np.isfinite(beta)):
        raise InputError("the logistic model has no finite maximum likelihood (separation or a constant column)")
    if resamples is None:
        resamples = draw_resamples(y.size, n_resamples, seed=seed)
    return bootstrap_validation(y, exog @ beta, _logistic_refit(y, exog), model=model, procedure=FIXED,
                                resamples=resamples)


def _cr_lp(model, frame: pd.DataFrame) -> np.ndarray:
    x = design(frame, model.codings).to_numpy(dtype=float)
    return model.coefficients[0] + x @ model.coefficients[1:]


def validate_cr(clinical: pd.DataFrame, config, model, *, procedure: str = FIXED, alpha: float = 0.05,
                n_resamples: int = DEFAULT_RESAMPLES, seed=None) -> InternalValidation:
    """Harrell's bootstrap of the CR model (:class:`dlr.modeling.clinical.CRModel`).

    Parameters
    ----------
    clinical : DataFrame
        The development patients' rows of clinical.csv, and no one else's: every resample is
        drawn from them and every refit evaluated on them.
    config : StudyConfig
    model : CRModel
        The CR model fitted on these patients.
    procedure : {"fixed factors", "selection repeated"}
        Refit ``model``'s factors and coding on each resample, or repeat the whole selection
        (:func:`dlr.modeling.clinical.fit_cr` with ``alpha``) there first.
    n_resamples, seed :
        B and the seed of ``np.random.default_rng``.

    Returns
    -------
    InternalValidation
    """
    if procedure not in PROCEDURES:
        raise ValueError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
    frame = clinical.reset_index(drop=True)
    lp = _cr_lp(model, frame)
    y = frame[config.outcome_column].to_numpy(dtype=float)
    if procedure == FIXED:
        complete = np.isfinite(lp)
        x = design(frame[complete], model.codings).to_numpy(dtype=float)
        exog = np.column_stack([np.ones(int(complete.sum())), x])
        resamples = draw_resamples(int(complete.sum()), n_resamples, seed=seed)
        return bootstrap_validation(y[complete], lp[complete], _logistic_refit(y[complete], exog), model="CR",
                                    procedure=FIXED, resamples=resamples)

    ids = frame[config.id_column].astype(str).to_numpy()

    def refit(rows):
        sample = frame.iloc[rows].copy()
        sample[config.id_column] = [f"{ids[r]}#{k}" for k, r in enumerate(rows)]  # a duplicate is another patient
        try:
            refitted = fit_cr(sample, config, dev_ids=sample[config.id_column], alpha=alpha)
        except NoCRFactorError:
            return np.full(y.size, float(special.logit(y[rows].mean()))), True
        except CRModelError as exc:
            raise _ResampleFailure(f"CR refit: {str(exc).split(' in the development cohort')[0]}") from None
        except InputError as exc:
            raise _ResampleFailure(f"CR selection: {exc}") from None
        return _cr_lp(refitted, frame), False

    resamples = draw_resamples(y.size, n_resamples, seed=seed)
    return bootstrap_validation(y, lp, refit, model="CR", procedure=REPEATED, resamples=resamples)


def validate_estimator(estimator, X: pd.DataFrame, y, *, model: str, n_resamples: int = DEFAULT_RESAMPLES,
                       seed=None, resamples=None) -> InternalValidation:
    """Harrell's bootstrap of a fitted scikit-learn logistic pipeline, its hyperparameters fixed.

    Parameters
    ----------
    estimator : sklearn estimator with ``decision_function`` (log odds)
        E.g. RCR's tuned pipeline (median imputer, StandardScaler, L2 ``LogisticRegression``).
    X : DataFrame (n, k)
        Its inputs for the development patients.
    y : array of 0/1 (n,)

    Returns
    -------
    InternalValidation
        Procedure ``fixed factors``: the pipeline (imputer, scaler and coefficients) refitted on
        each resample with its hyperparameters (the tuned C) unchanged. Calibration intercept
        and slope of a penalised fit are estimated on its own resample too (not 0 and 1).
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    y = np.asarray(y, dtype=float)

    def refit(rows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                fitted = clone(estimator).fit(X.iloc[rows], y[rows].astype(int))
            except ValueError as exc:
                raise _ResampleFailure(f"refit: {exc}") from None
        return np.asarray(fitted.decision_function(X), dtype=float), False

    if resamples is None:
        resamples = draw_resamples(y.size, n_resamples, seed=seed)
    return bootstrap_validation(y, np.asarray(estimator.decision_function(X), dtype=float), refit, model=model,
                                procedure=FIXED, resamples=resamples, own_fit=False)


def internal_validation_table(results) -> pd.DataFrame:
    """``internal_validation.csv``: the rows of each :class:`InternalValidation` in ``results``."""
    frames = [r.to_frame() for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
