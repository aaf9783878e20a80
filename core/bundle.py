"""The model bundle's container (contract section 8): members, checksums, and nothing that runs.

A bundle is a folder (``RUN/model/``) or that folder as one zip (``dlr bundle RUN --out
FILE.zip``) holding ``manifest.json`` and members of a few declared kinds, chosen so that
reading a bundle executes no code from it:

========== ==================================================================================
kind       how it is read
========== ==================================================================================
``.json``  :func:`json.loads` of UTF-8 text (numbers, strings, lists, mappings)
``.yaml``  ``yaml.safe_load`` (no tags, no Python objects)
``.csv``   pandas' CSV reader
``.safetensors`` the ``safetensors`` format: a JSON header and raw little-endian tensors
========== ==================================================================================

No pickle, joblib or ``torch.save`` file is ever written or read: a member of any other kind is
refused, and so is one whose SHA-256 differs from the manifest's, one the manifest does not
list, or a manifest of another format or version. What the members mean (the fitted models)
is :mod:`dlr.modeling.frozen`'s business; this module only guards the container.
"""
from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import InputError

FORMAT = "dlr-model-bundle"
#: bumped whenever a member changes meaning; a bundle of another version is refused, not guessed at
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: the member kinds a bundle may hold (see the module docstring)
KINDS = (".json", ".yaml", ".csv", ".safetensors")
#: what every refusal ends with
FIX = "rebuild the bundle with `dlr train` / `dlr run` (or `dlr bundle RUN --out FILE.zip`) of this dlr"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str, where: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not name or name.startswith("."):
        raise InputError(f"{where}: member {name!r} is not a plain relative path; {FIX}")
    if path.suffix not in KINDS:
        raise InputError(f"{where}: member {name!r} is of a kind a bundle never holds ({path.suffix or 'no suffix'}; "
                         f"only {', '.join(KINDS)}: no pickle, joblib or torch.save file is read); {FIX}")


def write_bundle(folder, members: dict, *, info: dict) -> Path:
    """Write ``members`` (relative name -> bytes) and ``manifest.json`` into ``folder``.

    ``info`` goes into the manifest beside the format, its version and each member's SHA-256
    and size (the dlr and package versions, what made it). The caller stages the folder
    (:func:`dlr.core.output.staged_folder`) so a failure leaves nothing half-written.
    """
    folder = Path(folder)
    listed = {}
    for name in sorted(members):
        _check_name(name, str(folder))
        data = members[name]
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        listed[name] = {"sha256": _sha256(data), "bytes": len(data)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **info, "members": listed}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return folder


@dataclass(frozen=True)
class Bundle:
    """A bundle read and checked: its manifest and every member's bytes (all verified).

    Attributes
    ----------
    source : str
        The folder or zip it was read from (for messages).
    manifest : dict
    members : dict
        Relative name -> bytes; every one listed in the manifest with a matching SHA-256.
    """

    source: str
    manifest: dict
    members: dict

    def json(self, name: str):
        """A JSON member, parsed (InputError naming it when it is not JSON text)."""
        try:
            return json.loads(self.bytes(name).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.source}: member {name} is not JSON text ({exc}); {FIX}") from None

    def yaml(self, name: str):
        import yaml

        try:
            return yaml.safe_load(self.bytes(name).decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{self.source}: member {name} is not plain YAML ({exc}); {FIX}") from None

    def csv(self, name: str):
        import pandas as pd

        from .csvsafe import read_back

        try:
            return read_back(pd.read_csv(io.BytesIO(self.bytes(name)), dtype={"patient_id": str},
                                         float_precision="round_trip"))
        except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"{self.source}: member {name} is not a CSV table ({exc}); {FIX}") from None

    def tensors(self, name: str) -> dict:
        """A safetensors member as name -> torch tensor (the format holds raw numbers and a JSON
        header: nothing in it is executed)."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            return load(self.bytes(name))
        except (SafetensorError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.source}: member {name} is not a safetensors file ({exc}); {FIX}") from None

    def bytes(self, name: str) -> bytes:
        if name not in self.members:
            raise InputError(f"{self.source}: the bundle has no member {name}; {FIX}")
        return self.members[name]

    def has(self, name: str) -> bool:
        return name in self.members


def _read_members(path: Path) -> dict:
    """name -> bytes of every file of a bundle folder or zip (the zip within safe limits)."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
                if p.is_file() and not p.is_symlink() and not p.name.startswith(".")}
    from .archive import ArchiveLimits, safe_extract

    with tempfile.TemporaryDirectory(prefix="dlr-bundle-") as tmp:
        names = safe_extract(path, tmp, limits=ArchiveLimits(max_member=1024 << 20, max_total=4096 << 20),
                             what=f"not a dlr model bundle; {FIX}", required=(MANIFEST,))
        return {n: (Path(tmp) / n).read_bytes() for n in names}


def read_bundle(path) -> Bundle:
    """Open a bundle folder or zip and check every member against its manifest.

    Raises
    ------
    InputError
        (exit 2) Naming the file or member: not a bundle, a manifest of another format or
        version, a member whose SHA-256 or size differs from the manifest's (changed after it
        was written), a member missing, one the manifest does not list, or one of a kind a
        bundle never holds (a pickle, say).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such bundle (give RUN/model/ of a `dlr run`, or the zip of `dlr bundle`)")
    if path.is_dir() and not (path / MANIFEST).is_file():
        if (path / "model" / MANIFEST).is_file():
            path = path / "model"
        else:
            raise InputError(f"{path}: no {MANIFEST}: not a dlr model bundle (give RUN/model/ of a `dlr run` of this "
                             "dlr, or the zip of `dlr bundle`)")
    members = _read_members(path)
    source = str(path)
    try:
        manifest = json.loads(members.pop(MANIFEST).decode("utf-8"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{source}: member {MANIFEST} is missing or not JSON ({exc}); {FIX}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{source}: member {MANIFEST} does not describe a {FORMAT} (format "
                         f"{manifest.get('format') if isinstance(manifest, dict) else None!r}); {FIX}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(f"{source}: member {MANIFEST}: bundle format version {version!r}, and this dlr reads version "
                         f"{FORMAT_VERSION} only (written by dlr {manifest.get('dlr_version', '?')}); {FIX}")
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise InputError(f"{source}: member {MANIFEST} lists no members; {FIX}")
    for name in sorted(set(members) | set(listed)):
        if name not in listed:
            raise InputError(f"{source}: member {name} is not listed in {MANIFEST} (added after the bundle was "
                             f"written); {FIX}")
        _check_name(name, source)
        if name not in members:
            raise InputError(f"{source}: member {name} is missing; {FIX}")
        entry = listed[name]
        data = members[name]
        if not isinstance(entry, dict) or entry.get("sha256") != _sha256(data) or entry.get("bytes") != len(data):
            raise InputError(f"{source}: member {name} does not match its SHA-256 in {MANIFEST}: it was changed after "
                             f"the bundle was written (tampered with or corrupted); {FIX}")
        _check_member(source, name, data)
    return Bundle(source, manifest, members)


def _check_safetensors(data: bytes) -> None:
    """The safetensors layout: an 8-byte little-endian header length, a JSON header of tensors
    (dtype, shape, data_offsets) and exactly the bytes they cover."""
    if len(data) < 8:
        raise ValueError("shorter than a header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("its header runs past the end")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("its header is not a mapping")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise ValueError(f"tensor {name!r} is not described")
        end = max(end, int(entry["data_offsets"][1]))
    if end != len(data) - 8 - n:
        raise ValueError("its tensors do not cover its bytes")


def _check_member(source: str, name: str, data: bytes) -> None:
    """Refuse a member whose bytes are not of its declared kind (read as data, never run)."""
    import yaml

    kind = PurePosixPath(name).suffix
    try:
        if kind == ".json":
            json.loads(data.decode("utf-8"))
        elif kind == ".yaml":
            yaml.safe_load(data.decode("utf-8"))
        elif kind == ".csv":
            data.decode("utf-8")
            if b"\x00" in data:
                raise ValueError("a NUL byte")
        elif kind == ".safetensors":
            _check_safetensors(data)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"{source}: member {name} is not a {kind[1:]} file ({type(exc).__name__}: {exc}); it is refused "
                         f"unread (a bundle holds declared data only); {FIX}") from None


def zip_bundle(folder, out) -> Path:
    """``folder`` (a bundle, checked first) as one deterministic zip at ``out`` (members sorted,
    fixed timestamps), written under a temporary name and moved into place."""
    from .output import staged_file

    bundle = read_bundle(folder)
    out = Path(out)
    if out.suffix != ".zip":
        raise InputError(f"--out {out}: give a file name ending in .zip")
    names = [MANIFEST, *sorted(bundle.members)]
    data = {MANIFEST: (Path(bundle.source) / MANIFEST).read_bytes(), **bundle.members}
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data[name])
    return out
