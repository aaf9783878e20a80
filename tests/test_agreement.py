"""Reader agreement (Cohen's kappa, ICC) against pingouin, statsmodels, scikit-learn and R psych."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pingouin
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

from analysis.agreement import ICC_FORMS, cohen_kappa, icc, kappa_table
from analysis.discrimination import UndefinedStatisticWarning
from analysis.errors import InputError

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


@pytest.mark.r_reference
def test_kappa_and_icc_match_r_psych(tmp_path):
    if shutil.which("Rscript") is None or subprocess.run(
            ["Rscript", "-e", "library(psych)"], capture_output=True).returncode != 0:
        pytest.skip("Rscript with psych is not available")
    a, b = readers(n=60, seed=3)
    x = ratings(n=25, k=2, n_features=1, seed=4)[:, :, 0]
    pd.DataFrame({"a": a, "b": b}).to_csv(tmp_path / "k.csv", index=False)
    pd.DataFrame(x, columns=["r1", "r2"]).to_csv(tmp_path / "i.csv", index=False)
    script = f"""
    suppressMessages(library(psych))
    k <- read.csv("{tmp_path / 'k.csv'}"); x <- read.csv("{tmp_path / 'i.csv'}")
    lv <- sort(unique(c(k$a, k$b)))
    ck <- cohen.kappa(cbind(factor(k$a, lv), factor(k$b, lv)))
    ic <- ICC(x, lmer = FALSE)$results
    cat(jsonlite::toJSON(list(kappa = ck$kappa, var = ck$var.kappa, icc = ic$ICC, low = ic$`lower bound`,
        high = ic$`upper bound`, type = ic$type), digits = NA))
    """
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, encoding="utf-8")
    if out.returncode != 0 and "jsonlite" in out.stderr:
        pytest.skip("R package jsonlite is not available")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    res = cohen_kappa(a, b)
    # psych::cohen.kappa(...)$kappa and $var.kappa
    assert_allclose(res.estimate, r["kappa"][0], rtol=1e-10)
    assert_allclose(res.se ** 2, r["var"][0], rtol=1e-8)
    # psych::ICC(x)$results: ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k with F-based CIs
    for i, form in enumerate(("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")):
        res_i = icc(x, form=form)
        assert_allclose(res_i.estimate[0], r["icc"][i], rtol=1e-10, err_msg=form)
        assert_allclose([res_i.ci_low[0], res_i.ci_high[0]], [r["low"][i], r["high"][i]], rtol=1e-8, err_msg=form)


def test_kappa_table_per_feature():
    a, b = readers(n=50, seed=6, flip=0.05)
    frame = pd.DataFrame({"margin": a, "margin_r2": b, "capsule": a, "capsule_r2": a})
    table = kappa_table(frame, {"margin": "margin_r2", "capsule": "capsule_r2"}).set_index("feature")
    assert table.loc["capsule", "kappa"] == 1.0 and table.loc["capsule", "agreement"] == "excellent"
    assert_allclose(table.loc["margin", "kappa"], cohen_kappa(a, b).estimate)
    with pytest.raises(InputError, match="margin_r3"):
        kappa_table(frame, {"margin": "margin_r3"})
