"""Declared data handling (contract 2.1): study.yaml's ``recode`` maps raw values to declared
levels before any check, table or model, and is recorded per cohort (``recodes.csv``, the
report's methods); a level that a non-development cohort has and the development cohort does
not cannot be scored, so `dlr validate` and `dlr run` exit 2 naming the variable, the level,
the cohort, the patients and the fix."""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from dlr.cli import main
from dlr.modeling.config import StudyConfig, StudyConfigError, parse_study_config
from dlr.modeling.levels import development_levels, recode_clinical, recode_log, unseen_levels
from real_clinical_study import write_study

GRADE = StudyConfig(variables=[{"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": {1: "2", "4": "3"}},
                               {"name": "node", "type": "binary"},
                               {"name": "stage", "type": "categorical", "levels": ["I", "II"], "candidate": False}])


def _frame() -> pd.DataFrame:
    """Validation rows first: the record follows study.yaml's cohorts, not the file's order."""
    return pd.DataFrame({
        "patient_id": ["V1", "T1", "T2", "T3", "T4", "V2", "V3"],
        "cohort": ["validation", "training", "training", "training", "training", "validation", "validation"],
        "grade": [1.0, 1.0, 2.0, 3.0, np.nan, 3.0, 1.0],
        "node": [1, 0, 0, 0, 0, 0, 1],
        "stage": ["II", "I", "I", "I", "I", "II", "I"],
    })


# --------------------------------------------------------------------------------------------
# the library: recode, its record, the development levels and the levels they lack


def test_recode_reads_raw_values_as_declared_levels_and_records_patients_per_cohort():
    recoded = recode_clinical(_frame(), GRADE)
    assert recoded["grade"].tolist()[:4] == ["2", "2", "2", "3"] and pd.isna(recoded["grade"].iat[4])
    assert recoded["node"].tolist() == _frame()["node"].tolist()  # no recode, untouched
    pd.testing.assert_frame_equal(recode_clinical(recoded, GRADE), recoded)  # twice is once
    log = recode_log(_frame(), GRADE)
    assert log.columns.tolist() == ["variable", "from", "to", "cohort", "n_patients", "patient_ids"]
    assert log.values.tolist() == [["grade", "1", "2", "training", 1, "T1"],
                                   ["grade", "1", "2", "validation", 2, "V1; V3"],
                                   ["grade", "4", "3", "", 0, ""]]  # declared, held by nobody
    assert recode_log(recoded, GRADE)["n_patients"].sum() == 0


def test_unseen_levels_name_variable_level_cohort_patients_and_fix():
    frame = recode_clinical(_frame(), GRADE)
    dev = development_levels(frame, GRADE)
    # grade 2 and 3 and node 0 in development; stage is no candidate of the CR model: not scored
    assert dev == {"grade": ("2", "3"), "node": ("0",)}
    found = unseen_levels(frame, GRADE, dev)
    assert [(u.variable, u.level, u.cohort, u.patient_ids) for u in found] == [("node", "1", "validation",
                                                                                 ("V1", "V3"))]
    text = str(found[0])
    assert "node is '1' for 2 patient(s) of the cohort 'validation' (V1, V3)" in text
    assert "Fix: add a recode for it in study.yaml (variables[1], node), e.g. recode: {'1': '0'}" in text
    assert "or drop the variable" in text
    # a value outside the declared levels is the undeclared-level check's, never "unseen"
    raw = _frame()
    raw.loc[raw["patient_id"] == "V2", "grade"] = 5.0
    assert [u.variable for u in unseen_levels(raw, GRADE, development_levels(raw, GRADE))] == ["node"]
    # a level present only in development is fine
    assert unseen_levels(frame, GRADE, {"grade": ("2", "3"), "node": ("0", "1")}) == []


def test_unseen_levels_against_given_development_levels_as_dlr_predict_will_check():
    frame = recode_clinical(_frame(), GRADE)
    bundle = {"grade": ("2",), "node": ("0", "1")}
    found = unseen_levels(frame, GRADE, bundle, cohorts=["training", "validation"])
    assert [(u.level, u.cohort, u.patient_ids) for u in found] == [("3", "training", ("T3",)),
                                                                   ("3", "validation", ("V2",))]


def test_many_patients_are_shown_as_the_first_ten_and_a_count():
    n = 25
    frame = pd.DataFrame({"patient_id": [f"P{i:02d}" for i in range(2 * n)],
                          "cohort": ["training"] * n + ["validation"] * n,
                          "grade": ["2"] * n + ["3"] * n, "node": 0, "stage": "I"})
    found = unseen_levels(frame, GRADE, development_levels(frame, GRADE))
    assert len(found) == 1 and len(found[0].patient_ids) == n
    assert "(P25, P26, P27, P28, P29, P30, P31, P32, P33, P34 and 15 more)" in found[0].message
    assert "e.g. recode: {'3': '2'}" in found[0].fix


@pytest.mark.parametrize("variable,needle", [
    ({"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": {"1": "4"}}, "not among its levels"),
    ({"name": "grade", "type": "continuous", "recode": {"1": "2"}}, "only for categorical and binary"),
    ({"name": "grade", "type": "categorical", "recode": {"1": "2"}}, "declares none"),
    ({"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": {"2": "3"}}, "among its levels"),
    ({"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": {1: "2", "1": "3"}}, "more than once"),
    ({"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": {" ": "2"}}, "empty or blank"),
    ({"name": "grade", "type": "binary", "levels": ["No", "Yes"], "recode": {"n": False}}, "quote"),
    ({"name": "grade", "type": "categorical", "levels": ["2", "3"], "recode": ["1", "2"]}, "map raw values"),
])
def test_bad_recode_declarations_name_the_key_and_the_variable(variable, needle):
    with pytest.raises(StudyConfigError) as exc:
        parse_study_config({"variables": [{"name": "age", "type": "continuous"}, variable]})
    message = str(exc.value)
    assert "variables[1].recode" in message and "'grade'" in message and needle in message, message


def test_recode_round_trips_through_study_yaml_as_text(tmp_path):
    from dlr.modeling.config import dump_study_config, load_study_config

    assert GRADE.variables[0].recode == {"1": "2", "4": "3"}  # the number 1 read as the text '1'
    (tmp_path / "study.yaml").write_text(dump_study_config(GRADE))
    assert "'1': '2'" in (tmp_path / "study.yaml").read_text()
    assert load_study_config(tmp_path / "study.yaml") == GRADE


# --------------------------------------------------------------------------------------------
# through the command line, on the real clinical-only study (105 patients, tests/real_clinical_study.py)


def _edit(study, **changes):
    """Set clinical.csv's ``column`` to ``value`` for the patients ``ids``: ``changes`` maps
    column -> [(ids, value), ...]."""
    frame = pd.read_csv(study / "clinical.csv")
    for column, edits in changes.items():
        for ids, value in edits:
            frame.loc[frame["patient_id"].isin(list(ids)), column] = value
    frame.to_csv(study / "clinical.csv", index=False)
    return frame


def _declare(study, name, **keys):
    config = yaml.safe_load((study / "study.yaml").read_text())
    for variable in config["variables"]:
        if variable["name"] == name:
            variable.update(keys)
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _ids(frame, cohort, column, value) -> list:
    return frame.loc[(frame["cohort"] == cohort) & (frame[column] == value), "patient_id"].tolist()


def test_levels_unseen_in_development_exit_2_from_validate_and_run(tmp_path, capsys):
    study = write_study(tmp_path / "study")
    frame = pd.read_csv(study / "clinical.csv")
    women = _ids(frame, "validation", "gender", "Female")
    # Child-Pugh C: declared, no development patient (the one moved to B), two validation patients;
    # gender: no development woman, 17 validation women
    _edit(study, child_pugh_class=[(_ids(frame, "training", "child_pugh_class", "C"), "B"),
                                   (["HCC_003", "HCC_006"], "C")],
          gender=[(_ids(frame, "training", "gender", "Female"), "Male")])
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert err.count("unseen-level") == 2 and "Traceback" not in err, err  # every problem, not the first
    assert ("child_pugh_class is 'C' for 2 patient(s) of the cohort 'validation' (HCC_003, HCC_006), a level no "
            "patient of the development cohort has (its levels there: 'A', 'B')") in err
    assert "e.g. recode: {'C': 'B'}" in err and "or drop the variable" in err
    assert f"gender is 'Female' for {len(women)} patient(s) of the cohort 'validation'" in err
    assert f"({', '.join(women[:10])} and {len(women) - 10} more)" in err
    run = tmp_path / "run"
    assert main(["run", str(study), "--out", str(run), "--arms", "clinical", "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "child_pugh_class is 'C'" in err and "HCC_003, HCC_006" in err
    assert "gender is 'Female'" in err and "add a recode for it in study.yaml" in err
    assert not (run / "predictions.csv").exists() and not (run / "clinical").exists()
    # the fix works: a recode of the validation level onto a development one (gender dropped)
    _declare(study, "child_pugh_class", levels=["A", "B"], recode={"C": "B"})
    _declare(study, "gender", candidate=False)
    assert main(["validate", str(study)]) == 0, capsys.readouterr().err


def test_bad_recode_exits_2_naming_the_variable_and_writes_nothing(tmp_path, capsys):
    study = write_study(tmp_path / "study")
    _declare(study, "vascular_invasion", recode={"Present": "Positive"})
    for command in (["validate", str(study)],
                    ["run", str(study), "--out", str(tmp_path / "run"), "--arms", "clinical", "--bootstrap", "20"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "variables[6].recode" in err and "'vascular_invasion'" in err and "'Positive'" in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").glob("*/*.csv"))


def test_table1_logistic_and_staging_commands_read_recoded_values(tmp_path, capsys):
    study = write_study(tmp_path / "study")
    original = tmp_path / "original.csv"
    (study / "clinical.csv").rename(original)
    frame = pd.read_csv(original)
    frame["child_pugh_class"] = frame["child_pugh_class"].replace({"B": "b", "C": "Class C"})
    frame.to_csv(study / "clinical.csv", index=False)
    _declare(study, "child_pugh_class", recode={"b": "B", "Class C": "C"})
    yaml_ = str(study / "study.yaml")
    for name, clinical in (("recoded", study / "clinical.csv"), ("original", original)):
        for verb in ("table1", "logistic"):
            assert main([verb, str(clinical), "--outcome", "death_2y", "--cohort", "cohort", "--study", yaml_,
                         "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        assert main(["staging", str(clinical), "--study", yaml_, "--out", str(tmp_path / name / "staging")]) == 0
    for table in ("table1.csv", "table1_tests.csv", "univariate.csv", "staging/staging.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "recoded" / table),
                                      pd.read_csv(tmp_path / "original" / table))
    log = pd.read_csv(tmp_path / "recoded" / "recodes.csv", keep_default_na=False)
    n_b = (frame["child_pugh_class"] == "b").groupby(frame["cohort"]).sum()
    assert log[["from", "to", "cohort", "n_patients"]].values.tolist() == [
        ["b", "B", "training", n_b["training"]], ["b", "B", "validation", n_b["validation"]],
        ["Class C", "C", "training", 1]]
    untouched = pd.read_csv(tmp_path / "original" / "recodes.csv", keep_default_na=False)
    assert untouched[["from", "n_patients"]].values.tolist() == [["b", 0], ["Class C", 0]]  # declared, nothing to do


@pytest.mark.slow
def test_a_recode_reaches_every_table_the_cr_model_and_the_report(tmp_path, capsys):
    """vascular_invasion (the real study's CR factor) recorded as 'Present' for 3 training and 2
    validation patients whose value is 'Yes': the recode makes them 'Yes' everywhere."""
    study = write_study(tmp_path / "study")
    frame = pd.read_csv(study / "clinical.csv")
    present = _ids(frame, "training", "vascular_invasion", "Yes")[:3] + _ids(frame, "validation",
                                                                             "vascular_invasion", "Yes")[:2]
    _edit(study, vascular_invasion=[(present, "Present")])
    assert main(["validate", str(study)]) == 2  # undeclared until recoded; the fix says how
    err = capsys.readouterr().err
    assert "undeclared-level" in err and "recode: {'Present': 'No'}" in err, err
    _declare(study, "vascular_invasion", recode={"Present": "Yes", "Unknown": "No"})
    run = tmp_path / "run"
    assert main(["run", str(study), "--out", str(run), "--bootstrap", "50", "--jobs", "1"]) == 0, \
        capsys.readouterr().err[-3000:]
    log = pd.read_csv(run / "clinical" / "recodes.csv", keep_default_na=False, dtype={"n_patients": int})
    assert log.values.tolist() == [
        ["vascular_invasion", "Present", "Yes", "training", 3, "; ".join(present[:3])],
        ["vascular_invasion", "Present", "Yes", "validation", 2, "; ".join(present[3:])],
        ["vascular_invasion", "Unknown", "No", "", 0, ""]]
    # Table 1: two levels, the recoded patients among the 15 training and 8 validation 'Yes'
    table1 = pd.read_csv(run / "clinical" / "table1_summary.csv", keep_default_na=False)
    rows = table1[table1["variable"] == "vascular_invasion"]
    assert set(rows["level"]) == {"No", "Yes"}
    yes = rows[rows["level"] == "Yes"].groupby("cohort")["n"].sum()
    assert yes.to_dict() == {"training": 15, "validation": 8}
    # the CR model (vascular_invasion its one factor) scores the recoded patients as every 'Yes'
    assert (run / "clinical" / "selected.txt").read_text().split() == ["vascular_invasion"]
    cr = pd.read_csv(run / "predictions.csv").query("model == 'CR'").set_index("patient_id")["y_score"]
    yes_ids = set(frame.loc[frame["vascular_invasion"] == "Yes", "patient_id"])
    no_ids = set(frame.loc[frame["vascular_invasion"] == "No", "patient_id"])
    assert np.allclose(cr[present], cr[sorted(yes_ids - set(present))].iloc[0], rtol=0, atol=0)
    assert not np.isclose(cr[present[0]], cr[sorted(no_ids)[0]])
    # the report's methods state each recode and its patients per cohort
    page = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", (run / "report" / "index.html").read_text())).split())
    page = page.replace("\u2018", "'").replace("\u2019", "'")
    assert ("vascular_invasion 'Present' as 'Yes' (3 patients of the training cohort and 2 patients of the "
            "validation cohort); vascular_invasion 'Unknown' as 'No' (no patient)") in page
