"""Runners: who executes a round of layer measurements.

The sweep computes a round of shapes (the coarse grid, then all bisection
midpoints at once) and hands it to a :class:`Runner`, which calls
``on_result(shape, measurement)`` for each shape as soon as it is measured (the
sweep commits it to the LUT there). :class:`LocalRunner` times shapes in this
process, one after the other; a remote runner (``perfstudent.profiler.remote``,
TVM RPC tracker) may shard a round across boards and call ``on_result`` from
whichever finishes, as long as calls do not overlap (the LUT connection is not
shared across threads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from perfstudent.errors import InputError
from perfstudent.lut.fingerprint import Fingerprint

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.backends import Backend
    from perfstudent.profiler.measurement import Measurement, TimingProtocol
    from perfstudent.students.widthspec import WidthSpec

OnResult = Callable[["ConvShape", "Measurement"], None]


class Runner(Protocol):
    """Measures rounds of shapes (and whole networks) for one fingerprint."""

    def fingerprint(self) -> Fingerprint:
        """The fingerprint the measurements belong to."""

    def run(self, shapes: Sequence[ConvShape], on_result: OnResult) -> None:
        """Measure every shape, calling ``on_result`` once per shape as it finishes."""

    def time_model(self, spec: WidthSpec) -> Measurement:
        """End-to-end latency of the network ``spec``."""

    def close(self) -> None:
        """Release the backend or remote sessions."""


class LocalRunner:
    """Times shapes in this process with ``backend`` and ``protocol``."""

    def __init__(self, backend: Backend, protocol: TimingProtocol) -> None:
        self.backend = backend
        self.protocol = protocol

    def fingerprint(self) -> Fingerprint:
        return Fingerprint.for_backend(self.backend)

    def run(self, shapes: Sequence[ConvShape], on_result: OnResult) -> None:
        for shape in shapes:
            on_result(shape, self.backend.time_shape(shape, self.protocol))

    def time_model(self, spec: WidthSpec) -> Measurement:
        return self.backend.time_model(spec, self.protocol)

    def close(self) -> None:
        self.backend.close()


def make_runner(device: str, backend: str, protocol: TimingProtocol, threads: int | None = None,
                tracker: str | None = None, **options: Any) -> Runner:
    """A runner for ``device``/``backend``: local, or through a TVM RPC tracker ``HOST:PORT``.

    The remote module is imported only when a tracker is given; it must provide
    ``make_tracker_runner(tracker, device, backend, protocol, threads, **options) -> Runner``.
    """
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device

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
    from perfstudent.profiler.board import guard_on_board, require_reachable

    require_reachable(dev, tracker)  # e.g. --device pi4 off the board: says both ways
    local: Runner = guard_on_board(LocalRunner(get_backend(backend, dev, threads, **options),
                                               protocol), dev)
    return local
