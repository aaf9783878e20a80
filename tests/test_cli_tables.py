"""`dlr table1` and `dlr logistic` from the command line on the paper's reconstructed Table 1."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import DATA
from dlr.cli import main

CASE = DATA / "reference" / "paper_table1_training"


@pytest.fixture(scope="module")
def clinical():
    return CASE / "clinical.csv"


def test_table1_reproduces_the_papers_p_values(clinical, tmp_path, capsys):
    assert main(["table1", str(clinical), "--outcome", "early_recurrence", "--cohort", "cohort",
                 "--out", str(tmp_path)]) == 0
    tests = pd.read_csv(tmp_path / "table1_tests.csv").set_index(["variable", "scope"])
    expected = json.loads((CASE / "expected.json").read_text())
    assert len(expected) == 17
    for e in expected:
        assert abs(tests.loc[(e["variable"], e["scope"]), "p_value"] - e["p_value"]) <= 0.0015, e["variable"]
    table = pd.read_csv(tmp_path / "table1.csv")
    assert {"variable", "level"} <= set(table.columns) and len(table) > 17


def test_logistic_writes_tables_and_selection(clinical, tmp_path, capsys):
    assert main(["logistic", str(clinical), "--outcome", "early_recurrence", "--cohort", "cohort",
                 "--dev-cohort", "training", "--out", str(tmp_path)]) == 0
    uni = pd.read_csv(tmp_path / "univariate.csv")
    assert list(uni.columns) == ["variable", "level", "reference", "odds_ratio", "ci_low", "ci_high", "p_value"]
    assert len(uni) == 17
    multi = pd.read_csv(tmp_path / "multivariate.csv")
    assert set(multi["variable"]) == set(uni.loc[uni["p_value"] < 0.05, "variable"])  # p < 0.05 entered
    selected = (tmp_path / "selected.txt").read_text().split()
    assert selected == list(multi.loc[multi["p_value"] < 0.05, "variable"])


@pytest.mark.parametrize("argv,needle", [
    (["--outcome", "recurrence"], "recurrence"),
    (["--outcome", "early_recurrence", "--cohort", "arm"], "arm"),
])
def test_bad_columns_exit_2(clinical, tmp_path, capsys, argv, needle):
    for verb in ("table1", "logistic"):
        code = main([verb, str(clinical), *argv, "--out", str(tmp_path / verb)])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err
        assert not (tmp_path / verb).exists() or not any((tmp_path / verb).iterdir())


def test_staging_command_on_the_worked_examples(tmp_path, capsys):
    # spec/staging.md worked examples P1 and P11 with the default labs, and one patient without labs
    base = dict(tbil=15.0, alb=42.0, child_pugh_class="A", child_pugh_score=5, ecog_ps=0, macrovascular_invasion=0,
                extrahepatic_spread=0, afp=8.0, tumor_extent_over_50pct=0, portal_vein_thrombosis=0, neutrophils=3.0,
                lymphocytes=1.5, platelets=150.0, monocytes=0.5, gender="Male")
    rows = [dict(base, patient_id="P1", tumor_number=1, tumor_diameter=2.0),
            dict(base, patient_id="P11", tumor_number=1, tumor_diameter=4.0, ecog_ps=3),
            dict(patient_id="P99", tumor_number=1, tumor_diameter=3.0, ecog_ps=0, child_pugh_class="A")]
    pd.DataFrame(rows).to_csv(tmp_path / "clinical.csv", index=False)
    assert main(["staging", str(tmp_path / "clinical.csv"), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "staging.csv", dtype=str).set_index("patient_id")
    assert table.loc["P1", "BCLC"] == "0" and table.loc["P1", "CNLC"] == "Ia" and table.loc["P1", "CLIP"] == "0"
    assert table.loc["P11", "BCLC"] == "D" and table.loc["P11", "CNLC"] == "IV"
    assert float(table.loc["P1", "NLR"]) == 2.0 and table.loc["P1", "ALBI_grade"] == "1"
    missing = pd.read_csv(tmp_path / "out" / "staging_missing.csv")
    assert "P99" in set(missing["patient_id"]) and "ALBI" in set(missing.loc[missing["patient_id"] == "P99", "system"])
    bad = pd.DataFrame([dict(rows[0], child_pugh_class="E")])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["staging", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "child_pugh_class" in err and "P1" in err and "Traceback" not in err


def test_study_yaml_cut_points_dichotomise_like_the_paper(tmp_path, capsys):
    from dlr.modeling.config import StudyConfig, dump_study_config

    rng = __import__("numpy").random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "cohort": ["training"] * 40 + ["validation"] * 20,
                          "early_recurrence": rng.integers(0, 2, n), "afp": rng.lognormal(4, 2, n),
                          "gender": rng.choice(["Male", "Female"], n), "noise": rng.normal(size=n)})
    frame.loc[3, "afp"] = None
    frame.to_csv(tmp_path / "clinical.csv", index=False)
    config = StudyConfig(variables=[{"name": "afp", "type": "continuous", "cut_point": 400},
                                    {"name": "gender", "type": "categorical"}])
    (tmp_path / "study.yaml").write_text(dump_study_config(config))
    assert main(["table1", str(tmp_path / "clinical.csv"), "--outcome", "early_recurrence", "--cohort", "cohort",
                 "--study", str(tmp_path / "study.yaml"), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "table1.csv")
    assert set(table.loc[table["variable"] == "afp", "level"].dropna()) >= {">400", "<=400"}
    assert "noise" not in set(table["variable"])  # only study.yaml's variables
    tests = pd.read_csv(tmp_path / "out" / "table1_tests.csv")
    assert tests.loc[tests["variable"] == "afp", "test"].str.contains("chi-squared|Fisher").all()


def test_staging_study_yaml_maps_columns(tmp_path, capsys):
    from dlr.modeling.config import StudyConfig, dump_study_config

    pd.DataFrame([dict(patient_id="P1", performance_status=3, child_pugh_class="A", tumor_number=1,
                       tumor_diameter=4.0, macrovascular_invasion=0, extrahepatic_spread=0)]).to_csv(
        tmp_path / "clinical.csv", index=False)
    (tmp_path / "study.yaml").write_text(dump_study_config(StudyConfig(staging_columns={"ecog_ps": "performance_status"})))
    assert main(["staging", str(tmp_path / "clinical.csv"), "--study", str(tmp_path / "study.yaml"),
                 "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "staging.csv", dtype=str).set_index("patient_id")
    assert table.loc["P1", "BCLC"] == "D"  # ECOG 3, read from the user's performance_status column
    (tmp_path / "study.yaml").write_text(dump_study_config(StudyConfig(staging_columns={"ecog_ps": "ps"})))
    assert main(["staging", str(tmp_path / "clinical.csv"), "--study", str(tmp_path / "study.yaml"),
                 "--out", str(tmp_path / "out2")]) == 2
    assert "ps" in capsys.readouterr().err


def test_logistic_reports_the_minimum_sample_size(clinical, tmp_path, capsys):
    assert main(["logistic", str(clinical), "--outcome", "early_recurrence", "--cohort", "cohort",
                 "--out", str(tmp_path)]) == 0
    size = pd.read_csv(tmp_path / "sample_size.csv").iloc[0]
    assert (size["n_available"], size["events_available"], size["parameters"]) == (132, 78, 17)
    assert not size["adequate"] and size["n_required"] > 132
    assert "warning: the development cohort has 132 patients" in capsys.readouterr().err
