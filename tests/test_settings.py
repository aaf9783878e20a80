"""One resolution of a run's settings (dlr.settings): `dlr run` and the stage verbs read the
profile, arms, seed, preprocessing, parameter file and deep settings the same way."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from dlr.core.errors import InputError
from dlr.settings import QUICK_SPACING, resolve_settings


def _study(root: Path, **changes) -> Path:
    from dlr.modeling.synthetic import synthesize_study

    synthesize_study(root, n=40, images=False)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config.update(changes)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def test_quick_profile_resamples_to_2_mm_unless_the_study_says_otherwise(tmp_path):
    quick = resolve_settings(_study(tmp_path / "a"))
    assert quick.profile == "quick" and quick.preprocess().spacing == QUICK_SPACING
    assert quick.arms == ("clinical", "radiomics", "deep") and quick.seed == 20240101
    assert quick.params_file.name == "radiomics.yaml" and quick.deep.image_size == 32
    paper = resolve_settings(tmp_path / "a", profile="paper")
    assert paper.preprocess().spacing == (1.0, 1.0, 1.0) and paper.deep.image_size == 256
    own = resolve_settings(_study(tmp_path / "b", preprocessing={"spacing": [3.0, 3.0, 5.0]}))
    assert own.preprocess().spacing == (3.0, 3.0, 5.0)
    assert resolve_settings(tmp_path / "b", arms=["clinical"], seed=7).params_file is None
    assert resolve_settings(tmp_path / "b", arms=["clinical"], seed=7).seed == 7


def test_the_stage_verbs_and_the_run_resolve_alike(tmp_path, monkeypatch):
    """`dlr extract` hands extract_study the run's preprocessing and parameter file."""
    from dlr import verbs
    from dlr.modeling.config import load_study_config
    from dlr.modeling.radiomics import extraction

    study = _study(tmp_path / "s")
    seen = {}

    def fake_extract(loaded, out, *, jobs, scheduler, params_path, preprocessing, progress):
        seen.update(params=params_path, spacing=preprocessing.spacing)
        raise InputError("stop here")

    monkeypatch.setattr(extraction, "extract_study", fake_extract)
    monkeypatch.setattr("dlr.modeling.study.load_study", lambda path, **kw: SimpleNamespace(
        config=load_study_config(Path(path) / "study.yaml"), patient_ids=[]))
    with pytest.raises(InputError, match="stop here"):
        verbs.extract(study, tmp_path / "run")
    expected = resolve_settings(study)
    assert seen == {"params": expected.params_file, "spacing": expected.preprocess().spacing}


def test_unknown_arm_and_profile_are_input_errors(tmp_path):
    study = _study(tmp_path / "s")
    with pytest.raises(InputError, match="--arms"):
        resolve_settings(study, arms=["radiomic"])
    with pytest.raises(InputError, match="--profile"):
        resolve_settings(study, profile="fast")
    clinical_only = _study(tmp_path / "c", phases=[])
    assert resolve_settings(clinical_only).arms == ("clinical",)
    with pytest.raises(InputError, match="no phases"):
        resolve_settings(clinical_only, arms=["clinical", "radiomics"])
