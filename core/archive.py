"""Reading zip archives from strangers (a reviewer package, a model bundle) with limits.

:func:`safe_extract` writes every member of a zip into a folder, refusing (with an
:class:`~dlr.core.errors.InputError` naming the member) anything that could hurt the reader:

- a member that points outside the folder (an absolute path, a drive letter, ``..``) or is a
  symbolic link;
- a zip bomb: a member larger than ``max_member`` bytes uncompressed, all members together
  larger than ``max_total``, or a member that expands more than ``max_ratio`` times its
  compressed size (above 1 MiB; small files of repeated text compress well and harm nothing).

The sizes the archive declares are checked first, then the bytes actually produced while each
member is streamed to disk in blocks (a crafted archive can declare small sizes): nothing is
read whole into memory, and reading stops at the first block past a limit. The caller owns the
folder (a temporary one it removes, whatever happens).
"""
from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

MiB = 1 << 20
_BLOCK = MiB


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may expand to."""

    max_member: int = 512 * MiB   # one member, uncompressed
    max_total: int = 2048 * MiB   # every member together, uncompressed
    max_ratio: float = 200.0      # uncompressed / compressed size of a member above 1 MiB


def _unsafe_name(name: str) -> bool:
    return (name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name))
            or ".." in re.split(r"[\\/]", name) or "\x00" in name)


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_declared(path: Path, info: zipfile.ZipInfo, limits: ArchiveLimits, total: int, what: str) -> None:
    name = info.filename
    if _unsafe_name(name):
        raise InputError(f"{path}: member {name!r} points outside the archive's folder; {what}")
    if _is_link(info):
        raise InputError(f"{path}: member {name!r} is a symbolic link, which is never extracted; {what}")
    if info.file_size > limits.max_member:
        raise InputError(f"{path}: member {name!r} expands to {info.file_size / MiB:,.0f} MiB, over the "
                         f"{limits.max_member / MiB:,.0f} MiB allowed for one member (a zip bomb?); {what}")
    if total + info.file_size > limits.max_total:
        raise InputError(f"{path}: the members expand to more than {limits.max_total / MiB:,.0f} MiB in all "
                         f"(at {name!r}; a zip bomb?); {what}")
    if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise InputError(f"{path}: member {name!r} expands {info.file_size / max(info.compress_size, 1):,.0f} times "
                         f"its compressed size, over the {limits.max_ratio:g} allowed (a zip bomb?); {what}")


def _stream(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ArchiveLimits,
            total: int, what: str) -> int:
    """Copy one member to ``target`` block by block; the bytes written."""
    name, written = info.filename, 0
    allowed = min(limits.max_member, limits.max_total - total)
    ratio_cap = max(MiB, limits.max_ratio * max(info.compress_size, 1))
    try:
        with archive.open(info) as source, open(target, "wb") as sink:
            while block := source.read(_BLOCK):
                written += len(block)
                if written > allowed or written > ratio_cap:
                    raise InputError(f"{path}: member {name!r} expands past what it declares and past the limits "
                                     f"({written / MiB:,.0f} MiB read; one member may expand to "
                                     f"{limits.max_member / MiB:,.0f} MiB, {limits.max_ratio:g} times its compressed "
                                     f"size; a zip bomb?); {what}")
                sink.write(block)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{path}: member {name!r} cannot be read ({exc}): the zip is corrupt; {what}") from None
    return written


def safe_extract(path, folder, *, limits: ArchiveLimits = ArchiveLimits(), what: str = "not a valid archive",
                 required=()) -> list[str]:
    """Every file member of the zip ``path`` written into ``folder`` within ``limits``; the
    member names. ``required``: names the archive must hold (refused before anything is
    written). ``what`` ends every message (what the archive should have been, and the fix)."""
    path, folder = Path(path), Path(folder)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable zip file ({exc}): the file is corrupt or truncated; {what}") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        names = [info.filename for info in infos]
        missing = [n for n in required if n not in names]
        if missing:
            raise InputError(f"{path}: it has no {', '.join(missing)}; {what}")
        total = 0
        for info in infos:
            _check_declared(path, info, limits, total, what)
            total += info.file_size
        root, total = folder.resolve(), 0
        for info in infos:
            target = (folder / info.filename).resolve()
            if root not in target.parents:
                raise InputError(f"{path}: member {info.filename!r} points outside the archive's folder; {what}")
            target.parent.mkdir(parents=True, exist_ok=True)
            total += _stream(path, archive, info, target, limits, total, what)
    return names
