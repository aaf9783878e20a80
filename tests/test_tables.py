"""Clinical tables (analysis/table1.py, core/stats/group_tests.py, modeling/cr_factors.py): Table 1 tests and summaries, Table 3 logistic
regressions, against the seed paper's printed values, hand calculations, scipy, statsmodels
and (optionally) R."""
from __future__ import annotations

import itertools
import json
from decimal import ROUND_HALF_UP, Decimal
import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats

from dlr.analysis.table1 import BETWEEN, MEAN_SD, MEDIAN_IQR, TEST_COLUMNS, table1
from dlr.core.errors import InputError, UndefinedStatisticWarning
import dlr.core.stats.group_tests as group_tests
from dlr.core.stats.group_tests import (CHI2, CHI2_NO_FISHER, CHI2_YATES, FISHER, NOT_TESTABLE, compare_categorical,
                                    compare_continuous, fisher_exact_2xc, mann_whitney)
from dlr.modeling.cr_factors import multivariate_logistic, select_cr_factors, univariate_logistic

from conftest import DATA, read_long_csv

PAPER = DATA / "reference" / "paper_table1_training"

# Literal samples shared with the R calls quoted beside the numbers below.
X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30, 2.07, 0.92, 2.61]
Y = [0.88, 0.65, 0.60, 2.05, 1.06, 1.29, 1.07, 3.14, 1.31, 0.44, 0.71, 0.12, 0.37, 0.59, 1.36]  # skewed, no ties
Z = [1.20, 0.90, 1.50, 1.10, 0.70, 1.30, 1.00, 1.60, 0.80, 1.25, 1.05, 0.95, 1.40]  # near-normal


def _frame(counts: dict, *, variable="v", outcome="y") -> pd.DataFrame:
    """Patients from {(level, outcome): count}."""
    rows = [(lv, g) for (lv, g), k in counts.items() for _ in range(k)]
    return pd.DataFrame(rows, columns=[variable, outcome])


def _two_groups(a, b, *, cohort=None) -> pd.DataFrame:
    frame = pd.DataFrame({"x": list(a) + list(b), "y": [0] * len(a) + [1] * len(b)})
    if cohort is not None:
        frame["cohort"] = cohort
    return frame


def _row(result, variable, scope):
    rows = result.tests[(result.tests.variable == variable) & (result.tests.scope == scope)]
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------------------------------------
# Seed paper (tests/data/reference/paper_table1_training)


@pytest.fixture(scope="module")
def paper():
    return pd.read_csv(PAPER / "clinical.csv")


def test_table1_reproduces_paper_training_p_values(paper):
    expected = json.loads((PAPER / "expected.json").read_text())
    result = table1(paper, outcome="early_recurrence", cohort="cohort")
    assert list(result.tests.columns[:5]) == ["variable", "scope", "test", "statistic", "p_value"]
    assert len(expected) == 17
    got = np.array([_row(result, e["variable"], e["scope"]).p_value for e in expected])
    want = np.array([e["p_value"] for e in expected])
    assert_allclose(got, want, atol=0.0015, rtol=0)  # the paper prints 3 decimals
    assert _row(result, "child_pugh", "training").test == FISHER  # expected count 4.9 < 5
    assert _row(result, "afp", "training").test == CHI2_YATES
    assert (result.tests.n == 132).all() and (result.tests.n_missing == 0).all()
    assert set(result.tests.scope) == {"training"}  # one cohort: no between_cohorts rows


def test_table1_reads_text_csv_the_same(paper):
    as_text = pd.read_csv(PAPER / "clinical.csv", dtype=str, keep_default_na=False)
    a = table1(paper, outcome="early_recurrence", cohort="cohort")
    b = table1(as_text, outcome="early_recurrence", cohort="cohort")
    pd.testing.assert_frame_equal(a.tests, b.tests)
    pd.testing.assert_frame_equal(a.table, b.table)


def _half_up(x: float, decimals: int) -> float:
    return float(Decimal(str(x)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def test_table3_univariate_reproduces_paper_direction_free(paper):
    # Each row is a 2 x 2 table; the paper's reference level varies, so compare up to inversion.
    expected = json.loads((PAPER / "expected_table3.json").read_text())["univariate"]
    result = univariate_logistic(paper, outcome="early_recurrence", cohort="cohort", dev_cohort="training")
    assert list(result.table.columns) == ["variable", "level", "reference", "odds_ratio", "ci_low", "ci_high",
                                          "p_value"]
    assert len(expected) == 17 and len(result.table) == 17
    p_diff = {e["variable"]: abs(result.table.set_index("variable").p_value[e["variable"]] - e["p_value"])
              for e in expected}
    assert [name for name, d in p_diff.items() if d > 0.005] == ["cirrhosis"]
    for e in expected:
        row = result.table.set_index("variable").loc[e["variable"]]
        odds, low, high = row.odds_ratio, row.ci_low, row.ci_high
        if (math.log(odds) > 0) != (math.log(e["odds_ratio"]) > 0):
            odds, low, high = 1 / odds, 1 / high, 1 / low
        assert abs(abs(math.log(round(odds, 2))) - abs(math.log(e["odds_ratio"]))) <= 0.01, e["variable"]
        # measured: every odds ratio and CI bound equals the printed one after rounding (stricter than asked)
        assert_allclose([round(odds, 2), round(low, 2), round(high, 2)], [e["odds_ratio"], e["ci_low"], e["ci_high"]],
                        atol=1e-9, rtol=0, err_msg=e["variable"])
        # The paper's p values are SPSS's 3-decimal output rounded again to 2 decimals (half up):
        # cirrhosis has Wald p 0.5948 -> "0.595" -> 0.60. That model holds for all 17 rows.
        assert _half_up(_half_up(row.p_value, 3), 2) == e["p_value"], e["variable"]


def test_table3_reference_level_is_choosable(paper):
    default = univariate_logistic(paper, outcome="early_recurrence", variables=["gender"])
    flipped = univariate_logistic(paper, outcome="early_recurrence", variables=["gender"],
                                  reference={"gender": "Male"})
    a, b = default.table.iloc[0], flipped.table.iloc[0]
    assert (a.level, a.reference, b.level, b.reference) == ("Male", "Female", "Female", "Male")
    assert_allclose([b.odds_ratio, b.ci_low, b.ci_high], [1 / a.odds_ratio, 1 / a.ci_high, 1 / a.ci_low], rtol=1e-9)
    assert_allclose(b.p_value, a.p_value, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Categorical tests


def test_yates_chi_squared_by_hand():
    # a, b, c, d = 10, 20, 30, 40: X^2 = N (|ad - bc| - N/2)^2 / (r1 r2 c1 c2)
    #   = 100 * (200 - 50)^2 / (30 * 70 * 40 * 60) = 25/56; expected counts 12, 18, 28, 42 (>= 5).
    # R: chisq.test(matrix(c(10, 30, 20, 40), 2)) -> X-squared = 0.446428571428571, p-value = 0.5040358664525
    frame = _frame({("a", 0): 10, ("a", 1): 20, ("b", 0): 30, ("b", 1): 40})
    row = _row(table1(frame, outcome="y"), "v", "all")
    assert row.test == CHI2_YATES
    assert_allclose(row.statistic, 25 / 56, rtol=1e-12)
    assert_allclose(row.p_value, 0.5040358664525, rtol=1e-10)
    assert row.df == 1


def test_fisher_when_an_expected_count_is_below_5():
    # R: fisher.test(matrix(c(8, 2, 1, 5), 2))$p.value = 0.03496503496503494
    frame = _frame({("a", 0): 8, ("a", 1): 1, ("b", 0): 2, ("b", 1): 5})
    row = _row(table1(frame, outcome="y"), "v", "all")
    assert row.test == FISHER and np.isnan(row.statistic)
    assert_allclose(row.p_value, stats.fisher_exact([[8, 1], [2, 5]]).pvalue, rtol=1e-12)
    assert_allclose(row.p_value, 0.03496503496503494, rtol=1e-10)


def _fisher_brute_force(table) -> float:
    """Exact rational enumeration of every 2 x c table with the same margins."""
    table = np.asarray(table)
    cols, row, n = table.sum(axis=0), int(table[0].sum()), int(table.sum())

    def prob(first):
        return Fraction(math.prod(math.comb(int(c), int(x)) for c, x in zip(cols, first)), math.comb(n, row))

    observed = prob(table[0])
    total = Fraction(0)
    for first in itertools.product(*(range(int(c) + 1) for c in cols)):
        if sum(first) == row and prob(first) <= observed:
            total += prob(first)
    return float(total)


@pytest.mark.parametrize("table,r_value", [
    ([[8, 2, 3], [1, 5, 4]], 0.057147052705000354),  # R: fisher.test(matrix(c(8,1,2,5,3,4), 2))$p.value
    ([[3, 2, 4], [1, 7, 0]], 0.025586178527354991),  # R: fisher.test(matrix(c(3,1,2,7,4,0), 2))$p.value
    ([[8, 2], [1, 5]], 0.03496503496503494),
])
def test_fisher_2xc_equals_brute_force_and_r(table, r_value):
    assert_allclose(fisher_exact_2xc(table), _fisher_brute_force(table), rtol=1e-12)
    assert_allclose(fisher_exact_2xc(np.asarray(table).T), r_value, rtol=1e-10)


def test_fisher_2xc_on_random_tables_equals_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        table = rng.integers(0, 6, size=(2, int(rng.integers(2, 5))))
        table[:, table.sum(axis=0) == 0] = 1
        assert_allclose(fisher_exact_2xc(table), _fisher_brute_force(table), rtol=1e-9)


def test_rxc_table_with_small_expected_falls_back_to_labelled_chi_squared(monkeypatch):
    table = np.array([[3, 1, 0], [1, 4, 2], [0, 2, 5]])
    result = compare_categorical(table)
    assert result.test == CHI2_NO_FISHER
    assert_allclose(result.p_value, stats.chi2_contingency(table).pvalue, rtol=1e-12)
    monkeypatch.setattr(group_tests, "FISHER_MAX_TABLES", 10)  # enumeration too large -> same honest label
    assert compare_categorical([[8, 2, 3], [1, 5, 4]]).test == CHI2_NO_FISHER


def test_large_rxc_table_uses_plain_chi_squared():
    table = np.array([[20, 15], [12, 30], [25, 18]])
    result = compare_categorical(table)
    assert result.test == CHI2 and result.df == 2
    assert_allclose(result.statistic, stats.chi2_contingency(table).statistic, rtol=1e-12)


def test_empty_levels_are_dropped_and_single_level_is_not_testable():
    assert compare_categorical([[15, 16], [0, 0], [17, 19]]).test == CHI2_YATES
    assert compare_categorical([[5, 6], [0, 0]]).test == NOT_TESTABLE


# ---------------------------------------------------------------------------------------------
# Continuous tests


def test_t_test_when_both_groups_look_normal():
    # R: shapiro.test(X)$p.value = 0.9974, shapiro.test(Z)$p.value = 0.9901
    # R: t.test(X, Z)                  -> t = 2.994432109373872, df = 13.89611262549815, p = 0.009723804744978453
    # R: t.test(X, Z, var.equal = TRUE) -> t = 3.089560280015949, df = 23, p = 0.0051739492281077477
    result = table1(_two_groups(X, Z), outcome="y")
    row = _row(result, "x", "all")
    assert row.test == "Welch t test"
    assert_allclose([row.statistic, row.df, row.p_value], [2.994432109373872, 13.89611262549815, 0.009723804744978453],
                    rtol=1e-9)
    assert_allclose(row.p_value, stats.ttest_ind(X, Z, equal_var=False).pvalue, rtol=1e-12)
    student = _row(table1(_two_groups(X, Z), outcome="y", equal_var=True), "x", "all")
    assert student.test == "Student t test"
    assert_allclose([student.statistic, student.df, student.p_value], [3.089560280015949, 23, 0.0051739492281077477],
                    rtol=1e-9)
    shown = result.table.set_index("variable").loc["x"]
    assert shown.level == MEAN_SD
    assert shown["y=0"] == f"{np.mean(X):.1f} ± {np.std(X, ddof=1):.1f}"


def test_mann_whitney_exact_as_r_below_50_without_ties():
    # R: shapiro.test(Y)$p.value = 0.0226 (< 0.05, so Mann-Whitney)
    # R: wilcox.test(X, Y) -> W = 143, p-value = 0.008709688182026316 (exact: n < 50, no ties)
    result = table1(_two_groups(X, Y), outcome="y")
    row = _row(result, "x", "all")
    assert row.test == "Mann-Whitney U"
    assert_allclose([row.statistic, row.p_value], [143, 0.008709688182026316], rtol=1e-10)
    assert_allclose(row.p_value, stats.mannwhitneyu(X, Y, method="exact").pvalue, rtol=1e-12)
    assert_allclose(row.normality_p, stats.shapiro(Y).pvalue, rtol=1e-12)
    shown = result.table.set_index("variable").loc["x"]
    q1, med, q3 = np.percentile(X, [25, 50, 75])
    assert shown.level == MEDIAN_IQR and shown["y=0"] == f"{med:.1f} ({q1:.1f}, {q3:.1f})"


def test_mann_whitney_with_ties_uses_normal_approximation_with_correction():
    # R: wilcox.test(xt, yt) -> W = 28, p-value = 0.0068853918804839325 (ties: normal approximation)
    xt = [1, 2, 2, 3, 4, 4, 5, 7, 9, 12, 3, 2]
    yt = [3, 5, 6, 6, 8, 9, 9, 11, 14, 15, 20, 6, 7]
    w, p = mann_whitney(xt, yt)
    assert_allclose([w, p], [28, 0.0068853918804839325], rtol=1e-10)
    assert_allclose(p, stats.mannwhitneyu(xt, yt, method="asymptotic", use_continuity=True).pvalue, rtol=1e-12)


def test_three_cohorts_compared_by_kruskal_wallis_or_anova():
    rng = np.random.default_rng(5)
    skewed = [rng.exponential(1, 30) for _ in range(3)]
    res = compare_continuous(skewed)
    assert res.test == "Kruskal-Wallis"
    assert_allclose(res.p_value, stats.kruskal(*skewed).pvalue, rtol=1e-12)
    # R: oneway.test(v ~ g) on X, Z, Z + 0.3 -> F = 6.6067435869607190, num df = 2, p-value = 0.0059443119941611621
    res = compare_continuous([X, Z, np.array(Z) + 0.3])
    assert res.test == "Welch one-way ANOVA"
    assert_allclose([res.statistic, res.p_value], [6.6067435869607190, 0.0059443119941611621], rtol=1e-9)
    res = compare_continuous([X, Z, np.array(Z) + 0.3], equal_var=True)
    assert res.test == "one-way ANOVA"
    assert_allclose(res.p_value, stats.f_oneway(X, Z, np.array(Z) + 0.3).pvalue, rtol=1e-12)


def test_mixed_formats_across_cohorts_show_both_rows():
    frame = pd.concat([_two_groups(X, Z, cohort="training"), _two_groups(X, Y, cohort="validation")])
    result = table1(frame, outcome="y", cohort="cohort")
    assert _row(result, "x", "training").test == "Welch t test"
    assert _row(result, "x", "validation").test == "Mann-Whitney U"
    assert list(result.table.level[result.table.variable == "x"]) == [MEAN_SD, MEDIAN_IQR]
    between = _row(result, "x", BETWEEN)
    assert between.n == len(frame)
    train_all, valid_all = X + Z, X + Y
    assert between.test == compare_continuous([train_all, valid_all]).test
    assert_allclose(between.p_value, compare_continuous([train_all, valid_all]).p_value, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Table 1 structure, missing values, untestable variables


def test_constant_variable_and_single_group_are_not_testable():
    frame = pd.DataFrame({"y": [0, 0, 1, 1, 0, 1], "const": [3.0] * 6, "flag": ["a"] * 6,
                          "only_cases": [np.nan, np.nan, 1.0, 2.0, np.nan, 4.0]})
    result = table1(frame, outcome="y")
    for name in ("const", "flag", "only_cases"):
        row = _row(result, name, "all")
        assert row.test == NOT_TESTABLE and np.isnan(row.p_value) and np.isnan(row.statistic)


def test_missing_values_are_left_out_and_counted():
    frame = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(10)],
        "cohort": ["a"] * 6 + ["b"] * 4,
        "y": [0, 0, 0, 1, 1, 1, 0, 0, 1, 1],
        "grade": ["G1", "", "G2", "G1", None, "G2", "G1", " ", "G2", "G2"],
        "size": [1.0, 2.0, np.nan, 3.0, 4.0, 5.0, np.nan, 2.5, 3.5, np.nan],
    })
    result = table1(frame, outcome="y", cohort="cohort")
    assert "patient_id" not in set(result.tests.variable)
    assert _row(result, "grade", "a").n_missing == 2 and _row(result, "grade", "a").n == 4
    assert _row(result, "grade", "b").n_missing == 1
    assert _row(result, "grade", BETWEEN).n_missing == 3 and _row(result, "grade", BETWEEN).n == 7
    known = frame[frame.grade.str.strip().fillna("") != ""]
    between = compare_categorical(pd.crosstab(known.grade, known.cohort).to_numpy())  # cohorts compared
    assert _row(result, "grade", BETWEEN).test == between.test == FISHER
    assert_allclose(_row(result, "grade", BETWEEN).p_value, between.p_value, rtol=1e-12)
    assert _row(result, "size", "a").n_missing == 1 and _row(result, "size", "b").n_missing == 2
    shown = result.table.set_index(["variable", "level"])
    assert list(shown.loc[("grade", "missing")]) == ["1", "1", "1", "0"]
    assert list(shown.loc[("size", "missing")]) == ["1", "0", "1", "1"]
    assert shown.loc[("grade", "G1"), "a: y=0"] == "1 (50.0%)"  # percent of the non-missing
    assert list(result.table.iloc[0]) == ["n", "", "3", "3", "2", "2"]
    s = result.summary
    g1 = s[(s.variable == "grade") & (s.level == "G1") & (s.cohort == "a") & (s.group == 0)].iloc[0]
    assert g1.n == 1 and g1.percent == 50.0


def test_text_columns_are_categorical_and_categorical_forces_others():
    frame = pd.DataFrame({"y": [0, 1] * 10, "stage": ["1", "2", "3", "x"] * 5, "score": [str(i) for i in range(20)],
                          "code": [0, 1, 1, 0, 2] * 4})
    result = table1(frame, outcome="y")
    assert set(result.table.level[result.table.variable == "stage"]) == {"1", "2", "3", "x"}
    assert list(result.table.level[result.table.variable == "score"])[0] in (MEAN_SD, MEDIAN_IQR)
    forced = table1(frame, outcome="y", categorical=["code"])
    assert list(forced.table.level[forced.table.variable == "code"]) == ["0", "1", "2"]
    assert list(forced.tests.columns) == TEST_COLUMNS


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_input_error_naming_the_column():
    frame = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "y": [0, 1, 2], "v": ["a", "b", "a"]})
    with pytest.raises(InputError, match="'recurrence'"):
        table1(frame, outcome="recurrence")
    with pytest.raises(InputError, match=r"'y' must be 0 or 1.*'2'.*P3"):
        table1(frame, outcome="y")
    good = frame.assign(y=[0, 1, 1])
    with pytest.raises(InputError, match="'nope'"):
        table1(good, outcome="y", variables=["nope"])
    with pytest.raises(InputError, match="'site'"):
        table1(good, outcome="y", cohort="site")
    with pytest.raises(InputError, match="'y'.*empty.*P2"):
        table1(good.assign(y=[0, None, 1]), outcome="y")
    with pytest.raises(InputError, match="'gone'"):
        table1(good, outcome="y", categorical=["gone"])
    with pytest.raises(InputError, match="'validation'.*'cohort'"):
        univariate_logistic(good.assign(cohort="training"), outcome="y", cohort="cohort", dev_cohort="validation")
    with pytest.raises(InputError, match="'c'.*'v'.*a, b"):
        univariate_logistic(good, outcome="y", variables=["v"], reference={"v": "c"})
    partial = pd.DataFrame({"y": [0, 1, 0, 1, 0, 1], "v": ["a", "a", "b", "b", "c", "c"],
                            "w": [None, None, 1.0, 2.0, 3.0, 1.0]})
    with pytest.raises(InputError, match="'a'.*'v'.*complete data.*b, c"):  # 'a' only where w is missing
        multivariate_logistic(partial, outcome="y", variables=["v", "w"], reference={"v": "a"})
    assert issubclass(InputError, ValueError)


# ---------------------------------------------------------------------------------------------
# Logistic regression


def _logistic_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    stage = rng.choice(["I", "II", "III"], n)
    noise = rng.normal(size=n)
    eta = -0.5 + 0.04 * (age - 60) + np.select([stage == "II", stage == "III"], [0.6, 1.4], 0.0)
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"age": age, "stage": stage, "noise": noise, "y": y})


def test_multivariate_logistic_equals_statsmodels_glm():
    data = _logistic_data()
    result = multivariate_logistic(data, outcome="y", variables=["age", "stage", "noise"])
    design = pd.DataFrame({"const": 1.0, "age": data.age, "II": (data.stage == "II") * 1.0,
                           "III": (data.stage == "III") * 1.0, "noise": data.noise})
    fit = sm.GLM(data.y, design, family=sm.families.Binomial()).fit(tol=1e-12)
    ci = fit.conf_int()
    t = result.table
    assert list(zip(t.variable, t.level, t.reference)) == [("age", "", ""), ("stage", "II", "I"),
                                                          ("stage", "III", "I"), ("noise", "", "")]
    terms = ["age", "II", "III", "noise"]
    assert_allclose(t.odds_ratio, np.exp(fit.params[terms]), rtol=1e-7)
    assert_allclose(t.ci_low, np.exp(ci.loc[terms, 0]), rtol=1e-7)
    assert_allclose(t.ci_high, np.exp(ci.loc[terms, 1]), rtol=1e-7)
    assert_allclose(t.p_value, fit.pvalues[terms], rtol=1e-6)
    joint = fit.wald_test("II = 0, III = 0", scalar=True)
    assert_allclose(result.variable_p["stage"], joint.pvalue, rtol=1e-6)
    assert result.fits.iloc[0].n == 300 and result.fits.iloc[0].status == "ok"


def test_logistic_uses_development_cohort_and_complete_cases():
    data = _logistic_data()
    data["cohort"] = np.where(np.arange(300) < 200, "training", "validation")
    data.loc[[3, 7, 250], "age"] = np.nan
    result = univariate_logistic(data, outcome="y", variables=["age", "stage"], cohort="cohort")
    fits = result.fits.set_index("model")
    assert fits.loc["age", "n"] == 198 and fits.loc["age", "n_missing"] == 2
    assert fits.loc["stage", "n"] == 200 and fits.loc["stage", "n_missing"] == 0
    alone = univariate_logistic(data[data.cohort == "training"], outcome="y", variables=["age", "stage"])
    pd.testing.assert_frame_equal(result.table, alone.table)


def test_separation_and_singular_fits_give_nan_with_a_warning():
    frame = pd.DataFrame({"y": [0, 0, 0, 0, 1, 1, 1, 1], "perfect": ["a", "a", "a", "a", "b", "b", "b", "b"],
                          "x": [1.0, 2, 3, 4, 2, 3, 4, 5]})
    frame["x_copy"] = frame.x * 2
    with pytest.warns(UndefinedStatisticWarning, match="'perfect': separation"):
        sep = univariate_logistic(frame, outcome="y", variables=["perfect"])
    assert sep.table[["odds_ratio", "ci_low", "ci_high", "p_value"]].isna().all().all()
    with pytest.warns(UndefinedStatisticWarning, match="singular design"):
        sing = multivariate_logistic(frame, outcome="y", variables=["x", "x_copy"])
    assert len(sing.table) == 2 and sing.table.p_value.isna().all()
    with pytest.warns(UndefinedStatisticWarning, match="constant variable"):
        const = univariate_logistic(frame.assign(c="k"), outcome="y", variables=["c"])
    assert len(const.table) == 1 and np.isnan(const.table.p_value[0])


def test_select_cr_factors_follows_the_two_step_rule():
    data = _logistic_data(n=400, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = select_cr_factors(data, outcome="y", variables=["age", "stage", "noise"])
    v = sel.variables.set_index("variable")
    assert_allclose(v.univariate_p, [sel.univariate.variable_p[n] for n in ["age", "stage", "noise"]])
    assert list(v.entered) == list(v.univariate_p < 0.05)
    entered = [n for n in v.index if v.loc[n, "entered"]]
    multi = multivariate_logistic(data, outcome="y", variables=entered)
    pd.testing.assert_frame_equal(sel.multivariate.table, multi.table)
    assert sel.selected == tuple(n for n in entered if multi.variable_p[n] < 0.05)
    assert "stage" in sel.selected and "noise" not in sel.selected
    none = select_cr_factors(data, outcome="y", variables=["noise"], alpha=1e-9)
    assert none.selected == () and none.multivariate.table.empty


# ---------------------------------------------------------------------------------------------
# R itself (base R only): values committed in tests/r/base_tests.csv, written by tests/r/base_tests.R
# from the committed case file tests/r/cases/base_tests_data.csv (see tests/r/README.md); no R needed.

R_DIR = Path(__file__).parent / "r"
BASE_TESTS_CASE = R_DIR / "cases" / "base_tests_data.csv"
BASE_TESTS_VALUES = R_DIR / "base_tests.csv"


def write_r_cases(cases_dir: Path) -> None:
    """Write the case of base_tests.R (tests/r/make_reference.py --write-cases); 17 significant digits."""
    _logistic_data(n=200, seed=7).to_csv(cases_dir / BASE_TESTS_CASE.name, index=False, float_format="%.17g",
                                         lineterminator="\n")


def _read_base_tests_case() -> pd.DataFrame:
    # Python's float() on the 17-digit text: the doubles base_tests.R read (make_reference.py checks)
    return pd.read_csv(BASE_TESTS_CASE, converters={"age": float, "noise": float})


def test_base_tests_case_is_the_generated_case():
    """The committed case file that base_tests.R read holds exactly _logistic_data(n=200, seed=7)."""
    pd.testing.assert_frame_equal(_read_base_tests_case(), _logistic_data(n=200, seed=7), check_exact=True)


def test_against_r():
    data = _read_base_tests_case()
    r = read_long_csv(BASE_TESTS_VALUES)

    t = multivariate_logistic(data, outcome="y", variables=["age", "stage", "noise"]).table
    # d <- read.csv(DATA, stringsAsFactors = TRUE)
    # fit <- glm(y ~ age + stage + noise, family = binomial, data = d, control = glm.control(epsilon = 1e-14))
    # b <- coef(summary(fit))[-1, ]; ci <- confint.default(fit)[-1, ]
    # exp(b[, 1]), exp(ci[, 1]), exp(ci[, 2]), b[, 4]
    for key, row in zip(["glm_age", "glm_stageII", "glm_stageIII", "glm_noise"], t.itertuples()):
        assert_allclose([row.odds_ratio, row.ci_low, row.ci_high, row.p_value],
                        [r[key]["or"], r[key]["ci_low"], r[key]["ci_high"], r[key]["p_value"]], rtol=1e-6)
    res = compare_categorical(pd.crosstab(data.stage, data.y).to_numpy())
    # chisq.test(table(d$stage, d$y))$statistic, $p.value
    assert_allclose([res.statistic, res.p_value], [r["chisq_stage"]["statistic"], r["chisq_stage"]["p_value"]],
                    rtol=1e-9)
    # fisher.test(matrix(c(4, 0, 3, 1, 2, 5, 1, 6), 2))$p.value
    assert_allclose(fisher_exact_2xc([[4, 3, 2, 1], [0, 1, 5, 6]]), r["fisher_2x4"]["p_value"], rtol=1e-7)
    x, z = data.age[data.y == 0], data.age[data.y == 1]
    # t.test(d$age[d$y == 0], d$age[d$y == 1])$p.value
    assert_allclose(stats.ttest_ind(x, z, equal_var=False).pvalue, r["t_age"]["p_value"], rtol=1e-9)
    w, p = mann_whitney(data.noise[data.y == 0][:30], data.noise[data.y == 1][:40])
    # w <- wilcox.test(d$noise[d$y == 0][1:30], d$noise[d$y == 1][1:40]); w$statistic, w$p.value
    assert_allclose([w, p], [r["wilcox_noise"]["statistic"], r["wilcox_noise"]["p_value"]], rtol=1e-9)


@pytest.mark.parametrize("equal_var", [True, False])
def test_batched_group_tests_equal_the_one_at_a_time_rule(equal_var):
    """compare_continuous_columns (the radiomics screen) gives, column by column, exactly what
    compare_continuous gives: normal columns (t test), skewed ones (Mann-Whitney, exact for small
    groups without ties, asymptotic with ties or 50+ values), constant and nearly constant ones."""
    from dlr.core.stats.group_tests import compare_continuous_columns

    rng = np.random.default_rng(11)
    seen = set()
    for n0, n1 in ((12, 9), (60, 55), (2, 30)):
        g0 = np.column_stack([rng.normal(size=n0), rng.exponential(size=n0) ** 3, np.round(rng.normal(size=n0)),
                              np.ones(n0), rng.normal(5, 2, n0), np.r_[np.zeros(n0 - 1), 1.0]])
        g1 = np.column_stack([rng.normal(0.8, 1, n1), rng.exponential(size=n1) ** 3 + 1, np.round(rng.normal(1, 1, n1)),
                              np.ones(n1), rng.normal(5, 4, n1), np.zeros(n1)])
        batched = compare_continuous_columns(g0, g1, equal_var=equal_var)
        single = [compare_continuous([g0[:, j], g1[:, j]], equal_var=equal_var) for j in range(g0.shape[1])]
        assert [b.test for b in batched] == [s.test for s in single]
        seen |= {s.test for s in single}
        for b, s in zip(batched, single):
            assert_allclose([b.statistic, b.p_value, b.df, b.normality_p], [s.statistic, s.p_value, s.df, s.normality_p],
                            rtol=1e-12, atol=0, equal_nan=True)
    assert seen == {NOT_TESTABLE, "Mann-Whitney U", f"{'Student' if equal_var else 'Welch'} t test"}


def test_an_odds_ratio_bound_beyond_the_float_range_is_infinite_not_a_crash():
    """Near-separation: a coefficient of 30 with SE 400 puts the upper bound at e^814."""
    import numpy as np

    from dlr.modeling.cr_factors import _Fit, _term_rows

    fit = _Fit([("ast", ">40", "<=40")], np.array([30.0]), np.array([[400.0 ** 2]]), "ok", 50, 20, 0)
    row = _term_rows(fit)[0]
    assert row["ci_high"] == float("inf") and row["odds_ratio"] == pytest.approx(np.exp(30.0))
    assert 0 <= row["ci_low"] < 1 and 0 < row["p_value"] < 1  # e^-754 underflows to 0
