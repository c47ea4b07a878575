"""Acceptance: `kill -9` during `perfstudent profile`, then the same command completes.

A real subprocess sweep (resnet20 at 8x8, smoke protocol, tolerance 1 so only the
coarse grid is measured and the expected shape set is known) is killed with SIGKILL
once some rows are committed; re-running the same command finishes, keeps every
row committed before the kill untouched (nothing measured twice) and leaves
exactly one row per shape.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from perfstudent.convshape import ConvShape
from perfstudent.profiler.sweep import coarse_widths
from perfstudent.students import full_spec, get_family

ROOT = Path(__file__).resolve().parents[1]


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
    except sqlite3.Error:
        return 0


def _rows(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT shape, measured_at || measurement FROM rows"))


def expected_shapes() -> set[ConvShape]:
    """Fixed layers plus every slot's layers at its coarse widths (computed independently)."""
    spec, fam = full_spec("resnet20", 8), get_family("resnet20")
    shapes = {layer.shape for layer in fam.layers(spec) if layer.slot is None}
    for slot, full in spec.widths.items():
        for width in coarse_widths(full, 4):
            shapes |= {layer.shape for layer in fam.slot_layers(spec, slot, width)}
    return shapes


def test_kill_9_then_resume(tmp_path: Path) -> None:
    lut = tmp_path / "lut.sqlite"
    cmd = [sys.executable, "-m", "perfstudent", "profile", "--arch", "resnet20", "--input-size", "8",
           "--protocol", "smoke", "--tolerance", "1", "--lut", str(lut)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count(lut) < 15 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows(lut)
    total = len(expected_shapes())
    assert 15 <= len(before) < total
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _rows(lut)
    assert len(after) == total  # exactly one row per shape (PRIMARY KEY + every shape present)
    assert set(after) == {s.key() for s in expected_shapes()}
    assert {k: after[k] for k in before} == before  # rows from before the kill were not re-measured
    assert f"{total - len(before)} shapes" in done.stdout or f"({len(before)} already" in done.stdout
