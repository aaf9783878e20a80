"""The environment lock of a package: Python, the OS, the CPU, the GPU and every installed
distribution's version (``environment.json``), and the ``requirements-lock.txt`` that pins them.
No host name, user name or path."""
from __future__ import annotations

import os
import platform
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        with_sysctl = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                     check=False)
        if with_sysctl.returncode == 0 and with_sysctl.stdout.strip():
            return with_sysctl.stdout.strip()
    return platform.processor() or platform.machine() or "unknown"


def _gpu() -> dict:
    """What torch reports about CUDA (nothing when torch is not installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return {"torch": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
        info = {"torch": torch.__version__, "cuda_available": bool(torch.cuda.is_available()),
                "cuda_version": getattr(torch.version, "cuda", None)}
        if info["cuda_available"]:
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cudnn"] = torch.backends.cudnn.version()
        return info
    except Exception as exc:  # noqa: BLE001 - a broken CUDA set-up is recorded, not fatal
        return {"torch": "unavailable", "error": f"{type(exc).__name__}: {exc}"}


def distributions() -> list:
    """(name, version) of every installed distribution, sorted by name, without duplicates."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), (name, dist.version))
    return [found[k] for k in sorted(found)]


def environment(recorded_versions: dict | None = None) -> dict:
    """The environment lock: Python, the OS, the CPU, the GPU and every distribution's version;
    with ``recorded_versions`` (a provenance record's), those that differ from the installed ones.
    No host name, user name or path."""
    from dlr.core.output import git_modified, git_sha, package_versions

    installed = dict(distributions())
    env = {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "compiler": platform.python_compiler()},
        "os": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
               "platform": platform.platform(), "libc": " ".join(platform.libc_ver()).strip() or None},
        "cpu": {"model": _cpu_model(), "count": os.cpu_count()},
        "gpu": _gpu(),
        "dlr": {"version": installed.get("dlr"), "git_sha": git_sha(), "git_modified": git_modified()},
        "distributions": installed,
    }
    if recorded_versions:
        now = package_versions(tuple(k for k in recorded_versions if k != "python"))
        env["recorded_versions"] = recorded_versions
        env["version_mismatches"] = {k: {"recorded": v, "installed": now.get(k)}
                                     for k, v in recorded_versions.items() if now.get(k) != v}
    return env


def requirements_lock(env: dict) -> str:
    """``name==version`` for every distribution (dlr itself as a comment naming its commit)."""
    lines = ["# The exact versions installed when this package was made (dlr package).",
             f"# Python {env['python']['version']} on {env['os']['platform']}.",
             "# Install: python -m pip install -r requirements-lock.txt, then dlr itself (REPRODUCE.md)."]
    pins = []
    for name, version in env["distributions"].items():
        if name.lower() == "dlr":
            lines.append(f"# dlr=={version} (this project: install it from git commit {env['dlr']['git_sha']})")
            continue
        pins.append(f"{name}=={version}")
    if any("+cpu" in p for p in pins):
        lines.append("--extra-index-url https://download.pytorch.org/whl/cpu")
    if any(re.search(r"\+cu\d+", p) for p in pins):
        lines.append("--extra-index-url https://download.pytorch.org/whl/" +
                     re.search(r"\+(cu\d+)", next(p for p in pins if re.search(r"\+cu\d+", p))).group(1))
    return "\n".join(lines + pins) + "\n"
