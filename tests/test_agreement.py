"""Reader agreement (Cohen's kappa, ICC) against pingouin, statsmodels, scikit-learn and R psych.

R psych's values are committed in tests/r/psych_agreement.csv, written by tests/r/psych_agreement.R
from the committed case files tests/r/cases/psych_*.csv (see tests/r/README.md), so no R is needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

from dlr.core.stats.agreement import ICC_FORMS, cohen_kappa, icc, kappa_table
from dlr.core.errors import UndefinedStatisticWarning
from dlr.core.errors import InputError

from conftest import read_long_csv

R_DIR = Path(__file__).parent / "r"
PSYCH_KAPPA_CASE = R_DIR / "cases" / "psych_kappa_readers.csv"
PSYCH_ICC_CASE = R_DIR / "cases" / "psych_icc_ratings.csv"
PSYCH_VALUES = R_DIR / "psych_agreement.csv"

# pingouin 0.7 names the forms as McGraw & Wong (A: absolute agreement, C: consistency)
PINGOUIN_TYPE = {"ICC(1,1)": "ICC(1,1)", "ICC(2,1)": "ICC(A,1)", "ICC(3,1)": "ICC(C,1)", "ICC(1,k)": "ICC(1,k)",
                 "ICC(2,k)": "ICC(A,k)", "ICC(3,k)": "ICC(C,k)"}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore:The inplace keyword")


def readers(n=80, seed=0, flip=0.12):
    rng = np.random.default_rng(seed)
    a = rng.choice(["Absent", "Present", "Equivocal"], n, p=[0.5, 0.4, 0.1])
    b = np.where(rng.random(n) < flip, rng.choice(["Absent", "Present", "Equivocal"], n), a)
    return a, b


def ratings(n=30, k=2, n_features=5, seed=1):
    rng = np.random.default_rng(seed)
    subject = rng.normal(size=(n, 1, n_features)) * np.linspace(0.5, 3, n_features)
    rater = rng.normal(size=(1, k, n_features)) * 0.3
    return subject + rater + rng.normal(size=(n, k, n_features))


def test_kappa_equals_sklearn_and_statsmodels():
    a, b = readers()
    res = cohen_kappa(a, b)
    assert_allclose(res.estimate, cohen_kappa_score(a, b), rtol=1e-12)
    cats = sorted(set(a) | set(b))
    table = pd.crosstab(pd.Categorical(a, cats), pd.Categorical(b, cats), dropna=False).to_numpy()
    ref = sm_cohens_kappa(table)
    assert_allclose(res.estimate, ref.kappa, rtol=1e-12)
    assert_allclose(res.se, ref.std_kappa, rtol=1e-10)


def test_kappa_perfect_missing_and_degenerate():
    a = ["x", "y", "y", None, "x", ""]
    b = ["x", "y", "y", "y", "x", "x"]
    res = cohen_kappa(a, b)
    assert res.n == 4 and res.estimate == 1.0 and res.ci_high == 1.0
    with pytest.warns(UndefinedStatisticWarning):
        assert np.isnan(cohen_kappa(["x"] * 5, ["x"] * 5).estimate)
    with pytest.raises(InputError, match="different numbers"):
        cohen_kappa(["x"], ["x", "y"])


@pytest.mark.parametrize("form", ICC_FORMS)
def test_icc_equals_pingouin(form):
    x = ratings()
    res = icc(x, form=form)
    for f in range(x.shape[2]):
        long = pd.DataFrame({"subject": np.repeat(np.arange(x.shape[0]), x.shape[1]),
                             "rater": np.tile(np.arange(x.shape[1]), x.shape[0]),
                             "value": x[:, :, f].ravel()})
        ref = pingouin.intraclass_corr(long, targets="subject", raters="rater", ratings="value").set_index("Type")
        row = ref.loc[PINGOUIN_TYPE[form]]
        assert_allclose(res.estimate[f], row["ICC"], rtol=1e-10)
        assert_allclose([res.ci_low[f], res.ci_high[f]], row["CI95"], atol=0.006)  # pingouin rounds CIs to 2 dp


def test_icc_three_raters_aliases_and_bad_input():
    x = ratings(n=12, k=3, n_features=2, seed=2)
    assert icc(x).estimate.shape == (2,)
    assert_allclose(icc(x, form="ICC(A,1)").estimate, icc(x, form="ICC(2,1)").estimate)
    with pytest.raises(InputError, match="form"):
        icc(x, form="ICC(4,1)")
    with pytest.raises(InputError, match="NaN"):
        icc(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.warns(UndefinedStatisticWarning):
        icc(np.ones((5, 2)))


def _psych_cases():
    """The generated cases of the psych comparison: two readers' categories, two raters' values."""
    a, b = readers(n=60, seed=3)
    x = ratings(n=25, k=2, n_features=1, seed=4)[:, :, 0]
    return pd.DataFrame({"a": a, "b": b}), pd.DataFrame(x, columns=["r1", "r2"])


def write_r_cases(cases_dir: Path) -> None:
    """Write the psych cases (tests/r/make_reference.py --write-cases); 17 significant digits."""
    kappa, icc_ratings = _psych_cases()
    kappa.to_csv(cases_dir / PSYCH_KAPPA_CASE.name, index=False, lineterminator="\n")
    icc_ratings.to_csv(cases_dir / PSYCH_ICC_CASE.name, index=False, float_format="%.17g", lineterminator="\n")


def _read_psych_cases():
    kappa = pd.read_csv(PSYCH_KAPPA_CASE, keep_default_na=False)
    # Python's float() on the 17-digit text: the doubles psych_agreement.R read (make_reference.py checks)
    return kappa, pd.read_csv(PSYCH_ICC_CASE, converters={"r1": float, "r2": float})


def test_psych_cases_are_the_generated_cases():
    """The committed case files that psych_agreement.R read hold exactly the generated values."""
    for committed, generated in zip(_read_psych_cases(), _psych_cases()):
        pd.testing.assert_frame_equal(committed, generated, check_exact=True)


def test_kappa_and_icc_match_r_psych():
    k, x = _read_psych_cases()
    a, b, x = k.a.to_numpy(), k.b.to_numpy(), x[["r1", "r2"]].to_numpy()
    r = read_long_csv(PSYCH_VALUES)
    res = cohen_kappa(a, b)
    # lv <- sort(unique(c(k$a, k$b))); ck <- cohen.kappa(cbind(factor(k$a, lv), factor(k$b, lv)))
    # ck$kappa and ck$var.kappa
    assert_allclose(res.estimate, r["kappa"]["kappa"], rtol=1e-10)
    assert_allclose(res.se ** 2, r["kappa"]["var_kappa"], rtol=1e-8)
    # ic <- ICC(x, lmer = FALSE)$results: ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k with F-based CIs
    # ic$ICC, ic$`lower bound`, ic$`upper bound`
    for form, psych_type in (("ICC(1,1)", "ICC1"), ("ICC(2,1)", "ICC2"), ("ICC(3,1)", "ICC3"),
                             ("ICC(1,k)", "ICC1k"), ("ICC(2,k)", "ICC2k"), ("ICC(3,k)", "ICC3k")):
        res_i, ri = icc(x, form=form), r[psych_type]
        assert_allclose(res_i.estimate[0], ri["icc"], rtol=1e-10, err_msg=form)
        assert_allclose([res_i.ci_low[0], res_i.ci_high[0]], [ri["lower"], ri["upper"]], rtol=1e-8, err_msg=form)


def test_kappa_table_per_feature():
    a, b = readers(n=50, seed=6, flip=0.05)
    frame = pd.DataFrame({"margin": a, "margin_r2": b, "capsule": a, "capsule_r2": a})
    table = kappa_table(frame, {"margin": "margin_r2", "capsule": "capsule_r2"}).set_index("feature")
    assert table.loc["capsule", "kappa"] == 1.0 and table.loc["capsule", "agreement"] == "excellent"
    assert_allclose(table.loc["margin", "kappa"], cohen_kappa(a, b).estimate)
    with pytest.raises(InputError, match="margin_r3"):
        kappa_table(frame, {"margin": "margin_r3"})
