"""One writer per run folder: an advisory lock on ``RUN/.lock`` (``fcntl.flock``).

Every verb that writes into a run folder holds :func:`writing` while it does: a second process
that tries is refused at once (an :class:`~dlr.core.errors.InputError`, exit status 2) with the
holder's PID, start time and command. The kernel releases a lock when its process ends, however
it ends, so a lock is never stale; what a killed process leaves is its record in ``RUN/.lock``,
which the next writer takes over with a logged warning naming the process that died. Within one
process the lock is re-entrant (`dlr run` holds it while its stages call the verbs that take it).
Whoever takes a run folder's lock first removes the temporary files an interrupted writer left
in it (:func:`dlr.core.tempfiles.remove_leftovers`).
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import logging
import sys
from pathlib import Path
from typing import Iterator

from .errors import InputError
from .tempfiles import pid_alive

LOCK_FILE = ".lock"
#: folder (resolved) -> [file descriptor, depth] of the locks this process holds
_HELD: dict[Path, list] = {}
logger = logging.getLogger(__name__)


def _record(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        value = json.loads(os.read(fd, 65536).decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _holder(record: dict) -> str:
    return (f"PID {record.get('pid', '?')}, started {record.get('started', '?')}, "
            f"`{record.get('command', '?')}`")


@contextlib.contextmanager
def writing(folder) -> Iterator[Path]:
    """Hold ``folder``'s writer lock within the block (creating the folder; a folder it created
    that holds nothing else afterwards is removed again); refused when another process holds it."""
    folder = Path(folder)
    key = folder.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield folder
        finally:
            _HELD[key][1] -= 1
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"{folder / LOCK_FILE}: cannot be created ({exc.strerror}); give an --out folder you can "
                         "write to") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        record = _record(fd)
        os.close(fd)
        raise InputError(f"{folder}: another dlr is writing this run folder ({_holder(record)}); wait for it to "
                         "finish, or stop it, then run again (or choose another --out folder)") from None
    previous = _record(fd)
    if previous.get("pid") and previous.get("pid") != os.getpid() and not pid_alive(int(previous["pid"])):
        logger.warning(f"{folder}: took over the lock left by a dlr that is no longer running "
                       f"({_holder(previous)}); what it left unfinished is done again")
    record = {"pid": os.getpid(), "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": " ".join(["dlr", *sys.argv[1:]]) if sys.argv else "dlr"}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode("utf-8"))
    _HELD[key] = [fd, 1]
    if (folder / "run.json").is_file():  # only a run folder: never sweep a folder the user named by mistake
        from .tempfiles import remove_leftovers

        left = remove_leftovers(folder)
        if left:
            logger.info(f"{folder}: removed {len(left)} temporary file(s) left by an earlier, interrupted writer")
    try:
        yield folder
    finally:
        del _HELD[key]
        os.ftruncate(fd, 0)  # a clean end leaves no record to take over
        if created and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            os.unlink(folder / LOCK_FILE)  # refused before it wrote anything: no folder left behind
            folder.rmdir()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
