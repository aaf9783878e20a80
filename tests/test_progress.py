"""Progress goes through the standard library's logging (dlr.core.progress): silent for a
library user until a handler is attached; the command line shows it on stderr with the elapsed
time; `dlr run` appends it, time-stamped, to RUN/run.log."""
from __future__ import annotations

import logging
import re

from dlr.core.progress import on_stderr, written_to

LOG = logging.getLogger("dlr.modeling.train")  # any module's logger under dlr


def test_messages_show_on_stderr_only_within_the_block(capsys):
    LOG.info("before")
    with on_stderr():
        LOG.info("fitting on the 132 'training' patients")
    LOG.info("after")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and re.fullmatch(r"\[dlr +\d+\.\ds\] fitting on the 132 'training' patients", err[0])
    assert logging.getLogger("dlr").handlers == []


def test_messages_are_appended_to_the_log_with_a_time_stamp(tmp_path):
    path = tmp_path / "run" / "run.log"
    path.parent.mkdir()
    path.write_text("2026-01-01T00:00:00 an earlier run\n")
    with written_to(path):
        LOG.info("[1/6] validate")
    LOG.info("not logged")
    lines = path.read_text().splitlines()
    assert lines[0] == "2026-01-01T00:00:00 an earlier run"
    assert len(lines) == 2 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \[1/6\] validate", lines[1])


def test_a_library_user_sees_them_by_configuring_logging(caplog):
    with caplog.at_level(logging.INFO, logger="dlr"):
        LOG.info("tuning Radiomics-LR on 21 features")
    assert [r.getMessage() for r in caplog.records] == ["tuning Radiomics-LR on 21 features"]
