"""study.yaml: the typed model accepts a full config and names the key of every error."""
from __future__ import annotations

import pytest

from dlr.modeling.config import (StudyConfigError, dump_study_config, load_study_config, parse_study_config)

FULL = {
    "name": "demo", "cohorts": ["training", "validation"], "phases": ["AP", "PVP", "DP"], "scanner_column": "scanner",
    "variables": [{"name": "afp", "type": "continuous", "unit": "ng/mL", "cut_point": 400},
                  {"name": "tumor_margin", "type": "categorical", "role": "radiological",
                   "levels": ["Smooth", "Non-smooth"], "reader2_column": "tumor_margin_reader2"}],
    "staging_columns": {"ecog_ps": "ps"},
}


def test_full_config_round_trips(tmp_path):
    config = parse_study_config(FULL)
    assert config.columns()[:3] == ["patient_id", "cohort", "early_recurrence"]
    assert "tumor_margin_reader2" in config.columns() and "ps" in config.columns()
    (tmp_path / "study.yaml").write_text(dump_study_config(config))
    assert load_study_config(tmp_path / "study.yaml") == config


@pytest.mark.parametrize("change,needle", [
    ({"colour": "red"}, "colour"),
    ({"variables": [{"name": "afp", "type": "number"}]}, "variables[0].type"),
    ({"variables": [{"name": "x", "type": "categorical", "cut_point": 3}]}, "cut_point"),
    ({"dev_cohort": "derivation"}, "derivation"),
    ({"phases": ["AP", "AP"]}, "distinct"),
    ({"staging_columns": {"ecog": "ps"}}, "ecog"),
    ({"profile": "huge"}, "profile"),
])
def test_errors_name_the_key(change, needle):
    with pytest.raises(StudyConfigError, match="problem") as exc:
        parse_study_config({**FULL, **change})
    assert needle in str(exc.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(StudyConfigError, match="no such file"):
        load_study_config(tmp_path / "study.yaml")
    (tmp_path / "study.yaml").write_text("name: [unclosed")
    with pytest.raises(StudyConfigError, match="not valid YAML"):
        load_study_config(tmp_path / "study.yaml")
    (tmp_path / "study.yaml").write_text("- a list\n")
    with pytest.raises(StudyConfigError, match="mapping"):
        load_study_config(tmp_path / "study.yaml")
