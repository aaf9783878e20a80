"""`dlr audit`: each consistency check on constructed cases (a consistent one passes, a perturbed
one is flagged for the right reason), the exact DeLong extremes against exhaustive enumeration,
the seed paper's example and a consistent paper built from `dlr analyze` on aSAH."""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlr.analysis import consistency as cs
from dlr.analysis.consistency import AUCReport, Printed
from dlr.analysis.discrimination import delong_placements, delong_test, delong_unpaired_test
from dlr.analysis.paper_audit import _validated, audit_reported, letter, read_reported
from conftest import run_dlr

REPO = Path(__file__).resolve().parents[1]
P = Printed.parse


def _delong_var(cases, controls) -> tuple[float, float]:
    """The slow oracle: placements by definition (ties 1/2), DeLong's variance with n - 1."""
    x, y = np.asarray(cases, float), np.asarray(controls, float)
    v10 = np.array([np.mean((xi > y) + 0.5 * (xi == y)) for xi in x])
    v01 = np.array([np.mean((x > yj) + 0.5 * (x == yj)) for yj in y])
    return v10.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)


def _auc_report(y, score, n=None, decimals=3) -> AUCReport:
    p = delong_placements(y, score)
    se = math.sqrt(p.variance)
    lo, hi = max(p.auc - cs.Z95 * se, 0.0), min(p.auc + cs.Z95 * se, 1.0)
    f = f"{{:.{decimals}f}}"
    return AUCReport(P(f.format(p.auc)), P(f.format(lo)), P(f.format(hi)), n)


# -- printed numbers --------------------------------------------------------------------------

def test_printed_numbers_keep_their_rounding():
    assert P("0.630").decimals == 3 and P("0.630").contains(0.6304) and not P("0.630").contains(0.6306)
    assert P("0.63").contains(0.6346) and not P("0.63").contains(0.6351)
    assert P("<0.001").contains(0.0004) and not P("<0.001").contains(0.002)
    assert P("58.2%").value == 58.2
    with pytest.raises(ValueError):
        P("0.6a")


# -- DeLong's extremes ------------------------------------------------------------------------

@pytest.mark.parametrize("n1,n0", [(4, 5), (5, 7), (3, 8), (7, 4), (6, 6)])
def test_delong_extremes_equal_exhaustive_enumeration_of_untied_rankings(n1, n0):
    low, high = cs.delong_variance_extremes(n1, n0)
    found = defaultdict(lambda: [math.inf, -math.inf])
    for cases in itertools.combinations(range(n1 + n0), n1):
        controls = [i for i in range(n1 + n0) if i not in cases]
        auc, var = _delong_var(cases, controls)
        k = round(auc * n1 * n0)
        found[k] = [min(found[k][0], var), max(found[k][1], var)]
    assert sorted(found) == list(range(n1 * n0 + 1))
    for k, (lo, hi) in found.items():
        assert low[k] == pytest.approx(lo, abs=1e-12) and high[k] == pytest.approx(hi, abs=1e-12)


@pytest.mark.parametrize("n1,n0", [(4, 5), (3, 6), (5, 5)])
def test_no_tied_ranking_exceeds_the_largest_variance_bound(n1, n0):
    """Scores of 3 levels, every composition: DeLong's variance <= A (1 - A) / (min(n1, n0) - 1)."""
    def sorted_tuples(n):
        return [t for t in itertools.product(range(3), repeat=n) if list(t) == sorted(t)]
    for cases in sorted_tuples(n1):
        for controls in sorted_tuples(n0):
            auc, var = _delong_var(cases, controls)
            assert var <= auc * (1 - auc) / (min(n1, n0) - 1) + 1e-12


def test_auc_se_check_passes_real_scores_and_flags_too_wide_and_too_narrow_cis():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(40, int), np.zeros(30, int)]
    for shift in (0.3, 1.0, 2.0):
        score = rng.normal(size=70) + shift * y
        r = _auc_report(y, score)
        assert cs.check_auc_se(r.auc, r.low, r.high, 40, 30).verdict == cs.CONSISTENT
    auc = P("0.750")
    wide = cs.check_auc_se(auc, P("0.550"), P("0.950"), 40, 30)   # SE 0.102 > the 0.0728 any ranking allows
    assert wide.verdict == cs.INCONSISTENT and wide.reason.startswith("too wide")
    narrow = cs.check_auc_se(auc, P("0.700"), P("0.800"), 40, 30)  # SE 0.026 < the smallest untied SE
    assert narrow.verdict == cs.INCONSISTENT and narrow.reason.startswith("too narrow")
    assert cs.check_auc_se(auc, P("0.700"), P("0.800"), 40, 30, tied=True).verdict == cs.CANNOT_TELL


def test_auc_of_one_with_a_zero_width_ci_is_consistent_everywhere():
    auc, lo, hi = P("1.000"), P("1.000"), P("1.000")
    assert cs.check_within_ci(auc, lo, hi).verdict == cs.CONSISTENT
    assert cs.check_symmetric_ci(auc, lo, hi, method="DeLong").verdict == cs.CONSISTENT
    assert cs.check_auc_granularity(auc, 78, 54).verdict == cs.CONSISTENT
    assert cs.check_auc_se(auc, lo, hi, 78, 54).verdict == cs.CONSISTENT
    other = AUCReport(P("0.626"), P("0.429"), P("0.823"), 33)
    assert cs.check_unpaired_p(P("<0.001"), AUCReport(auc, lo, hi, 132), other).verdict == cs.CONSISTENT


def test_auc_granularity_flags_an_auc_no_count_of_pairs_gives():
    # 5 x 4 = 20 pairs: AUCs are multiples of 1/40 = 0.025
    assert cs.check_auc_granularity(P("0.775"), 5, 4).verdict == cs.CONSISTENT
    bad = cs.check_auc_granularity(P("0.760"), 5, 4)
    assert bad.verdict == cs.INCONSISTENT and "0.7500" in bad.reason and "0.7750" in bad.reason


# -- estimates and their CIs ------------------------------------------------------------------

def test_estimate_outside_its_ci_and_asymmetric_ci_are_flagged():
    assert cs.check_within_ci(P("0.917"), P("0.863"), P("0.972")).verdict == cs.CONSISTENT
    out = cs.check_within_ci(P("0.917"), P("0.963"), P("0.972"))
    assert out.verdict == cs.INCONSISTENT and "outside its own CI" in out.reason
    assert cs.check_symmetric_ci(P("0.839"), P("0.772"), P("0.906"), method="DeLong").verdict == cs.CONSISTENT
    assert cs.check_symmetric_ci(P("0.839"), P("0.772"), P("0.916"), method="DeLong").verdict == cs.INCONSISTENT
    # cut at 1: the sides may differ
    assert cs.check_symmetric_ci(P("0.971"), P("0.935"), P("1.000"), method="DeLong").verdict == cs.CONSISTENT
    # odds ratios: symmetric on the log scale
    assert cs.check_symmetric_ci(P("2.49"), P("1.14"), P("5.44"), method="Wald", log=True).verdict == cs.CONSISTENT
    assert cs.check_symmetric_ci(P("2.49"), P("1.14"), P("4.44"), method="Wald", log=True).verdict == cs.INCONSISTENT


# -- 2 x 2 tables -----------------------------------------------------------------------------

def test_two_by_two_consistent_tables_pass_and_perturbed_ones_name_the_events_they_imply():
    ok = cs.check_two_by_two(132, 78, {"sensitivity": P("0.885"), "specificity": P("0.630"), "accuracy": P("0.780")})
    assert ok.verdict == cs.CONSISTENT and "TP 69/78" in ok.reason
    bad = cs.check_two_by_two(132, 78, {"sensitivity": P("0.861"), "specificity": P("0.733"), "accuracy": P("0.803")})
    assert bad.verdict == cs.INCONSISTENT and bad.expected == "72 events" and "TP 62/72, TN 44/60" in bad.reason
    # PPV and NPV enter too: TP 69, FP 20 -> PPV 0.775; a PPV of 0.800 fits no table with these counts
    assert cs.check_two_by_two(132, 78, {"sensitivity": P("0.885"), "specificity": P("0.630"),
                                         "ppv": P("0.775")}).verdict == cs.CONSISTENT
    assert cs.check_two_by_two(132, 78, {"sensitivity": P("0.885"), "specificity": P("0.630"),
                                         "ppv": P("0.800")}).verdict == cs.INCONSISTENT


def test_two_by_two_respects_rounding_to_two_or_three_decimals():
    # 69/78 = 0.8846: printed 0.885 (3 decimals) or 0.88 (2); 0.89 fits no count of 78
    assert cs.check_two_by_two(132, 78, {"sensitivity": P("0.885")}).verdict == cs.CONSISTENT
    assert cs.check_two_by_two(132, 78, {"sensitivity": P("0.88")}).verdict == cs.CONSISTENT
    assert cs.check_two_by_two(132, 78, {"sensitivity": P("0.89")}).verdict == cs.INCONSISTENT


def test_two_by_two_with_a_zero_count():
    # no false positives: specificity 1.000 with 0 FP is possible, and 0 events leave no sensitivity
    assert cs.check_two_by_two(30, 10, {"specificity": P("1.000"), "sensitivity": P("0.000")}).verdict == cs.CONSISTENT
    none = cs.check_two_by_two(30, 0, {"sensitivity": P("0.500")})
    assert none.verdict == cs.INCONSISTENT


# -- tests between AUCs -----------------------------------------------------------------------

def test_unpaired_p_recomputed_from_rounded_aucs_matches_the_test_and_flags_a_changed_p():
    rng = np.random.default_rng(11)
    ya, yb = rng.integers(0, 2, 90), rng.integers(0, 2, 40)
    sa, sb = rng.normal(size=90) + 1.2 * ya, rng.normal(size=40) + 0.5 * yb
    test = delong_unpaired_test(ya, sa, yb, sb)  # pROC's unpaired roc.test (Welch t)
    a, b = _auc_report(ya, sa, 90), _auc_report(yb, sb, 40)
    good = cs.check_unpaired_p(P(f"{test.p_value:.3f}"), a, b)
    assert good.verdict == cs.CONSISTENT
    bad = cs.check_unpaired_p(P(f"{min(test.p_value * 2 + 0.1, 0.99):.3f}"), a, b)
    assert bad.verdict == cs.INCONSISTENT and "fits neither" in bad.reason
    assert cs.check_unpaired_p(P("-0.001"), a, b).verdict == cs.INCONSISTENT


def test_paired_p_lies_in_the_range_every_correlation_allows():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 120)
    base = rng.normal(size=120) + y
    s1, s2 = base + rng.normal(scale=0.5, size=120), base + rng.normal(scale=1.5, size=120)
    test = delong_test(y, s1, s2)
    a, b = _auc_report(y, s1), _auc_report(y, s2)
    assert cs.check_paired_p(P(f"{test.p_value:.3f}"), a, b).verdict == cs.CONSISTENT
    low, high = cs.paired_p_range(a, b)
    assert low <= test.p_value <= high
    # two clearly different AUCs with small SEs: a P of 0.90 is impossible whatever the correlation
    far_a = AUCReport(P("0.900"), P("0.860"), P("0.940"))
    far_b = AUCReport(P("0.600"), P("0.540"), P("0.660"))
    assert cs.check_paired_p(P("0.90"), far_a, far_b).verdict == cs.INCONSISTENT


# -- odds ratios and percentages --------------------------------------------------------------

def test_odds_ratio_wald_p_from_a_fitted_model_is_consistent_and_a_changed_p_is_not():
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, 150)
    y = (rng.random(150) < np.where(x == 1, 0.65, 0.4)).astype(int)
    fit = sm.Logit(y, sm.add_constant(x.astype(float))).fit(disp=0)
    ci = np.exp(fit.conf_int()[1])
    odds, p = math.exp(fit.params[1]), fit.pvalues[1]
    printed = [P(f"{v:.2f}") for v in (odds, ci[0], ci[1])]
    assert cs.check_odds_ratio_p(*printed, P(f"{p:.3f}")).verdict == cs.CONSISTENT
    assert cs.check_odds_ratio_p(*printed, P(f"{p * 3 + 0.05:.3f}")).verdict == cs.INCONSISTENT


def test_percentages_against_counts():
    assert cs.check_percent(P("58.18"), 165, 96).verdict == cs.CONSISTENT
    assert cs.check_percent(P("58.8"), 165, 96).verdict == cs.INCONSISTENT
    assert cs.check_percent(P("59.09"), 132).verdict == cs.CONSISTENT
    # GRIM: with 33 patients percentages move in steps of 3.03
    bad = cs.check_percent(P("56.0"), 33)
    assert bad.verdict == cs.INCONSISTENT and "nearest is 18/33" in bad.reason
    assert cs.check_percent(P("0.0"), 20, 0).verdict == cs.CONSISTENT


# -- the whole audit --------------------------------------------------------------------------

def _rows(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("table", "model", "cohort", "statistic", "value", "ci_low", "ci_high", "n", "events",
                   "compare_to", "decimals", "count", "tied", "ci_method"):
        frame[column] = frame.get(column, "")
    frame = frame.fillna("")
    frame["row"] = [f"row {i + 2}" for i in range(len(frame))]
    return _validated(frame, Path("constructed.csv"))


def test_the_same_quantity_printed_twice_with_different_values_is_flagged():
    rows = _rows([{"table": "T2", "model": "LR", "cohort": "training", "statistic": "p_value", "value": "0.426",
                   "compare_to": "validation"},
                  {"table": "T4", "model": "LR", "cohort": "validation", "statistic": "p_value", "value": "0.681",
                   "compare_to": "training"},
                  {"table": "T2", "model": "LR", "cohort": "training", "statistic": "auc", "value": "0.839"},
                  {"table": "T4", "model": "LR", "cohort": "training", "statistic": "auc", "value": "0.84"}])
    audit = audit_reported(rows)
    dup = audit[audit["check"] == "same quantity printed alike"].set_index("statistic")
    assert dup.loc["p_value", "verdict"] == cs.INCONSISTENT and "0.426" in dup.loc["p_value", "reason"]
    assert dup.loc["auc", "verdict"] == cs.CONSISTENT  # 0.839 prints as 0.84


def test_proportions_printed_as_percentages_are_read_with_their_rounding():
    """88.5% is 0.885 +- 0.0005: the same 2 x 2 table as 0.885, and 88.5% again in another table
    is the same quantity."""
    base = {"model": "LR", "cohort": "training", "n": "132", "events": "78"}
    rows = _rows([{**base, "table": "T2", "statistic": "sensitivity", "value": "88.5%"},
                  {**base, "table": "T2", "statistic": "specificity", "value": "63.0%"},
                  {**base, "table": "T2", "statistic": "accuracy", "value": "78.0%"},
                  {**base, "table": "T4", "statistic": "sensitivity", "value": "0.885"}])
    audit = audit_reported(rows)
    assert (audit["verdict"] == cs.CONSISTENT).all(), audit.to_string()
    table = audit[(audit["check"] == "2 x 2 table behind the proportions") & (audit["table"] == "T2")]
    assert "TP 69/78, TN 34/54" in table.iloc[0]["reason"]
    wrong = audit_reported(_rows([{**base, "table": "T2", "statistic": "sensitivity", "value": "89.0%"}]))
    assert wrong.set_index("check").loc["2 x 2 table behind the proportions", "verdict"] == cs.INCONSISTENT


def _p3(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def test_a_consistent_paper_built_from_dlr_analyze_on_asah_has_no_inconsistency(tmp_path):
    """A journal's Table 2 (3 decimals) and its P values, from `dlr analyze` on pROC's aSAH."""
    out = tmp_path / "asah"
    run_dlr("analyze", str(REPO / "tests/data/reference/asah/predictions.csv"), "--dev-cohort", "train",
            "--out", str(out), "--bootstrap", "0", "--no-figures")
    rows = []
    for r in pd.read_csv(out / "performance.csv").itertuples():
        base = {"table": "Table 2", "model": r.model, "cohort": r.cohort, "n": str(r.n), "events": str(r.n_events),
                "ci_method": "delong"}
        rows.append({**base, "statistic": "auc", "value": f"{r.auc:.3f}", "ci_low": f"{r.auc_ci_low:.3f}",
                     "ci_high": f"{r.auc_ci_high:.3f}"})
        rows += [{**base, "statistic": s, "value": f"{getattr(r, s):.3f}"} for s in cs.PROPORTIONS]
        rows.append({**base, "statistic": "percent", "value": f"{100 * r.n_events / r.n:.1f}", "count": str(r.n_events)})
    for r in pd.read_csv(out / "comparisons.csv").itertuples():
        rows.append({"table": "Table 3", "model": r.model_a, "cohort": r.cohort, "statistic": "p_value",
                     "value": _p3(r.p_value), "compare_to": r.model_b})
    for r in pd.read_csv(out / "cohort_tests.csv").itertuples():
        rows.append({"table": "Table 2", "model": r.model, "cohort": r.cohort_a, "statistic": "p_value",
                     "value": _p3(r.p_value), "compare_to": r.cohort_b})
    audit = audit_reported(_rows(rows))
    assert len(audit) > 50
    assert (audit["verdict"] == cs.INCONSISTENT).sum() == 0, audit[audit["verdict"] != cs.CONSISTENT].to_string()
    for check in ("P of a paired DeLong test", "P of an unpaired DeLong test", "2 x 2 table behind the proportions",
                  "AUC's CI width possible for the counts", "CI symmetric about the estimate"):
        assert check in set(audit["check"])
    assert "No inconsistency was found." in letter(audit)


#: what the seed paper's Tables 2 and 4 hold that cannot be (README "Auditing a paper's numbers")
PAPER_FINDINGS = {
    ("Table 4", "DLRCR", "training", "estimate within its CI"),
    ("Table 4", "DL (ResNet-10)", "training", "2 x 2 table behind the proportions"),
    ("Table 4", "DL (ResNet-10)", "validation", "2 x 2 table behind the proportions"),
    ("Table 4", "DLRCR", "training", "2 x 2 table behind the proportions"),
    ("Table 4", "DLRCR", "validation", "2 x 2 table behind the proportions"),
    ("Table 2", "Radiomics (LR)", "training", "P of an unpaired DeLong test"),
    ("Table 2", "Radiomics (LR)", "validation", "P of an unpaired DeLong test"),
    ("Results text", "Radiomics (LR)", "training", "P of an unpaired DeLong test"),
    ("Table 4", "CR", "validation", "P of an unpaired DeLong test"),
    ("Table 2; Table 4; Results text", "Radiomics (LR)", "training", "same quantity printed alike"),
    ("Table 4", "CR", "training", "same quantity printed alike"),
    ("Table 4", "DLRCR", "training", "same quantity printed alike"),
}


def test_dlr_audit_of_the_seed_paper_lists_its_inconsistencies(tmp_path):
    result = run_dlr("audit", str(REPO / "examples/zhao2024_tables_2_4.yaml"), "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    audit = pd.read_csv(tmp_path / "a" / "audit.csv", dtype=str, keep_default_na=False)
    bad = audit[audit["verdict"] == cs.INCONSISTENT]
    assert set(zip(bad["table"], bad["model"], bad["cohort"], bad["check"])) == PAPER_FINDINGS
    text = (tmp_path / "a" / "letter.md").read_text()
    assert "12 inconsistencies" in text and "they fit 72 events (TP 62/72, TN 44/60)" in text
    assert "0.917 lies outside its own CI 0.963-0.972" in text
    # Table 3 of the same paper is consistent throughout
    table3 = run_dlr("audit", str(REPO / "examples/zhao2024_table_3.yaml"), "--out", str(tmp_path / "b"))
    assert table3.returncode == 0 and "0 inconsistent" in table3.stdout


def test_reading_keeps_printed_digits_and_bad_input_exits_2_naming_the_key(tmp_path):
    good = tmp_path / "r.yaml"
    good.write_text("cohorts:\n  training: {n: 132, events: 78}\ntables:\n  - table: T\n    rows:\n"
                    "      - {model: LR, cohort: training, specificity: 0.630, auc: 0.839 (0.772 - 0.906)}\n")
    rows = read_reported(good)
    assert rows.set_index("statistic").loc["specificity", "value"] == "0.630"
    assert rows.set_index("statistic").loc["auc", ["ci_low", "ci_high", "n"]].tolist() == ["0.772", "0.906", "132"]
    csv = tmp_path / "r.csv"
    csv.write_text("table,model,cohort,statistic,value,ci_low,ci_high,n,events,compare_to,decimals\n"
                   "T2,LR,training,auc,0.839,0.772,0.906,132,78,,\n")
    assert read_reported(csv).loc[0, "events"] == "78"
    cases = {"bad.yaml": "tables:\n  - table: T\n    rows:\n      - {model: LR, aucc: 0.8}\n",
             "worse.yaml": "tables: [\n",
             "ci.yaml": "tables:\n  - table: T\n    rows:\n      - {model: LR, auc: 0.8 (0.7 to)}\n",
             "bad.csv": "table,model,cohort,statistic,value\nT,LR,training,auroc,0.8\n"}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = run_dlr("audit", str(path), "--out", str(tmp_path / f"out_{name}"))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert name in result.stderr
        assert not (tmp_path / f"out_{name}").exists()
    assert "aucc" in run_dlr("audit", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o")).stderr
    assert "auroc" in run_dlr("audit", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")).stderr
