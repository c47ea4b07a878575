"""Wall time of ``perfstudent quickstart`` from a cold LUT (target: <= 15 min on 2 cores).

Runs the quickstart as a subprocess with a fresh LUT and output directory,
records the wall time, each step's seconds (from its state.json), the machine
and its load, and writes ``benchmarks/results/quickstart_time.json``.

    python benchmarks/quickstart_time.py [--data digits|fashion-mnist] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import conditions, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=["digits", "fashion-mnist"], default=None)
    parser.add_argument("--keep", type=Path, default=None, help="output directory to keep")
    args = parser.parse_args()
    info = conditions()
    with tempfile.TemporaryDirectory(prefix="ps-quickstart-") as tmp:
        out = args.keep or Path(tmp) / "qs"
        env = {**os.environ, "PERFSTUDENT_LUT": str(Path(tmp) / "lut.sqlite")}
        cmd = [sys.executable, "-m", "perfstudent", "quickstart", "--out", str(out)]
        if args.data:
            cmd += ["--data", args.data]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else {}
    steps = {k: v.get("seconds") for k, v in state.get("steps", {}).items()}
    result = info | {"wall_s": round(wall, 1), "returncode": proc.returncode, "steps_s": steps,
                     "target_s": 900, "stdout_tail": proc.stdout[-3000:],
                     "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}
    path = write_result("quickstart_time", result)
    print(f"quickstart: {wall:.0f} s (rc {proc.returncode}); wrote {path}")


if __name__ == "__main__":
    main()
