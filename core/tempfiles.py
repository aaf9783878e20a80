"""Temporary files and folders that a killed process cannot leave behind for long.

- :func:`private_folder`: a folder in the system's temporary directory named
  ``dlr-<kind>-<pid>-...``, removed when the process exits (``atexit``) and, should the process
  be killed (no exit handler runs then), by the next dlr that makes one: folders of processes
  that no longer run are swept first.
- :func:`remove_leftovers`: what a killed writer left inside a run folder (the staging
  folders and files of :mod:`dlr.core.output`, ``.report-*``, the deep arm's ``.<id>.tmp.npz``),
  removed by the next writer once it holds the folder's lock (:mod:`dlr.core.lock`), when no
  one else can be writing them.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

#: names of the staging files and folders inside a run folder
_LEFTOVER = re.compile(r"^\.(?:.+\.(?:tmp|old)-[0-9a-z_]+.*|tmp-.+|report-.+|.+\.tmp\.npz)$")
_PRIVATE = re.compile(r"^dlr-[a-z]+-(\d+)-")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (or exists under another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(root: Path) -> None:
    for path in root.glob("dlr-*-*-*"):
        match = _PRIVATE.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def private_folder(kind: str, *, mode: int = 0o700) -> Path:
    """A new folder ``<tmp>/dlr-<kind>-<pid>-XXXX`` (``mode``: the owner's alone unless told),
    removed at exit; the folders of dlr processes that were killed are removed first."""
    root = Path(tempfile.gettempdir())
    _sweep(root)
    path = Path(tempfile.mkdtemp(prefix=f"dlr-{kind}-{os.getpid()}-", dir=root))
    path.chmod(mode)
    atexit.register(shutil.rmtree, path, True)
    return path


def remove_leftovers(folder) -> list[Path]:
    """Remove the staging files and folders a killed writer left anywhere inside ``folder``; the
    paths removed. Call it only while holding the folder's writer lock."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.rglob(".*"), key=lambda p: len(p.parts)):
        if not _LEFTOVER.match(path.name) or any(p in removed for p in path.parents):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
