"""Acceptance: `kill -9` during `perfstudent profile`, then the same command completes.

A real subprocess sweep (resnet20 at 8x8, smoke protocol, tolerance 1 so only the
coarse grid is measured and the expected set of chains is known) is killed with
SIGKILL once some rows are committed; re-running the same command finishes, keeps
every row committed before the kill untouched (nothing measured twice) and leaves
exactly one row per chain.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

from perfstudent.blockshape import Chain
from perfstudent.profiler.sweep import class_members, coarse_positions
from perfstudent.students import full_spec, get_family
from tests.lut_helpers import profile_until

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT chain, measured_at || measurement FROM rows"))


def expected_chains() -> set[Chain]:
    """Every context at its coarse widths per class (multiples of 4 and the others: ORT's
    default ``all``), and each distinct block alone at full width (the anchors)."""
    spec, fam = full_spec("resnet20", 8), get_family("resnet20")
    chains = set()
    for context in set(fam.slot_chains(spec).values()):
        chains.add(Chain(context.block))
        for members in class_members(context.block.full, 4):
            chains |= {context.at(members[p]) for p in coarse_positions(len(members), 4)}
    return chains


def test_kill_9_then_resume(tmp_path: Path) -> None:
    lut = tmp_path / "lut.sqlite"
    proc, cmd, env = profile_until(lut, 15)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows(lut)
    total = len(expected_chains())
    assert 15 <= len(before) < total
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _rows(lut)
    assert len(after) == total  # exactly one row per chain (PRIMARY KEY + every chain present)
    assert set(after) == {c.key() for c in expected_chains()}
    assert {k: after[k] for k in before} == before  # rows from before the kill were not re-measured
    assert f"{total - len(before)} rows" in done.stdout or f"({len(before)} already" in done.stdout
