"""What SimpleITK does not show of a NIfTI file: its non-finite voxels.

ITK's NIfTI reader (niftilib's ``nifti_read_buffer``) sets every NaN or infinite voxel of a
floating-point image to 0 as it reads, silently, so an image exported with NaN outside the field
of view, or with a division by zero, reaches the features as a block of zeros. This module reads
the voxels from the file itself (NIfTI-1 or NIfTI-2, gzipped or not) to count them. Integer
images cannot hold a non-finite value: for them only the header is read.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

#: NIfTI datatype code -> numpy type, for the types that can hold NaN or infinity
_FLOAT_TYPES = {16: "f4", 64: "f8", 32: "c8", 1792: "c16"}


@dataclass(frozen=True)
class NonFinite:
    """The non-finite voxels of an image file: ``nan`` NaN and ``infinite`` +-inf of ``total`` values."""

    nan: int
    infinite: int
    total: int

    @property
    def count(self) -> int:
        return self.nan + self.infinite

    def describe(self) -> str:
        """e.g. ``"12 of 36864 voxels are not finite (10 NaN, 2 infinite)"``."""
        return (f"{self.count} of {self.total} voxel(s) {'is' if self.count == 1 else 'are'} not finite "
                f"({self.nan} NaN, {self.infinite} infinite)")


def _header(head: bytes):
    """(endian, datatype, voxel values, data offset) of a NIfTI-1 or NIfTI-2 header, or None."""
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(f"{endian}i", head[:4])[0] == 348:
            dims = struct.unpack(f"{endian}8h", head[40:56])
            datatype = struct.unpack(f"{endian}h", head[70:72])[0]
            offset = int(struct.unpack(f"{endian}f", head[108:112])[0])
            break
        if len(head) >= 540 and struct.unpack(f"{endian}i", head[:4])[0] == 540:
            datatype = struct.unpack(f"{endian}h", head[12:14])[0]
            dims = struct.unpack(f"{endian}8q", head[16:80])
            offset = int(struct.unpack(f"{endian}q", head[168:176])[0])
            break
    else:
        return None
    rank = int(dims[0])
    if not 1 <= rank <= 7 or any(d < 0 for d in dims[1:rank + 1]):
        return None
    return endian, int(datatype), int(np.prod([int(d) for d in dims[1:rank + 1]], dtype=np.int64)), offset


def nonfinite_voxels(path) -> Optional[NonFinite]:
    """The NaN and infinite voxels of a NIfTI image file, as stored (before ITK zeroes them).

    Returns
    -------
    NonFinite or None
        None when the file holds an integer type (no voxel can be non-finite) or is not a
        readable NIfTI file (SimpleITK's own checks report that).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            zipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if zipped else open(path, "rb")) as f:
            head = f.read(540)
            parsed = _header(head)
            if parsed is None or parsed[1] not in _FLOAT_TYPES:
                return None
            endian, datatype, n_values, offset = parsed
            data = head + f.read()
        values = np.frombuffer(data, dtype=np.dtype(f"{endian}{_FLOAT_TYPES[datatype]}"), count=n_values,
                               offset=offset)
    except (OSError, EOFError, ValueError, struct.error, zlib.error):
        return None
    nan = int(np.count_nonzero(np.isnan(values)))
    infinite = int(np.count_nonzero(np.isinf(values)))
    return NonFinite(nan, infinite, int(values.size))
