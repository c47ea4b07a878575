"""What a LUT holds: fingerprints, row counts, overheads and coverage per swept family."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError

if TYPE_CHECKING:
    from perfstudent.lut.store import LatencyTable
    from perfstudent.lut.view import LatencyView


def coverage(view: LatencyView, family: str, input_size: int | None = None,
             in_channels: int | None = None, num_classes: int | None = None,
             batch: int = 1) -> tuple[int, int, int]:
    """(measured, answerable, total) over every ConvShape ``family`` can produce."""
    from perfstudent.students import family_shapes

    shapes = family_shapes(family, input_size, in_channels, num_classes, batch)
    measured = sum(1 for s in shapes if s in view.rows)
    answerable = 0
    for shape in shapes:
        try:
            view.layer_ms(shape)
            answerable += 1
        except InputError:
            pass
    return measured, answerable, len(shapes)


def describe(table: LatencyTable) -> list[dict[str, Any]]:
    """One record per fingerprint: identity, rows, overhead terms, coverage of each swept family."""
    out = []
    for fp in table.fingerprints():
        view = table.view(fp)
        sweeps = []
        for sw in table.sweeps(fp):
            measured, answerable, total = coverage(view, sw["family"], sw["input_size"],
                                                   sw["in_channels"], sw["num_classes"], sw["batch"])
            sweeps.append(sw | {"measured": measured, "answerable": answerable, "total": total})
        out.append({"id": fp.id, "label": fp.label(), "fingerprint": fp.to_dict(),
                    "rows": table.count(fp), "noisy": sum(m.noisy for m in view.measurements.values()),
                    "overheads": {k: v[0] for k, v in view.overheads.items()}, "sweeps": sweeps})
    return out
