"""Time a Relax VM function with ``time_evaluator`` under the TimingProtocol.

Works for a local VM and for one on an RPC session: the inputs are set with
``vm.set_input`` and ``invoke_stateful`` is timed, so no tensors cross the
wire per call.
"""

from __future__ import annotations

import math
from typing import Any

from perfstudent.profiler.measurement import Measurement, TimingProtocol


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
    """Measure ``vm["main"]`` (inputs already set with ``vm.set_input``).

    One call estimates the cost ``c``; warm-up runs ``ceil(warmup_s / c)``
    calls; each of ``repeats`` blocks runs ``inner = ceil(block_s / c)`` calls
    (``min_repeat_ms = block_s`` lets TVM raise it if ``c`` was over-estimated).
    Re-measured up to ``remeasure`` times while IQR/median > ``noise_threshold``.
    """
    estimate = max(_evaluate(vm, dev, 1, 1, 0)[0], 1e-7)
    if protocol.warmup_s > 0:
        _evaluate(vm, dev, max(1, math.ceil(protocol.warmup_s / estimate)), 1, 0)
    inner = max(1, math.ceil(protocol.block_s / estimate))
    min_ms = max(1, int(protocol.block_s * 1000))
    measurement = None
    for _attempt in range(protocol.remeasure + 1):
        repeats_ms = [s * 1e3 for s in _evaluate(vm, dev, inner, protocol.repeats, min_ms)]
        measurement = Measurement.from_repeats(repeats_ms, inner, protocol.warmup_s)
        if measurement.rel_iqr <= protocol.noise_threshold:
            return measurement
    assert measurement is not None
    return Measurement.from_repeats(list(measurement.repeats_ms), inner, protocol.warmup_s,
                                    noisy=True)
