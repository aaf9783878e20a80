"""Categorical levels: study.yaml's ``levels`` order is the order of Table 1's rows and the
reference of Table 3 is its first level (as R's ``factor(levels = ...)`` in ``glm``); without
declared levels the order is the documented default (numbers by value, then text by code
point); a value not among the declared levels is an input error naming the column, value and
patient."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import special

from dlr.core.errors import InputError
from dlr.core.tables import parse_column
from dlr.cli import main
from dlr.modeling.config import StudyConfig, StudyConfigError, dump_study_config, parse_study_config
from dlr.modeling.cr_factors import multivariate_logistic, univariate_logistic

SIZES = ["<=20", "20-50", ">50"]  # string sort would give 20-50, <=20, >50
#: training patients by (tumour_size, early_recurrence)
COUNTS = {("<=20", 0): 30, ("<=20", 1): 10, ("20-50", 0): 20, ("20-50", 1): 20, (">50", 0): 8, (">50", 1): 16}
CONFIG = StudyConfig(variables=[{"name": "tumour_size", "type": "categorical", "levels": SIZES},
                                {"name": "child_pugh", "type": "categorical", "levels": ["A", "B", "C"]},
                                {"name": "age", "type": "continuous"}])


def _clinical() -> pd.DataFrame:
    """104 training patients with COUNTS, 12 validation patients (no tumour > 50); no Child-Pugh C."""
    rows, i = [], 0
    for (size, y), k in COUNTS.items():
        for _ in range(k):
            i += 1
            rows.append({"patient_id": f"P{i:03d}", "cohort": "training", "early_recurrence": y, "tumour_size": size,
                         "child_pugh": "B" if i % 5 == 0 else "A", "age": 40 + (i * 7) % 31})
    for j, size in enumerate(["<=20", "20-50"] * 6):
        i += 1
        rows.append({"patient_id": f"P{i:03d}", "cohort": "validation", "early_recurrence": j % 2,
                     "tumour_size": size, "child_pugh": "A", "age": 50 + j})
    return pd.DataFrame(rows)


def _write_study(tmp_path, frame=None, config=CONFIG):
    (frame if frame is not None else _clinical()).to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "study.yaml").write_text(dump_study_config(config))
    return str(tmp_path / "clinical.csv"), str(tmp_path / "study.yaml")


def _rows(table: pd.DataFrame, variable: str) -> pd.DataFrame:
    return table[table["variable"] == variable].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Table 3: the first declared level is the reference


def test_univariate_reference_is_the_first_declared_level():
    table, variables, categorical = CONFIG.clinical_variables(_clinical())
    uni = univariate_logistic(table, outcome="early_recurrence", variables=variables, categorical=categorical,
                              cohort="cohort")
    size = _rows(uni.table, "tumour_size")
    assert list(zip(size.level, size.reference)) == [("20-50", "<=20"), (">50", "<=20")]
    # R 4.2.2: t <- subset(read.csv("clinical.csv"), cohort == "training")   # _clinical()
    #        t$tumour_size <- factor(t$tumour_size, levels = c("<=20", "20-50", ">50"))
    #        f <- glm(early_recurrence ~ tumour_size, family = binomial, data = t,
    #                 control = glm.control(epsilon = 1e-14))
    #        exp(cbind(coef(f), confint.default(f)))[-1, ]; coef(summary(f))[-1, 4]
    assert_allclose(size.odds_ratio, [3.0, 6.0], rtol=1e-9)
    assert_allclose(size.ci_low, [1.16399696087, 1.97702600641], rtol=1e-9)
    assert_allclose(size.ci_high, [7.73197895058, 18.209168662], rtol=1e-9)
    assert_allclose(size.p_value, [0.0229453410194, 0.00155993111662], rtol=1e-9)
    # the oracle: a single factor's odds ratios and Wald SEs from the 2 x 2 counts
    se = np.sqrt(1 / 30 + 1 / 10 + np.array([1 / 20 + 1 / 20, 1 / 8 + 1 / 16]))
    assert_allclose(size.p_value, 2 * special.ndtr(-np.log([3.0, 6.0]) / se), rtol=1e-9)


def test_multivariate_reference_is_the_first_declared_level_present():
    # child_pugh declares C, which no patient has: dropped as R's glm drops unused factor levels
    table, _, categorical = CONFIG.clinical_variables(_clinical())
    multi = multivariate_logistic(table, outcome="early_recurrence", variables=["tumour_size", "child_pugh", "age"],
                                  categorical=categorical, cohort="cohort")
    t = multi.table
    assert list(zip(t.variable, t.level, t.reference)) == [
        ("tumour_size", "20-50", "<=20"), ("tumour_size", ">50", "<=20"), ("child_pugh", "B", "A"), ("age", "", "")]
    # R 4.2.2: as above, and t$child_pugh <- factor(t$child_pugh, levels = c("A", "B", "C"))
    #        f <- glm(early_recurrence ~ tumour_size + child_pugh + age, family = binomial, data = t,
    #                 control = glm.control(epsilon = 1e-14))
    assert_allclose(t.odds_ratio, [3.08520968595, 6.16735431397, 1.06550257917, 0.968382472229], rtol=1e-9)
    assert_allclose(t.ci_low, [1.18400678973, 2.00487826664, 0.37249335311, 0.923824300302], rtol=1e-9)
    assert_allclose(t.ci_high, [8.03924343071, 18.971854734, 3.04782820081, 1.01508978733], rtol=1e-9)
    assert_allclose(t.p_value, [0.0211315118347, 0.00150758807571, 0.905813532738, 0.181289575425], rtol=1e-9)


def test_a_pandas_categorical_carries_its_levels_without_study_yaml():
    frame = _clinical()
    frame["tumour_size"] = pd.Categorical(frame["tumour_size"], categories=SIZES)
    uni = univariate_logistic(frame, outcome="early_recurrence", variables=["tumour_size"], cohort="cohort")
    assert set(uni.table.reference) == {"<=20"}


def test_logistic_command_takes_the_first_declared_level_as_reference(tmp_path, capsys):
    clinical, study = _write_study(tmp_path)
    assert main(["logistic", clinical, "--outcome", "early_recurrence", "--cohort", "cohort", "--study", study,
                 "--out", str(tmp_path / "out")]) == 0
    uni = pd.read_csv(tmp_path / "out" / "univariate.csv", keep_default_na=False)
    size = _rows(uni, "tumour_size")
    assert list(zip(size.level, size.reference)) == [("20-50", "<=20"), (">50", "<=20")]
    assert_allclose(size.odds_ratio.astype(float), [3.0, 6.0], rtol=1e-9)
    assert list(zip(*[_rows(uni, "child_pugh")[c] for c in ("level", "reference")])) == [("B", "A")]


# --------------------------------------------------------------------------------------------
# Table 1: rows in the declared order, declared levels kept with 0 counts


def test_table1_lists_levels_in_the_declared_order(tmp_path, capsys):
    clinical, study = _write_study(tmp_path)
    assert main(["table1", clinical, "--outcome", "early_recurrence", "--cohort", "cohort", "--study", study,
                 "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "table1.csv", keep_default_na=False, dtype=str)
    size = _rows(table, "tumour_size")
    assert list(size.level) == SIZES
    assert size.loc[2, "validation: early_recurrence=0"] == "0 (0.0%)"  # no validation tumour > 50
    cp = _rows(table, "child_pugh")
    assert list(cp.level) == ["A", "B", "C"]  # C is declared, held by nobody
    assert cp.loc[2, "training: early_recurrence=1"] == "0 (0.0%)"
    summary = pd.read_csv(tmp_path / "out" / "table1_summary.csv", keep_default_na=False)
    assert list(dict.fromkeys(summary.loc[summary.variable == "tumour_size", "level"])) == SIZES
    # the empty level changes no test: the training chi-squared is that of the A/B table
    tests = pd.read_csv(tmp_path / "out" / "table1_tests.csv").set_index(["variable", "scope"])
    from dlr.core.stats.group_tests import compare_categorical

    f = _clinical()
    f = f[f.cohort == "training"]
    a = np.array([[np.sum((f.child_pugh == lv) & (f.early_recurrence == g)) for g in (0, 1)] for lv in "AB"])
    assert_allclose(tests.loc[("child_pugh", "training"), "p_value"], compare_categorical(a).p_value, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# A value not declared is an input error


def test_an_undeclared_level_exits_2_naming_column_value_and_patient(tmp_path, capsys):
    frame = _clinical()
    frame.loc[frame.patient_id == "P007", "tumour_size"] = "> 50"
    clinical, study = _write_study(tmp_path, frame)
    for verb in ("table1", "logistic"):
        code = main([verb, clinical, "--outcome", "early_recurrence", "--cohort", "cohort", "--study", study,
                     "--out", str(tmp_path / verb)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "tumour_size" in err and "'> 50'" in err and "P007" in err and "variables[0].levels" in err
        assert "Traceback" not in err and not (tmp_path / verb).exists()


def test_undeclared_level_error_from_the_library_lists_every_value():
    frame = _clinical()
    frame.loc[[0, 1], "tumour_size"] = "unknown"
    frame.loc[5, "child_pugh"] = "D"
    with pytest.raises(InputError) as exc:
        CONFIG.clinical_variables(frame)
    message = str(exc.value)
    assert "'unknown'" in message and "P001, P002" in message and "<=20, 20-50, >50" in message
    with pytest.raises(InputError, match="child_pugh.*'D'.*P006"):
        CONFIG.clinical_variables(frame, variables=["child_pugh"])


def test_numeric_levels_match_numeric_values_and_blanks_are_missing():
    config = StudyConfig(variables=[{"name": "grade", "type": "categorical", "levels": [3, 1, 2]}])
    assert config.variables[0].levels == ["3", "1", "2"]
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "grade": [1.0, 2.0, np.nan, 3.0]})
    table, _, _ = config.clinical_variables(frame)
    col = parse_column(table, "grade", True)
    assert col.level_order == ("3", "1", "2") and list(col.missing) == [False, False, True, False]
    text = pd.DataFrame({"patient_id": ["a", "b", "c"], "grade": [" 1", "", "2"]})
    col = parse_column(config.clinical_variables(text)[0], "grade", True)
    assert list(col.levels) == ["1", "", "2"] and list(col.missing) == [False, True, False]


# --------------------------------------------------------------------------------------------
# Without declared levels: numbers by value, then text by code point (R factor(), C collation)


def test_default_order_numbers_by_value_then_text_by_code_point():
    frame = pd.DataFrame({"code": [10, 2, 9, 2], "word": ["b", "B", "a", "<=20"], "mixed": ["x", "10", "9", "-1"]})
    assert parse_column(frame, "code", True).level_order == ("2", "9", "10")
    # R: levels(factor(c("b", "B", "a", "<=20"))) with Sys.setlocale("LC_COLLATE", "C")
    assert parse_column(frame, "word", False).level_order == ("<=20", "B", "a", "b")
    assert parse_column(frame, "mixed", False).level_order == ("-1", "9", "10", "x")
    uni = univariate_logistic(pd.DataFrame({"y": [0, 1, 0, 1, 1, 0], "code": [0, 0, 1, 1, 2, 2]}), outcome="y",
                              categorical=["code"])
    assert list(zip(uni.table.level, uni.table.reference)) == [("1", "0"), ("2", "0")]


# --------------------------------------------------------------------------------------------
# study.yaml's levels key


@pytest.mark.parametrize("variable,needle", [
    ({"name": "x", "type": "continuous", "levels": ["a", "b"]}, "variables[0].levels"),
    ({"name": "x", "type": "categorical", "levels": ["a", "b", "a"]}, "more than once"),
    ({"name": "x", "type": "categorical", "levels": []}, "at least one"),
    ({"name": "x", "type": "categorical", "levels": ["a", " "]}, "blank"),
    ({"name": "x", "type": "categorical", "levels": [False, True]}, "quote"),
    ({"name": "x", "type": "categorical", "levels": "a, b"}, "list"),
    ({"name": "x", "type": "binary", "levels": ["0", "1", "2"]}, "two levels"),
])
def test_bad_levels_name_the_key(variable, needle):
    with pytest.raises(StudyConfigError) as exc:
        parse_study_config({"variables": [variable]})
    assert "variables[0].levels" in str(exc.value) and needle in str(exc.value)


def test_levels_round_trip_through_study_yaml(tmp_path):
    from dlr.modeling.config import load_study_config

    (tmp_path / "study.yaml").write_text(dump_study_config(CONFIG))
    assert load_study_config(tmp_path / "study.yaml").variables[0].levels == SIZES


def test_dlr_validate_lists_a_value_outside_the_declared_levels(tmp_path):
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from real_clinical_study import write_study

    from dlr.modeling.study import validate_study

    study = write_study(tmp_path / "s")
    frame = pd.read_csv(study / "clinical.csv")
    frame.loc[0, "gender"] = "Mal"
    frame.to_csv(study / "clinical.csv", index=False)
    problems = [p for p in validate_study(study, check_images=False) if p.check == "undeclared-level"]
    assert len(problems) == 1 and "'Mal'" in problems[0].message and "HCC_001" in problems[0].message
