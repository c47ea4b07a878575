"""Shared bits of the profiler benchmarks: where results go, what machine ran them."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def conditions() -> dict[str, Any]:
    """Date, machine, load and the exact command: recorded beside every figure."""
    from perfstudent.profiler.machine import machine_info

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(), "loadavg_start": os.getloadavg(),
            "python": platform.python_version()}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    data = data | {"loadavg_end": os.getloadavg()}
    out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return out
