"""Archives from strangers are read with limits (dlr.core.archive): no member outside the folder,
no link, no zip bomb; streamed, never read whole; refused with exit 2 naming the member."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlr.core.archive import ArchiveLimits, MiB, safe_extract
from dlr.core.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _zip(path: Path, members: dict, *, level: int = 9) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_good_archive_is_extracted(tmp_path):
    path = _zip(tmp_path / "a.zip", {"MANIFEST.csv": "file,sha256\n", "results/performance.csv": "model,auc\nA,0.7\n"})
    names = safe_extract(path, tmp_path / "out", required=("MANIFEST.csv",))
    assert sorted(names) == ["MANIFEST.csv", "results/performance.csv"]
    assert (tmp_path / "out" / "results" / "performance.csv").read_text() == "model,auc\nA,0.7\n"


@pytest.mark.parametrize("name", ["../evil.csv", "/etc/evil.csv", "C:/evil.csv", "a/../../evil.csv"])
def test_a_member_outside_the_folder_is_refused(tmp_path, name):
    path = _zip(tmp_path / "slip.zip", {"MANIFEST.csv": "x", name: "evil"})
    with pytest.raises(InputError, match="points outside"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "evil.csv").exists()


def test_a_symbolic_link_member_is_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("results/link.csv")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="'results/link.csv' is a symbolic link"):
        safe_extract(path, tmp_path / "out")


def test_declared_sizes_and_ratios_over_the_limits_are_refused_before_anything_is_written(tmp_path):
    path = _zip(tmp_path / "big.zip", {"ok.csv": "a,b\n", "zeros.bin": b"\0" * (4 * MiB)})
    with pytest.raises(InputError, match="'zeros.bin' expands .* times its compressed size"):
        safe_extract(path, tmp_path / "out")
    with pytest.raises(InputError, match="'zeros.bin' expands to 4 MiB, over the 2 MiB"):
        safe_extract(path, tmp_path / "out2", limits=ArchiveLimits(max_member=2 * MiB, max_ratio=1e9))
    with pytest.raises(InputError, match="more than 3 MiB in all"):
        safe_extract(path, tmp_path / "out3", limits=ArchiveLimits(max_total=3 * MiB, max_ratio=1e9))
    assert not any((tmp_path / d).exists() and any((tmp_path / d).rglob("*")) for d in ("out", "out2", "out3"))


def test_a_member_that_lies_about_its_size_is_stopped_while_streaming(tmp_path):
    path = _zip(tmp_path / "liar.zip", {"zeros.bin": b"\0" * (8 * MiB)})
    data = bytearray(path.read_bytes())
    # declare 100 bytes uncompressed in the local header and the central directory
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(header)
        data[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="'zeros.bin' (expands past what it declares|cannot be read)"):
        safe_extract(path, tmp_path / "out", limits=ArchiveLimits(max_member=2 * MiB))


def test_a_2_gib_member_is_refused_fast_and_small_by_dlr_verify(tmp_path):
    """The issue's zip bomb: a package whose predictions member expands to 2 GiB."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in ("MANIFEST.csv", "results/results.json"):
            archive.writestr(name, "{}")
        with archive.open("predictions.csv", "w", force_zip64=True) as member:
            block = b"0" * (16 * MiB)
            for _ in range(128):
                member.write(block)
    assert path.stat().st_size < 5 * MiB
    # the peak of this process alone (VmHWM: ru_maxrss would carry over the forking parent's)
    script = ("import re, sys, time; from dlr.cli import main; t = time.perf_counter(); "
              "code = main(['verify', sys.argv[1]]); seconds = time.perf_counter() - t; "
              "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
              "print(code, seconds, peak)")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    code, seconds, max_rss_kib = done.stdout.split()
    assert int(code) == 2, done.stderr
    assert "predictions.csv" in done.stderr and "zip bomb" in done.stderr
    assert float(seconds) < 5 and int(max_rss_kib) < 300 * 1024
    assert [p.name for p in tmp_path.iterdir()] == ["bomb.zip"]  # the temporary folder is gone
