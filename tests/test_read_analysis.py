"""`dlr.analysis.output.read_analysis` is the inverse of `write_analysis`: every table, the
settings, the warnings and the ROC curves (with their bands and AUCs) come back as written."""
from __future__ import annotations

import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from conftest import make_predictions
from dlr.analysis.output import TABLES, read_analysis, write_analysis
from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import validate_predictions
from dlr.core.errors import InputError


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis") / "results"
    frame = make_predictions(150, seed=4, models=("A", "B", "C"))
    result = analyze(validate_predictions(frame), n_bootstrap=50, seed=3, strata=["scanner"])
    write_analysis(result, folder, figures=False)
    return result, folder


def test_every_table_settings_and_warnings_come_back(written):
    result, folder = written
    back = read_analysis(folder)
    for attribute in [*TABLES.values(), "calibration_groups"]:
        ours, theirs = getattr(back, attribute), getattr(result, attribute)
        assert list(ours.columns) == list(theirs.columns), attribute
        pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True),
                                      check_dtype=False, obj=attribute)
    assert back.settings["dev_cohort"] == result.settings["dev_cohort"]
    assert back.settings["reference"] == result.settings["reference"]
    assert back.warnings == list(result.warnings)


def test_roc_curves_come_back_with_their_bands_and_aucs(written):
    result, folder = written
    back = read_analysis(folder)
    assert back.roc.keys() == result.roc.keys() and len(back.roc) == 6
    for key, curve in result.roc.items():
        again = back.roc[key]
        for name in ("fpr", "tpr", "thresholds", "band_specificity", "band_sensitivity_low", "band_sensitivity_high"):
            assert_array_equal(getattr(again, name), getattr(curve, name), err_msg=f"{key} {name}")
        assert again.auc == curve.auc
        assert len(again.band_specificity) > 0


def test_a_folder_without_results_json_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="results.json"):
        read_analysis(tmp_path)


def test_survival_fits_come_back_with_their_curves_and_statistics(tmp_path):
    from test_survival import EVENT, TIME, _with_survival

    frame = _with_survival(make_predictions(80, seed=5, models=("A", "B")))
    result = analyze(validate_predictions(frame), n_bootstrap=0, time=TIME, event=EVENT)
    write_analysis(result, tmp_path / "results", figures=False)
    back = read_analysis(tmp_path / "results")
    assert back.survival_fits.keys() == result.survival_fits.keys() and len(back.survival_fits) >= 4
    for key, fit in result.survival_fits.items():
        again = back.survival_fits[key]
        for group in ("km_high", "km_low"):
            ours, theirs = getattr(again, group), getattr(fit, group)
            assert ours.n == theirs.n, (key, group)
            for name in ("time", "survival", "ci_low", "ci_high", "at_risk", "n_events"):
                assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=f"{key} {group} {name}")
        assert again.row() == pytest.approx(fit.row(), nan_ok=True)
        assert again.hazard_ratio.estimate == pytest.approx(fit.hazard_ratio.estimate, nan_ok=True)
        assert again.logrank.p_value == pytest.approx(fit.logrank.p_value, nan_ok=True)
