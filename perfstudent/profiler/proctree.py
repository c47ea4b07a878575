"""The processes a command started, ended whole, even when the command is killed outright.

TVM runs an RPC tracker or server in a worker process, and a server forks one
more per session; they outlive their parent when only the parent is signalled.
:func:`end_tree` ends such a tree (SIGTERM, then SIGKILL after a grace period).
A parent that is killed with SIGKILL runs no code at all, so it leaves a
*guardian* (:func:`start_guardian`): a small process that polls its parent and,
once the parent is gone (it has been re-parented), ends the trees it was given
and exits. A parent that stops normally ends the guardian with the rest.

Run as ``python -m perfstudent.profiler.proctree PARENT ROOT...`` (what
:func:`start_guardian` does); only the standard library (and psutil, if
installed) is imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: How long the processes have to end after SIGTERM before SIGKILL.
GRACE_S = 2.0
#: How often a guardian checks that its parent still runs.
POLL_S = 0.5


def start_guardian(roots: list[int]) -> subprocess.Popen[bytes] | None:
    """A guardian of ``roots`` (and their descendants) for this process; see the module docstring.

    It inherits this process's signal dispositions (SIGINT ignored while a server
    starts), stays in this process group (a signal to the group reaches it too) and
    is one of this process's children (so :func:`end_tree` of them ends it). None, with
    a warning, if it cannot be started: the command works on, unguarded against SIGKILL.
    (A SIGKILL between the roots' start and the guardian's leaves them behind.)
    """
    args = [sys.executable, "-m", "perfstudent.profiler.proctree", str(os.getpid()),
            *map(str, roots)]
    try:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except OSError as exc:
        print(f"warning: no guardian process ({exc}); after kill -9, end pids "
              f"{', '.join(map(str, roots))} yourself", file=sys.stderr)
        return None


def started(pid: int) -> str | None:
    """When ``pid`` started (``/proc/PID/stat`` field 22, clock ticks since boot); None if
    unknown. A pid reused by a later process has another start time."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def guard(parent: int, roots: list[int], poll_s: float = POLL_S) -> None:
    """Wait while ``parent`` is this process's parent; then end ``roots``' trees, those of them
    that are still the processes they were when the guardian started (not a reused pid)."""
    born = {root: started(root) for root in roots}
    while os.getppid() == parent:
        time.sleep(poll_s)
    end_tree([root for root in roots if started(root) == born[root]])


def end_tree(roots: list[int], grace_s: float = GRACE_S) -> None:
    """SIGTERM ``roots`` and every process below them, SIGKILL what is left after ``grace_s``.

    The whole tree is listed first, so a grandchild whose parent ends first is not
    missed; those of them that are this process's children are reaped.
    """
    pids = [p for root in roots for p in (root, *children(root, recursive=True))]
    for pid in reversed(pids):  # the leaves first, so their parents may reap them
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        _reap(pids)
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        _reap(pids)
        time.sleep(0.05)
    _reap(pids)


def children(pid: int, recursive: bool = False) -> list[int]:
    """The processes whose parent is ``pid`` (``recursive``: and theirs, parents first)."""
    try:
        import psutil
    except ImportError:
        return _procchildren(pid, recursive)
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=recursive)]
    return []


def _procchildren(root: int, recursive: bool) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    if not recursive:
        return children.get(root, [])
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


def _reap(pids: list[int]) -> None:
    """Reap those of ``pids`` that are this process's children and have ended (TVM's worker)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


if __name__ == "__main__":
    guard(int(sys.argv[1]), [int(pid) for pid in sys.argv[2:]])
