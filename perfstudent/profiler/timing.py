"""The timing protocol (DESIGN §4) applied to any callable.

``time_callable`` warms up for ``protocol.warmup_s`` seconds (time-based),
sizes the inner loop so one block of back-to-back calls lasts about
``protocol.block_s`` (so the timer's own cost, ~100 ns, is < 0.1% of a block),
times ``protocol.repeats`` blocks, keeps every repeat (per-call ms of each
block) and summarises them with :meth:`Measurement.from_repeats` (numpy).
A result whose IQR/median exceeds ``protocol.noise_threshold`` is re-measured
up to ``protocol.remeasure`` times; the least noisy attempt is kept and, if it
is still above the threshold, flagged ``noisy``.

The same code times PyTorch and ONNX Runtime so their rows mean the same
thing; ``torch.utils.benchmark.Timer.blocked_autorange`` sizes blocks the same
way but picks its own repeat count and has no time-based warm-up, so it is
used only as a cross-check in the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from perfstudent.errors import InputError
from perfstudent.profiler.measurement import Measurement, TimingProtocol

#: Times one block: ``block_timer(fn, inner) -> seconds`` for ``inner`` back-to-back calls.
BlockTimer = Callable[[Callable[[], object], int], float]

_timed_seconds = 0.0


def timed_seconds() -> float:
    """Total seconds spent inside timed calls (warm-up + blocks) in this process.

    The sweep divides its wall time by the growth of this counter (sweep efficiency).
    """
    return _timed_seconds


def cpu_block_timer(fn: Callable[[], object], inner: int) -> float:
    """Wall-clock seconds of ``inner`` back-to-back calls (``time.perf_counter``)."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - start


def thread_cpu_block_timer(fn: Callable[[], object], inner: int) -> float:
    """CPU seconds this thread spent in ``inner`` calls (``time.thread_time``).

    On a machine shared with other jobs, wall-clock blocks also count the time the
    scheduler gave to other processes; the calling thread's CPU time does not. It
    equals the latency on an idle core only for single-threaded runtimes that compute
    in the calling thread (ORT ``intra_op_num_threads=1``, ``torch.set_num_threads(1)``),
    so backends accept it only with one thread. Cache pollution by other tenants
    still shows.
    """
    start = time.thread_time()
    for _ in range(inner):
        fn()
    return time.thread_time() - start


#: Backend option ``clock``: ``wall`` (default, the real latency) or ``thread_cpu``.
CLOCKS: dict[str, BlockTimer] = {"wall": cpu_block_timer, "thread_cpu": thread_cpu_block_timer}


def check_clock(clock: str, threads: int, device_kind: str) -> str:
    """Validate a ``clock`` option (``thread_cpu`` needs one thread on a CPU device)."""
    if clock not in CLOCKS:
        raise InputError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    if clock == "thread_cpu" and (threads != 1 or device_kind != "cpu"):
        raise InputError("clock=thread_cpu measures the calling thread only: it needs --threads 1 "
                         "on a CPU device")
    return clock


#: A block may last at most this many times ``block_s`` of wall time (guards the inner-loop
#: sizing against a clock that under-reads, e.g. CPU time of work done in other threads).
MAX_BLOCK_WALL_FACTOR = 20.0


def _warm_up(fn: Callable[[], object], seconds: float,
             block_timer: BlockTimer) -> tuple[float, float]:
    """Call ``fn`` until ``seconds`` have passed (at least twice).

    Returns the fastest per-call time on ``block_timer``'s clock and on the wall clock
    (the first call, often slower, is excluded when there are more).
    """
    calls, spent = 0, 0.0
    per_call, per_wall = float("inf"), float("inf")
    while calls < 2 or spent < seconds:
        start = time.perf_counter()
        elapsed = block_timer(fn, 1)
        wall = time.perf_counter() - start
        spent += elapsed
        calls += 1
        if calls > 1:
            per_call, per_wall = min(per_call, elapsed), min(per_wall, wall)
    return per_call, per_wall


def _blocks(fn: Callable[[], object], inner: int, repeats: int, block_timer: BlockTimer) -> list[float]:
    return [block_timer(fn, inner) * 1e3 / inner for _ in range(repeats)]


def time_callable(fn: Callable[[], object], protocol: TimingProtocol,
                  block_timer: BlockTimer = cpu_block_timer) -> Measurement:
    """Time ``fn`` with ``protocol``; ms per call (see the module docstring)."""
    global _timed_seconds
    start = time.perf_counter()
    try:
        per_call, per_wall = _warm_up(fn, protocol.warmup_s, block_timer)
        inner = max(1, math.ceil(protocol.block_s / max(per_call, 1e-9)))
        inner = min(inner, max(1, int(MAX_BLOCK_WALL_FACTOR * protocol.block_s / max(per_wall, 1e-9))))
        best: Measurement | None = None
        for _attempt in range(protocol.remeasure + 1):
            result = Measurement.from_repeats(_blocks(fn, inner, protocol.repeats, block_timer),
                                              inner, protocol.warmup_s)
            if best is None or result.rel_iqr < best.rel_iqr:
                best = result
            if best.rel_iqr <= protocol.noise_threshold:
                return best
        assert best is not None
        return Measurement.from_dict(best.to_dict() | {"noisy": True})
    finally:
        _timed_seconds += time.perf_counter() - start
