"""The timing protocol: interleaved rounds, a canary, and re-measurement of slow phases.

On a shared machine the speed of one core changes for hundreds of
milliseconds at a time (another tenant, cache contention). Timing an item in
one burst of consecutive blocks lands it in whatever phase it happened to hit;
measured here, the median of such bursts moved 30-66% between passes a second
apart. So :func:`measure_interleaved`:

1. warms every item up (``warmup_s`` of calls, at least two) and sizes its inner
   loop so one sample lasts about ``block_s``;
2. takes samples in *rounds*: each round visits every item once (starting at a
   different item each round), so each item's samples are spread over the
   whole measurement instead of one burst;
3. after every ``canary_every`` items it times one sample of a fixed *canary*
   kernel (the :class:`DriftGuard`). A canary sample above ``slow_factor`` x the
   canary's baseline (the 20th percentile of its last ``HISTORY`` samples, kept
   across calls for as long as the backend lives, and re-computed at the end, so
   a measurement that starts, or lies wholly, in a slow phase is caught too)
   marks the items timed just before it as taken in a slow phase: their samples
   are set aside (``Measurement.slow_ms``), the protocol waits (polling the
   canary, at most ``max_wait_s`` per measurement) until the phase is over, and
   those items get
   extra rounds until each has ``rounds`` good samples (at most ``extra_rounds``
   more; an item still short is flagged noisy). Measured here over four minutes:
   the machine spends most of its time in one fast state and drops into slow
   phases (+15-40%) for 5-10 s at a time, often enough that a sweep of a minute
   meets several (docs/profiler.md);
4. returns a :class:`~perfstudent.measurement.Measurement` per item
   whose figure is the protocol's estimator over the good samples.

The clock is a parameter (``block_timer``): wall time by default, thread CPU
time for one-thread CPU runs, CUDA events on a GPU, a fake clock in the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfstudent.errors import InputError
from perfstudent.measurement import Measurement, TimingProtocol

#: Times one block: ``block_timer(fn, inner) -> seconds`` for ``inner`` back-to-back calls.
BlockTimer = Callable[[Callable[[], object], int], float]
Item = Callable[[], object]

_timed_seconds = 0.0


def timed_seconds() -> float:
    """Total wall seconds spent inside :func:`measure_interleaved` in this process."""
    return _timed_seconds


def wall_block_timer(fn: Item, inner: int) -> float:
    """Wall-clock seconds of ``inner`` back-to-back calls (``time.perf_counter``)."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - start


def thread_cpu_block_timer(fn: Item, inner: int) -> float:
    """CPU seconds this thread spent in ``inner`` calls (``time.thread_time``).

    Equals the latency on an idle core only for single-threaded runtimes that
    compute in the calling thread, so backends accept it only with one thread.
    """
    start = time.thread_time()
    for _ in range(inner):
        fn()
    return time.thread_time() - start


#: Backend option ``clock``: ``wall`` (default, the real latency) or ``thread_cpu``.
CLOCKS: dict[str, BlockTimer] = {"wall": wall_block_timer, "thread_cpu": thread_cpu_block_timer}


def check_clock(clock: str, threads: int, device_kind: str) -> str:
    """Validate a ``clock`` option (``thread_cpu`` needs one thread on a CPU device)."""
    if clock not in CLOCKS:
        raise InputError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    if clock == "thread_cpu" and (threads != 1 or device_kind != "cpu"):
        raise InputError("clock=thread_cpu measures the calling thread only: it needs --threads 1 "
                         "on a CPU device")
    return clock


def inner_count(fn: Item, protocol: TimingProtocol, block_timer: BlockTimer) -> int:
    """Warm ``fn`` up for ``warmup_s`` (at least two calls); calls per ``block_s`` sample."""
    calls, spent, fastest = 0, 0.0, math.inf
    while calls < 2 or spent < protocol.warmup_s:
        elapsed = block_timer(fn, 1)
        spent += elapsed
        calls += 1
        if calls > 1:  # the first call (allocation, lazy init) is not representative
            fastest = min(fastest, elapsed)
    return max(1, math.ceil(protocol.block_s / max(fastest, 1e-9)))


@dataclass
class _Item:
    fn: Item
    inner: int
    samples: list[float] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)  # index of the canary sample after each

    def good(self, ok: Callable[[int], bool]) -> list[float]:
        return [s for s, c in zip(self.samples, self.checks, strict=True) if ok(c)]


#: Canary samples a guard remembers (its baseline is their 20th percentile).
HISTORY = 600


class DriftGuard:
    """The drift guard: one fixed kernel timed between items, its history kept across calls."""

    def __init__(self, fn: Item | None, protocol: TimingProtocol, block_timer: BlockTimer,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.fn, self.block_timer, self.sleep = fn, block_timer, sleep
        self.waited_s = 0.0
        self.samples: list[float] = []
        self.inner = inner_count(fn, protocol, block_timer) if fn is not None else 1

    def sample(self) -> int:
        """Time one canary sample; its index (-1 without a canary)."""
        if self.fn is None:
            return -1
        self.samples.append(self.block_timer(self.fn, self.inner) / self.inner)
        return len(self.samples) - 1

    def judge(self, slow_factor: float) -> Callable[[int], bool]:
        """``ok(index)``: was that canary sample within ``slow_factor`` of the baseline?"""
        if len(self.samples) < 3:
            return lambda index: True
        limit = float(np.quantile(self.samples[-HISTORY:], 0.2)) * slow_factor
        return lambda index: index < 0 or self.samples[index] <= limit

    def wait(self, protocol: TimingProtocol, budget_s: float, poll_s: float = 0.05) -> float:
        """Poll the canary until it is back within ``slow_factor``, at most ``budget_s``.

        The polls do not enter the history (a long wait would teach the baseline the
        slow phase). Returns the seconds waited.
        """
        if self.fn is None or len(self.samples) < 3:
            return 0.0
        limit = float(np.quantile(self.samples[-HISTORY:], 0.2)) * protocol.slow_factor
        waited = 0.0
        while waited < budget_s:
            self.sleep(poll_s)
            waited += poll_s
            if self.block_timer(self.fn, self.inner) / self.inner <= limit:
                break
        self.waited_s += waited
        return waited


def _round(items: list[_Item], todo: list[int], start: int, canary: DriftGuard,
           protocol: TimingProtocol, block_timer: BlockTimer, wait_left: list[float]) -> None:
    every = protocol.canary_every
    order = todo[start % len(todo):] + todo[:start % len(todo)]
    for at in range(0, len(order), max(every, 1) if every else len(order)):
        batch = order[at:at + every] if every else order
        taken = [(i, block_timer(items[i].fn, items[i].inner) * 1e3 / items[i].inner) for i in batch]
        check = canary.sample()
        for i, ms in taken:
            items[i].samples.append(ms)
            items[i].checks.append(check)
        if wait_left[0] > 0 and not canary.judge(protocol.slow_factor)(check):
            wait_left[0] -= canary.wait(protocol, wait_left[0])


def measure_interleaved(fns: Sequence[Item], protocol: TimingProtocol,
                        block_timer: BlockTimer = wall_block_timer,
                        guard: DriftGuard | None = None) -> list[Measurement]:
    """Time every item of ``fns`` together with ``protocol`` (the module docstring).

    ``guard``: the drift guard (its history carries over between calls); without
    one, or with ``protocol.canary_every = 0``, no sample is ever set aside.
    """
    global _timed_seconds
    begin = time.perf_counter()
    try:
        items = [_Item(fn, inner_count(fn, protocol, block_timer)) for fn in fns]
        if guard is None or not protocol.canary_every:
            guard = DriftGuard(None, protocol, block_timer)
        for _ in range(3 if guard.fn is not None and len(guard.samples) < 3 else 0):
            guard.sample()  # a first baseline
        wait_left = [protocol.max_wait_s]  # one budget of waiting per measurement
        for turn in range(protocol.rounds + protocol.extra_rounds):
            ok = guard.judge(protocol.slow_factor)
            todo = [i for i, it in enumerate(items) if len(it.good(ok)) < protocol.rounds]
            if not todo:
                break
            _round(items, todo, turn, guard, protocol, block_timer, wait_left)
        ok = guard.judge(protocol.slow_factor)
        return [_summarise(it, ok, protocol) for it in items]
    finally:
        _timed_seconds += time.perf_counter() - begin


def _summarise(item: _Item, ok: Callable[[int], bool], protocol: TimingProtocol) -> Measurement:
    good = item.good(ok)
    slow = [s for s, c in zip(item.samples, item.checks, strict=True) if not ok(c)]
    short = len(good) < protocol.rounds
    kept = good if len(good) >= 3 else good + sorted(slow)[:3 - len(good)]
    m = Measurement.from_samples(kept, item.inner, protocol.estimator,
                                 slow if len(good) >= 3 else sorted(slow)[3 - len(good):])
    noisy = short or m.spread > protocol.noise_threshold
    return Measurement(m.samples_ms, m.estimator, m.inner, m.slow_ms, noisy)


def measure_one(fn: Item, protocol: TimingProtocol, block_timer: BlockTimer = wall_block_timer,
                guard: DriftGuard | None = None) -> Measurement:
    """:func:`measure_interleaved` of one item."""
    return measure_interleaved([fn], protocol, block_timer, guard)[0]
