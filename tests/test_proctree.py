"""The guardian of perfstudent/profiler/proctree.py, alone (no TVM): it ends the trees it was given
once its parent is gone, never before, and never a process that merely reuses a pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfstudent.profiler import proctree
from perfstudent.profiler.proctree import POLL_S, guard, start_guardian, started

ROOT = Path(__file__).resolve().parents[1]
GONE_WITHIN_S = 5.0


def test_a_guardian_ends_its_trees_when_its_parent_is_gone_and_not_before() -> None:
    """The guardian alone, with a sleeping process as the tree: nothing happens while the parent
    (this test process) runs; a guardian whose parent is gone ends the tree and exits."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    guardian = start_guardian([sleeper.pid])
    try:
        time.sleep(3 * POLL_S)
        assert sleeper.poll() is None and guardian.poll() is None  # the parent is alive
        # a guardian started for a parent that is not its parent acts at once
        orphaned = subprocess.Popen([sys.executable, "-m", "perfstudent.profiler.proctree", "1",
                                     str(sleeper.pid)], env=os.environ | {"PYTHONPATH": str(ROOT)})
        assert orphaned.wait(timeout=30) == 0
        assert sleeper.wait(timeout=GONE_WITHIN_S) == -signal.SIGTERM
    finally:
        for p in (sleeper, guardian):
            p.kill()
            p.wait()


def test_a_root_whose_pid_now_names_another_process_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert started(sleeper.pid) is not None and started(2 ** 22 + 12345) is None
        births = iter(["1000", "2000"])  # at the guardian's start, then when it acts: reused
        monkeypatch.setattr(proctree, "started", lambda pid: next(births))
        guard(parent=-1, roots=[sleeper.pid], poll_s=0.01)  # the parent is "gone" at once
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
