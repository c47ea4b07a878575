"""Smoothed rows against rows as measured: the same LUTs, the same measured students, re-read.

Nothing is timed. Each LUT of the latency-truth benchmark (exported beside its
results, ``results/prediction/luts/<setting>.parquet``) predicts the students its
validation measured end to end (``results/prediction/validate_<setting>.json``),
once reading the rows as measured (``LatencyView(smooth=False)``, the overhead
term as the sweep fitted it) and once smoothed (the default: isotonic rows, the
term fitted again on them). The Fashion-MNIST pilot's 25 trained networks
(``results/fmnist_all_pilot``, measured together at ORT ``all``) are predicted
the same way with the LUT they were planned on (``luts/resnet20_28_ort-all.parquet``).

    python benchmarks/smoothing.py     # writes results/smoothing.json and .md
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, conditions, write_result

from perfstudent.errors import InputError
from perfstudent.lut import LatencyTable, LatencyView
from perfstudent.lut.transfer import import_frame, read_frame
from perfstudent.pipeline.validate import scores
from perfstudent.students import WidthSpec, full_spec

LUTS = RESULTS / "prediction" / "luts"
SETTINGS = ["resnet20_32_ort-all", "resnet20_32_ort-extended", "resnet20_32_torch",
            "resnet56_32_ort-all", "wrn-16-2_32_ort-all", "resnet18_224_ort-all"]


def views(parquet: Path) -> list[tuple[LatencyView, LatencyView]]:
    """(as measured, smoothed) views of every fingerprint of the exported LUT."""
    with tempfile.TemporaryDirectory() as tmp, LatencyTable.open(Path(tmp) / "l.sqlite") as table:
        import_frame(table, read_frame(parquet))
        out = []
        for fp in table.fingerprints():
            rows, overheads = table.rows(fp), table.overheads(fp)
            out.append((LatencyView(fp, rows, overheads, smooth=False),
                        LatencyView(fp, rows, overheads)))
        return out


def compare(pairs: list[tuple[LatencyView, LatencyView]], specs: list[WidthSpec],
            measured: list[float], kinds: list[str]) -> dict[str, Any]:
    """Scores of both readings; the fingerprint is the one whose views answer every student."""
    for raw, smooth in pairs:
        try:
            before = [raw.predict(s).total_ms for s in specs]
        except InputError:  # another fingerprint's rows: try the next
            continue
        after = [smooth.predict(s).total_ms for s in specs]
        out: dict[str, Any] = {"students": len(specs), "as measured": scores(before, measured),
                               "smoothed": scores(after, measured), "bias_by_kind_pct": {}}
        for kind in dict.fromkeys(kinds):
            idx = [i for i, k in enumerate(kinds) if k == kind]
            out["bias_by_kind_pct"][kind] = {
                name: float(100 * np.mean([p[i] / measured[i] - 1 for i in idx]))
                for name, p in (("as measured", before), ("smoothed", after))}
        return out
    raise SystemExit("no fingerprint of the LUT answers these students")


def validation(setting: str) -> dict[str, Any]:
    report = json.loads((RESULTS / "prediction" / f"validate_{setting}.json").read_text())["report"]
    family, size = setting.split("_")[0], int(setting.split("_")[1])
    base = full_spec(family, size)
    students = report["students"]
    return compare(views(LUTS / f"{setting}.parquet"), [base.with_widths(s["widths"]) for s in students],
                   [s["measured_ms"] for s in students], [s["kind"] for s in students])


def pilot() -> dict[str, Any]:
    root = RESULTS / "fmnist_all_pilot"
    front = pd.read_csv(root / "front" / "front.csv")
    base = WidthSpec.from_dict(json.loads((root / "plans" / "perf-x0.55.json").read_text())["spec"])
    specs, kinds = [], []
    for row in front.itertuples():
        name = Path(row.run).name
        if row.series == "teacher":
            specs.append(full_spec(base.family, base.input_size, base.in_channels, base.num_classes))
        else:
            plan = root / "plans" / f"{name.rsplit('-s', 1)[0]}.json"
            specs.append(WidthSpec.from_dict(json.loads(plan.read_text())["spec"]))
        kinds.append(str(row.series))
    return compare(views(LUTS / "resnet20_28_ort-all.parquet"), specs, list(front["latency_ms"]), kinds)


def markdown(results: dict[str, Any]) -> str:
    lines = ["| setting | students | reading | within ±5% | within ±10% | MAPE | bias | max | ρ |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for reading in ("as measured", "smoothed"):
            s = r[reading]
            lines.append(f"| {name} | {r['students']} | {reading} | {100 * s['within_5pct']:.0f}% | "
                         f"{100 * s['within_10pct']:.0f}% | {s['mape_pct']:.1f}% | "
                         f"{s['bias_pct']:+.1f}% | {s['max_abs_err_pct']:.0f}% | {s['spearman']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    results = {setting: validation(setting) for setting in SETTINGS}
    results["fmnist pilot resnet20 @28 ort-all"] = pilot()
    data = conditions() | {"results": results}
    out = write_result("smoothing", data)
    text = markdown(results)
    (RESULTS / "smoothing.md").write_text(
        f"# Smoothed rows against rows as measured ({data['date']})\n\n"
        f"`{data['command']}`; nothing timed (stored LUTs re-read against stored measurements).\n\n"
        f"{text}\n")
    print(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
