"""Several cohorts besides the development one (issue 23, scope 3): `training`, `validation`,
`external-A` and `external-B`, each reported apart.

Fast tests: `dlr analyze` on a hand-made four-cohort predictions file (the unpaired DeLong test
of every model in every non-development cohort against the development cohort, checked against
an O(n^2) oracle of the formula; the development thresholds carried unchanged; a figure per
cohort), and Tables 2 and 4 on hand-written run files. The slow test runs `dlr run` on a
clinical-only synthetic study whose non-development patients were split into three cohorts,
and checks Table 4, cohort_tests.csv, one panel per cohort in each per-cohort figure, the report
text and its audit.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from scipy import stats

from conftest import run_dlr
from dlr.report.tables import THRESHOLD_GROUP, cohort_text, table2, table4
from test_report_tables import auc_text, check_pipe_table, p_text

OTHERS = ["validation", "external-A", "external-B"]
COHORTS = ["training", *OTHERS]


# --- the unpaired DeLong test, written out (methods.md A; pROC roc.test(paired = FALSE)) ------------


def delong_oracle(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong variance from the O(n^2) placement matrix (DeLong et al. 1988)."""
    pos, neg = score[y == 1], score[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


def unpaired_p(ya, sa, yb, sb) -> float:
    """D = (A1 - A2) / sqrt(V1 + V2), Student t with Welch-Satterthwaite df over the patients of
    each curve, two-sided (pROC `roc.test(roc1, roc2, paired = FALSE, method = "delong")`)."""
    a1, v1 = delong_oracle(ya, sa)
    a2, v2 = delong_oracle(yb, sb)
    d = (a1 - a2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 ** 2 / (ya.size - 1) + v2 ** 2 / (yb.size - 1))
    return 2 * stats.t.sf(abs(d), df)


def test_the_oracle_is_the_formula_and_can_tell_two_cohorts_apart():
    rng = np.random.default_rng(3)
    y = rng.binomial(1, 0.5, 60)
    good, poor = y + rng.normal(0, 0.5, 60), y + rng.normal(0, 3.0, 60)
    assert delong_oracle(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))[0] == 0.75
    assert unpaired_p(y, good, y, poor) < 0.01 < unpaired_p(y, good, y, good + 1e-9 * rng.normal(size=60))


# --- fast: `dlr analyze` on four cohorts -------------------------------------------------------


def four_cohort_predictions(n: int = 240, seed: int = 7) -> pd.DataFrame:
    """Contract section 4, long form: two probability models and an index (stage-like), 120
    training patients and 40 in each of three other cohorts, with a scanner attribute."""
    rng = np.random.default_rng(seed)
    cohort = np.array(["training"] * (n // 2) + [OTHERS[k % 3] for k in range(n - n // 2)])
    y = rng.binomial(1, 0.45, n)
    scanner = rng.choice(["1.5T", "3.0T"], n)
    noise = {"training": 1.0, "validation": 1.2, "external-A": 2.5, "external-B": 0.8}
    sd = np.array([noise[c] for c in cohort])
    frames = []
    for model, strength in (("A", 1.5), ("B", 0.8)):
        signal = strength * y + rng.normal(0, 1, n) * sd
        frames.append(pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(n)], "cohort": cohort, "model": model,
                                    "y_true": y, "y_score": 1 / (1 + np.exp(-signal)), "scanner": scanner}))
    stage = np.clip(np.round(y + rng.normal(1.0, 1.0, n) * sd), 0, 4)
    frames.append(frames[0].assign(model="BCLC", y_score=stage))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("four_cohorts")
    predictions = four_cohort_predictions()
    predictions.to_csv(root / "predictions.csv", index=False)
    res = run_dlr("analyze", root / "predictions.csv", "--out", root / "results", "--strata", "scanner",
                  "--bootstrap", "50")
    assert res.returncode == 0, res.stderr[-3000:]
    return predictions, root / "results"


def test_analyze_tests_each_model_in_each_other_cohort_against_development(analysed):
    predictions, out = analysed
    tests = pd.read_csv(out / "cohort_tests.csv")
    assert sorted(zip(tests["model"], tests["cohort_a"], tests["cohort_b"])) == sorted(
        (m, "training", c) for m in ("A", "B", "BCLC") for c in OTHERS)
    for r in tests.itertuples():
        a = predictions[(predictions["model"] == r.model) & (predictions["cohort"] == r.cohort_a)]
        b = predictions[(predictions["model"] == r.model) & (predictions["cohort"] == r.cohort_b)]
        expected = unpaired_p(a["y_true"].to_numpy(), a["y_score"].to_numpy(), b["y_true"].to_numpy(),
                              b["y_score"].to_numpy())
        assert_allclose(r.p_value, expected, rtol=1e-9, err_msg=f"{r.model} {r.cohort_a} vs {r.cohort_b}")
        assert (r.n_a, r.n_b) == (len(a), len(b))
    # the oracle tells the cohorts apart: external-A (noisy) differs from training for model A
    p = tests.set_index(["model", "cohort_b"])["p_value"]
    assert p[("A", "external-A")] < 0.05 < p[("A", "external-B")]


def test_analyze_reports_every_cohort_at_the_development_threshold_with_its_figures(analysed):
    _, out = analysed
    perf = pd.read_csv(out / "performance.csv")
    assert list(dict.fromkeys(perf["cohort"])) == COHORTS
    # thresholds and risk maps are the development cohort's, carried unchanged to every cohort
    assert (perf.groupby("model")["threshold"].nunique() == 1).all()
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["cohorts"] == COHORTS
    mappings = pd.read_csv(out / "risk_mapping.csv")
    assert list(mappings["model"]) == ["BCLC"] and set(mappings["fitted_on"]) == {"training"}
    for cohort in COHORTS:
        for kind in ("roc", "calibration", "decision_curve"):
            assert (out / "figures" / f"{kind}_{cohort}.png").is_file(), (kind, cohort)
    assert set(pd.read_csv(out / "subgroups.csv")["cohort"]) == set(COHORTS)


# --- fast: Tables 2 and 4 on hand-written files ------------------------------------------------------


def _perf_row(model, cohort, auc, n):
    return {"model": model, "cohort": cohort, "score_type": "probability", "n": n, "n_events": n // 2, "auc": auc,
            "auc_ci_low": auc - 0.1, "auc_ci_high": min(auc + 0.1, 1.0), "threshold": 0.5,
            "threshold_source": "out-of-fold", "sensitivity": 0.8, "specificity": 0.6, "accuracy": 0.7, "ppv": 0.7,
            "npv": 0.7, "brier": 0.2, "cal_intercept": 0.0, "cal_slope": 1.0, "hl_chi2": 3.0, "hl_df": 8, "hl_p": 0.9}


def _four_cohort_run(root: Path) -> Path:
    models = ["CR", "Radiomics-LR", "Radiomics-SVM", "RCR"]
    cohorts = ["training", "training (out-of-fold)", *OTHERS]
    sizes = {"training": 120, "training (out-of-fold)": 120, "validation": 40, "external-A": 30, "external-B": 20}
    rows = [_perf_row(m, c, 0.6 + 0.05 * k - 0.02 * j, sizes[c]) for k, m in enumerate(models)
            for j, c in enumerate(cohorts)]
    (root / "results").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "results" / "performance.csv", index=False)
    tests = [{"model": m, "cohort_a": a, "cohort_b": b, "n_a": 120, "n_b": sizes[b], "auc_a": 0.7, "auc_b": 0.6,
              "statistic": 1.0, "df": 30.0, "p_value": 0.0001 + 0.1 * k + 0.02 * i + 0.005 * j}
             for k, m in enumerate(models) for i, a in enumerate(cohorts[:2]) for j, b in enumerate(OTHERS)]
    pd.DataFrame(tests).to_csv(root / "results" / "cohort_tests.csv", index=False)
    settings = {"dev_cohort": "training", "cohorts": cohorts, "models": models, "reference": "RCR",
                "reference_chosen_by": "highest out-of-fold development AUC", "oof_cohort": cohorts[1]}
    (root / "results" / "results.json").write_text(json.dumps({"settings": settings}))
    return root


def test_tables_2_and_4_give_each_cohort_its_rows_and_a_p_column(tmp_path):
    run = _four_cohort_run(tmp_path)
    perf = pd.read_csv(run / "results" / "performance.csv").set_index(["model", "cohort"])
    tests = pd.read_csv(run / "results" / "cohort_tests.csv").set_index(["model", "cohort_a", "cohort_b"])
    for table in (table2(run), table4(run, best_model="Radiomics-LR")):
        f = table.frame
        assert [c for c in f.columns if c.startswith("P value")] == [f"P value vs {c}" for c in OTHERS]
        assert list(f["Cohort"][:5]) == ["Training (apparent)", "Training (out-of-fold)", "Validation", "External-A",
                                         "External-B"]
        model = None
        for _, line in f.iterrows():
            model = line["Model"] or model
            cohort = line["Cohort"].replace(" (apparent)", "")
            cohort = cohort[:1].lower() + cohort[1:]
            row = perf.loc[(model, cohort)]
            assert line["n (events)"] == f"{int(row['n'])} ({int(row['n_events'])})"
            assert line["AUC (95% CI)"] == auc_text(row)
            assert line[f"{THRESHOLD_GROUP}: Accuracy"].startswith(f"{row['accuracy']:.3f}")
            for other in OTHERS:
                expected = p_text(tests.loc[(model, cohort, other), "p_value"]) if cohort.startswith("training") \
                    else "—"
                assert line[f"P value vs {other}"] == expected, (model, cohort, other)
        assert "training (apparent and out-of-fold), validation, external-A and external-B cohorts" in table.caption
        check_pipe_table(table)


def test_a_cohort_keeps_its_spelling_inside_a_sentence():
    assert cohort_text("validation") == "validation" and cohort_text("Validation cohort") == "validation cohort"
    assert cohort_text("external-A") == "external-A" and cohort_text("TCGA") == "TCGA"
    assert cohort_text("External-B cohort") == "external-B cohort"


# --- slow: `dlr run` on a four-cohort clinical-only study ----------------------------------------


def split_validation(study: Path) -> None:
    """Rewrite a synthetic study's non-development patients into three cohorts (outcome by
    outcome, in turn, so each has both outcomes) and make it clinical-only."""
    clinical = pd.read_csv(study / "clinical.csv", dtype=str, keep_default_na=False)
    for outcome in ("0", "1"):
        rows = clinical.index[(clinical["cohort"] != "training") & (clinical["early_recurrence"] == outcome)]
        clinical.loc[rows, "cohort"] = [OTHERS[k % 3] for k in range(len(rows))]
    clinical.to_csv(study / "clinical.csv", index=False)
    config = yaml.safe_load((study / "study.yaml").read_text())
    config.update(cohorts=COHORTS, phases=[])
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def four_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("four_cohort_run")
    res = run_dlr("synth", "--out", root / "S", "--n", "240", "--no-images")
    assert res.returncode == 0, res.stderr[-2000:]
    split_validation(root / "S")
    res = run_dlr("run", root / "S", "--out", root / "R", "--arms", "clinical", "--jobs", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "R"


@pytest.mark.slow
def test_run_table4_and_cohort_tests_cover_every_cohort(four_run):
    perf = pd.read_csv(four_run / "results" / "performance.csv").set_index(["model", "cohort"])
    tests = pd.read_csv(four_run / "results" / "cohort_tests.csv")
    oof = "training (out-of-fold)"
    for model in set(tests["model"]):
        mine = tests[tests["model"] == model]
        assert sorted(mine.loc[mine["cohort_a"] == "training", "cohort_b"]) == sorted(OTHERS), model
    assert sorted(tests.loc[(tests["model"] == "CR") & (tests["cohort_a"] == oof), "cohort_b"]) == sorted(OTHERS)
    # one P value against the formula: CR out of fold against external-B
    predictions = pd.read_csv(four_run / "predictions.csv")
    oof_rows = pd.read_csv(four_run / "predictions_oof.csv")
    a = oof_rows[oof_rows["model"] == "CR"]
    b = predictions[(predictions["model"] == "CR") & (predictions["cohort"] == "external-B")]
    row = tests[(tests["model"] == "CR") & (tests["cohort_a"] == oof) & (tests["cohort_b"] == "external-B")].iloc[0]
    assert_allclose(row["p_value"], unpaired_p(a["y_true"].to_numpy(), a["y_score"].to_numpy(),
                                               b["y_true"].to_numpy(), b["y_score"].to_numpy()), rtol=1e-9)
    f = table4(four_run).frame
    cr = f.iloc[:5]
    assert list(cr["Cohort"]) == ["Training (apparent)", "Training (out-of-fold)", "Validation", "External-A",
                                  "External-B"]
    for _, line in cr.iterrows():
        cohort = line["Cohort"].replace(" (apparent)", "")
        cohort = cohort[:1].lower() + cohort[1:]
        r = perf.loc[("CR", cohort)]
        assert line["n (events)"] == f"{int(r['n'])} ({int(r['n_events'])})"
        assert line["AUC (95% CI)"] == auc_text(r)
    assert cr.iloc[1]["P value vs external-B"] == p_text(row["p_value"])
    assert (cr.iloc[2:][[f"P value vs {c}" for c in OTHERS]] == "—").all().all()


@pytest.mark.slow
def test_run_figures_have_a_panel_per_cohort(four_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlr.report.facts import read_run
    from dlr.report.figures import draw_calibration, draw_dca, draw_km, draw_roc, km_cohorts

    facts = read_run(four_run)
    analysis = facts.analysis
    panels = facts.panel_cohorts
    assert panels == ["training (out-of-fold)", *OTHERS]
    titles = ["Training cohort, out of fold", "Validation cohort", "External-A cohort", "External-B cohort"]
    for fig in (draw_roc(analysis, ["CR", "BCLC"], panels, "CR"), draw_dca(analysis, ["CR"], panels, (0.05, 0.8))):
        assert [ax.get_title() for ax in fig.axes] == titles
        # two rows of two, A B above C D, so that four cohorts stay readable at the page's width
        x = [round(ax.get_position().x0, 3) for ax in fig.axes]
        y = [round(ax.get_position().y0, 3) for ax in fig.axes]
        assert x[0] == x[2] < x[1] == x[3] and y[0] == y[1] > y[2] == y[3]
        assert fig.get_size_inches()[0] < 9
        plt.close(fig)
    calibration = draw_calibration(analysis, ["CR"], panels)
    assert [ax.get_title() for ax in calibration.axes] == titles  # one model, one panel per cohort
    plt.close(calibration)
    km_panels = km_cohorts(analysis.survival, "CR", "training", order=panels)
    assert km_panels == OTHERS
    km = draw_km(analysis, "CR", km_panels)
    assert [ax.get_title() for ax in km.axes] == titles[1:]
    plt.close(km)
    for stem in ("roc_models", "roc_comparators", "calibration_models", "dca_models", "km_best", "forest_scanner"):
        assert (four_run / "report" / "figures" / f"{stem}.png").is_file(), stem


@pytest.mark.slow
def test_run_report_names_every_cohort_and_its_audit_is_clean(four_run):
    from dlr.report.audit import audit_report, failures, report_text

    audit = pd.read_csv(four_run / "report" / "audit.csv")
    assert len(audit) > 100 and (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].to_string()
    assert failures(audit_report(four_run)).empty
    text = " ".join(report_text((four_run / "report" / "index.html").read_text()).split())
    perf = pd.read_csv(four_run / "results" / "performance.csv").set_index(["model", "cohort"])
    abstract = text[text.index("Results. "):text.index("Conclusion. ")]
    for cohort in OTHERS:  # the key model's AUC in every cohort, in the abstract
        r = perf.loc[("CR", cohort)]
        assert f"{cohort} cohort {r['auc']:.3f} (95% CI {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f})" in abstract
    tests = pd.read_csv(four_run / "results" / "cohort_tests.csv")
    for r in tests[(tests["model"] == "CR") & (tests["cohort_a"] == "training (out-of-fold)")].itertuples():
        p = "P < 0.001" if r.p_value < 0.001 else f"P = {r.p_value:.3f}"
        assert f"{r.cohort_b} {r.auc_b:.3f} ({p})" in text
    assert ("(A) the training cohort out of fold, (B) the validation cohort, (C) the external-A cohort, (D) the "
            "external-B cohort") in text
    assert "P value vs external-A" in text and "external-a" not in text
