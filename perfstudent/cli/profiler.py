"""Profiler commands: ``profile`` and ``measure`` (the ``lut`` group is in lut_commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from perfstudent.cli._root import cli
from perfstudent.cli.options import (
    LUT_OPTION,
    TUNE_OPTION,
    check_target_threads,
    parse_options,
    target_of,
    target_options,
    tvm_options,
)
from perfstudent.errors import InputError


def _family_spec(family: str, input_size: int | None, in_channels: int | None,
                 num_classes: int | None) -> Any:
    from perfstudent.students import full_spec

    return full_spec(family, input_size, in_channels, num_classes)


@cli.command()
@target_options
@click.option("--family", "--arch", "family", required=True,
              help="Family to sweep (e.g. resnet20, resnet56, resnet18).")
@click.option("--input-size", type=int, default=None, help="Input resolution (family default).")
@click.option("--in-channels", type=int, default=None, help="Input channels (family default).")
@click.option("--num-classes", type=int, default=None, help="Classes (family default).")
@click.option("--exhaustive", is_flag=True, help="Measure every width instead of adaptively.")
@click.option("--tolerance", type=click.FloatRange(0.0, 1.0), default=0.03, show_default=True,
              help="Adaptive sweep: relative difference treated as flat/linear.")
@click.option("--tracker", default=None, metavar="HOST:PORT", help="TVM RPC tracker for remote boards.")
@TUNE_OPTION
@LUT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the sweep report as JSON.")
def profile(device: str, backend: str, threads: int, options: tuple[str, ...], protocol_name: str,
            family: str, input_size: int | None, in_channels: int | None, num_classes: int | None,
            exhaustive: bool, tolerance: float, tracker: str | None, tune_trials: int,
            lut_path: Path | None, as_json: bool) -> None:
    """Sweep every conv shape a family's students can have into the LUT.

    Rows already in the LUT are skipped, so a killed sweep resumes when re-run.

    \b
    Example:
      perfstudent profile --device local --backend onnxruntime --family resnet56 --threads 1
      perfstudent profile --backend torch --family resnet20 --exhaustive --lut r20.sqlite
      perfstudent profile --device pi4 --backend tvm --tracker 192.168.1.10:9190 \\
          --family resnet20 --tune-trials 256
    """
    from perfstudent.pipeline import Target
    from perfstudent.pipeline import profile as run_profile
    from perfstudent.profiler.sweep import SweepConfig

    config = SweepConfig(family, input_size, in_channels, num_classes, exhaustive=exhaustive,
                         tolerance=tolerance)
    _family_spec(family, input_size, in_channels, num_classes)  # validate before touching anything
    check_target_threads(device, threads)
    target = Target(device, backend, threads,
                    tvm_options(parse_options(options), backend, tune_trials, lut_path), protocol_name)
    report, path = run_profile(target, lut_path, config, tracker)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    share = (f" ({report.overhead_share:.0%} of the full network)"
             if report.overhead_share is not None else "")
    click.echo(f"{family}: measured {report.measured} rows ({report.skipped} already in the LUT), "
               f"{report.rounds} rounds, {report.wall_s:.1f} s (timed {report.timed_s:.1f} s); "
               f"overhead term {report.overhead_ms:+.4f} ms{share}; LUT {path}")


@cli.command()
@target_options
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), default=None,
              help="WidthSpec JSON.")
@click.option("--plan", "plan_path", type=click.Path(path_type=Path), default=None,
              help="Plan JSON (its spec is measured).")
@click.option("--json", "as_json", is_flag=True, help="Print the Measurement as JSON.")
def measure(device: str, backend: str, threads: int, options: tuple[str, ...], protocol_name: str,
            spec_path: Path | None, plan_path: Path | None, as_json: bool) -> None:
    """Time a whole student end to end with the LUT's timing protocol.

    \b
    Example:
      perfstudent measure --device local --backend onnxruntime --spec spec.json
      perfstudent measure --backend torch --plan plan.json --json
    """
    from perfstudent.pipeline import measure as run_measure
    from perfstudent.students import WidthSpec

    if (spec_path is None) == (plan_path is None):
        raise InputError("give exactly one of --spec or --plan")
    spec = WidthSpec.load(spec_path or plan_path)  # type: ignore[arg-type]
    m = run_measure(target_of(device, backend, threads, options, protocol_name), spec)
    if as_json:
        click.echo(json.dumps({"device": device, "backend": backend, "threads": threads,
                               "spec": spec.to_dict(), "measurement": m.to_dict()}, indent=2))
        return
    click.echo(f"{spec.family} @{spec.input_size}: {m.ms:.4f} ms ({m.estimator} of "
               f"{len(m.samples_ms)} samples, IQR/median {m.spread:.1%}"
               f"{', NOISY' if m.noisy else ''}) on {device}/{backend}/t{threads}")

