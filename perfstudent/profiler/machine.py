"""What this machine is: CPU, cores, governor, OS, Python and runtime versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

RUNTIMES = ("torch", "onnx", "onnxruntime", "apache-tvm")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), or what ``platform`` knows."""
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine()


def physical_cores() -> int | None:
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
        return int(cores) if cores else None
    except ImportError:
        return None


def runtime_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in RUNTIMES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict[str, Any]:
    """This machine's fingerprint as a JSON-ready dict."""
    return {
        "cpu_model": cpu_model(),
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "os": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "board": (_read("/proc/device-tree/model") or "").rstrip("\x00") or None,
        "runtimes": runtime_versions(),
    }
