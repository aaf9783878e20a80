"""Progress messages through the standard library's :mod:`logging`.

Each module logs its steps at INFO to its own logger (``logging.getLogger(__name__)``, all of
them under ``dlr``). Nothing is shown until someone attaches a handler, as with any library: the
command line shows the messages on stderr with the seconds since it started
(:func:`on_stderr`), and `dlr run` also writes them, time-stamped, to ``RUN/run.log``
(:func:`written_to`). A program that uses ``dlr`` as a library sees them by configuring logging
(``logging.basicConfig(level=logging.INFO)``). Long loops keep their tqdm bars (the extraction's
cases, the synthetic study's patients, a network's steps).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Iterator

#: the logger every module's logger descends from
ROOT = "dlr"


class _Elapsed(logging.Formatter):
    """``[dlr   12.3s] message``: the seconds since the handler was made."""

    def __init__(self):
        super().__init__()
        self.start = time.monotonic()

    def format(self, record: logging.LogRecord) -> str:
        return f"[dlr {time.monotonic() - self.start:6.1f}s] {record.getMessage()}"


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a message comes (not the stream of
    the moment it was made), flushed after each message."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


def _at_least_info(logger: logging.Logger) -> None:
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def on_stderr() -> Iterator[logging.Handler]:
    """Within the block, ``dlr``'s progress messages are shown on stderr with the seconds since
    it began (the command line: ``[dlr   12.3s] message``)."""
    handler = _Stderr()
    handler.setFormatter(_Elapsed())
    with _attached(handler):
        yield handler


@contextlib.contextmanager
def written_to(path) -> Iterator[Path]:
    """Within the block, ``dlr``'s progress messages are also appended to ``path``, each line
    ``<ISO time to the second> <message>`` (``RUN/run.log``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    try:
        with _attached(handler):
            yield path
    finally:
        handler.close()


@contextlib.contextmanager
def _attached(handler: logging.Handler) -> Iterator[None]:
    """``handler`` on the ``dlr`` logger, which passes INFO, within the block."""
    logger = logging.getLogger(ROOT)
    level = logger.level
    _at_least_info(logger)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
