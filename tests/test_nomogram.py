"""Nomograms of the logistic models against rms::nomogram, and the figure drawer.

The case is tests/test_internal_validation.py's (``tests/r/cases/internal_validation/data.csv``);
``tests/r/internal_validation.R`` wrote rms's nomogram of ``lrm(y ~ x1 + x2 + x3 + g)`` and R's
``pretty`` on ten ranges into ``tests/r/internal_validation.csv`` (its header lists the keys).
Each assertion quotes the R call. Tolerances: axis values and pretty() exactly (the same
arithmetic); points, scale and intercept 1e-6 absolute (points run 0-100); rms places the
probability ticks by interpolating on a 1000-point grid, so those are checked to 1e-3 points
against rms's positions and to 1e-6 against the exact (qlogis(p) - Intercept) * sc it also wrote.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special

from conftest import read_long_csv
from dlr.core.stats.logistic import fit_logistic
from dlr.modeling.clinical import Coding, CRModel
from dlr.modeling.nomogram import (
    AXES_COLUMNS,
    TABLE_COLUMNS,
    NomogramAxis,
    build_nomogram,
    cr_nomogram,
    logistic_pipeline_coefficients,
    numeric_axis,
    pipeline_nomogram,
    r_pretty,
)
from test_internal_validation import DATA, VALUES

POINTS_TOL = dict(rtol=0.0, atol=1e-6)


def _r() -> dict:
    return read_long_csv(VALUES)


def _series(values: dict, prefix: str) -> np.ndarray:
    out, i = [], 1
    while f"{prefix}{i}" in values:
        out.append(values[f"{prefix}{i}"])
        i += 1
    return np.array(out)


def test_pretty_is_r_pretty():
    r = _r()
    cases = [c for c in r if c.startswith("pretty_")]
    assert len(cases) == 10
    for case in cases:
        # pretty(c(lo, hi), n = 10)
        assert_array_equal(r_pretty(r[case]["lo"], r[case]["hi"], 10), _series(r[case], "v:"), err_msg=case)


def _case_nomogram():
    d = pd.read_csv(DATA, converters={"x1": float, "x2": float})
    X = np.column_stack([np.ones(len(d)), d.x1, d.x2, d.x3, d.g == "b", d.g == "c"]).astype(float)
    beta = fit_logistic(d["y"].to_numpy(dtype=float), X)
    axes = [numeric_axis("x1", beta[1], d.x1), numeric_axis("x2", beta[2], d.x2), numeric_axis("x3", beta[3], d.x3),
            NomogramAxis("g", ("a", "b", "c"), (np.nan,) * 3, (0.0, beta[4], beta[5]), "levels")]
    return beta, build_nomogram(axes, beta[0], X @ beta, model="case")


def test_points_and_axes_equal_rms_nomogram():
    beta, nom = _case_nomogram()
    r = _r()["nomogram"]
    # dd <- datadist(d); options(datadist = "dd")
    # fit <- lrm(y ~ x1 + x2 + x3 + g, data = d, x = TRUE, y = TRUE); coef(fit)
    assert_allclose(beta, [r[f"coef:{k}"] for k in ("Intercept", "x1", "x2", "x3", "g=b", "g=c")], rtol=1e-6)
    # nom <- nomogram(fit, fun = plogis); attr(nom, "info")$sc, $Intercept
    assert_allclose(nom.scale, r["sc"], rtol=1e-6)
    assert_allclose(nom.lp_at_zero, r["Intercept"], rtol=1e-6)
    table = nom.table
    for variable in ("x1", "x2", "x3", "g"):
        rows = table[table["variable"] == variable]
        # nom[[variable]][[variable]] and nom[[variable]]$points
        x, points = _series(r, f"{variable}:x:"), _series(r, f"{variable}:points:")
        if variable == "g":
            assert list(rows["level_or_value"]) == ["a", "b", "c"] and list(x) == [1, 2, 3]
        else:
            assert_array_equal(rows["value"].to_numpy(dtype=float), x)
        assert_allclose(rows["points"].to_numpy(dtype=float), points, **POINTS_TOL, err_msg=variable)
    axes = nom.axes
    # nom$total.points$x
    assert_array_equal(axes.loc[axes["axis"] == "total_points", "total_points"], _series(r, "total:"))
    # nom$lp$x.real (ticks) and nom$lp$x (their total points)
    lp = axes[axes["axis"] == "linear_predictor"]
    assert_array_equal(lp["linear_predictor"], _series(r, "lp:x:"))
    assert_allclose(lp["total_points"], _series(r, "lp:points:"), **POINTS_TOL)
    # nom$Risk$x.real (probabilities) and nom$Risk$x (their total points, rms's approx())
    prob = axes[axes["axis"] == "probability"]
    assert_allclose(prob["probability"], _series(r, "fun:p:"), rtol=1e-12)
    assert_allclose(prob["total_points"], _series(r, "fun:exact:"), **POINTS_TOL)
    assert_allclose(prob["total_points"], _series(r, "fun:points:"), rtol=0, atol=1e-3)
    assert list(table.columns) == TABLE_COLUMNS and list(axes.columns) == AXES_COLUMNS


def _total_points(nom, frame: pd.DataFrame, level_of: dict) -> np.ndarray:
    """Each patient's total points read off the nomogram as a reader would: a level's points, or
    a number's by linear interpolation between its axis ticks (points are linear in x)."""
    total = np.zeros(len(frame))
    for variable, rows in nom.table.groupby("variable", sort=False):
        if rows["kind"].iloc[0] == "levels":
            points = dict(zip(rows["level_or_value"], rows["points"]))
            total += np.array([points[level_of[variable](v)] for v in frame[variable]])
        else:
            total += np.interp(frame[variable].to_numpy(dtype=float), rows["value"], rows["points"])
    return total


def _clinical_frame(n: int = 150, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"ast": rng.lognormal(3.6, 0.5, n), "stage": rng.choice(["I", "II", "III"], n),
                          "age": rng.integers(30, 80, n).astype(float)})
    lp = -3 + 0.9 * (frame["ast"] > 40) + (frame["stage"] == "III") * 0.8 + 0.04 * frame["age"]
    frame["y"] = (rng.random(n) < special.expit(lp)).astype(int)
    return frame


CODINGS = (Coding("ast", "cut", 40.0, (), None), Coding("stage", "levels", None, ("II", "III"), "I"),
           Coding("age", "number", None, (), None))
LEVEL_OF = {"ast": lambda v: "> 40" if v > 40 else "<= 40", "stage": str}


def test_cr_nomogram_total_points_give_the_model_probability():
    """The oracle: each patient's total points, read off the axes, map back to CRModel.predict."""
    from dlr.modeling.clinical import design

    frame = _clinical_frame()
    x = design(frame, CODINGS)
    beta = fit_logistic(frame["y"].to_numpy(dtype=float), np.column_stack([np.ones(len(frame)), x.to_numpy()]))
    model = CRModel(("ast", "stage", "age"), CODINGS, tuple(x.columns), beta, None)
    nom = cr_nomogram(model, frame)
    table = nom.table
    assert list(table.loc[table["variable"] == "ast", "level_or_value"]) == ["<= 40", "> 40"]
    assert list(table.loc[table["variable"] == "stage", "level_or_value"]) == ["I", "II", "III"]
    assert table["points"].min() == 0 and np.isclose(table["points"].max(), 100)
    ages = table.loc[table["variable"] == "age", "value"]
    assert ages.min() <= frame["age"].min() and ages.max() >= frame["age"].max()  # pretty() covers the range
    total = _total_points(nom, frame, LEVEL_OF)
    assert_allclose(nom.probability(total), model.predict(frame), rtol=1e-10)


def test_rcr_pipeline_nomogram_unscales_the_coefficients():
    """RCR's pipeline (median imputer, z-scores, L2 logistic regression): coefficients on the inputs'
    own scale reproduce its decision function, and the nomogram its probabilities."""
    from dlr.modeling.classifiers import make_pipeline

    frame = _clinical_frame(seed=9)
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"AP_original_firstorder_Mean": rng.normal(100, 15, len(frame)) + 10 * frame["y"],
                      "PVP_original_glcm_Idmn": rng.normal(0.9, 0.02, len(frame)),
                      "ast>40": (frame["ast"] > 40).astype(float)})
    pipeline, _ = make_pipeline("LR", seed=0)
    pipeline.set_params(clf__C=0.3).fit(X, frame["y"])
    b0, beta = logistic_pipeline_coefficients(pipeline)
    assert_allclose(b0 + X.to_numpy() @ beta, pipeline.decision_function(X), rtol=1e-10)
    nom = pipeline_nomogram(pipeline, X, name="RCR", codings=(CODINGS[0],))
    assert list(dict.fromkeys(nom.table["variable"])) == ["AP_original_firstorder_Mean", "PVP_original_glcm_Idmn",
                                                          "ast"]
    data = X.rename(columns={"ast>40": "ast"}).assign(ast=frame["ast"])
    total = _total_points(nom, data, LEVEL_OF)
    assert_allclose(nom.probability(total), pipeline.predict_proba(X)[:, 1], rtol=1e-10)


def test_draw_nomogram_draws_every_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlr.report.figures import draw_nomogram

    _, nom = _case_nomogram()
    other = nom.table.assign(model="other")
    ax = draw_nomogram(pd.concat([nom.table, other]), nom.axes, model="case")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Points" and labels[-2] == "Total points" and "early recurrence" in labels[-1]
    assert len(labels) == 4 + 3
    texts = {t.get_text() for t in ax.texts}
    assert {"a", "b", "c", "-3.5", "6", "0.5"} <= texts
    with pytest.raises(ValueError, match="no nomogram rows for model 'RCR'"):
        draw_nomogram(nom.table, nom.axes, model="RCR")
    plt.close("all")
