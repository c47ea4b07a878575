"""Re-measure students (plans or specs) together and predict them with one or more LUTs.

Every student is prepared once and timed in interleaved rounds (the target's
default protocol), twice, so a slow phase hits all of them alike; each LUT's
prediction is printed beside the measurements. Used for the quickstart table
in the README:

    python benchmarks/remeasure.py --lut coarse=qs/lut.sqlite --lut default=lut2.sqlite \\
        qs/plans/*.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from perfstudent.lut import Fingerprint, LatencyTable
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.students.widthspec import WidthSpec


def load_spec(path: Path) -> WidthSpec:
    data = json.loads(path.read_text())
    return WidthSpec.from_dict(data.get("spec", data), str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("students", type=Path, nargs="+", help="plan or WidthSpec JSON files")
    parser.add_argument("--lut", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    specs = {p.stem: load_spec(p) for p in args.students}
    backend = get_backend("onnxruntime", get_device("local"), 1)
    try:
        fp = Fingerprint.for_backend(backend)
        views = {}
        for item in args.lut:
            name, path = item.split("=", 1)
            with LatencyTable.open(path, create=False) as table:
                views[name] = table.view(fp)
        print("load before", os.getloadavg())
        items = [backend.prepare_model(s) for s in specs.values()]
        for rep in range(args.passes):
            measured = backend.measure(items, PROTOCOLS["default"])
            for (name, spec), m in zip(specs.items(), measured, strict=True):
                pred = {n: round(v.predict(spec).total_ms, 3) for n, v in views.items()}
                print(rep, name, list(spec.widths.values()), pred, f"measured {m.ms:.3f}")
    finally:
        backend.close()
    print("load after", os.getloadavg())


if __name__ == "__main__":
    main()
