"""``perfstudent front``: accuracy against measured latency, one series per strategy."""

from __future__ import annotations

from pathlib import Path

import click

from perfstudent.cli._root import cli


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--device", default="local", show_default=True, help="Device the latency is measured on.")
@click.option("--backend", default="onnxruntime", show_default=True, help="Runtime that runs the network.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--lut", type=click.Path(path_type=Path), default=None,
              help="LUT for the staircase figure (default: $PERFSTUDENT_LUT or the user data dir).")
@click.option("--slot", default=None,
              help="Slot of the staircase figure (default: the one the plans disagree on most).")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Measure runs that have no latency for this device/backend/threads yet.")
@click.option("--protocol", type=click.Choice(["default", "fast", "careful"]), default="default",
              show_default=True, help="Timing protocol for runs measured now.")
@click.option("--staircase/--no-staircase", default=True, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Figure path (.png or .svg).")
def front(runs: tuple[Path, ...], device: str, backend: str, threads: int, lut: Path | None,
          slot: str | None, measure: bool, protocol: str, staircase: bool, out: Path) -> None:
    """Plot test accuracy against measured latency for run directories.

    Runs without a latency for DEVICE/BACKEND/THREADS are measured now and the
    measurement is stored back in their summary.json. Writes OUT as PNG and
    SVG, OUT.csv (one row per run), OUT-summary.csv (means over seeds) and
    OUT-staircase.png/svg (one slot's LUT staircase with each plan's width).

    \b
    Example:
      perfstudent front runs/* --device local --backend onnxruntime --out front.png
    """
    from perfstudent.cli.options import check_target_threads
    from perfstudent.fronts import make_front
    from perfstudent.guards import check_output
    from perfstudent.profiler.measure import PROTOCOLS

    stem = out.with_suffix("")
    for path in [out.with_suffix(s) for s in (".png", ".svg", ".csv")] + [
            Path(f"{stem}{tail}") for tail in ("-summary.csv", "-staircase.png", "-staircase.svg")]:
        check_output(path, "file", [lut])
    if measure:  # runs measured now run here: --threads must fit the device
        check_target_threads(device, threads)

    result = make_front(list(runs), out, device=device, backend=backend, threads=threads,
                        lut=lut, measure=measure, staircase=staircase, slot=slot,
                        protocol=PROTOCOLS[protocol])
    cols = ["series", "budget_ms", "n", "latency_ms", "acc_pct", "acc_std_pct", "on_front"]
    click.echo(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for note in result.notes:
        click.echo(note, err=True)
    for path in result.files:
        click.echo(f"wrote {path}")
