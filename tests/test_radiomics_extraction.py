"""Radiomics extraction: the 1037-feature parameters, preprocessing, cache, resume, parallel runs."""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from dlr.core.output import read_provenance
import pytest

from conftest import REPO, run_dlr

sitk = pytest.importorskip("SimpleITK")
pytest.importorskip("radiomics")

from dlr.modeling.radiomics.extraction import (DEFAULT_PARAMS, ParamsError, expected_feature_names,  # noqa: E402
                                           extract_case, extract_study, load_params)
from dlr.modeling.radiomics.preprocess import PreprocessError, PreprocessSettings, preprocess_phase  # noqa: E402
from dlr.modeling.study import load_study  # noqa: E402
from dlr.modeling.synthetic import synthesize_study  # noqa: E402

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"


# --------------------------------------------------------------------------------------------
# the shipped parameters


def test_shipped_params_give_1037_features_per_phase():
    names = expected_feature_names(load_params())
    assert len(names) == 1037 and len(set(names)) == 1037
    families = collections.Counter(n.split("_")[0] for n in names)
    assert families["original"] == 107
    assert sum(v for k, v in families.items() if k.startswith("wavelet-")) == 8 * 93
    assert sum(v for k, v in families.items() if k.startswith("log-sigma-")) == 2 * 93
    classes = collections.Counter(n.split("_")[1] for n in names if n.startswith("original_"))
    assert classes == {"shape": 14, "firstorder": 18, "glcm": 24, "glrlm": 16, "glszm": 16, "gldm": 14, "ngtdm": 5}


def test_a_real_sized_case_yields_all_1037_features(tiny_study):
    # at the default 1 mm
    params = load_params()
    features, check = extract_case(tiny_study / "images/HCC003/AP.nii.gz", tiny_study / "masks/HCC003/AP.nii.gz",
                                   params=params, preprocessing=PreprocessSettings(),
                                   expected=expected_feature_names(params))
    assert len(features) == 1037 and all(np.isfinite(v) for v in features.values())
    assert check["resampled_voxels"] > check["native_voxels"]  # 3 x 3 x 5 mm voxels became 1 mm voxels


def test_bad_params_file_is_an_input_error(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("imageType:\n  Original: {}\nsetting:\n  binCount: many\n")
    with pytest.raises(ParamsError, match="p.yaml"):
        load_params(bad)
    with pytest.raises(ParamsError, match="no such"):
        load_params(tmp_path / "absent.yaml")
    assert DEFAULT_PARAMS.is_file()


# --------------------------------------------------------------------------------------------
# preprocessing


def _volume(array, spacing=(3.0, 3.0, 5.0), origin=(0.0, 0.0, 0.0), direction=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _ellipsoid_case(direction=None, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:16, :40, :40]
    inside = ((x - 19.3) / 6) ** 2 + ((y - 21.1) / 5) ** 2 + ((z - 7.6) / 3) ** 2 <= 1
    array = (200 + 20 * rng.standard_normal(inside.shape) + 150 * inside).astype(np.float32)
    return _volume(array, direction=direction), _volume(inside.astype(np.uint8), direction=direction)


def test_preprocessing_resamples_to_1mm_and_keeps_the_tumour_in_place():
    image, mask = _ellipsoid_case()
    out = preprocess_phase(image, mask, PreprocessSettings())
    assert out.image.GetSpacing() == (1.0, 1.0, 1.0) and out.mask.GetSpacing() == (1.0, 1.0, 1.0)
    for attr in ("GetSize", "GetOrigin", "GetDirection"):
        assert getattr(out.image, attr)() == getattr(out.mask, attr)()
    assert abs(out.check.volume_change) < 0.05
    assert out.check.centroid_shift_mm < 1.0
    # 10 mm of anatomy around the tumour's bounding box (clipped to the image)
    assert out.image.GetSize()[0] >= (2 * 6 + 1) * 3 + 2 * 10 - 3


def test_preprocessing_keeps_an_oblique_orientation():
    c, s = np.cos(0.4), np.sin(0.4)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    image, mask = _ellipsoid_case(direction=direction)
    out = preprocess_phase(image, mask, PreprocessSettings())
    assert np.allclose(out.image.GetDirection(), direction)
    assert out.check.centroid_shift_mm < 1.0 and abs(out.check.volume_change) < 0.05


def test_zscore_normalisation_removes_a_scanner_gain_and_offset():
    image, mask = _ellipsoid_case()
    scanner_b = sitk.Cast(image, sitk.sitkFloat32) * 1.25 + 40.0
    a = preprocess_phase(image, mask, PreprocessSettings())
    b = preprocess_phase(scanner_b, mask, PreprocessSettings())
    np.testing.assert_allclose(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image), atol=2e-3)
    raw_a = preprocess_phase(image, mask, PreprocessSettings(normalization="none"))
    raw_b = preprocess_phase(scanner_b, mask, PreprocessSettings(normalization="none"))
    assert not np.allclose(sitk.GetArrayFromImage(raw_a.image), sitk.GetArrayFromImage(raw_b.image))


def test_preprocessing_refuses_tiny_misaligned_or_flat_input():
    image, mask = _ellipsoid_case()
    one = np.zeros((16, 40, 40), np.uint8)
    one[8, 20, 20] = 1
    with pytest.raises(PreprocessError, match="1 voxel"):
        preprocess_phase(image, _volume(one), PreprocessSettings())
    shifted = _volume(sitk.GetArrayFromImage(mask), origin=(500.0, 0.0, 0.0))
    with pytest.raises(PreprocessError, match="outside its image"):
        preprocess_phase(image, shifted, PreprocessSettings())
    with pytest.raises(PreprocessError, match="flat"):
        preprocess_phase(_volume(np.full((16, 40, 40), 7.0, np.float32)), mask, PreprocessSettings())
    with pytest.raises(ValueError, match="spacing"):
        PreprocessSettings(spacing=(1.0, 0.0, 1.0))


def test_a_mask_on_another_grid_is_resampled_onto_the_image():
    image, mask = _ellipsoid_case()
    fine = sitk.Resample(mask, [80, 80, 32], sitk.Transform(), sitk.sitkNearestNeighbor, (-0.75, -0.75, -1.25),
                         (1.5, 1.5, 2.5), mask.GetDirection(), 0, sitk.sitkUInt8)
    out = preprocess_phase(image, fine, PreprocessSettings())
    direct = preprocess_phase(image, mask, PreprocessSettings())
    assert abs(out.check.resampled_voxels / direct.check.resampled_voxels - 1) < 0.1


# --------------------------------------------------------------------------------------------
# a study: cache, failures, resume, parallel


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> Path:
    import yaml

    root = tmp_path_factory.mktemp("study") / "S"
    synthesize_study(root, n=10, seed=7)
    # the mechanics under test do not need 1 mm voxels: keeping the native 3 x 3 x 5 mm grid
    # makes each case about 45 times smaller
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["preprocessing"] = {"spacing": [3.0, 3.0, 5.0]}
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _copy_study(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_rerun_recomputes_nothing_and_a_changed_mask_only_its_case(tiny_study, tmp_path):
    study = load_study(tiny_study)
    run = tmp_path / "run"
    first = extract_study(study, run, params_path=LIGHT)
    n_cases = 10 * 3 + sum(len(v) for v in study.masks_reader2.values())
    assert first.n_cases == n_cases and first.n_computed == n_cases and first.n_failed == 0
    table = pd.read_csv(run / "features/radiomics.csv", dtype={"patient_id": str})
    assert len(table) == 10 + len(study.masks_reader2)
    assert set(table["reader"]) == ({1, 2} if study.masks_reader2 else {1})
    n_light = len(expected_feature_names(load_params(LIGHT)))
    assert table.shape[1] == 2 + 3 * n_light and "AP_original_firstorder_Mean" in table.columns
    before = (run / "features/radiomics.csv").read_bytes()

    again = extract_study(study, run, params_path=LIGHT)
    assert again.n_computed == 0 and again.n_cached == n_cases
    assert (run / "features/radiomics.csv").read_bytes() == before

    # change one reader-1 mask: only that case is recomputed
    path = tiny_study / "masks/HCC002/PVP.nii.gz"
    original = path.read_bytes()
    try:
        mask = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(mask)
        edge = np.argwhere(array == 1)[0]
        array[tuple(edge)] = 0
        changed = sitk.GetImageFromArray(array)
        changed.CopyInformation(mask)
        sitk.WriteImage(changed, str(path), True)
        third = extract_study(load_study(tiny_study), run, params_path=LIGHT)
    finally:
        path.write_bytes(original)
    recomputed = third.log[~third.log["from_cache"]]
    assert list(zip(recomputed["patient_id"], recomputed["reader"], recomputed["phase"])) == [("HCC002", 1, "PVP")]


def test_features_provenance_names_the_study_the_parameters_and_the_cases(tiny_study, tmp_path):
    import hashlib
    import json

    from dlr.core.output import file_sha256
    from dlr.modeling.radiomics.extraction import cases_digest, params_digest, plan_cases

    study = load_study(tiny_study)
    run = tmp_path / "run"
    extract_study(study, run, params_path=LIGHT, jobs=2)
    features = run / "features"
    entries = read_provenance(features)
    assert sorted(entries) == ["extraction_log.csv", "preprocessing.json", "radiomics.csv",
                                        "radiomics_params.yaml"]
    settings = PreprocessSettings(**study.config.preprocessing)  # as extract_study reads it
    cases = plan_cases(study, params_digest(load_params(LIGHT), settings))
    lines = sorted(f"{c.patient_id}\t{c.reader}\t{c.phase}\t{c.key}\n" for c in cases)
    assert cases_digest(cases) == hashlib.sha256("".join(lines).encode()).hexdigest()
    for name, entry in entries.items():
        assert entry["sha256"] == file_sha256(features / name), name
        assert entry["inputs"] == {"study.yaml": file_sha256(tiny_study / "study.yaml"),
                                   "clinical.csv": file_sha256(tiny_study / "clinical.csv"),
                                   "radiomics_params": file_sha256(LIGHT), "cases": cases_digest(cases)}
        assert entry["settings"]["preprocessing"] == json.loads(json.dumps(settings.to_dict()))
        assert "jobs" not in json.dumps(entry["settings"])
    # cache entries are content-addressed: no provenance there, and no temporary left
    assert not (features / "cache" / "provenance.json").exists()
    assert all(not p.name.startswith(".") for p in (features / "cache").iterdir())
    assert sorted(p.name for p in features.iterdir()) == ["cache", "extraction_log.csv", "preprocessing.json",
                                                          "provenance.json", "radiomics.csv",
                                                          "radiomics_params.yaml"]


def test_a_failing_case_is_reported_and_the_run_goes_on(tiny_study, tmp_path):
    root = _copy_study(tiny_study, tmp_path / "S")
    path = root / "masks/HCC004/DP.nii.gz"
    mask = sitk.ReadImage(str(path))
    array = np.zeros_like(sitk.GetArrayFromImage(mask))
    array[5, 20, 20] = 1  # a one-voxel tumour
    one = sitk.GetImageFromArray(array)
    one.CopyInformation(mask)
    sitk.WriteImage(one, str(path), True)
    with pytest.warns(UserWarning, match="HCC004 reader 1 DP"):
        summary = extract_study(load_study(root), tmp_path / "run", params_path=LIGHT)
    assert summary.n_failed == 1
    failed = summary.failures.iloc[0]
    assert (failed["patient_id"], failed["phase"]) == ("HCC004", "DP") and "1 voxel" in failed["reason"]
    table = pd.read_csv(tmp_path / "run/features/radiomics.csv", dtype={"patient_id": str})
    row = table[(table["patient_id"] == "HCC004") & (table["reader"] == 1)].iloc[0]
    assert row.filter(like="DP_").isna().all() and row.filter(like="AP_").notna().all()
    assert int(table.drop(columns=["patient_id", "reader"]).isna().sum().sum()) == len(row.filter(like="DP_"))
    # the CLI lists the failure and still exits 0
    res = run_dlr("extract", root, "--out", tmp_path / "run", "--params", LIGHT, "--jobs", "1")
    assert res.returncode == 0, res.stderr
    assert "HCC004 reader 1 DP" in res.stderr and "1 from the cache" not in res.stderr


def test_jobs_2_gives_the_same_table_as_jobs_1(tiny_study, tmp_path):
    study = load_study(tiny_study)
    extract_study(study, tmp_path / "one", params_path=LIGHT, jobs=1)
    two = extract_study(study, tmp_path / "two", params_path=LIGHT, jobs=2)
    assert two.n_computed == two.n_cases
    assert (tmp_path / "one/features/radiomics.csv").read_bytes() == (tmp_path / "two/features/radiomics.csv").read_bytes()


def test_killed_extraction_resumes_to_the_same_features(tiny_study, tmp_path):
    reference = tmp_path / "reference"
    extract_study(load_study(tiny_study), reference, params_path=LIGHT)
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "dlr.cli", "extract", str(tiny_study), "--out", str(run),
                             "--params", str(LIGHT), "--jobs", "1"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = run / "features/cache"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.is_dir() and len(list(cache.glob("*.json"))) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the extraction finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*.json")))
    assert 5 <= done < 30 and not (run / "features/radiomics.csv").exists()
    res = run_dlr("extract", tiny_study, "--out", run, "--params", LIGHT, "--jobs", "1")
    assert res.returncode == 0, res.stderr
    assert f"{done} from the cache" in res.stderr
    assert (run / "features/radiomics.csv").read_bytes() == (reference / "features/radiomics.csv").read_bytes()


@pytest.mark.slow
def test_extraction_on_a_local_dask_cluster_matches_the_local_run(tiny_study, tmp_path):
    distributed = pytest.importorskip("distributed")
    study = load_study(tiny_study)
    local = extract_study(study, tmp_path / "local", params_path=LIGHT)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = extract_study(study, tmp_path / "dask", params_path=LIGHT, scheduler=cluster.scheduler_address)
    assert remote.n_computed == local.n_cases
    assert (tmp_path / "local/features/radiomics.csv").read_bytes() == \
        (tmp_path / "dask/features/radiomics.csv").read_bytes()


def test_unreachable_scheduler_is_exit_2(tiny_study, tmp_path):
    res = run_dlr("extract", tiny_study, "--out", tmp_path / "run", "--params", LIGHT, "--scheduler",
                  "tcp://127.0.0.1:9")
    assert res.returncode == 2 and "Dask scheduler" in res.stderr and "Traceback" not in res.stderr


def test_a_cache_record_under_another_cases_name_is_recomputed_with_a_warning(tiny_study, tmp_path):
    """Issue 21.2: one valid record copied over another's file name was used silently ("0 computed,
    210 from the cache") and radiomics.csv, the predictions and the results changed."""
    reference = tmp_path / "reference"
    extract_study(load_study(tiny_study), reference, params_path=LIGHT)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    cache = run / "features" / "cache"
    first, second = sorted(cache.glob("*.json"))[:2]
    shutil.copyfile(first, second)  # second's name, first's record
    (run / "features" / "radiomics.csv").unlink()
    with pytest.warns(UserWarning, match=rf"{re.escape(str(second))} holds the record of patient .*computed again"):
        summary = extract_study(load_study(tiny_study), run, params_path=LIGHT)
    assert summary.n_computed == 1
    assert (run / "features/radiomics.csv").read_bytes() == (reference / "features/radiomics.csv").read_bytes()
    assert json.loads(second.read_text())["key"] == second.stem  # the cache is repaired
