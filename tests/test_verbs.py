"""dlr.verbs: each verb takes plain arguments, writes its files, and returns its result with
its warnings, printing nothing (the command line reports)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dlr.core.errors import InputError
from dlr.core.output import file_sha256
from dlr.core.output import read_provenance
from dlr import verbs


@pytest.fixture()
def clinical(tmp_path):
    rng = np.random.default_rng(7)
    n = 80
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * x))).astype(int)
    frame = pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)],
                          "cohort": np.where(np.arange(n) < 60, "training", "validation"),
                          "early_recurrence": y, "marker": x * 10 + 50,
                          "sex": rng.choice(["F", "M"], size=n), "constant": 1.0})
    path = tmp_path / "clinical.csv"
    frame.to_csv(path, index=False)
    return path


def test_logistic_returns_tables_sample_size_and_warnings_without_printing(clinical, tmp_path, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="dlr"):
        done = verbs.logistic(clinical, tmp_path / "tables", outcome="early_recurrence", cohort="cohort",
                              variables=["marker", "sex", "constant"])
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("dlr")]
    assert capsys.readouterr() == ("", "")
    assert done.result.selected == ("marker",)
    assert done.extra["sample_size"].n_available == 60
    assert any("'constant'" in w and "constant variable" in w for w in done.warnings)
    assert messages and "training" in messages[0]
    written = pd.read_csv(done.out / "univariate.csv")
    assert list(written["variable"]) == ["marker", "sex", "constant"]
    record = read_provenance(done.out)
    assert set(record) == {"univariate.csv", "multivariate.csv", "selection.csv", "selected.txt", "sample_size.csv"}
    assert record["selected.txt"]["inputs"]["clinical"] == file_sha256(clinical)
    assert record["selected.txt"]["settings"]["alpha"] == 0.05


def test_table1_and_staging_write_into_one_folder_each_with_its_record(clinical, tmp_path, capsys):
    out = tmp_path / "tables"
    verbs.table1(clinical, out, outcome="early_recurrence", cohort="cohort")
    done = verbs.staging(clinical, out)
    assert capsys.readouterr() == ("", "")
    record = read_provenance(out)
    assert {"table1.csv", "table1_tests.csv", "staging.csv", "staging_missing.csv"} <= set(record)
    assert record["staging.csv"]["settings"]["bclc_version"] == "2022"
    assert done.result.table["patient_id"].tolist()[:2] == ["P000", "P001"]


def test_bad_input_is_an_input_error_naming_the_option(clinical, tmp_path):
    with pytest.raises(InputError, match="--bootstrap"):
        verbs.analyze(clinical, tmp_path / "results", n_bootstrap=-1, figures=False)
    with pytest.raises(InputError, match="--jobs"):
        verbs.extract(tmp_path, tmp_path / "run", jobs=0)
    with pytest.raises(InputError, match="--n"):
        verbs.synth(tmp_path / "study", n=3)
    with pytest.raises(InputError, match="no such file"):
        verbs.table1(tmp_path / "absent.csv", tmp_path / "t", outcome="early_recurrence")


def test_train_without_features_extracts_the_study_it_loaded_once(tmp_path, monkeypatch):
    """`dlr train` on a run with no radiomics.csv extracts first, on the study it has already
    loaded and validated (not read and checked a second time)."""
    from dlr.modeling import study as study_module, train as train_module

    loads, extracted = [], []
    monkeypatch.setattr(study_module, "load_study", lambda path, **kw: loads.append(path) or
                        SimpleNamespace(name=f"study:{path}", config=None))
    monkeypatch.setattr(verbs, "resolve_settings", lambda study, config, **kw: SimpleNamespace(seed=1, deep=None))
    monkeypatch.setattr(verbs, "_extract", lambda loaded, out, settings, **kw: extracted.append(loaded) or
                        verbs.VerbResult(out, None, ("P1 reader 1 AP: empty mask",)))
    no_rows = pd.DataFrame(columns=["patient_id", "cohort", "model", "y_true", "y_score"])
    monkeypatch.setattr(train_module, "train_study",
                        lambda loaded, out, **kw: SimpleNamespace(out=out, study=loaded, predictions=no_rows))
    done = verbs.train(tmp_path / "study", tmp_path / "run", arms=("clinical", "radiomics"), jobs=1)
    assert loads == [tmp_path / "study"] and [e.name for e in extracted] == [f"study:{tmp_path / 'study'}"]
    assert done.warnings == ("P1 reader 1 AP: empty mask",) and "extraction" in done.extra
    with pytest.raises(InputError, match="--jobs"):
        verbs.train(tmp_path / "study", tmp_path / "run", arms=("clinical", "radiomics"), jobs=0)
