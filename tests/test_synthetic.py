"""The embedded synthetic HCC study (modeling/synthetic.py): counts and Table 1 proportions of
the seed paper (Zhao et al. 2024, Table 1), reader agreement, the CR factors the paper selected,
images that look like HCC on three phases, study.yaml, determinism and atomic writing."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage, special

from dlr.core.stats.agreement import cohen_kappa
from dlr.analysis.discrimination import roc_auc_delong
from dlr.core.stats.logistic import fit_logistic
from dlr.modeling.cr_factors import select_cr_factors
from dlr.modeling.config import STAGING_INPUTS, load_study_config
from dlr.core.output import file_sha256
from dlr.core.output import read_provenance
from dlr.core.tables import dichotomise
from dlr.modeling.synthetic import PHASES, READER2_FEATURES, synthesize_study

from conftest import DATA

TABLE1_VARIABLES = ["gender", "hepatitis_b_or_c", "afp", "alt", "ast", "ggt", "tbil", "alb", "child_pugh",
                    "tumor_diameter", "tumor_number", "tumor_margin", "necrosis", "hemorrhage", "encapsulation",
                    "arterial_peritumoral_enhancement", "cirrhosis"]
PAPER = DATA / "reference" / "paper_table1_training"
GROUPS = [("training", 1), ("training", 0), ("validation", 1), ("validation", 0)]


@pytest.fixture(scope="module")
def study165(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "study165"
    summary = synthesize_study(out, images=False)
    return out, summary, pd.read_csv(out / "clinical.csv"), load_study_config(out / "study.yaml")


@pytest.fixture(scope="module")
def study30(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "study30"
    summary = synthesize_study(out, n=30, seed=7)
    return out, summary, pd.read_csv(out / "clinical.csv")


def _read(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_exact_counts_for_165(study165):
    _, summary, frame, _ = study165
    assert len(frame) == 165 and frame["patient_id"].is_unique
    assert frame["patient_id"].iloc[0] == "HCC001" and frame["patient_id"].iloc[-1] == "HCC165"
    assert frame["cohort"].value_counts().to_dict() == {"training": 132, "validation": 33}
    assert frame.groupby("cohort")["early_recurrence"].sum().to_dict() == {"training": 78, "validation": 18}
    assert frame["scanner"].value_counts().to_dict() == {"3.0T": 91, "1.5T": 74}
    assert (summary.n_training, summary.n_validation, summary.n_events, summary.n_1_5t) == (132, 33, 96, 74)
    assert summary.n_reader2 == 0 and not summary.images


def test_small_n_is_proportional(study30):
    _, summary, frame = study30
    assert frame["cohort"].value_counts().to_dict() == {"training": 24, "validation": 6}
    assert frame.groupby("cohort")["early_recurrence"].sum().to_dict() == {"training": 14, "validation": 3}
    assert summary.n_1_5t == 13 and summary.n_reader2 == 30


@pytest.mark.parametrize("variable, cut, paper", [
    # Table 1 percentages: training ER, training NER, validation ER, validation NER
    ("afp", 400, (26.9, 11.1, 16.7, 6.67)),
    ("tumor_diameter", 5, (38.5, 18.5, 55.6, 6.7)),
    ("ast", 40, (46.2, 24.1, 22.2, 20.0)),
    ("tbil", 19, (32.1, 24.1, 22.2, 0.0)),
])
def test_table1_proportions_follow_the_paper(study165, variable, cut, paper):
    _, _, frame, _ = study165
    for (cohort, er), expected in zip(GROUPS, paper):
        rows = frame[(frame["cohort"] == cohort) & (frame["early_recurrence"] == er)]
        assert 100 * (rows[variable] > cut).mean() == pytest.approx(expected, abs=3.0), (cohort, er)


def test_categorical_levels_match_the_reference_table(study165):
    _, _, frame, _ = study165
    reference = pd.read_csv(PAPER / "clinical.csv")
    for name in ("gender", "hepatitis_b_or_c", "child_pugh", *READER2_FEATURES):
        assert set(frame[name]) == set(reference[name]), name
        assert set(frame[f"{name}_reader2"] if f"{name}_reader2" in frame else frame[name]) <= set(reference[name])
    assert set(reference.columns) - {"patient_id"} <= set(frame.columns)
    hem = frame[frame["cohort"] == "validation"].groupby("early_recurrence")["hemorrhage"].apply(
        lambda s: 100 * (s == "Present").mean())
    assert hem[1] == pytest.approx(50.0, abs=3) and hem[0] == pytest.approx(13.3, abs=3)
    assert (frame["gender"] == "Male").sum() == pytest.approx(138, abs=5)


def test_staging_inputs_and_survival_columns(study165):
    _, _, frame, config = study165
    for name in STAGING_INPUTS:
        assert name in frame.columns, name
    assert (frame["ecog_ps"] == 0).mean() > 0.85
    assert (frame["child_pugh_class"] == frame["child_pugh"]).all()
    assert frame.loc[frame["child_pugh_class"] == "A", "child_pugh_score"].isin([5, 6]).all()
    assert frame.loc[frame["child_pugh_class"] == "B", "child_pugh_score"].between(7, 9).all()
    assert frame["tumor_diameter"].between(1.0, 16.0).all() and frame["tumor_number"].ge(1).all()
    assert set(frame["gender"]) == {"Male", "Female"}
    er = frame["early_recurrence"] == 1
    time_col, event_col = config.time_column, config.event_column
    assert frame.loc[er, time_col].between(1, 24).all() and (frame.loc[er, event_col] == 1).all()
    assert frame.loc[er, time_col].median() == pytest.approx(7, abs=1.5)
    assert (frame.loc[~er, time_col] > 24).all()


def test_second_reader_kappa_in_the_papers_range(study165, study30):
    for frame in (study165[2], study30[2]):
        for name in READER2_FEATURES:
            kappa = cohen_kappa(frame[name], frame[f"{name}_reader2"]).estimate
            assert 0.83 <= kappa <= 1.0, (name, kappa)


def test_study_yaml_names_every_column(study165):
    out, _, frame, config = study165
    assert set(config.columns()) <= set(frame.columns)
    assert config.staging_columns == {}
    cut = {v.name: v.cut_point for v in config.variables if v.cut_point is not None}
    assert cut["afp"] == 400 and cut["ast"] == 40 and cut["tumor_diameter"] == 5 and cut["alb"] == 40
    reader2 = {v.name: v.reader2_column for v in config.variables if v.reader2_column}
    assert reader2 == {name: f"{name}_reader2" for name in READER2_FEATURES}
    named = set(config.columns())
    assert set(frame.columns) == named, set(frame.columns) ^ named
    assert not (out / "images").exists()


def test_cr_selection_picks_ast_and_tumour_diameter(study165):
    _, _, frame, config = study165
    table = dichotomise(frame, {v.name: v.cut_point for v in config.variables if v.cut_point is not None})
    assert set(table["afp"]) == {">400", "<=400"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection = select_cr_factors(table, outcome="early_recurrence", cohort="cohort", dev_cohort="training",
                                      variables=TABLE1_VARIABLES)
    assert selection.selected == ("ast", "tumor_diameter")
    entered = selection.variables.loc[selection.variables["entered"], "variable"].tolist()
    assert entered == ["afp", "ast", "tumor_diameter"]  # the paper's univariate result


def test_true_risk_beats_the_cr_model(study165):
    out, _, frame, _ = study165
    truth = pd.read_csv(out / "truth.csv")
    assert (truth["patient_id"] == frame["patient_id"]).all()
    y = frame["early_recurrence"].to_numpy()
    train = (frame["cohort"] == "training").to_numpy()
    x = np.column_stack([np.ones(len(frame)), frame["ast"] > 40, frame["tumor_diameter"] > 5]).astype(float)
    beta = fit_logistic(y[train], x[train])
    cr = special.expit(x @ beta)
    for part in (train, ~train):
        cr_auc = roc_auc_delong(y[part], cr[part]).estimate
        truth_auc = roc_auc_delong(y[part], truth["true_risk"].to_numpy()[part]).estimate
        imaging_auc = roc_auc_delong(y[part], truth["imaging_latent"].to_numpy()[part]).estimate
        assert 0.62 <= cr_auc <= 0.78
        assert truth_auc > max(cr_auc, 0.85)
        assert imaging_auc >= cr_auc


def test_images_masks_and_enhancement_pattern(study30):
    out, summary, frame = study30
    brighter_ap, darker_pvp, darker_dp = [], [], []
    for pid in frame["patient_id"]:
        mask_img = sitk.ReadImage(str(out / "masks" / pid / "AP.nii.gz"))
        mask = sitk.GetArrayFromImage(mask_img)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask, iterations=1)
        level = {}
        for phase in PHASES:
            image = sitk.ReadImage(str(out / "images" / pid / f"{phase}.nii.gz"))
            assert image.GetSize() == mask_img.GetSize() == summary.shape
            assert image.GetSpacing() == mask_img.GetSpacing() == pytest.approx(summary.spacing)
            assert (out / "masks" / pid / f"{phase}.nii.gz").is_file()
            array = sitk.GetArrayFromImage(image).astype(float)
            level[phase] = (np.median(array[mask == 1]), np.median(array[ring]))
        brighter_ap.append(level["AP"][0] > level["AP"][1])
        darker_pvp.append(level["PVP"][0] < level["PVP"][1])
        darker_dp.append(level["DP"][0] < level["DP"][1])
    assert np.mean(brighter_ap) > 0.9 and np.mean(darker_pvp) > 0.8 and np.mean(darker_dp) > 0.7
    reader2 = sorted(p.name for p in (out / "masks_reader2").iterdir())
    assert len(reader2) == 30
    a, b = _read(out / "masks" / reader2[0] / "AP.nii.gz"), _read(out / "masks_reader2" / reader2[0] / "AP.nii.gz")
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert 0.6 < dice < 1.0


def test_tumour_size_follows_diameter(study30):
    out, _, frame = study30
    volume = [_read(out / "masks" / pid / "PVP.nii.gz").sum() for pid in frame["patient_id"]]
    rho = pd.Series(volume).corr(frame["tumor_diameter"], method="spearman")
    assert rho > 0.8


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = files(synthesize_study(tmp_path / "a", n=12, seed=3).out)
    b = files(synthesize_study(tmp_path / "b", n=12, seed=3).out)
    c = files(synthesize_study(tmp_path / "c", n=12, seed=4).out)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)  # provenance.json included
    # n <= 30: every patient is in the reproducibility subset; + provenance.json
    assert len(a) == 3 + 12 * 6 + 12 * 3 + 1
    assert a[next(k for k in a if k.name == "clinical.csv")] != c[next(k for k in c if k.name == "clinical.csv")]
    first = next(k for k in a if k.parts[0] == "images")
    assert a[first] != c[first]


def test_refuses_a_non_empty_folder_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        synthesize_study(out, n=10, images=False)
    synthesize_study(out, n=10, images=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "clinical.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]
    with pytest.raises(ValueError, match="profile"):
        synthesize_study(tmp_path / "x", profile="huge")
    with pytest.raises(ValueError, match="n must be"):
        synthesize_study(tmp_path / "x", n=5)


def test_provenance_records_every_file_with_its_settings_and_seed(tmp_path):
    out = synthesize_study(tmp_path / "s", n=10, seed=5, images=True).out
    entries = read_provenance(out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(entries) == [f for f in files if f != "provenance.json"]
    assert len(entries) == 3 + 10 * 9
    for name, entry in entries.items():
        assert entry["sha256"] == file_sha256(out / name), name
        assert entry["settings"] == {"n": 10, "profile": "quick", "images": True} and entry["seed"] == 5
        assert entry["inputs"] == {} and "numpy" in entry["versions"]
    # the study with its extra file is still a valid study
    from dlr.modeling.study import validate_study

    assert validate_study(out) == []


def test_overwrite_replaces_a_file_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "study"
    out.write_text("not a folder")
    with pytest.raises(ValueError, match="not empty"):
        synthesize_study(out, n=10, images=False)
    synthesize_study(out, n=10, images=False, overwrite=True)
    assert (out / "clinical.csv").is_file() and (out / "provenance.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]  # no moved-aside old file left


def test_progress_is_reported(tmp_path):
    calls = []
    synthesize_study(tmp_path / "s", n=10, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 10) for i in range(1, 11)]


def test_quick_profile_165_heterogeneity_carries_the_signal(tmp_path):
    start = time.perf_counter()
    out = synthesize_study(tmp_path / "s", seed=20240101).out
    assert time.perf_counter() - start < 60
    frame = pd.read_csv(out / "clinical.csv")
    spread = []
    for pid in frame["patient_id"]:
        mask = ndimage.binary_erosion(_read(out / "masks" / pid / "PVP.nii.gz"))
        array = _read(out / "images" / pid / "PVP.nii.gz").astype(float)[mask] if mask.sum() > 5 else \
            _read(out / "images" / pid / "PVP.nii.gz").astype(float)[_read(out / "masks" / pid / "PVP.nii.gz") == 1]
        q1, q2, q3 = np.percentile(array, [25, 50, 75])
        spread.append((q3 - q1) / q2)
    auc = roc_auc_delong(frame["early_recurrence"], np.array(spread)).estimate
    assert auc > 0.72  # a single first-order texture feature beats the CR model (~0.66)
