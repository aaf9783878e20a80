"""The survival extension of `dlr analyze` (contract 5.1) against R's survival package.

Cases (committed under ``tests/r/cases/survival/``):

- ``rotterdam_gbsg``: the real case. ``tests/r/survival.R case`` writes it from the survival
  package's ``rotterdam`` (development cohort) and ``gbsg`` (external cohort) data: recurrence-free
  survival in months, censored at 5 years, and three models (a logistic model of recurrence
  within 2 years fitted in R on rotterdam, the Nottingham Prognostic Index, the node count); see
  the header of ``tests/r/survival.R`` for every choice.
- ``ties``: generated here (``_ties_case``): integer times with heavy ties, time 0, times that
  differ by 1e-10 (merged by R's ``timefix`` and by :func:`dlr.analysis.survival.aeq_times`), and a
  stage-like score with heavy ties.

``write_r_cases`` writes the ties case and, for both cases, the thresholds dlr chooses on the
development cohort (Youden, ``core.stats.roc.youden_threshold``), which ``tests/r/survival.R``
reads to form the same risk groups; R's values are in the committed ``tests/r/survival.csv``, so
these tests run without R. Every value of ``survival.csv`` written by the command line is
compared with R's at rtol 1e-6 (counts exactly), each assertion under the R call it checks.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import validate_predictions
from dlr.analysis.survival import (SURVIVAL_COLUMNS, aeq_times, cox_hazard_ratio, harrell_c, kaplan_meier,
                               logrank_test, risk_group_survival)
from conftest import make_predictions, r_cell, read_long_csv
from dlr.core.errors import UndefinedStatisticWarning
from dlr.core.stats.roc import youden_threshold
from dlr.cli import main

R_DIR = Path(__file__).parent / "r"
CASES = R_DIR / "cases" / "survival"
R_VALUES = R_DIR / "survival.csv"
SCRIPT = R_DIR / "survival.R"
#: case -> (development cohort, horizon); the first cohort of each file is its development cohort
CASE_NAMES = {"rotterdam_gbsg": "rotterdam", "ties": "dev"}
TIME, EVENT = "rfs_months", "rfs_event"
KM_TIMES = (6, 12, 24, 36, 48)

TOL = dict(rtol=1e-6, atol=0.0)
P_TOL = dict(rtol=1e-6, atol=1e-300)  # p-values far below any alpha may underflow differently


# --------------------------------------------------------------------------- the cases


def _ties_case() -> pd.DataFrame:
    """160 patients (100 'dev', 60 'val'), two models: heavy ties in time and score, a time 0 and
    near-equal times. Only uniform draws and exact arithmetic, so every CPU makes the same doubles."""
    rng = np.random.default_rng(20240701)
    n = 160
    time = rng.integers(0, 31, n).astype(float)
    time[:8] = time[8:16] + 1e-10  # 1e-10 apart: one time for R's timefix (aeqSurv) and for us
    time[16] = 0.0
    event = (rng.random(n) < 0.65).astype(int)
    risk = (30 - time) / 30 + rng.random(n)
    scores = {"stage": np.clip(np.floor(risk * 2.5), 0, 4), "prob": risk / 2.0}
    y = ((event == 1) & (time <= 24)).astype(int)
    cohort = np.where(np.arange(n) < 100, "dev", "val")
    return pd.concat([pd.DataFrame({"patient_id": [f"T{i:03d}" for i in range(n)], "cohort": cohort, "model": m,
                                    "y_true": y, "y_score": s, TIME: time, EVENT: event})
                      for m, s in scores.items()], ignore_index=True)


def _write(frame: pd.DataFrame, path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(frame.columns))
        w.writerows([r_cell(v) for v in row] for row in frame.itertuples(index=False))


def _thresholds(frame: pd.DataFrame, dev: str) -> pd.DataFrame:
    """What `dlr analyze` chooses: each model's Youden threshold on the development cohort."""
    rows = []
    for model, g in frame[frame["cohort"] == dev].groupby("model", sort=False):
        rows.append({"model": model, "threshold": youden_threshold(g["y_true"].to_numpy(int),
                                                                   g["y_score"].to_numpy(float))})
    return pd.DataFrame(rows)


def write_r_cases(cases_dir: Path) -> None:
    """Write cases_dir/survival/ties_predictions.csv and each case's thresholds file (the real
    case's predictions are R's, written before this by ``tests/r/survival.R case``)."""
    folder = cases_dir / "survival"
    folder.mkdir(parents=True, exist_ok=True)
    _write(_ties_case(), folder / "ties_predictions.csv")
    for case, dev in CASE_NAMES.items():
        frame = pd.read_csv(folder / f"{case}_predictions.csv", dtype={"patient_id": str, "cohort": str},
                            float_precision="round_trip")
        _write(_thresholds(frame, dev), folder / f"{case}_thresholds.csv")


def _read(case: str, what: str) -> pd.DataFrame:
    return pd.read_csv(CASES / f"{case}_{what}.csv", dtype={"patient_id": str, "cohort": str, "model": str},
                       float_precision="round_trip")


def test_committed_cases_are_the_generated_ones():
    """The ties case is what _ties_case makes; each thresholds file holds dlr's Youden thresholds."""
    committed = _read("ties", "predictions")
    generated = _ties_case()
    assert list(committed.columns) == list(generated.columns)
    pd.testing.assert_frame_equal(committed, generated, check_dtype=False, rtol=0, atol=0)
    for case, dev in CASE_NAMES.items():
        written = _read(case, "thresholds")
        expected = _thresholds(_read(case, "predictions"), dev)
        assert list(written["model"]) == list(expected["model"])
        assert_allclose(written["threshold"], expected["threshold"], rtol=0, atol=0)


@pytest.fixture(scope="module")
def r_values() -> dict:
    """tests/r/survival.csv: case '<file>/<cohort>/<model>' -> key -> R's value."""
    return read_long_csv(R_VALUES)


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict:
    """case -> (survival.csv, km_curve.csv) of `dlr analyze CASE --time rfs_months --event rfs_event`."""
    out = {}
    for case, dev in CASE_NAMES.items():
        folder = tmp_path_factory.mktemp(case)
        code = main(["analyze", str(CASES / f"{case}_predictions.csv"), "--out", str(folder / "results"),
                     "--dev-cohort", dev, "--time", TIME, "--event", EVENT, "--bootstrap", "0", "--no-figures"])
        assert code == 0
        out[case] = (pd.read_csv(folder / "results" / "survival.csv", dtype={"cohort": str, "model": str},
                                   float_precision="round_trip"),
                     pd.read_csv(folder / "results" / "km_curve.csv", dtype={"cohort": str, "model": str}))
    return out


def _rows(ours, r_values):
    for case in CASE_NAMES:
        table, curves = ours[case]
        for row in table.itertuples(index=False):
            key = f"{case}/{row.cohort}/{row.model}"
            yield key, row, curves[(curves["cohort"] == row.cohort) & (curves["model"] == row.model)], r_values[key]


def test_every_model_and_cohort_has_r_values(ours, r_values):
    cases = {key for key, *_ in _rows(ours, r_values)}
    assert cases == set(r_values)
    assert len(cases) == 3 * 2 + 2 * 2
    table = ours["rotterdam_gbsg"][0]
    assert list(table.columns) == SURVIVAL_COLUMNS
    # the real case is what it claims: 2,982 and 686 patients, censored at 60 months
    n = table.drop_duplicates("cohort").set_index("cohort")["n"]
    assert (n["rotterdam"], n["gbsg"]) == (2982, 686)


def test_survival_csv_matches_r(ours, r_values):
    thresholds = {case: _read(case, "thresholds").set_index("model")["threshold"] for case in CASE_NAMES}
    for key, row, _, r in _rows(ours, r_values):
        case = key.split("/")[0]
        # nrow(d); sum(d$rfs_event); sum(d$y_score >= threshold)
        assert (row.n, row.n_events, row.n_high) == (r["n"], r["n_events"], r["n_high"]), key
        # the development-cohort threshold of the thresholds file that R read, unchanged
        assert row.threshold == thresholds[case][row.model], key
        assert row.horizon == 24.0
        # cc <- concordance(Surv(rfs_months, rfs_event) ~ y_score, data = d, reverse = TRUE)
        # cc$concordance, sqrt(cc$var)
        assert_allclose([row.c_index, row.c_index_se], [r["c_index"], r["c_index_se"]], **TOL, err_msg=key)
        # sd <- survdiff(Surv(rfs_months, rfs_event) ~ high, data = d); sd$chisq
        assert_allclose(row.logrank_chi2, r["logrank_chi2"], **TOL, err_msg=key)
        # pchisq(sd$chisq, 1, lower.tail = FALSE)
        assert_allclose(row.logrank_p, r["logrank_p"], **P_TOL, err_msg=key)
        # cx <- summary(coxph(Surv(rfs_months, rfs_event) ~ high, data = d)); cx$conf.int[1, c(1, 3, 4)]
        assert_allclose([row.hr, row.hr_ci_low, row.hr_ci_high], [r["hr"], r["hr_ci_low"], r["hr_ci_high"]],
                        **TOL, err_msg=key)
        # cx$coefficients[1, 5]  (Wald p)
        assert_allclose(row.hr_p, r["hr_p"], **P_TOL, err_msg=key)
        for group in ("high", "low"):
            # s <- summary(survfit(Surv(rfs_months, rfs_event) ~ high, data = d), times = 24)
            # 1 - s$surv, 1 - s$upper, 1 - s$lower  (conf.type = "log", R's default)
            assert_allclose([getattr(row, f"cuminc_{group}"), getattr(row, f"cuminc_{group}_ci_low"),
                             getattr(row, f"cuminc_{group}_ci_high")],
                            [r[f"cuminc_{group}"], r[f"cuminc_{group}_ci_low"], r[f"cuminc_{group}_ci_high"]],
                            **TOL, err_msg=f"{key} {group}")


def test_thresholds_are_proc_youden(ours, r_values):
    for key, row, _, r in _rows(ours, r_values):
        if "proc_threshold" in r:
            # coords(roc(y_true, y_score, direction = "<", levels = c(0, 1)), "best",
            #        best.method = "youden")$threshold  (highest sensitivity on ties)
            assert_allclose(row.threshold, r["proc_threshold"], rtol=1e-12, atol=1e-12, err_msg=key)
    assert sum("proc_threshold" in r for r in r_values.values()) == 3 + 2


def test_km_curve_matches_survfit(ours, r_values):
    checked = 0
    for key, _, curves, r in _rows(ours, r_values):
        for group in ("high", "low"):
            g = curves[curves["group"] == group]
            time = g["time"].to_numpy()
            for t in KM_TIMES:
                last = np.searchsorted(time, t, side="right") - 1  # the curve's value at t
                later = np.searchsorted(time, t, side="left")  # the first time >= t: its number at risk
                ours_t = ([g["survival"].iloc[last], g["ci_low"].iloc[last], g["ci_high"].iloc[last]]
                          if t <= time[-1] else [np.nan] * 3)
                # summary(survfit(Surv(rfs_months, rfs_event) ~ high, data = d), times = t)
                # $surv, $lower, $upper  (NA past the group's last time)
                assert_allclose(ours_t, [r[f"km_{group}_{f}_{t}"] for f in ("surv", "lower", "upper")], **TOL,
                                err_msg=f"{key} {group} t={t}")
                if t <= time[-1]:
                    # $n.risk
                    assert g["at_risk"].iloc[later] == r[f"km_{group}_n_risk_{t}"], (key, group, t)
                    checked += 1
    assert checked > 60


def test_ties_case_exercises_what_it_should():
    frame = _read("ties", "predictions").drop_duplicates("patient_id")
    t = frame[TIME].to_numpy()
    assert (t == 0).any()
    merged = aeq_times(t)
    assert np.unique(merged).size < np.unique(t).size  # the 1e-10 differences are merged
    assert np.unique(merged).size == np.unique(np.round(t, 6)).size


# --------------------------------------------------------------------------- oracles


def _pairs(t, e, s):
    """n x n comparable / concordant / discordant / tied-score pair matrices, i earlier (O(n^2))."""
    ti, tj = t[:, None], t[None, :]
    comparable = (e[:, None] == 1) & ((tj > ti) | ((tj == ti) & (e[None, :] == 0)))
    si, sj = s[:, None], s[None, :]
    return comparable, comparable & (si > sj), comparable & (si < sj), comparable & (si == sj)


def _c_oracle(t, e, s, w=None):
    """Harrell's C by enumerating every pair, with case weights (pair weight w_i w_j)."""
    _, conc, disc, tie = _pairs(t, e, s)
    w = np.ones(t.size) if w is None else w
    ww = w[:, None] * w[None, :]
    c, d, x = (np.sum(ww * m) for m in (conc, disc, tie))
    return (c + x / 2) / (c + d + x)


def _random_survival(seed, n=120):
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 25, n).astype(float)  # tied times
    e = (rng.random(n) < 0.6).astype(int)
    s = np.round(rng.normal(size=n) - t / 12, 1)  # tied scores
    return t, e, s


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_harrell_c_equals_pairwise_oracle(seed):
    t, e, s = _random_survival(seed)
    res = harrell_c(t, e, s)
    _, conc, disc, tie = _pairs(t, e, s)
    assert (res.concordant, res.discordant, res.tied_score) == (conc.sum(), disc.sum(), tie.sum())
    assert_allclose(res.estimate, _c_oracle(t, e, s), rtol=1e-14)


@pytest.mark.parametrize("seed", [4, 5])
def test_c_se_is_the_infinitesimal_jackknife(seed):
    """var = sum_k (dC/dw_k)^2 at unit case weights: the definition, by central differences."""
    t, e, s = _random_survival(seed, n=80)
    h = 1e-5
    grad = np.empty(t.size)
    for k in range(t.size):
        up, down = np.ones(t.size), np.ones(t.size)
        up[k] += h
        down[k] -= h
        grad[k] = (_c_oracle(t, e, s, up) - _c_oracle(t, e, s, down)) / (2 * h)
    assert_allclose(harrell_c(t, e, s).se, np.sqrt(np.sum(grad**2)), rtol=1e-6)


def test_km_logrank_and_cox_agree_with_lifelines():
    lifelines = pytest.importorskip("lifelines")
    from lifelines.statistics import logrank_test as lifelines_logrank

    t, e, s = _random_survival(6, n=200)
    high = s >= np.median(s)
    km = kaplan_meier(t[high], e[high])
    fit = lifelines.KaplanMeierFitter().fit(t[high], e[high])
    theirs = fit.survival_function_.iloc[:, 0]
    assert_allclose(km.survival, theirs.reindex(km.time).to_numpy(), rtol=1e-12)
    assert_allclose(km.at_risk[1:], fit.event_table["at_risk"].reindex(km.time[1:]).to_numpy())
    ours_lr = logrank_test(t, e, high)
    theirs_lr = lifelines_logrank(t[high], t[~high], e[high], e[~high])
    assert_allclose([ours_lr.statistic, ours_lr.p_value], [theirs_lr.test_statistic, theirs_lr.p_value], rtol=1e-10)
    hr = cox_hazard_ratio(t, e, high.astype(float))
    cph = lifelines.CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "high": high.astype(float)}), "t", "e")
    # lifelines stops Newton-Raphson earlier (R is the 1e-6 reference above)
    assert_allclose([hr.estimate, hr.se], [cph.hazard_ratios_["high"], cph.standard_errors_["high"]], rtol=1e-5)


def test_aeq_times_is_r_timefix():
    t = np.array([1.0, 1.0 + 1e-12, 2.0, 2.0 + 1e-6, 3.0])
    # aeqSurv(Surv(t, rep(1, 5)))[, 1]: 1 + 1e-12 becomes 1; 2 + 1e-6 (relative 5e-7) stays
    assert_allclose(aeq_times(t), [1.0, 1.0, 2.0, 2.0 + 1e-6, 3.0], rtol=0, atol=0)
    assert aeq_times(np.array([5.0, 7.0])) is not None


# --------------------------------------------------------------------------- undefined cases


def _undefined(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, UndefinedStatisticWarning)]


def test_one_risk_group_empty_is_nan_with_a_warning():
    t, e, s = _random_survival(7)
    res, messages = _undefined(lambda: risk_group_survival(t, e, s, threshold=s.max() + 1))
    assert res.n_high == 0
    assert np.isnan([res.logrank.statistic, res.logrank.p_value, res.hazard_ratio.estimate,
                     res.hazard_ratio.ci_low, res.hazard_ratio.p_value]).all()
    assert np.isnan(res.cuminc_high).all() and np.isfinite(res.cuminc_low).all()
    assert np.isfinite(res.concordance.estimate)  # C does not need the groups
    assert any("risk groups undefined" in m and "0 of 120" in m for m in messages)


def test_no_events_is_nan_with_a_warning():
    t, _, s = _random_survival(8)
    e = np.zeros(t.size, dtype=int)
    res, messages = _undefined(lambda: risk_group_survival(t, e, s, threshold=float(np.median(s)), horizon=12))
    assert np.isnan([res.concordance.estimate, res.concordance.se, res.logrank.statistic,
                     res.hazard_ratio.estimate]).all()
    assert res.cuminc_high[0] == 0.0 and res.cuminc_low[0] == 0.0  # nobody recurred: S = 1
    assert any("Harrell's C undefined" in m for m in messages)
    assert any("log-rank test undefined" in m for m in messages)
    assert any("hazard ratio undefined: no event" in m for m in messages)


def test_no_event_in_one_group_gives_an_undefined_hazard_ratio():
    t, e, s = _random_survival(9)
    thr = float(np.median(s))
    e = np.where(s >= thr, e, 0)  # no event in the low-risk group: the Cox estimate is infinite
    res, messages = _undefined(lambda: risk_group_survival(t, e, s, threshold=thr))
    assert np.isnan(res.hazard_ratio.estimate)
    assert np.isfinite(res.logrank.statistic) and res.logrank.statistic > 0
    assert any("hazard ratio undefined: the estimate is infinite" in m for m in messages)


def test_horizon_beyond_follow_up_is_nan_with_a_warning():
    t, e, s = _random_survival(10)
    res, messages = _undefined(lambda: risk_group_survival(t, e, s, threshold=float(np.median(s)), horizon=100))
    assert np.isnan(res.cuminc_high).all() and np.isnan(res.cuminc_low).all()
    assert any("follow-up ends" in m for m in messages)


def test_undefined_survival_in_the_pipeline_is_a_warning_not_a_crash():
    frame = _with_survival(make_predictions(60, seed=2))
    frame.loc[frame["cohort"] == "validation", EVENT] = 0
    result = analyze(validate_predictions(frame), n_bootstrap=0, time=TIME, event=EVENT)
    val = result.survival[result.survival["cohort"] == "validation"]
    assert len(val) == 2 and val["c_index"].isna().all() and val["hr"].isna().all()
    assert any("cohort validation (survival)" in w and "Harrell's C undefined" in w for w in result.warnings)


# --------------------------------------------------------------------------- the command line


def _with_survival(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patients = frame.drop_duplicates("patient_id")[["patient_id", "y_true"]]
    time = np.round(np.where(patients["y_true"] == 1, rng.uniform(1, 24, len(patients)),
                             rng.uniform(6, 60, len(patients))), 1)
    event = np.where(patients["y_true"] == 1, 1, (rng.random(len(patients)) < 0.3).astype(int))
    extra = patients.assign(**{TIME: time, EVENT: event}).drop(columns="y_true")
    return frame.merge(extra, on="patient_id", how="left")


GOOD = _with_survival(make_predictions(40, seed=1))
P0, P1 = GOOD["patient_id"].iloc[0], GOOD["patient_id"].iloc[1]


def _edit(frame, cells):
    f = frame.copy().astype({TIME: object, EVENT: object})
    for (patient, col), value in cells.items():
        f.loc[f["patient_id"] == patient, col] = value
    return f


def _varies(frame, patient, col, value):
    f = frame.copy().astype({col: object})
    f.loc[f.index[(f["patient_id"] == patient)][0], col] = value  # one of the patient's rows
    return f


BAD = {
    "time_without_event": (GOOD, ["--time", TIME], ["--time", "--event"]),
    "event_without_time": (GOOD, ["--event", EVENT], ["--event", "--time"]),
    "horizon_without_time": (GOOD, ["--horizon", "12"], ["--horizon", "--time"]),
    "missing_time_column": (GOOD.drop(columns=TIME), ["--time", TIME, "--event", EVENT], [f"'{TIME}'", "--time"]),
    "missing_event_column": (GOOD, ["--time", TIME, "--event", "relapse"], ["'relapse'", "--event", EVENT]),
    "negative_time": (_edit(GOOD, {(P0, TIME): -3}), ["--time", TIME, "--event", EVENT],
                      [P0, TIME, "'-3'", "negative"]),
    "missing_time": (_edit(GOOD, {(P0, TIME): ""}), ["--time", TIME, "--event", EVENT], [P0, TIME, "missing"]),
    "text_time": (_edit(GOOD, {(P1, TIME): "soon"}), ["--time", TIME, "--event", EVENT],
                  [P1, TIME, "'soon'", "not a finite number"]),
    "event_not_binary": (_edit(GOOD, {(P1, EVENT): 2}), ["--time", TIME, "--event", EVENT],
                         [P1, EVENT, "'2'", "not 0 or 1"]),
    "time_varies": (_varies(GOOD, P0, TIME, 99.5), ["--time", TIME, "--event", EVENT],
                    [P0, TIME, "differs between", "99.5"]),
    "event_varies": (_varies(GOOD, P1, EVENT, 1 - int(GOOD.loc[GOOD["patient_id"] == P1, EVENT].iloc[0])),
                     ["--time", TIME, "--event", EVENT], [P1, EVENT, "differs between"]),
    "negative_horizon": (GOOD, ["--time", TIME, "--event", EVENT, "--horizon", "-1"], ["--horizon", "-1"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_survival_input_exits_2_naming_patient_and_column(case, tmp_path, capsys):
    frame, extra, needles = BAD[case]
    path = tmp_path / "predictions.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(["analyze", str(path), "--out", str(out), "--bootstrap", "0", "--no-figures", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_every_bad_patient_is_named_once(tmp_path, capsys):
    frame = _edit(GOOD, {(P0, TIME): -1, (P1, EVENT): 7})
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    code = main(["analyze", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0", "--no-figures",
                 "--time", TIME, "--event", EVENT])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count(f"patient {P0!r}") == 1 and err.count(f"patient {P1!r}") == 1  # once each, all models


def test_without_time_results_json_has_no_survival(tmp_path):
    path = tmp_path / "p.csv"
    GOOD.to_csv(path, index=False)
    assert main(["analyze", str(path), "--out", str(tmp_path / "plain"), "--bootstrap", "0", "--no-figures"]) == 0
    assert main(["analyze", str(path), "--out", str(tmp_path / "surv"), "--bootstrap", "0", "--no-figures",
                 "--time", TIME, "--event", EVENT, "--horizon", "12"]) == 0
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    surv = json.loads((tmp_path / "surv" / "results.json").read_text())
    assert "survival" not in plain and "survival" not in plain["settings"]
    assert not (tmp_path / "plain" / "survival.csv").exists() and not (tmp_path / "plain" / "km_curve.csv").exists()
    assert not {"time", "event", "horizon"} & set(plain["provenance"]["settings"])
    # with them: the same document plus the survival table and settings
    assert set(surv) - set(plain) == {"survival"}
    assert surv["settings"]["survival"] == {"time": TIME, "event": EVENT, "horizon": 12.0}
    for key in plain:
        if key not in ("provenance", "settings", "warnings"):
            assert surv[key] == plain[key], key
    assert [w for w in surv["warnings"] if "(survival)" not in w] == plain["warnings"]
    assert len(surv["survival"]) == 4 and surv["survival"][0]["horizon"] == 12.0
    # `dlr verify` recomputes with the same options
    from dlr.package import analysis_settings, analyze_command

    settings = analysis_settings(surv)
    assert (settings["time"], settings["event"], settings["horizon"]) == (TIME, EVENT, 12.0)
    command = analyze_command(settings)
    assert all(part in command for part in (f"--time {TIME}", f"--event {EVENT}", "--horizon 12.0"))
    assert "time" not in analysis_settings(plain)


def test_out_of_fold_cohort_gets_survival_rows():
    frame = _with_survival(make_predictions(80, seed=4))
    dev = frame[frame["cohort"] == "training"]
    rng = np.random.default_rng(3)
    oof = dev[["patient_id", "cohort", "model", "y_true"]].assign(
        y_score=np.clip(dev["y_score"].to_numpy() + rng.normal(0, 0.05, len(dev)), 0, 1))
    result = analyze(validate_predictions(frame), n_bootstrap=0, oof=oof, time=TIME, event=EVENT)
    cohorts = list(dict.fromkeys(result.survival["cohort"]))
    assert cohorts == ["training", "training (out-of-fold)", "validation"]
    row = result.survival.set_index(["cohort", "model"]).loc[("training (out-of-fold)", "A")]
    # the out-of-fold threshold, applied to the out-of-fold scores of the same patients
    assert row["threshold"] == result.settings["thresholds"]["A"]
    assert row["n"] == int((frame.drop_duplicates("patient_id")["cohort"] == "training").sum())


def test_km_figures_are_drawn(tmp_path):
    frame = _with_survival(make_predictions(60, seed=5, models=("A",)))
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "results"
    assert main(["analyze", str(path), "--out", str(out), "--bootstrap", "0", "--time", TIME, "--event", EVENT]) == 0
    for cohort in ("training", "validation"):
        png = out / "figures" / f"km_{cohort}_A.png"
        assert png.stat().st_size > 10_000  # PNG alone (analysis/figures.py: the SVG cost a third more)
    curves = pd.read_csv(out / "km_curve.csv")
    assert list(curves.columns) == ["cohort", "model", "group", "time", "survival", "ci_low", "ci_high", "at_risk", "n_events"]
    first = curves.groupby(["cohort", "group"]).head(1)
    assert (first["time"] == 0).all() and (first["survival"] == 1).all()


# --------------------------------------------------------------------------- R


@pytest.mark.r_reference
def test_real_case_regenerates(tmp_path):
    """tests/r/survival.R writes the committed real case again from R's rotterdam and gbsg data."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not found on PATH")
    probe = subprocess.run([rscript, "-e", "library(survival); library(pROC)"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("R packages survival and pROC are needed")
    path = tmp_path / "rotterdam_gbsg_predictions.csv"
    run = subprocess.run([rscript, str(SCRIPT), "case", str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    committed = pd.read_csv(CASES / "rotterdam_gbsg_predictions.csv")
    again = pd.read_csv(path)
    pd.testing.assert_frame_equal(committed[["patient_id", "cohort", "model", "y_true", "rfs_event"]],
                                  again[["patient_id", "cohort", "model", "y_true", "rfs_event"]])
    # glm's fit may move in the last digits with another R or BLAS
    assert_allclose(again[["y_score", "rfs_months"]], committed[["y_score", "rfs_months"]], rtol=1e-9)
