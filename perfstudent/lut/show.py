"""What a LUT holds: fingerprints, row counts, overheads and coverage per swept family."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError
from perfstudent.students import get_family

if TYPE_CHECKING:
    from perfstudent.lut.store import LatencyTable
    from perfstudent.lut.view import LatencyView


def coverage(view: LatencyView, family: str, input_size: int | None = None,
             in_channels: int | None = None, num_classes: int | None = None,
             batch: int = 1) -> tuple[int, int, int]:
    """(measured, answerable, total) over every (slot context, width) ``family`` can have."""

    fam = get_family(family)
    contexts = set(fam.slot_chains(fam.full_spec(input_size, in_channels, num_classes),
                                   batch).values())
    measured = answerable = total = 0
    for context in contexts:
        for width in range(1, context.block.full + 1):
            chain = context.at(width)
            total += 1
            measured += chain in view.values
            try:
                view.chain_ms(chain)
                answerable += 1
            except InputError:
                pass
    return measured, answerable, total


def describe(table: LatencyTable) -> list[dict[str, Any]]:
    """One record per fingerprint: identity, rows, overhead terms, coverage of each swept family."""
    out = []
    for fp in table.fingerprints():
        view = table.view(fp)
        sweeps = []
        for sw in table.sweeps(fp):  # checked: a family name and an input size, the rest optional
            try:
                measured, answerable, total = coverage(view, sw["family"], sw["input_size"],
                                                       sw.get("in_channels"), sw.get("num_classes"),
                                                       sw.get("batch") or 1)
            except InputError as exc:
                raise InputError(f"LUT {table.path}: table sweeps ({sw['family']} @{sw['input_size']}, "
                                 f"{fp.label()}): {exc}") from None
            sweeps.append(sw | {"measured": measured, "answerable": answerable, "total": total})
        fits = {k: overhead_in_use(view, k) for k in view.overheads}
        out.append({"id": fp.id, "label": fp.label(), "fingerprint": fp.to_dict(),
                    "rows": table.count(fp), "noisy": sum(m.noisy for m in view.measurements.values()),
                    "overheads": {k: f[0] for k, f in fits.items()},
                    "scales": {k: f[1] for k, f in fits.items()},
                    "overhead_shares": {k: f[2] for k, f in fits.items()},
                    "sweeps": sweeps})
    return out


def overhead_in_use(view: LatencyView, key: str) -> tuple[float, float, float | None]:
    """``(fixed_ms, scale, share of the full network)`` of context ``key`` as predictions use
    them (fitted on the rows as ``view`` reads them); as stored if the context names no
    network this perfstudent knows."""
    fixed, data = view.overheads[key]
    fit = (fixed, float(data.get("scale", 1.0)))
    try:
        ctx = json.loads(key)
        spec = get_family(ctx["family"]).full_spec(ctx["input_size"], ctx.get("in_channels"),
                                                   ctx.get("num_classes"))
        fit = (view.fixed_ms(spec, ctx.get("batch") or 1), view.scale(spec, ctx.get("batch") or 1))
    except (InputError, KeyError, TypeError, ValueError):
        pass
    full = data.get("full_ms")
    share = fit[0] / full if isinstance(full, (int, float)) and full > 0 else data.get("share_of_full")
    return fit[0], fit[1], share
