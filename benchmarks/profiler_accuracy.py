"""Prediction accuracy of the LUT: sweep a family, then validate random students.

For each (family, input size, backend): an adaptive sweep fills a LUT (resumed if
the LUT already holds rows), then ``validate`` draws random WidthSpecs, predicts
each with the LUT (Σ layer rows + overhead) and measures it end to end. Writes
``results/accuracy_<family>_<size>_<backend>.json`` (every student and the summary).

Example:
    nice -n 5 python benchmarks/profiler_accuracy.py --family resnet20 --input-size 32 \
        --backend onnxruntime --samples 50 --lut /tmp/bench/ort.sqlite
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import conditions, write_result

from perfstudent.lut import LatencyTable, spec_context
from perfstudent.lut.validate import validate
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.profiler.runner import LocalRunner
from perfstudent.profiler.sweep import SweepConfig, sweep
from perfstudent.students import WidthSpec, full_spec


def context_key(spec: WidthSpec) -> str:
    return json.dumps(spec_context(spec), sort_keys=True, separators=(",", ":"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", required=True)
    ap.add_argument("--input-size", type=int, required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--protocol", default="default", choices=list(PROTOCOLS))
    ap.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"],
                    help="thread_cpu: per-thread CPU time, for machines shared with other jobs")
    ap.add_argument("--lut", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distribution", default="uniform", choices=["uniform", "scaled"])
    args = ap.parse_args()

    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device

    info = conditions()
    protocol = PROTOCOLS[args.protocol]
    backend = get_backend(args.backend, get_device("local"), args.threads, clock=args.clock)
    runner = LocalRunner(backend, protocol)
    base = full_spec(args.family, args.input_size)
    with LatencyTable.open(args.lut) as table:
        t0 = time.perf_counter()
        report = sweep(table, runner, SweepConfig(args.family, args.input_size))
        sweep_s = time.perf_counter() - t0
        view = table.view(runner.fingerprint())
    t0 = time.perf_counter()
    val = validate(view, backend, base, args.samples, protocol, args.seed,
                   distribution=args.distribution)
    summary = val.summary()
    suffix = "" if args.distribution == "uniform" else f"_{args.distribution}"
    out = write_result(f"accuracy_{args.family}_{args.input_size}_{args.backend}{suffix}",
                       info | {"protocol": protocol.to_dict(), "sweep": report.to_dict(),
                               "sweep_s": sweep_s, "validate_s": time.perf_counter() - t0,
                               "overhead_points": view.overheads[context_key(base)][1],
                               "validation": val.to_dict()})
    print(val.text())
    print(f"wrote {out}")
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()})


if __name__ == "__main__":
    main()
