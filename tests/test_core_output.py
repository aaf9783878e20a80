"""Staged output with provenance (core/output.py): all or nothing, an earlier result never
clobbered, and a provenance entry per artefact whose hashes are those of the files."""
from __future__ import annotations


import pandas as pd
import pytest

from dlr.core.output import (file_sha256, provenance, read_provenance, record_provenance, staged_file, staged_files,
                         staged_folder, write_files)


class Boom(RuntimeError):
    pass


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_staged_folder_replaces_the_whole_folder_and_records_every_file(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "stale.csv").write_text("old\n")
    info = provenance(inputs={"predictions": __file__}, settings={"bootstrap": 10}, seed=3)
    with staged_folder(out, provenance_info=info) as tmp:
        (tmp / "a.csv").write_text("x\n1\n")
        (tmp / "figures").mkdir()
        (tmp / "figures" / "roc.svg").write_text("<svg/>")
        assert not (out / "a.csv").exists()  # nothing reaches out before the end
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "figures", "provenance.json"]
    record = read_provenance(out)
    assert sorted(record) == ["a.csv", "figures/roc.svg"]
    assert record["a.csv"]["sha256"] == file_sha256(out / "a.csv")
    assert record["figures/roc.svg"]["inputs"]["predictions"] == file_sha256(__file__)
    assert record["a.csv"]["settings"] == {"bootstrap": 10} and record["a.csv"]["seed"] == 3
    assert record["a.csv"]["versions"]["numpy"] and "git_sha" in record["a.csv"]
    assert _hidden(tmp_path) == []


def test_a_failure_inside_a_staged_folder_leaves_the_earlier_folder_untouched(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "a.csv").write_text("good\n")
    with pytest.raises(Boom):
        with staged_folder(out, provenance_info={}) as tmp:
            (tmp / "a.csv").write_text("half")
            raise Boom
    assert (out / "a.csv").read_text() == "good\n"
    assert sorted(p.name for p in out.iterdir()) == ["a.csv"]
    assert _hidden(tmp_path) == []


def test_staged_folder_without_replace_refuses_an_existing_folder(tmp_path):
    (tmp_path / "study").mkdir()
    with pytest.raises(FileExistsError):
        with staged_folder(tmp_path / "study", replace=False) as tmp:
            (tmp / "x").write_text("1")
    assert list((tmp_path / "study").iterdir()) == []


def test_staged_files_are_all_or_nothing_and_keep_other_commands_records(tmp_path):
    out = tmp_path / "tables"
    write_files(out, {"table1.csv": pd.DataFrame({"a": [1.5]})}, provenance_info={"settings": {"k": 1}})
    with pytest.raises(Boom):
        with staged_files(out, provenance_info={"settings": {"k": 2}}) as tmp:
            (tmp / "table1.csv").write_text("broken")
            (tmp / "univariate.csv").write_text("broken")
            raise Boom
    assert (out / "table1.csv").read_text() == "a\n1.5\n"
    assert not (out / "univariate.csv").exists()
    write_files(out, {"selected.txt": "ast\n"}, provenance_info={"settings": {"k": 3}})
    record = read_provenance(out)
    assert record["table1.csv"]["settings"] == {"k": 1}   # the earlier command's entry is kept
    assert record["selected.txt"]["settings"] == {"k": 3}
    assert record["selected.txt"]["sha256"] == file_sha256(out / "selected.txt")
    assert _hidden(out) == []


def test_staged_file_replaces_only_on_success(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("old\n")
    with pytest.raises(Boom):
        with staged_file(path) as tmp:
            assert tmp.name.endswith(".csv") and tmp.parent == tmp_path
            tmp.write_text("new\n")
            raise Boom
    assert path.read_text() == "old\n" and _hidden(tmp_path) == []
    with staged_file(path) as tmp:
        tmp.write_text("new\n")
    assert path.read_text() == "new\n" and _hidden(tmp_path) == []


def test_provenance_is_deterministic_and_names_missing_inputs(tmp_path):
    data = tmp_path / "clinical.csv"
    data.write_text("patient_id\nP1\n")
    first = provenance(inputs=[data, tmp_path / "absent.csv"], settings={"alpha": 0.05}, seed=1)
    second = provenance(inputs=[data, tmp_path / "absent.csv"], settings={"alpha": 0.05}, seed=1)
    assert first == second
    assert first["inputs"] == {str(data): file_sha256(data), str(tmp_path / "absent.csv"): None}
    record_provenance(tmp_path, ["clinical.csv"], first)
    text = (tmp_path / "provenance.json").read_text()
    record_provenance(tmp_path, ["clinical.csv"], second)
    assert (tmp_path / "provenance.json").read_text() == text  # same inputs, same bytes


def test_artefacts_written_together_share_one_record_and_stale_records_go(tmp_path):
    import json

    for name in ("a.nii.gz", "b.nii.gz"):
        (tmp_path / name).write_bytes(name.encode())
    record_provenance(tmp_path, ["a.nii.gz", "b.nii.gz"], {"settings": {"n": 1}})
    document = json.loads((tmp_path / "provenance.json").read_text())
    assert len(document["records"]) == 1
    assert {e["record"] for e in document["artefacts"].values()} == set(document["records"])
    record_provenance(tmp_path, ["a.nii.gz", "b.nii.gz"], {"settings": {"n": 2}})  # both rewritten
    document = json.loads((tmp_path / "provenance.json").read_text())
    assert [r["settings"] for r in document["records"].values()] == [{"n": 2}]
    assert read_provenance(tmp_path)["b.nii.gz"] == {"sha256": file_sha256(tmp_path / "b.nii.gz"),
                                                     "settings": {"n": 2}}
