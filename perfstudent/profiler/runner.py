"""Runners: who executes a round of LUT measurements.

The sweep computes a round of jobs (:class:`~perfstudent.profiler.chains.Job`; the
coarse grid, then all bisection midpoints at once) and hands it to a
:class:`Runner`, which calls ``on_result(job, measurement)`` for each job as soon
as it is measured (the sweep commits the row there). :class:`LocalRunner`
prepares up to ``protocol.group`` jobs at a time and times them together with
the interleaved protocol (:mod:`perfstudent.profiler.timing`); a remote runner
(``perfstudent.profiler.remote``, TVM RPC tracker) may shard a round across
boards and call ``on_result`` from whichever finishes, as long as calls do not
overlap (the LUT connection is not shared across threads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from perfstudent.errors import InputError
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.board import guard_on_board, require_reachable
from perfstudent.profiler.devices import get_device

if TYPE_CHECKING:
    from perfstudent.measurement import Measurement, TimingProtocol
    from perfstudent.profiler.backends import Backend
    from perfstudent.profiler.chains import Job
    from perfstudent.students.widthspec import WidthSpec

OnResult = Callable[["Job", "Measurement"], None]


class Runner(Protocol):
    """Measures rounds of jobs (and whole networks) for one fingerprint."""

    def fingerprint(self) -> Fingerprint:
        """The fingerprint the measurements belong to."""

    def width_alignment(self) -> int:
        """Channel counts the runtime treats alike modulo this (the sweep's residue classes)."""

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Measure every job, calling ``on_result`` once per job as it finishes."""

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        """End-to-end latency of each network, measured together."""

    def close(self) -> None:
        """Release the backend or remote sessions."""


class LocalRunner:
    """Times jobs in this process with ``backend`` and ``protocol``, ``protocol.group`` at a time."""

    def __init__(self, backend: Backend, protocol: TimingProtocol) -> None:
        self.backend = backend
        self.protocol = protocol

    def fingerprint(self) -> Fingerprint:
        return Fingerprint.for_backend(self.backend)

    def width_alignment(self) -> int:
        return self.backend.width_alignment()

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        size = self.protocol.group
        for start in range(0, len(jobs), size):
            group = list(jobs[start:start + size])
            items = [self.backend.prepare(*job.build()) for job in group]
            for job, m in zip(group, self.backend.measure(items, self.protocol), strict=True):
                on_result(job, m)

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        out: list[Measurement] = []
        for start in range(0, len(specs), self.protocol.group):
            group = specs[start:start + self.protocol.group]
            out += self.backend.measure([self.backend.prepare_model(s) for s in group], self.protocol)
        return out

    def close(self) -> None:
        self.backend.close()


def make_runner(device: str, backend: str, protocol: TimingProtocol, threads: int | None = None,
                tracker: str | None = None, **options: Any) -> Runner:
    """A runner for ``device``/``backend``: local, or through a TVM RPC tracker ``HOST:PORT``.

    The remote module is imported only when a tracker is given; it must provide
    ``make_tracker_runner(tracker, device, backend, protocol, threads, **options) -> Runner``.
    """

    dev = get_device(device)
    if tracker is not None:
        try:
            from perfstudent.profiler import remote  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            raise InputError(f"remote profiling through a tracker is not available here ({exc})") \
                from None
        runner: Runner = remote.make_tracker_runner(tracker, dev, backend, protocol, threads,
                                                    **options)
        return runner

    require_reachable(dev, tracker)  # e.g. --device pi4 off the board: says both ways
    local: Runner = guard_on_board(LocalRunner(get_backend(backend, dev, threads, **options),
                                               protocol), dev)
    return local
