"""Time a Relax VM function with TVM's ``time_evaluator`` (remote boards over RPC).

Used by the remote runner (:mod:`perfstudent.profiler.remote`): a board behind
an RPC tracker is timed by ``time_evaluator``, which loops on the board itself,
not by the interleaved protocol of :mod:`perfstudent.profiler.timing` (that
protocol calls each item from this process, one RPC round trip per call, and
has no canary on the board). In-process TVM runs go through that protocol
(:class:`perfstudent.profiler.backends.tvm_backend.TvmBackend`). The inputs are
set with ``vm.set_input`` and ``invoke_stateful`` is timed, so no tensors cross
the wire per call.
"""

from __future__ import annotations

import math
from typing import Any

from perfstudent.measurement import Measurement, TimingProtocol


def configure_threads(threads: int, session: Any = None) -> None:
    """Set TVM's runtime thread pool to ``threads`` workers (locally or on an RPC session)."""
    import tvm

    func = (session.get_function("runtime.config_threadpool") if session is not None
            else tvm.get_global_func("runtime.config_threadpool"))
    func(1, threads)  # affinity mode 1 = "big" cores, then the worker count


def _evaluate(vm: Any, dev: Any, number: int, repeat: int, min_repeat_ms: int) -> list[float]:
    """Per-call seconds of each repeat (``time_evaluator`` averages ``number`` calls)."""
    timer = vm.time_evaluator("invoke_stateful", dev, number=number, repeat=repeat,
                              min_repeat_ms=min_repeat_ms)
    return [float(x) for x in timer("main").results]


def time_vm(vm: Any, dev: Any, protocol: TimingProtocol) -> Measurement:
    """Measure ``vm["main"]`` (inputs already set with ``vm.set_input``) with ``time_evaluator``.

    Not the interleaved protocol (see the module docstring): one call estimates
    the cost ``c``; warm-up runs ``ceil(warmup_s / c)`` calls; then
    ``protocol.rounds`` consecutive samples of ``inner = ceil(block_s / c)``
    calls each (``min_repeat_ms = block_s`` lets TVM raise the count if ``c``
    was over-estimated). The samples' figure is ``protocol.estimator``; the
    measurement is flagged noisy when their relative IQR exceeds
    ``protocol.noise_threshold`` (it is not re-measured). ``canary_every``,
    ``slow_factor``, ``extra_rounds`` and ``group`` do not apply here.
    """
    estimate = max(_evaluate(vm, dev, 1, 1, 0)[0], 1e-7)
    if protocol.warmup_s > 0:
        _evaluate(vm, dev, max(1, math.ceil(protocol.warmup_s / estimate)), 1, 0)
    inner = max(1, math.ceil(protocol.block_s / estimate))
    min_ms = max(1, int(protocol.block_s * 1000))
    samples_ms = [s * 1e3 for s in _evaluate(vm, dev, inner, protocol.rounds, min_ms)]
    measurement = Measurement.from_samples(samples_ms, inner, protocol.estimator)
    if measurement.spread > protocol.noise_threshold:
        return Measurement.from_samples(samples_ms, inner, protocol.estimator, noisy=True)
    return measurement
