"""Minimum sample size for developing a prediction model with a binary outcome (Riley et al.)."""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import pandas as pd

from dlr.core.errors import InputError


class SampleSizeWarning(UserWarning):
    """The development cohort is smaller than the minimum sample size for the model."""


@dataclass(frozen=True)
class SampleSizeResult:
    """The three criteria of Riley et al. for a binary outcome, and the study against them.

    Attributes
    ----------
    n_shrinkage, n_optimism, n_intercept : int
        Patients needed for (i) expected uniform shrinkage >= ``shrinkage``, (ii) an absolute
        difference <= 0.05 between apparent and adjusted Nagelkerke R^2, (iii) the overall risk
        estimated within +/- 0.05.
    n_required : int
        The largest of the three.
    events_required, epp_required : float
        Events and events per candidate parameter at ``n_required``.
    n_available, events_available : int or None
        The development cohort, when given; ``adequate`` says whether it reaches n_required.
    max_r2_cs : float
        Largest Cox-Snell R^2 possible at this prevalence.
    """

    parameters: int
    prevalence: float
    r2_cs: float
    shrinkage: float
    n_shrinkage: int
    n_optimism: int
    n_intercept: int
    n_required: int
    events_required: float
    epp_required: float
    max_r2_cs: float
    n_available: int | None = None
    events_available: int | None = None
    adequate: bool | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def minimum_sample_size(*, parameters: int, prevalence: float, r2_cs: float | None = None,
                        r2_nagelkerke: float | None = None, shrinkage: float = 0.9,
                        n_available: int | None = None, events_available: int | None = None) -> SampleSizeResult:
    """Minimum sample size for a binary-outcome prediction model (Riley et al. criteria i-iii).

    Parameters
    ----------
    parameters : int
        Candidate predictor parameters (a categorical variable with L levels counts L - 1).
    prevalence : float
        Anticipated outcome proportion in (0, 1).
    r2_cs, r2_nagelkerke : float
        Anticipated Cox-Snell R^2 of the model, or its Nagelkerke R^2 (converted with the
        maximum Cox-Snell R^2 at this prevalence); give one.
    shrinkage : float
        Target expected uniform shrinkage (0.9: at most 10% overfitting).
    n_available, events_available : int, optional
        The development cohort; a ``SampleSizeWarning`` is raised when it is too small.

    Notes
    -----
    (i) n = p / ((S - 1) ln(1 - R2_cs / S)); (ii) the same with S = R2_cs / (R2_cs + 0.05
    max R2_cs), where max R2_cs = 1 - exp(2 (phi ln phi + (1 - phi) ln(1 - phi))); (iii)
    n = (1.96 / 0.05)^2 phi (1 - phi). Each rounded up. As R ``pmsampsize(type = "b")``.

    References
    ----------
    Riley RD et al. BMJ 2020;368:m441. Riley RD et al. Stat Med 2019;38:1276-1296.
    """
    if not isinstance(parameters, int) or parameters < 1:
        raise InputError(f"parameters must be a positive integer, got {parameters!r}")
    if not 0 < prevalence < 1:
        raise InputError(f"prevalence must lie in (0, 1), got {prevalence!r}")
    if not 0 < shrinkage < 1:
        raise InputError(f"shrinkage must lie in (0, 1), got {shrinkage!r}")
    phi = prevalence
    max_r2 = 1 - math.exp(2 * (phi * math.log(phi) + (1 - phi) * math.log(1 - phi)))
    if (r2_cs is None) == (r2_nagelkerke is None):
        raise InputError("give exactly one of r2_cs (Cox-Snell) and r2_nagelkerke")
    r2 = r2_cs if r2_cs is not None else r2_nagelkerke * max_r2
    if not 0 < r2 < max_r2:
        raise InputError(f"Cox-Snell R^2 {r2:.4g} must lie in (0, {max_r2:.4g}), the maximum at prevalence {phi:g}")
    if shrinkage < r2:
        raise InputError(f"shrinkage {shrinkage:g} is below the anticipated R^2 {r2:.4g}")

    def n_for(s):
        return math.ceil(parameters / ((s - 1) * math.log(1 - r2 / s)))

    n1 = n_for(shrinkage)
    n2 = n_for(r2 / (r2 + 0.05 * max_r2))
    n3 = math.ceil((1.96 / 0.05) ** 2 * phi * (1 - phi))
    n = max(n1, n2, n3)
    adequate = None
    if n_available is not None:
        adequate = n_available >= n
        if not adequate:
            warnings.warn(f"the development cohort has {n_available} patients"
                          f"{'' if events_available is None else f' ({events_available} events)'}; "
                          f"a model with {parameters} candidate parameters needs at least {n} ({n * phi:.0f} events, "
                          f"Riley et al. 2020): expect overfitting", SampleSizeWarning, stacklevel=2)
    return SampleSizeResult(parameters, phi, r2, shrinkage, n1, n2, n3, n, n * phi, n * phi / parameters, max_r2,
                            n_available, events_available, adequate)


def screen_sample_size(selection, *, r2_nagelkerke: float) -> SampleSizeResult:
    """Riley et al.'s minimum sample size for the candidate parameters of the CR factor screen.

    Parameters
    ----------
    selection : modeling.cr_factors.CRSelection
        Its univariate fits give the development cohort's patients and events; its univariate
        table's rows (one per model term) are the candidate parameters.
    r2_nagelkerke : float, keyword-only
        Anticipated Nagelkerke R^2 of the model (``dlr logistic --anticipated-r2``).

    Raises
    ------
    InputError
        The development cohort has a single outcome class.
    """
    fits = selection.univariate.fits
    n, events = int(fits["n"].max()), int(fits["n_events"].max())
    if n == 0 or events in (0, n):
        raise InputError("the development cohort has a single outcome class; no model can be fitted")
    parameters = max(1, len(selection.univariate.table))
    return minimum_sample_size(parameters=parameters, prevalence=events / n, r2_nagelkerke=r2_nagelkerke,
                               n_available=n, events_available=events)
