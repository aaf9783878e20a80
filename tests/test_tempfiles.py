"""Temporary files a killed process leaves are removed by the next dlr (issue 21.8: after SIGKILL
and a resumed run, RUN/.report-* and /tmp/dlr-figures-* remained)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from dlr.core.lock import writing
from dlr.core.tempfiles import private_folder, remove_leftovers


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftovers(run: Path) -> list[Path]:
    made = [run / ".report-k2j3h4", run / "results" / ".performance.csv.tmp-0a1b2c3d4e5f.csv",
            run / ".results.tmp-x7_y8z9", run / ".results.old-0a1b2c3d4e5f", run / "features" / ".tmp-abc123",
            run / "deep" / "slices" / ".HCC001.tmp.npz"]
    for path in made:
        if path.suffix in (".csv", ".npz"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"partial")
        else:
            (path / "figures").mkdir(parents=True)
            (path / "figures" / "roc.png").write_bytes(b"partial")
    return made


def test_the_next_writer_of_a_run_folder_removes_what_a_killed_one_left(tmp_path):
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "results" / "performance.csv").write_text("model,auc\n")
    (run / ".keep-me").write_text("a user's own hidden file")
    made = _leftovers(run)
    with writing(run):
        pass
    assert not any(p.exists() for p in made)
    assert (run / "results" / "performance.csv").is_file() and (run / ".keep-me").is_file()


def test_a_folder_that_is_not_a_run_is_never_swept(tmp_path):
    made = _leftovers(tmp_path / "not_a_run")
    with writing(tmp_path / "not_a_run"):
        pass
    assert all(p.exists() for p in made)
    assert remove_leftovers(tmp_path / "absent") == []


def test_private_folders_of_killed_processes_are_swept_and_own_ones_removed_at_exit(tmp_path):
    root = Path(tempfile.gettempdir())
    dead = root / f"dlr-figures-{_dead_pid()}-abc123"
    (dead / "sub").mkdir(parents=True)
    alive = root / "dlr-figures-1-abc123"  # PID 1 always runs
    alive.mkdir(exist_ok=True)
    try:
        mine = private_folder("verify")
        assert mine.is_dir() and not dead.exists() and alive.is_dir()
        assert (mine.stat().st_mode & 0o777) == 0o700
    finally:
        alive.rmdir()
    script = "from dlr.core.tempfiles import private_folder; print(private_folder('package'))"
    made = Path(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
                .stdout.strip())
    assert made.name.startswith("dlr-package-") and not made.exists()  # removed at exit
