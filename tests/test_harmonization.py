"""ComBat harmonisation declared in study.yaml (contract 2.1): equal to neuroCombat, fitted on
development patients only (and on each out-of-fold refit's training folds only), its checks
exit 2 through `dlr validate`, and a whole run with it goes to the end."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose

from conftest import REPO, run_dlr
from dlr.cli import main
from dlr.modeling.config import StudyConfigError, parse_study_config
from dlr.modeling.radiomics.harmonization import ComBat, batch_problems, fit_combat
from dlr.modeling.study import load_study
from dlr.modeling.synthetic import synthesize_study

# one xdist worker runs the module's trains
pytestmark = pytest.mark.xdist_group("harmonization")

HARMONIZATION = {"method": "combat", "batch": "scanner"}
LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"


def _batches(seed: int = 0, sizes=(30, 35, 25), p: int = 40):
    """Features of three batches with feature-specific shifts and scales (patients x features)."""
    rng = np.random.default_rng(seed)
    batch = np.repeat(["A", "B", "C"], sizes)
    x = rng.normal(size=(batch.size, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-5, 5, p)
    for level, shift, scale in (("A", 0.0, 1.0), ("B", 1.5, 2.0), ("C", -0.7, 0.6)):
        rows = batch == level
        x[rows] = x[rows] * scale * rng.uniform(0.8, 1.2, p) + shift * rng.uniform(0.5, 1.5, p)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(p)]), batch


def _neurocombat(x: pd.DataFrame, batch):
    from neuroCombat import neuroCombat

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its steps
        # a float64 array (a DataFrame would be cast to float32), features x patients
        return neuroCombat(x.to_numpy(dtype=float).T.copy(), pd.DataFrame({"batch": batch}), "batch",
                           eb=True, parametric=True)


def test_combat_equals_neurocombat_on_the_fitted_and_on_new_patients():
    from neuroCombat import neuroCombatFromTraining

    x, batch = _batches()
    reference = _neurocombat(x, batch)
    estimates = reference["estimates"]
    combat = fit_combat(x, batch, batch_column="batch")
    assert combat.levels == ("A", "B", "C") and combat.features == tuple(x.columns)
    assert_allclose(combat.grand_mean, estimates["stand.mean"][:, 0], rtol=0, atol=1e-8)
    assert_allclose(combat.var_pooled, estimates["var.pooled"][:, 0], rtol=1e-10)
    assert_allclose(combat.gamma_star, estimates["gamma.star"], rtol=0, atol=1e-8)
    assert_allclose(combat.delta_star, estimates["delta.star"], rtol=1e-8)
    harmonised = combat.transform(x, batch)
    assert_allclose(harmonised.to_numpy(), reference["data"].T, rtol=0, atol=1e-8)
    assert np.abs(harmonised.to_numpy() - x.to_numpy()).max() > 0.5  # it did something
    # new patients: the fitted estimates applied unchanged (neuroCombatFromTraining)
    rng = np.random.default_rng(7)
    new = pd.DataFrame(rng.normal(size=(12, x.shape[1])) * 3, columns=x.columns)
    new_batch = np.array(["C", "A", "B"] * 4)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its int() of a one-element array
        applied = neuroCombatFromTraining(new.to_numpy().T.copy(), new_batch, estimates)["data"].T
    assert_allclose(combat.transform(new, new_batch).to_numpy(), applied, rtol=0, atol=1e-8)


def test_parameters_travel_as_json_numbers_and_rebuild_the_same_transform():
    x, batch = _batches(seed=3, sizes=(12, 9, 14))
    combat = fit_combat(x, batch, batch_column="scanner")
    text = json.dumps(combat.parameters(), allow_nan=False)
    params = json.loads(text)
    assert params["batch"] == "scanner" and params["levels"] == ["A", "B", "C"]
    assert set(params["gamma_star"]["B"]) == set(x.columns) and isinstance(params["delta_star"]["C"]["f3"], float)
    again = ComBat.from_parameters(params)
    pd.testing.assert_frame_equal(again.transform(x, batch), combat.transform(x, batch), check_exact=True)


def test_constant_features_rare_levels_and_unseen_levels_pass_through_as_documented():
    x, batch = _batches(seed=4, sizes=(15, 15, 1))
    x["flat"] = 2.5
    combat = fit_combat(x, batch, batch_column="scanner")
    assert combat.levels == ("A", "B") and combat.unfitted == {"C": 1}  # one patient: no variance estimate
    assert "flat" not in combat.features
    out = combat.transform(x, batch)
    assert (out["flat"] == 2.5).all()
    c_rows = batch == "C"
    pd.testing.assert_frame_equal(out[c_rows], x[c_rows])  # the identity for the unfitted level
    # the fit without level C equals neuroCombat's on the A and B patients
    ab = ~c_rows
    reference = _neurocombat(x.loc[ab, list(combat.features)], batch[ab])
    assert_allclose(out.loc[ab, list(combat.features)].to_numpy(), reference["data"].T, rtol=0, atol=1e-8)
    # a level never seen: refused, or passed through when the caller says so (an out-of-fold refit)
    other = np.array(["D"] + ["A"] * (len(x) - 1))
    with pytest.raises(ValueError, match=r"\['D'\]"):
        combat.transform(x, other)
    kept = combat.transform(x, other, unseen="identity")
    pd.testing.assert_frame_equal(kept.iloc[:1], x.iloc[:1])
    # a single fitted level: nothing to remove
    single = fit_combat(x[batch == "A"], batch[batch == "A"], batch_column="scanner")
    pd.testing.assert_frame_equal(single.transform(x[batch == "A"], batch[batch == "A"]), x[batch == "A"])


def test_study_yaml_harmonization_is_typed():
    base = {"harmonization": HARMONIZATION}
    assert parse_study_config(base).harmonization.batch == "scanner"
    with pytest.raises(StudyConfigError, match=r"harmonization\.method"):
        parse_study_config({"harmonization": {"method": "limma", "batch": "scanner"}})
    with pytest.raises(StudyConfigError, match=r"harmonization\.batch"):
        parse_study_config({"harmonization": {"method": "combat"}})
    assert parse_study_config({}).harmonization is None  # off by default


# --------------------------------------------------------------------------------------------
# study folders


def _clinical_study(root: Path, n: int = 60, **edits) -> Path:
    """The synthetic study's clinical data (no images; phases: []) with harmonization on."""
    synthesize_study(root, n=n, images=False)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["phases"] = []
    config["harmonization"] = dict(HARMONIZATION)
    config.update(edits)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _set_scanner(root: Path, patients, value) -> None:
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    clinical.loc[clinical["patient_id"].isin(list(patients)), "scanner"] = value
    clinical.to_csv(root / "clinical.csv", index=False)


def test_validate_exits_2_naming_unseen_rare_and_missing_batches_and_a_missing_column(tmp_path, capsys):
    root = _clinical_study(tmp_path / "S")
    assert main(["validate", str(root)]) == 0, capsys.readouterr().err
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    validation = clinical.loc[clinical["cohort"] == "validation", "patient_id"].tolist()
    training = clinical.loc[clinical["cohort"] == "training", "patient_id"].tolist()
    _set_scanner(root, validation[:3], "7T")      # a level the development cohort lacks
    _set_scanner(root, training[:1], "0.5T")      # a development level of one patient
    _set_scanner(root, training[1:2], np.nan)     # no batch
    assert main(["validate", str(root)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "unseen-batch" in err and (f"scanner (harmonization.batch) is '7T' for 3 patient(s) of the cohort "
                                      f"'validation' ({', '.join(validation[:3])})") in err, err
    assert "a batch no patient of the development cohort 'training' has" in err
    assert "recode: {'7T': '0.5T'}" in err or "recode: {'7T': '1.5T'}" in err  # the fix, with an example
    assert "batch-too-small" in err and "is '0.5T' for only 1 patient(s) of the development cohort" in err
    assert training[0] in err
    assert "batch-missing" in err and training[1] in err
    # the library says the same
    study_config = parse_study_config(yaml.safe_load((root / "study.yaml").read_text()))
    found = batch_problems(pd.read_csv(root / "clinical.csv", dtype={"patient_id": str}), study_config)
    assert [(p.check, p.level) for p in found] == [("batch-missing", None), ("batch-too-small", "0.5T"),
                                                   ("unseen-batch", "7T")]
    # `dlr run` refuses the study before writing anything
    run = tmp_path / "run"
    assert main(["run", str(root), "--out", str(run), "--arms", "clinical", "--bootstrap", "20"]) == 2
    assert "'7T'" in capsys.readouterr().err and not (run / "predictions.csv").exists()
    # the batch column missing from clinical.csv
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["harmonization"]["batch"] = "site"
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["validate", str(root)]) == 2
    err = capsys.readouterr().err
    assert "column-missing" in err and "no column 'site' (named by study.yaml key harmonization.batch)" in err
    # an unknown method, through the CLI as a user runs it
    config["harmonization"] = {"method": "limma", "batch": "scanner"}
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    res = run_dlr("validate", root)
    assert res.returncode == 2 and "harmonization.method" in res.stderr and "Traceback" not in res.stderr


def _features(root: Path, run: Path, *, seed: int = 3, p: int = 24) -> pd.DataFrame:
    """``RUN/features/radiomics.csv`` for the study at ``root``: features with a signal on the
    outcome and a strong scanner effect (3.0 T: gain and offset), reader 2 for 20 patients."""
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    rng = np.random.default_rng(seed)
    y = clinical["early_recurrence"].to_numpy()
    x = rng.normal(size=(len(clinical), p))
    x[:, :4] += 1.2 * y[:, None]
    high = (clinical["scanner"] == "3.0T").to_numpy()
    x[high] = x[high] * 1.8 + 2.0
    columns = [f"AP_original_firstorder_F{i:02d}" for i in range(p)]
    reader1 = pd.DataFrame(x, columns=columns)
    reader1.insert(0, "reader", 1)
    reader1.insert(0, "patient_id", clinical["patient_id"])
    reader2 = reader1.iloc[:20].copy()
    reader2["reader"] = 2
    reader2[columns] += rng.normal(0, 0.05, (20, p))
    frame = pd.concat([reader1, reader2], ignore_index=True)
    (run / "features").mkdir(parents=True, exist_ok=True)
    frame.to_csv(run / "features" / "radiomics.csv", index=False, float_format="%.17g")
    return frame


def test_other_cohorts_move_no_combat_parameter_and_no_development_prediction(tmp_path):
    """The leakage probe: every validation patient's features changed and outcome flipped."""
    from dlr.modeling.train import train_study

    root = _clinical_study(tmp_path / "S")
    run = tmp_path / "run"
    frame = _features(root, run)
    train_study(load_study(root, check_images=False), run, arms=("clinical", "radiomics"), oof=False,
                internal_validation_b=0)
    other, run2 = tmp_path / "S2", tmp_path / "run2"
    shutil.copytree(root, other)
    clinical = pd.read_csv(other / "clinical.csv", dtype={"patient_id": str})
    validation = clinical["cohort"] == "validation"
    clinical.loc[validation, "early_recurrence"] = 1 - clinical.loc[validation, "early_recurrence"]
    clinical.to_csv(other / "clinical.csv", index=False)
    changed = frame.copy()
    rows = changed["patient_id"].isin(set(clinical.loc[validation, "patient_id"]))
    columns = [c for c in changed.columns if c.startswith("AP_")]
    changed.loc[rows, columns] = changed.loc[rows, columns] * 3.0 + 5.0
    (run2 / "features").mkdir(parents=True)
    changed.to_csv(run2 / "features" / "radiomics.csv", index=False, float_format="%.17g")
    train_study(load_study(other, check_images=False), run2, arms=("clinical", "radiomics"), oof=False,
                internal_validation_b=0)

    params = json.loads((run / "models/parameters.json").read_text())
    fitted = params["radiomics"]["harmonization"]
    assert fitted["batch"] == "scanner" and fitted["levels"] == ["1.5T", "3.0T"]
    dev = clinical[~validation]
    assert fitted["n_patients"] == dev["scanner"].value_counts().sort_index().to_dict()  # development only
    assert abs(fitted["gamma_star"]["3.0T"]["AP_original_firstorder_F05"]) > 0.3  # the scanner effect was seen
    assert (run2 / "models/parameters.json").read_bytes() == (run / "models/parameters.json").read_bytes()
    before = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    after = pd.read_csv(run2 / "predictions.csv", dtype={"patient_id": str})
    is_dev = before["cohort"] == "training"
    pd.testing.assert_frame_equal(before[is_dev].reset_index(drop=True), after[is_dev].reset_index(drop=True))
    moved = before.loc[~is_dev & (before["model"] == "Radiomics-LR"), "y_score"].to_numpy()
    assert not np.allclose(moved, after.loc[~is_dev & (after["model"] == "Radiomics-LR"), "y_score"].to_numpy())
    # the harmonised features are what the models saw: the batch's share of variance falls
    effect = pd.read_csv(run / "models/harmonization.csv")
    assert set(effect["cohort"]) == {"training", "validation"}
    dev_effect = effect[effect["cohort"] == "training"]
    assert dev_effect["eta2_before"].median() > 0.2 > 0.02 > dev_effect["eta2_after"].median()


def test_each_out_of_fold_refit_fits_combat_without_its_held_out_fold(tmp_path, monkeypatch):
    """The refit that holds fold k out fits ComBat on the other folds' development patients
    only: changing fold k's features changes none of its parameters (but does change fold k's
    scores); a batch level found only in fold k is passed through for its patients, with a note."""
    from dlr.modeling import train

    root = _clinical_study(tmp_path / "S")
    run = tmp_path / "run"
    _features(root, run)
    study = load_study(root, check_images=False)
    _, data = train._study_data(study, run, ("radiomics",), n_folds=5, seed=study.config.seed)
    dev = data.cohort == "training"
    k = 2
    # two development patients of fold k get a scanner of their own: absent from that refit's training
    lonely = list(data.ids[dev & (data.fold == k)][:2])
    _set_scanner(root, lonely, "X")
    study = load_study(root, check_images=False)
    _, data = train._study_data(study, run, ("radiomics",), n_folds=5, seed=study.config.seed)
    assert (data.batch.loc[lonely] == "X").all()

    fitted = []  # (training patients, parameters) of each ComBat fit

    def recording(x, batch, **kwargs):
        combat = fit_combat(x, batch, **kwargs)
        fitted.append((list(x.index), combat.parameters()))
        return combat

    monkeypatch.setattr(train, "fit_combat", recording)
    kwargs = {"arms": ("radiomics",), "seed": 1, "lasso_rule": "min", "icc_threshold": 0.9, "alpha": 0.05}
    fallback = train._ArmFit(None, None, None, {}, None)
    fold, held, scores, notes, _ = train._oof_fold((data, study.config, k, kwargs, fallback))
    assert fold == k and set(held) == set(data.ids[dev & (data.fold == k)])
    assert len(fitted) == 1
    trained_on, params = fitted[0]
    assert sorted(trained_on) == sorted(data.ids[dev & (data.fold != k)])  # no held-out, no validation patient
    assert params["levels"] == ["1.5T", "3.0T"] and "X" not in params["unfitted_levels"]
    assert any(note.startswith("harmonization: batch level 'X'") and all(p in note for p in lonely)
               for note in notes), notes
    assert scores and all(np.isfinite(v).all() for v in scores.values())  # the unseen level did not crash

    # fold k's features altered: the same ComBat for the refit that holds fold k out
    data.features.loc[list(held)] = data.features.loc[list(held)] * 2.0 - 1.0
    fitted.clear()
    _, _, scores2, _, _ = train._oof_fold((data, study.config, k, kwargs, fallback))
    assert fitted[0][1] == params
    assert any(not np.allclose(scores[m], scores2[m]) for m in scores)  # its held-out patients were rescored


@pytest.mark.slow
def test_a_run_with_harmonization_goes_to_the_end(tmp_path):
    """`dlr run --arms clinical,radiomics` on a small `dlr synth` study with ComBat on the scanner,
    extracted on the images' own 3 x 3 x 5 mm grid with the light PyRadiomics parameters (168
    features, not 3 x 1037: the harmonisation's path through the run is the same, in seconds)."""
    root = tmp_path / "S"
    res = run_dlr("synth", "--out", root, "--n", "60", "--profile", "quick")
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["harmonization"] = dict(HARMONIZATION)
    config["preprocessing"] = {"spacing": [3.0, 3.0, 5.0]}
    config["radiomics_params"] = str(LIGHT)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = tmp_path / "run"
    res = run_dlr("run", root, "--out", run, "--arms", "clinical,radiomics", "--bootstrap", "50")
    assert res.returncode == 0, res.stderr[-3000:]
    params = json.loads((run / "models/parameters.json").read_text())
    assert params["radiomics"]["harmonization"]["levels"] == ["1.5T", "3.0T"]
    assert (run / "models/harmonization.csv").is_file()
    assert (run / "results/subgroups.csv").is_file()
    methods = (run / "report/index.html").read_text(encoding="utf-8")
    assert "ComBat" in methods and "fitted on development patients only" in methods
