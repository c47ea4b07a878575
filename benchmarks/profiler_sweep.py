"""Adaptive vs exhaustive sweep, sweep efficiency and repeatability.

1. An exhaustive sweep (every width of every slot) fills LUT E.
2. *Replay*: the adaptive algorithm runs against a runner that answers from E's
   rows, so its shape count and interpolation error are measured on the same data
   (no run-to-run noise): per slot and width, ``T_slot(w)`` from the adaptive LUT vs E.
3. A real adaptive sweep fills LUT A1 and a second one LUT A2 (same command twice):
   shapes measured, wall time / time inside timed calls, and the share of common
   rows whose medians agree within ±5% (repeatability); A1 vs E gives the
   adaptive-vs-exhaustive difference including run-to-run noise.
Writes ``results/sweep_<family>_<size>_<backend>.json``.

Example:
    nice -n 5 python benchmarks/profiler_sweep.py --family resnet20 --input-size 32 \
        --backend onnxruntime --workdir /tmp/bench/sweep
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import conditions, write_result

from perfstudent.convshape import ConvShape
from perfstudent.lut import Fingerprint, LatencyTable, LatencyView
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.profiler.measurement import Measurement
from perfstudent.profiler.runner import LocalRunner
from perfstudent.profiler.sweep import SweepConfig, SweepReport, sweep
from perfstudent.students import full_spec, get_family
from perfstudent.students.widthspec import WidthSpec


class ReplayRunner:
    """Answers shapes from an existing LUT's rows (no timing): isolates the algorithm."""

    def __init__(self, fp: Fingerprint, rows: dict[ConvShape, Measurement]) -> None:
        self.fp, self.rows, self.count = fp, rows, 0

    def fingerprint(self) -> Fingerprint:
        return self.fp

    def run(self, shapes: Sequence[ConvShape], on_result: Callable[[ConvShape, Measurement], None]) -> None:
        for shape in shapes:
            self.count += 1
            on_result(shape, self.rows[shape])

    def time_model(self, spec: WidthSpec) -> Measurement:
        raise NotImplementedError

    def close(self) -> None:
        pass


def slot_differences(spec: WidthSpec, test: LatencyView, ref: LatencyView) -> np.ndarray:
    """Relative difference of T_slot(w) (test vs ref) for every slot and width 1..full."""
    fam = get_family(spec.family)
    diffs = []
    for slot, full in spec.widths.items():
        for w in range(1, full + 1):
            shapes = [layer.shape for layer in fam.slot_layers(spec, slot, w)]
            ref_ms = sum(ref.layer_ms(s) for s in shapes)
            diffs.append(sum(test.layer_ms(s) for s in shapes) / ref_ms - 1)
    return np.asarray(diffs)


def stats(diffs: np.ndarray) -> dict[str, float]:
    a = np.abs(diffs)
    return {"max_abs": float(a.max()), "median_abs": float(np.median(a)),
            "share_within_3pct": float(np.mean(a <= 0.03)), "count": int(a.size)}


def run_sweep(path: Path, runner: Any, config: SweepConfig) -> tuple[SweepReport, LatencyView]:
    with LatencyTable.open(path) as table:
        report = sweep(table, runner, config)
        return report, table.view(runner.fingerprint())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="resnet20")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--protocol", default="default", choices=list(PROTOCOLS))
    ap.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"],
                    help="thread_cpu: per-thread CPU time, for machines shared with other jobs")
    ap.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args()
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device

    info = conditions()
    args.workdir.mkdir(parents=True, exist_ok=True)
    protocol = PROTOCOLS[args.protocol]
    local = LocalRunner(get_backend(args.backend, get_device("local"), 1, clock=args.clock), protocol)
    spec = full_spec(args.family, args.input_size)
    base = SweepConfig(args.family, args.input_size, overhead=False)
    exh, e_view = run_sweep(args.workdir / "exhaustive.sqlite", local,
                            SweepConfig(args.family, args.input_size, exhaustive=True, overhead=False))
    replay = ReplayRunner(e_view.fingerprint, e_view.measurements)
    _, r_view = run_sweep(args.workdir / "replay.sqlite", replay, base)
    a1, a1_view = run_sweep(args.workdir / "adaptive1.sqlite", local, base)
    a2, a2_view = run_sweep(args.workdir / "adaptive2.sqlite", local, base)
    common = set(a1_view.rows) & set(a2_view.rows)
    rel = np.asarray([a2_view.rows[s] / a1_view.rows[s] - 1 for s in common])
    result = info | {
        "protocol": protocol.to_dict(),
        "exhaustive": exh.to_dict() | {"shapes": len(e_view.rows)},
        "replay_adaptive": {"shapes": replay.count, "share_of_exhaustive": replay.count / len(e_view.rows),
                            "slot_vs_exhaustive": stats(slot_differences(spec, r_view, e_view))},
        "adaptive_run1": a1.to_dict()
        | {"slot_vs_exhaustive": stats(slot_differences(spec, a1_view, e_view))},
        "adaptive_run2": a2.to_dict(),
        "repeatability": {"common_rows": len(common),
                          "share_within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
                          "median_abs": float(np.median(np.abs(rel))), "max_abs": float(np.abs(rel).max())},
    }
    out = write_result(f"sweep_{args.family}_{args.input_size}_{args.backend}", result)
    for key in ("exhaustive", "replay_adaptive", "adaptive_run1", "adaptive_run2", "repeatability"):
        print(key, result[key])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
