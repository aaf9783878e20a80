"""Table 1: patient characteristics by outcome group within each cohort (and between
cohorts), each with the test that methods section E chooses (`core.stats.group_tests`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlr.core.errors import InputError
from dlr.core.stats.group_tests import NOT_TESTABLE, compare_categorical, compare_continuous
from dlr.core.tables import (ParsedColumn, candidate_variables, check_categorical, cohort_values, in_order, outcome_values,
                         parse_column)

TEST_COLUMNS = ["variable", "scope", "test", "statistic", "p_value", "df", "n", "n_missing", "normality_p"]
SUMMARY_COLUMNS = ["variable", "level", "cohort", "group", "n", "percent", "mean", "sd", "median", "q1", "q3"]
BETWEEN = "between_cohorts"
MEAN_SD = "mean ± SD"
MEDIAN_IQR = "median (Q1, Q3)"


@dataclass(frozen=True)
class Table1Result:
    """Table 1: characteristics by outcome group within each cohort, with tests.

    Attributes
    ----------
    table : DataFrame
        The display table: ``variable``, ``level``, then one text column per cohort x outcome
        group, named ``"<cohort>: <outcome>=<value>"`` (``"<outcome>=<value>"`` without a cohort
        column). The first row (variable ``n``) holds the group sizes; categorical levels show
        ``"n (%)"`` (percent of the group's non-missing values); a continuous variable shows
        ``mean ± SD`` where its comparison used the t test and ``median (Q1, Q3)`` where it
        used Mann-Whitney (one row per format used in any scope, so both rows when cohorts
        differ); a ``missing`` row follows a variable with missing values.
    tests : DataFrame
        ``variable``, ``scope``, ``test``, ``statistic``, ``p_value`` (contract section 6), and
        ``df`` (chi-squared or t degrees of freedom; numerator df of an F test), ``n``
        (patients compared), ``n_missing`` (patients of the scope left out as missing),
        ``normality_p`` (smallest Shapiro-Wilk p over the groups; continuous only). ``scope``
        is a cohort name (outcome groups compared within it; ``all`` without a cohort column)
        or ``between_cohorts`` (cohorts compared over all patients, when there are 2+).
        ``statistic`` is X-squared, t, W (R's ``wilcox.test``: the Mann-Whitney U of the first
        group), F or the Kruskal-Wallis H; NaN for Fisher's exact test and untestable rows.
    summary : DataFrame
        The display table's numbers at full precision, long form: ``variable``, ``level``,
        ``cohort``, ``group`` (outcome value), ``n``, ``percent``, ``mean``, ``sd``,
        ``median``, ``q1``, ``q3`` (quartiles as R ``quantile(type = 7)``).
    """

    table: pd.DataFrame
    tests: pd.DataFrame
    summary: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.tests



def _fmt(x: float, decimals: int) -> str:
    return "NA" if not np.isfinite(x) else f"{x:.{decimals}f}"


def table1(frame: pd.DataFrame, *, outcome: str, cohort: str | None = None, categorical=(), variables=None,
           equal_var: bool = False, decimals: int = 1) -> Table1Result:
    """Table 1: each variable by outcome group within each cohort, with the test of methods E.

    Parameters
    ----------
    frame : DataFrame
        One row per patient (e.g. ``clinical.csv`` read with ``dtype=str`` or plainly).
    outcome : str, keyword-only
        Column of 0/1 outcomes (text "0"/"1" is accepted); groups are compared within cohorts.
    cohort : str, optional
        Column naming each patient's cohort; without it every patient is in scope ``all``.
        Cohorts keep their order of first appearance.
    categorical : sequence of str
        Columns to treat as categorical although they hold numbers. Columns holding text
        (any non-missing value that does not read as a number) and pandas ``Categorical``
        columns are categorical anyway. Levels are listed in the column's level order
        (:func:`dlr.core.tables.parse_column`): a ``Categorical``'s categories in order, each shown
        even when no patient has it (0 counts; as R's ``table()`` of a ``factor``); study.yaml's
        ``levels`` arrive this way through ``StudyConfig.clinical_variables``. Otherwise the
        levels present, numbers by value, then text by code point (R's ``factor()`` under
        ``LC_COLLATE=C``).
    variables : sequence of str, optional
        Columns to tabulate, in this order; default every column except the outcome, the
        cohort and ``patient_id``.
    equal_var : bool
        t test variant (see :func:`compare_continuous`); default Welch.
    decimals : int
        Decimals of means, SDs, quartiles and percentages in the display table only.

    Returns
    -------
    Table1Result

    Raises
    ------
    InputError
        A column named that is not in ``frame``; an outcome that is missing or not 0/1; a
        patient without a cohort.

    Notes
    -----
    Missing values (NaN, empty or blank text) are left out per variable and counted per group
    (``missing`` rows) and per scope (``n_missing``). Within a cohort the outcome groups are
    compared (categorical: :func:`compare_categorical`; continuous: :func:`compare_continuous`);
    with two or more cohorts, ``between_cohorts`` compares the cohorts over all patients. A
    variable constant within a scope, or with values in only one group, is ``not testable``
    (NaN p). Matches, test by test, R ``chisq.test``, ``fisher.test``, ``shapiro.test``,
    ``t.test``, ``wilcox.test`` (and ``oneway.test``, ``kruskal.test`` for 3+ cohorts).

    References
    ----------
    Yates F. J R Stat Soc Suppl 1934;1:217-235. Fisher RA. J R Stat Soc 1922;85:87-94.
    Shapiro SS, Wilk MB. Biometrika 1965;52:591-611. Welch BL. Biometrika 1947;34:28-35.
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"table1 needs a pandas DataFrame, got {type(frame).__name__}")
    y = outcome_values(frame, outcome)
    cohorts = cohort_values(frame, cohort)
    forced = check_categorical(frame, categorical)
    names = candidate_variables(frame, variables, exclude={outcome, cohort})
    cohort_names = in_order(cohorts)
    groups = (0, 1)
    label = (lambda c, g: f"{outcome}={g}") if cohort is None else (lambda c, g: f"{c}: {outcome}={g}")
    cells = [(c, g, label(c, g), (cohorts == c) & (y == g)) for c in cohort_names for g in groups]

    display = [{"variable": "n", "level": "", **{lab: str(int(m.sum())) for _, _, lab, m in cells}}]
    # (scope, its patients, the groups compared within it)
    scopes = [(c, cohorts == c, [(cohorts == c) & (y == g) for g in groups]) for c in cohort_names]
    if len(cohort_names) >= 2:
        if BETWEEN in cohort_names:
            raise InputError(f"cohort column {cohort!r} has a cohort named {BETWEEN!r}, the scope name of the "
                             "comparison between cohorts; rename that cohort")
        scopes.append((BETWEEN, np.ones(len(frame), dtype=bool), [cohorts == c for c in cohort_names]))
    tests, summary = [], []
    for name in names:
        col = parse_column(frame, name, name in forced)
        formats = {}
        for scope, inside, parts in scopes:
            present = ~col.missing
            if col.categorical:
                counts = np.array([[np.sum(part & present & (col.levels == lv)) for part in parts]
                                   for lv in col.level_order]).reshape(len(col.level_order), len(parts))
                result = compare_categorical(counts)
            else:
                result = compare_continuous([col.numbers[part & present] for part in parts], equal_var=equal_var)
                if scope != BETWEEN and result.test != NOT_TESTABLE:
                    formats[scope] = MEAN_SD if result.test.endswith("t test") else MEDIAN_IQR
            tests.append({"variable": name, "scope": scope, "test": result.test, "statistic": result.statistic,
                          "p_value": result.p_value, "df": result.df, "n": int(np.sum(inside & present)),
                          "n_missing": int(np.sum(inside & col.missing)), "normality_p": result.normality_p})
        display.extend(_display_rows(col, cells, formats, decimals, summary))
    table = pd.DataFrame(display, columns=["variable", "level", *[lab for _, _, lab, _ in cells]])
    return Table1Result(table, pd.DataFrame(tests, columns=TEST_COLUMNS),
                        pd.DataFrame(summary, columns=SUMMARY_COLUMNS))


def _display_rows(col: ParsedColumn, cells, formats: dict, decimals: int, summary: list) -> list[dict]:
    rows = []
    present = ~col.missing
    if col.categorical:
        for lv in col.level_order:
            row = {"variable": col.name, "level": lv}
            for c, g, lab, m in cells:
                k, total = int(np.sum(m & (col.levels == lv))), int(np.sum(m & present))
                pct = 100.0 * k / total if total else float("nan")
                row[lab] = f"{k} ({_fmt(pct, decimals)}%)" if total else "0"
                summary.append({"variable": col.name, "level": lv, "cohort": c, "group": g, "n": k, "percent": pct})
            rows.append(row)
    else:
        used = [f for f in (MEAN_SD, MEDIAN_IQR) if f in formats.values()] or [MEDIAN_IQR]
        stats_by_cell = {}
        for c, g, lab, m in cells:
            v = col.numbers[m & present]
            if v.size:
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                sd = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
                stats_by_cell[lab] = (float(np.mean(v)), sd, float(med), float(q1), float(q3))
            else:
                stats_by_cell[lab] = (float("nan"),) * 5
            mean, sd, med, q1, q3 = stats_by_cell[lab]
            summary.append({"variable": col.name, "level": "", "cohort": c, "group": g, "n": int(v.size),
                            "mean": mean, "sd": sd, "median": med, "q1": q1, "q3": q3})
        for f in used:
            row = {"variable": col.name, "level": f}
            for _, _, lab, _ in cells:
                mean, sd, med, q1, q3 = stats_by_cell[lab]
                if f == MEAN_SD:
                    row[lab] = f"{_fmt(mean, decimals)} ± {_fmt(sd, decimals)}"
                else:
                    row[lab] = f"{_fmt(med, decimals)} ({_fmt(q1, decimals)}, {_fmt(q3, decimals)})"
            rows.append(row)
    if col.missing.any():
        rows.append({"variable": col.name, "level": "missing",
                     **{lab: str(int(np.sum(m & col.missing))) for _, _, lab, m in cells}})
    return rows
