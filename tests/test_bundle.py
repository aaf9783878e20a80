"""The model bundle and `dlr predict` (contract section 8) on the real clinical study: a run's
frozen models score the same patients as the run did, bit for bit, at the run's thresholds; a
bundle executes no code when read, refuses a changed, unlisted or foreign member and an older
format, each naming it (exit 2); a study that does not fit the bundle (a variable missing, a
level the development cohort never had) exits 2 naming it, with nothing half-written. The
imaging arms' members (XGBoost's JSON, the networks' safetensors) are checked on the deep run
of tests/test_run_deep.py."""
from __future__ import annotations

import io
import json
import pickle
import pickletools
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlr.cli import main
from dlr.core.bundle import MANIFEST, read_bundle
from dlr.core.errors import InputError
from real_clinical_study import write_study

pytestmark = pytest.mark.xdist_group("bundle")
EXACT = dict(dtype={"patient_id": str}, float_precision="round_trip")


def pickle_like(data: bytes) -> bool:
    """True when ``data`` is, or holds, a pickle stream: a protocol-2+ header that parses to a
    STOP, or a zip (torch.save's format) with a ``.pkl`` inside."""
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        try:
            return any(op.name == "STOP" for op, _, _ in pickletools.genops(io.BytesIO(data)))
        except Exception:  # noqa: BLE001 - not a pickle after all
            return False
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return any(n.endswith(".pkl") or pickle_like(z.read(n)) for n in z.namelist())
    return False


def test_the_pickle_scanner_finds_a_pickle_and_torch_save():
    assert pickle_like(pickle.dumps({"a": np.arange(3)}, protocol=4))
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    assert pickle_like(buffer.getvalue())
    assert not pickle_like(b'{"a": 1}') and not pickle_like(b"patient_id,y\n1,0\n")


@pytest.fixture(scope="module")
def clinical_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bundle")
    study = write_study(base / "study")
    run = base / "run"
    assert main(["run", str(study), "--out", str(run), "--arms", "clinical", "--bootstrap", "20", "--jobs", "1"]) == 0
    return study, run


def _predict(bundle, study, out, capsys):
    code = main(["predict", str(bundle), str(study), "--out", str(out), "--bootstrap", "20", "--jobs", "1"])
    return code, capsys.readouterr().err


def test_the_bundle_holds_declared_formats_only_and_no_pickle(clinical_run):
    _, run = clinical_run
    bundle = read_bundle(run / "model")
    assert bundle.manifest["format"] == "dlr-model-bundle" and bundle.manifest["format_version"] == 1
    assert {"models.json", "study.json", "study.yaml", "development/predictions.csv"} <= set(bundle.members)
    for name, data in bundle.members.items():
        assert Path(name).suffix in (".json", ".yaml", ".csv", ".safetensors"), name
        assert not pickle_like(data), name
    models = bundle.json("models.json")
    # the run's thresholds and the development cohort's risk maps, as its analysis chose them
    performance = pd.read_csv(run / "results" / "performance.csv")
    dev = performance[performance["cohort"] == "training"].set_index("model")
    for model, threshold in models["thresholds"].items():
        assert threshold == dev.loc[model, "threshold"], model
    maps = pd.read_csv(run / "results" / "risk_mapping.csv", float_precision="round_trip").set_index("model")
    for model, fit in models["risk_maps"].items():
        assert fit["intercept"] == pytest.approx(maps.loc[model, "intercept"], abs=1e-12)
        assert fit["slope"] == pytest.approx(maps.loc[model, "slope"], abs=1e-12)


def test_predict_on_the_same_study_gives_the_runs_scores_and_performance(clinical_run, tmp_path, capsys):
    study, run = clinical_run
    zipped = tmp_path / "model.zip"
    assert main(["bundle", str(run), "--out", str(zipped)]) == 0
    for bundle in (run / "model", zipped):
        out = tmp_path / f"predict-{bundle.suffix or 'dir'}"
        code, err = _predict(bundle, study, out, capsys)
        assert code == 0, err[-3000:]
        before = pd.read_csv(run / "predictions.csv", **EXACT)
        after = pd.read_csv(out / "predictions.csv", **EXACT)
        pd.testing.assert_frame_equal(before, after)  # every model, every patient, bit for bit
        ran = pd.read_csv(run / "results" / "performance.csv", float_precision="round_trip")
        now = pd.read_csv(out / "results" / "performance.csv", float_precision="round_trip")
        assert (now["threshold_source"] == "bundle").all()
        for cohort in ("training", "validation"):  # scored as external cohorts: the run's rows, at its thresholds
            a = ran[ran["cohort"] == cohort].drop(columns="threshold_source").reset_index(drop=True)
            b = now[now["cohort"] == cohort].drop(columns="threshold_source").reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-12)
        # the development cohort the bundle carries is there too, under a name of its own
        info = json.loads((out / "inputs" / "bundle.json").read_text())
        assert info["dev_label"] == "development" and "development" in set(now["cohort"])
        assert (out / "report" / "index.html").is_file() and (out / "report" / "index.docx").is_file()
        audit = pd.read_csv(out / "report" / "audit.csv")  # every printed number traced to the run's files
        assert len(audit) > 100 and (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].head()


def _flip(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_changed_byte_in_any_member_is_refused_naming_it(clinical_run, tmp_path):
    _, run = clinical_run
    names = sorted(read_bundle(run / "model").members)
    for k, name in enumerate(names):
        copy = tmp_path / f"b{k}"
        shutil.copytree(run / "model", copy)
        _flip(copy / name, offset=len((copy / name).read_bytes()) // 2)
        with pytest.raises(InputError, match=f"member {name} does not match its SHA-256"):
            read_bundle(copy)


def _relist(folder: Path, name: str) -> None:
    """Record ``name``'s current bytes in the manifest, as a forger would."""
    import hashlib

    manifest = json.loads((folder / MANIFEST).read_text())
    data = (folder / name).read_bytes()
    manifest["members"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / MANIFEST).write_text(json.dumps(manifest))


class _Payload:
    """Unpickling this runs os.system: what a crafted member would do if a loader unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_crafted_member_that_would_run_code_is_refused_and_runs_nothing(clinical_run, tmp_path):
    from dlr.modeling.frozen import FrozenModels

    _, run = clinical_run
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Payload(marker), protocol=4)
    assert pickle_like(payload)
    for name in ("models.json", "networks/ResNet10.safetensors", "model.pkl"):
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(run / "model", copy)
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(payload)
        _relist(copy, name)  # the checksum matches: only the format can refuse it
        with pytest.raises(InputError) as caught:
            FrozenModels.load(copy)
        assert name in str(caught.value), str(caught.value)
        assert not marker.exists()
    # a member the manifest does not list, and a manifest of another format version
    copy = tmp_path / "extra"
    shutil.copytree(run / "model", copy)
    (copy / "notes.json").write_text("{}")
    with pytest.raises(InputError, match="notes.json is not listed"):
        read_bundle(copy)
    copy = tmp_path / "older"
    shutil.copytree(run / "model", copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format_version"] = 0
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="manifest.json: bundle format version 0"):
        read_bundle(copy)


def _nothing_written(out: Path) -> None:
    assert not (out / "predictions.csv").exists() and not (out / "results").exists()
    assert not (out / "report").exists()


def test_bad_input_to_predict_exits_2_naming_it_with_nothing_half_written(clinical_run, tmp_path, capsys):
    study, run = clinical_run
    # a tampered bundle: the member named
    bad = tmp_path / "tampered"
    shutil.copytree(run / "model", bad)
    _flip(bad / "models.json", offset=10)
    code, err = _predict(bad, study, tmp_path / "o1", capsys)
    assert code == 2 and "member models.json does not match its SHA-256" in err and "Traceback" not in err
    _nothing_written(tmp_path / "o1")
    # an older format
    old = tmp_path / "old"
    shutil.copytree(run / "model", old)
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["format_version"] = 0
    (old / MANIFEST).write_text(json.dumps(manifest))
    code, err = _predict(old, study, tmp_path / "o2", capsys)
    assert code == 2 and "manifest.json: bundle format version 0" in err
    _nothing_written(tmp_path / "o2")
    # a corrupt (truncated) zip
    zipped = tmp_path / "model.zip"
    assert main(["bundle", str(run), "--out", str(zipped)]) == 0
    zipped.write_bytes(zipped.read_bytes()[:200])
    code, err = _predict(zipped, study, tmp_path / "o3", capsys)
    assert code == 2 and "not a readable zip file" in err
    _nothing_written(tmp_path / "o3")
    # a study without a variable the CR model scores
    other = write_study(tmp_path / "missing")
    frame = pd.read_csv(other / "clinical.csv").drop(columns="vascular_invasion")
    frame.to_csv(other / "clinical.csv", index=False)
    config = yaml.safe_load((other / "study.yaml").read_text())
    config["variables"] = [v for v in config["variables"] if v["name"] != "vascular_invasion"]
    (other / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, err = _predict(run / "model", other, tmp_path / "o4", capsys)
    assert code == 2 and "no column vascular_invasion" in err and "Traceback" not in err, err
    _nothing_written(tmp_path / "o4")


def test_a_level_the_development_cohort_never_had_exits_2_until_recoded(clinical_run, tmp_path, capsys):
    study, run = clinical_run
    other = write_study(tmp_path / "external")
    frame = pd.read_csv(other / "clinical.csv")
    unknown = frame.loc[frame["cohort"] == "validation", "patient_id"].tolist()[:3]
    frame.loc[frame["patient_id"].isin(unknown), "vascular_invasion"] = "Unknown"
    frame.to_csv(other / "clinical.csv", index=False)
    config = yaml.safe_load((other / "study.yaml").read_text())
    for variable in config["variables"]:
        if variable["name"] == "vascular_invasion":  # declared in the new study, never seen in development
            variable["levels"] = ["No", "Yes", "Unknown"]
    (other / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, err = _predict(run / "model", other, tmp_path / "o", capsys)
    assert code == 2 and "Traceback" not in err, err
    assert (f"vascular_invasion is 'Unknown' for 3 patient(s) of the cohort 'validation' ({', '.join(unknown)}), "
            "a level no patient of the development cohort has") in err
    assert "recode: {'Unknown': 'No'}" in err
    _nothing_written(tmp_path / "o")
    for variable in config["variables"]:
        if variable["name"] == "vascular_invasion":
            variable.update(levels=["No", "Yes"], recode={"Unknown": "No"})
    (other / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, err = _predict(run / "model", other, tmp_path / "o", capsys)
    assert code == 0, err[-3000:]
    scored = pd.read_csv(tmp_path / "o" / "predictions.csv", **EXACT)
    cr = scored[scored["model"] == "CR"].set_index("patient_id")["y_score"]
    no = frame.loc[(frame["vascular_invasion"] == "No") & (frame["cohort"] == "validation"), "patient_id"].iloc[0]
    assert (cr.loc[unknown] == cr.loc[no]).all()  # read as 'No', the level the recode names


def test_two_external_cohorts_are_each_analysed_against_development(clinical_run, tmp_path, capsys):
    """A new study of two cohorts (external-A, external-B): each gets its rows at the bundle's
    thresholds and each model's unpaired DeLong test against the development cohort."""
    from dlr.analysis.discrimination import delong_unpaired_test

    _, run = clinical_run
    other = write_study(tmp_path / "external")
    frame = pd.read_csv(other / "clinical.csv")
    frame["cohort"] = frame["cohort"].map({"training": "external-A", "validation": "external-B"})
    frame.to_csv(other / "clinical.csv", index=False)
    config = yaml.safe_load((other / "study.yaml").read_text())
    config.update(cohorts=["external-A", "external-B"], dev_cohort="external-A")  # dlr predict does not use it
    (other / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, err = _predict(run / "model", other, tmp_path / "o", capsys)
    assert code == 0, err[-3000:]
    performance = pd.read_csv(tmp_path / "o" / "results" / "performance.csv")
    thresholds = json.loads((run / "model" / "models.json").read_text())["thresholds"]
    assert set(performance["cohort"]) >= {"training", "external-A", "external-B"}  # the bundle's own name is free
    for row in performance.itertuples():
        assert row.threshold == thresholds[row.model] and row.threshold_source == "bundle"
    tests = pd.read_csv(tmp_path / "o" / "results" / "cohort_tests.csv")
    cr = tests[(tests["model"] == "CR") & (tests["cohort_a"] == "training")].set_index("cohort_b")
    assert set(cr.index) >= {"external-A", "external-B"}
    scored = pd.read_csv(tmp_path / "o" / "predictions.csv", **EXACT)
    dev = read_bundle(run / "model").csv("development/predictions.csv")
    d, b = dev[dev["model"] == "CR"], scored[(scored["model"] == "CR") & (scored["cohort"] == "external-B")]
    oracle = delong_unpaired_test(d["y_true"].to_numpy(), d["y_score"].to_numpy(), b["y_true"].to_numpy(),
                                  b["y_score"].to_numpy())
    assert cr.loc["external-B", "p_value"] == pytest.approx(oracle.p_value, abs=1e-12)
