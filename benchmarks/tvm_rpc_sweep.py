"""TVM over an RPC tracker vs in process: do remote rows agree, and does sharding pay?

Starts a loopback tracker and 1, then 2, RPC servers (this machine plays the
board), measures the LUT rows of the full-width network's slots (each block
between its neighbours, at a few widths) through TrackerRunner, and times the
same chains in process with the tvm backend. Writes
``benchmarks/results/tvm_rpc_sweep.json``: per-row figures (in process vs RPC,
their ratio) and the wall time with 1 and 2 servers.

Untuned TVM builds: the absolute latencies are not representative (see
docs/remote.md); the comparison is between two ways of measuring the same code.

    python benchmarks/tvm_rpc_sweep.py [--arch resnet20] [--limit 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from perfstudent.measurement import TimingProtocol  # noqa: E402
from perfstudent.profiler.backends import get_backend  # noqa: E402
from perfstudent.profiler.chains import chain_job  # noqa: E402
from perfstudent.profiler.devices import Device, get_device  # noqa: E402
from perfstudent.profiler.machine import machine_info  # noqa: E402
from perfstudent.profiler.remote import TrackerRunner  # noqa: E402
from perfstudent.students import full_spec, get_family  # noqa: E402
from tests import rpc_servers  # noqa: E402

PROTOCOL = TimingProtocol(warmup_s=0.05, block_s=0.02, rounds=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--limit", type=int, default=12, help="at most this many rows")
    args = parser.parse_args()
    spec = full_spec(args.arch)
    contexts = get_family(args.arch).slot_chains(spec)
    jobs = [chain_job(spec, slot, chain.at(w)) for slot, chain in contexts.items()
            for w in sorted({1, chain.block.full // 2, chain.block.full})][: args.limit]
    x86 = get_device("x86")
    board = Device(name="loopback", kind="cpu", description="this machine via RPC", reach="rpc",
                   rpc_key="bench", tvm_target=x86.tvm_target, default_threads=1)
    local = get_backend("tvm", x86, threads=1)
    measured = local.measure([local.prepare(*job.build()) for job in jobs], PROTOCOL)
    in_process = {job.chain: m.ms for job, m in zip(jobs, measured, strict=True)}
    result: dict[str, object] = {"arch": args.arch, "spec": spec.to_dict(),
                                 "machine": machine_info(), "protocol": PROTOCOL.to_dict()}
    with rpc_servers.tracker() as port:
        for servers in (1, 2):
            rows = {}
            with rpc_servers.servers(port, "bench", servers):
                runner = TrackerRunner(board, f"127.0.0.1:{port}", PROTOCOL)
                start = time.perf_counter()
                runner.run(jobs, lambda j, m, into=rows: into.__setitem__(j.chain, m.ms))
                result[f"wall_s_{servers}_servers"] = time.perf_counter() - start
            result[f"rows_{servers}_servers"] = [
                {"chain": str(c), "in_process_ms": in_process[c], "rpc_ms": rows[c],
                 "ratio": rows[c] / in_process[c]} for c in in_process]
    for servers in (1, 2):
        ratios = [r["ratio"] for r in result[f"rows_{servers}_servers"]]  # type: ignore[index]
        # with 2 servers on one small machine the "boards" share cores: expect > 1 there
        result[f"median_ratio_rpc_over_in_process_{servers}_servers"] = statistics.median(ratios)
    out = ROOT / "benchmarks" / "results" / "tvm_rpc_sweep.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: v for k, v in result.items() if not k.startswith(("rows", "machine",
                                                                            "spec"))}, indent=1))


if __name__ == "__main__":
    main()
