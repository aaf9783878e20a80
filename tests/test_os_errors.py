"""Operating-system errors name the path and the fix, and a damaged run.json is read again from
the stage records instead of advising to delete the run (issue 21.9)."""
from __future__ import annotations

import errno
import json
import logging

import pytest

from dlr.cli import main, os_error_message
from dlr.core.errors import InputError
from dlr.stages import check_run_folder, write_run_marker


def test_a_full_disk_names_the_folder_and_the_fix():
    text = os_error_message(OSError(errno.ENOSPC, "No space left on device"), "/data/runs/r1")
    assert text.startswith("No space left on device while writing /data/runs/r1")
    assert "free space" in text and "--out" in text and "again" in text


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_an_unwritable_folder_names_the_path_and_the_fix(code):
    text = os_error_message(OSError(code, "Read-only file system", "/data/r1/run.json.tmp"))
    assert "/data/r1/run.json.tmp" in text and "give an --out folder you can write to" in text


def test_the_command_line_says_it_with_exit_2(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    write_run_marker(run, {"study": str(tmp_path / "study")})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dlr.report.build.build_report", full)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"while writing {run}" in err and "free space" in err and "Traceback" not in err


def _run_with_records(tmp_path):
    run = tmp_path / "run"
    (run / "stages").mkdir(parents=True)
    write_run_marker(run, {"study": str(run / "study"), "profile": "quick"})
    record = {"stage": "validate", "dlr_version": "0.1.0",
              "inputs": {"clinical.csv": {"path": "study/clinical.csv", "sha256": "0" * 64}}}
    (run / "stages" / "validate.json").write_text(json.dumps(record))
    return run


def test_a_damaged_run_json_is_read_again_from_the_stage_records(tmp_path, caplog):
    run = _run_with_records(tmp_path)
    (run / "run.json").write_text('{"format": "dlr-run", "forma')  # truncated
    with caplog.at_level(logging.WARNING, logger="dlr"):
        info = check_run_folder(run, creating=False)
    assert info["format"] == "dlr-run" and info["repaired"] and info["study"] == str(run / "study")
    assert any("damaged" in r.getMessage() and "results are kept" in r.getMessage() for r in caplog.records)


def test_without_a_stage_record_it_says_to_run_again_not_to_delete(tmp_path):
    run = _run_with_records(tmp_path)
    (run / "stages" / "validate.json").unlink()
    (run / "run.json").write_text("{")
    with pytest.raises(InputError, match="holds no stage record to rebuild it from; run the study again") as caught:
        check_run_folder(run, creating=False)
    assert "delete" not in str(caught.value)
