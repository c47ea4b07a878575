"""ORT graph optimisation level: does the sum of isolated layers predict the network?

For each level, every layer of the full network is timed in isolation and the
network end to end (same protocol, interleaved: layer sum then network, ``--rounds``
times); reports network/sum per round and overall. Chooses the backend default.
Writes ``results/ort_levels_<family>_<size>.json``.

Example:
    nice -n 5 python benchmarks/profiler_ort_levels.py --family resnet20 --input-size 32 \
        --clock thread_cpu --protocol quick
"""

from __future__ import annotations

import argparse
import statistics

from _common import conditions, write_result

from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.students import full_spec, network_layers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="resnet20")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--protocol", default="quick", choices=list(PROTOCOLS))
    ap.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    info = conditions()
    protocol, spec = PROTOCOLS[args.protocol], full_spec(args.family, args.input_size)
    shapes = [layer.shape for layer in network_layers(spec)]
    result: dict[str, object] = {}
    for level in ("extended", "all", "basic"):
        backend = get_backend("onnxruntime", get_device("local"), 1, opt_level=level, clock=args.clock)
        rounds = []
        for _ in range(args.rounds):
            layer_sum = sum(backend.time_shape(s, protocol).ms for s in shapes)
            net = backend.time_model(spec, protocol).ms
            rounds.append({"layer_sum_ms": layer_sum, "network_ms": net, "sum_over_network": layer_sum / net})
        ratio = statistics.median(r["sum_over_network"] for r in rounds)
        result[level] = {"rounds": rounds, "median_sum_over_network": ratio}
        print(level, f"sum/network = {ratio:.3f}", [round(r["network_ms"], 3) for r in rounds])
    write_result(f"ort_levels_{args.family}_{args.input_size}", info | {"protocol": protocol.to_dict(),
                                                                         "levels": result})


if __name__ == "__main__":
    main()
