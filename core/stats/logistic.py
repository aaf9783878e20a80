"""Maximum-likelihood logistic regression for the small fits both stages need: calibration
intercept and slope and index-to-risk maps (analysis), the logistic tables, the CR model and
the ERASL refit (modeling).

Newton-Raphson with step halving, as R's ``glm(family = binomial)`` (IRLS) converges to the same
maximum; numpy only, so `dlr analyze` starts without importing statsmodels (its import alone
costs more than a whole analysis of a typical study). Tests check it against statsmodels and R.
"""
from __future__ import annotations

import numpy as np


def _log1pexp(x):
    return np.logaddexp(0.0, x)


def fit_logistic(y, exog, *, offset=None, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
    """Coefficients of logit P(y = 1) = offset + exog @ beta by maximum likelihood.

    Parameters
    ----------
    y : array of 0/1, shape (n,)
    exog : array, shape (n, k); include a column of ones for an intercept.
    offset : array (n,), optional
    tol : float
        Stop when the largest absolute Newton step falls below ``tol``.

    Returns
    -------
    ndarray (k,)
        NaN when the likelihood has no finite maximum (separation) or the design is singular.

    Notes
    -----
    beta <- beta + (X' W X)^{-1} X' (y - p), W = diag(p (1 - p)); each step is halved until
    the log-likelihood does not decrease. Matches ``coef(glm(y ~ ..., family = binomial))``.

    References
    ----------
    McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall 1989, ch. 4.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(exog, dtype=float).reshape(y.size, -1)
    off = np.zeros(y.size) if offset is None else np.asarray(offset, dtype=float)
    beta = np.zeros(x.shape[1])

    def loglik(b):
        eta = off + x @ b
        return float(np.sum(y * eta - _log1pexp(eta)))

    current = loglik(beta)
    for _ in range(max_iter):
        eta = off + x @ beta
        p = np.exp(-_log1pexp(-eta))
        w = p * (1 - p)
        hessian = x.T @ (x * w[:, None])
        try:
            step = np.linalg.solve(hessian, x.T @ (y - p))
        except np.linalg.LinAlgError:
            return np.full(x.shape[1], np.nan)
        for _ in range(60):
            candidate = loglik(beta + step)
            if candidate >= current - 1e-12 * abs(current):
                break
            step = step / 2
        beta = beta + step
        current = candidate
        if np.max(np.abs(step)) < tol:
            break
        if np.max(np.abs(beta)) > 1e6:  # separation: the maximum is at infinity
            return np.full(x.shape[1], np.nan)
    else:
        return np.full(x.shape[1], np.nan)
    return beta
