"""This machine's CPUs and free memory, and the checks that keep a command within them.

A thread count above the CPU count only oversubscribes the cores (and huge
ones crash OpenBLAS and the runtimes' thread pools); a network whose tensors do
not fit in memory fails deep inside an allocator. Both are refused before any
work starts, with one line that names the limit (docs/design.md, layers: core).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from perfstudent.errors import InputError

#: cgroup files that cap a container's memory (v2, then v1), with their usage.
_CGROUP_LIMITS = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
     Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)


def cpu_count() -> int | None:
    """This machine's logical CPUs (None if unknown)."""
    return os.cpu_count()


def check_threads(threads: int, option: str = "--threads", cpus: int | None = None,
                  where: str = "this machine") -> None:
    """InputError unless ``1 <= threads <= cpus`` (``cpus``: this machine's when None).

    With no known CPU count, only ``threads >= 1`` is checked.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise InputError(f"{option} must be an integer >= 1, got {threads!r}")
    cpus = cpu_count() if cpus is None else cpus
    if cpus is not None and threads > cpus:
        raise InputError(f"{option} {threads} is more than the {cpus} CPUs of {where}; "
                         f"use at most {cpus}")


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup limit (None: unknown)."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    if not found:
        try:
            import psutil
        except ImportError:
            pass
        else:
            found.append(int(psutil.virtual_memory().available))
    for limit_path, usage_path in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):
            limit = limit_path.read_text().strip()
            if limit != "max" and int(limit) < 2**60:
                found.append(max(0, int(limit) - int(usage_path.read_text().strip())))
    return min(found) if found else None


def check_memory(need: int, what: str, available: int | None = None) -> None:
    """InputError if ``need`` bytes exceed the available memory (``what`` says what needs them).

    ``available`` defaults to :func:`available_memory`; an unknown amount passes.
    """
    free = available_memory() if available is None else available
    if free is not None and need > free:
        raise InputError(f"{what} needs at least {format_bytes(need)} of memory, but only "
                         f"{format_bytes(free)} is available here")


def format_bytes(n: int) -> str:
    """``1.5 GB``, ``320 MB``, ``12 kB`` (powers of 1000, as free(1) -h is not)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
