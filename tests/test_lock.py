"""One writer per run folder (dlr.core.lock): a second writer is refused with exit 2 naming the
holder; a killed writer's record is taken over with a warning; the lock is re-entrant within a
process (`dlr run` holds it while its stages call the verbs that take it)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_dlr
from dlr.core.errors import InputError
from dlr.core.lock import LOCK_FILE, writing
from real_clinical_study import write_study

HOLD = ("import sys, time; from dlr.core.lock import writing\n"
        "with writing(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n")


def _holder(folder, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run, 30)
    try:
        with pytest.raises(InputError, match=rf"another dlr is writing this run folder \(PID {holder.pid}, started "):
            with writing(run):
                pass
        done = run_dlr("report", run)
        assert done.returncode == 2 and f"PID {holder.pid}" in done.stderr and "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()
    with writing(run):  # the kernel released it with the process
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert (run / LOCK_FILE).read_text() == ""  # a clean end leaves no record


def test_a_killed_writers_record_is_taken_over_with_a_warning(tmp_path, caplog):
    run = tmp_path / "run"
    holder = _holder(run, 30)
    holder.kill()  # SIGKILL: no clean end, its record stays
    holder.wait()
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == holder.pid
    with caplog.at_level(logging.WARNING, logger="dlr"), writing(run):
        pass
    assert any(f"PID {holder.pid}" in r.getMessage() and "no longer running" in r.getMessage() for r in caplog.records)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with writing(tmp_path / "run"):
        with writing(tmp_path / "run"):
            pass
        assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == os.getpid()


@pytest.mark.slow
def test_two_concurrent_runs_on_one_folder_exactly_one_proceeds(tmp_path):
    """Issue 21.4: two `dlr run` on the same RUN both exited 0 and the last writer won."""
    study = write_study(tmp_path / "study")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "dlr.cli", "run", str(study), "--out", str(run), "--bootstrap", "50",
               "--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    errors = [proc.communicate(timeout=900)[1] for proc in runs]
    codes = [proc.returncode for proc in runs]
    assert sorted(codes) == [0, 2], [e[-2000:] for e in errors]
    refused, proceeded = (1, 0) if codes[1] == 2 else (0, 1)
    assert f"another dlr is writing this run folder (PID {runs[proceeded].pid}" in errors[refused], errors[refused]
    assert (run / "report" / "index.html").is_file()
