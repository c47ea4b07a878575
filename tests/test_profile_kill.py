"""Acceptance: `kill -9` during `perfstudent profile`, then the same command completes.

A real subprocess sweep (resnet20 at 8x8, smoke protocol, tolerance 1 so (nearly) only the
coarse grid is measured and the expected set of chains is known) is killed with
SIGKILL once some rows are committed; re-running the same command finishes, keeps
every row committed before the kill untouched (nothing measured twice) and leaves
at least one row per chain of the coarse grid, once each.
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
    # Every chain of the coarse grid is there, once (the PRIMARY KEY). Tolerance 1 refines only
    # across a jump of more than 100%, which a row timed in a noisy moment can still show at 8 px,
    # so a few refinement rows may come on top (seen: 100 rows for 92 chains).
    assert set(after) >= {c.key() for c in expected_chains()}
    assert len(after) <= total + 16, "refinement should stay rare at tolerance 1"
    assert {k: after[k] for k in before} == before  # rows from before the kill were not re-measured
    assert f"{len(after) - len(before)} rows" in done.stdout or f"({len(before)} already" in done.stdout
