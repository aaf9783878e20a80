"""Staging systems and prognostic indexes of hepatocellular carcinoma, computed from raw inputs.

BCLC, CNLC, CLIP, Okuda, Child-Pugh, ALBI, NLR, PLR, LMR and the preoperative ERASL model, each
by one function that cites its source. Definitions and the project's decisions are those of
``spec/staging.md``; the inputs are a pandas DataFrame with the contract's column names and units
(``spec/contract.md`` section 2; listed in :mod:`dlr.modeling.staging.inputs`). A stage is reported
when the inputs present determine it, whatever the missing ones are; bad values raise
:class:`dlr.core.errors.InputError` listing every problem found.

Modules:

- :mod:`~modeling.staging.inputs`: parsing and validation of the raw input columns, and
  :func:`map_staging_columns` (a user's clinical table under the contract's names).
- :mod:`~modeling.staging.determined`: the rule engine, a stage when the inputs present
  determine it despite missing ones.
- :mod:`~modeling.staging.results`: :class:`SystemResult` and the per-system table / missing
  frames.
- :mod:`~modeling.staging.systems`: BCLC, CNLC, CLIP, Okuda, Child-Pugh and ALBI.
- :mod:`~modeling.staging.indexes`: the inflammation indexes NLR, PLR and LMR.
- :mod:`~modeling.staging.erasl`: ERASL coefficients, score, risk groups and the
  development-cohort refit.
- :mod:`~modeling.staging.scores`: :func:`compute_staging` (every system, the staging table) and
  :func:`comparator_scores` (the comparator coding of contract section 3).
"""
from .erasl import ERASL_GROUPS, REFIT_LABEL, ERASLCoefficients, ERASLRefit, erasl_refit, erasl_score
from .indexes import lmr, nlr, plr
from .inputs import map_staging_columns
from .results import MISSING_COLUMNS, SystemResult
from .scores import SYSTEMS, TABLE_COLUMNS, StagingResult, comparator_scores, compute_staging
from .systems import (BCLC_STAGES, BCLC_VERSIONS, CNLC_STAGES, OKUDA_STAGES, albi, albi_grade, bclc_stage, child_pugh,
                      clip_score, cnlc_stage, okuda_stage)

__all__ = [
    "compute_staging", "comparator_scores", "StagingResult", "SystemResult",
    "ERASLCoefficients", "ERASLRefit", "erasl_score", "erasl_refit",
    "bclc_stage", "cnlc_stage", "clip_score", "okuda_stage", "child_pugh", "albi", "albi_grade",
    "nlr", "plr", "lmr", "map_staging_columns",
    "BCLC_STAGES", "CNLC_STAGES", "OKUDA_STAGES", "ERASL_GROUPS", "BCLC_VERSIONS", "REFIT_LABEL", "SYSTEMS",
    "TABLE_COLUMNS", "MISSING_COLUMNS",
]
