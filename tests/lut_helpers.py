"""Shared helpers for the LUT tests: fingerprints, blocks and measurements without timing anything."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from perfstudent.blockshape import BlockShape, Chain
from perfstudent.convshape import ConvShape
from perfstudent.lut import Fingerprint
from perfstudent.measurement import Measurement
from tests.cli_contract import ctrl_c_as_at_a_terminal

ROOT = Path(__file__).resolve().parents[1]


def fingerprint(threads: int = 1, **settings: Any) -> Fingerprint:
    return Fingerprint(device="local", device_model="Test CPU", device_properties={"arch": "x86_64"},
                       backend="onnxruntime", backend_version="1.0",
                       settings={"threads": threads, "opt_level": "all"} | settings,
                       threads=threads, os="Linux", kernel="6.0", governor=None)


def measurement(ms: float, spread: float = 0.0) -> Measurement:
    """Three samples ``ms, ms + spread, ms + 2·spread`` read with the minimum: the figure is ``ms``."""
    return Measurement.from_samples([ms, ms + spread, ms + 2 * spread], inner=10, estimator="min")


def block(width: int, full: int = 16, cin: int = 16, size: int = 8) -> BlockShape:
    """A basic block ``cin -> width -> cin`` (3x3 convs) at ``size`` x ``size``."""
    layers = (ConvShape("conv2d", cin, full, size, size, kernel=3, padding=1, epilogue="bn+relu"),
              ConvShape("conv2d", full, cin, size, size, kernel=3, padding=1, epilogue="bn+add+relu"))
    return BlockShape("BasicBlock", layers, full, width)


def lone_rows(values: dict[int, float], **kwargs: Any) -> dict[Chain, Measurement]:
    """Chains of :func:`block` alone (a slot without neighbours) with the given cost per width."""
    return {Chain(block(w, **kwargs)): measurement(ms) for w, ms in values.items()}


def fill_lut(table: Any, fp: Fingerprint, family: str, input_size: int, fixed_ms: float = 0.1,
             in_channels: int | None = None, step: int = 1) -> None:
    """Rows for every slot block of ``family`` (every ``step``-th width and the full one) and an
    overhead term, with the synthetic staircase of :mod:`perfstudent.plan.synthetic`:
    nothing is timed."""
    from perfstudent.lut import spec_context
    from perfstudent.plan.synthetic import StaircaseModel
    from perfstudent.students import get_family

    model = StaircaseModel()
    fam = get_family(family)
    spec = fam.full_spec(input_size, in_channels)
    for slot, chain in fam.slot_chains(spec).items():
        table.add(fp, Chain(chain.block), measurement(model.slot_ms(spec, slot, chain.block.full)))
        for w in sorted({1, *range(step, chain.block.full + 1, step), chain.block.full}):
            table.add(fp, chain.at(w), measurement(model.slot_ms(spec, slot, w)))
    table.set_overhead(fp, spec_context(spec), fixed_ms, {"points": []})


def row_count(path: Path) -> int:
    """Rows committed in the LUT at ``path`` so far (0 while it does not exist yet)."""
    try:
        conn = sqlite3.connect(path, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def profile_until(lut: Path, rows: int, stderr: int | None = subprocess.DEVNULL
                  ) -> tuple[subprocess.Popen[bytes], list[str], dict[str, str]]:
    """A real ``perfstudent profile`` of resnet20 at 8x8 (smoke protocol, coarse grid only) into
    ``lut``, running, once it has committed ``rows`` rows: ``(process, command, env)``."""
    cmd = [sys.executable, "-m", "perfstudent", "profile", "--family", "resnet20", "--input-size", "8",
           "--protocol", "smoke", "--tolerance", "1", "--lut", str(lut)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                            preexec_fn=ctrl_c_as_at_a_terminal)
    deadline = time.monotonic() + 120
    while row_count(lut) < rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    return proc, cmd, env
