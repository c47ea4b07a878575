"""Options shared by several commands: the measurement target, the LUT, backend settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from perfstudent.errors import InputError

LUT_OPTION = click.option("--lut", "lut_path", type=click.Path(path_type=Path), default=None,
                          help="LUT file (default: $PERFSTUDENT_LUT or the user data directory).")


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` backend options (e.g. ``opt_level=all``, ``memory_format=channels_last``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"backend option {pair!r} is not KEY=VALUE")
        out[key.replace("-", "_")] = value
    return out


def tvm_options(options: dict[str, Any], backend: str, tune_trials: int,
                 lut_path: Path | None) -> dict[str, Any]:
    """Add ``--tune-trials`` (tvm only); the tuning database goes next to ``--lut``."""
    if tune_trials == 0:
        return options
    if backend != "tvm":
        raise InputError(f"--tune-trials applies to --backend tvm, not {backend}")
    out = options | {"tune_trials": tune_trials}
    if lut_path is not None:
        out.setdefault("tuning_dir", Path(lut_path).parent / "tvm-tuning")
    return out


TUNE_OPTION = click.option(
    "--tune-trials", type=click.IntRange(min=0), default=0, show_default=True,
    help="tvm: MetaSchedule trials per shape (0 = untuned; untuned TVM latencies are tens of "
         "times too slow to plan with).")


def target_options(f: Any) -> Any:
    """--device, --backend, --threads, --option, --protocol."""
    from perfstudent.profiler.measure import PROTOCOLS

    for deco in reversed([
        click.option("--device", default="local", show_default=True, help="Device name."),
        click.option("--backend", default="onnxruntime", show_default=True,
                     help="torch | onnxruntime | tvm."),
        click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Threads (at most the device's CPUs)."),
        click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
                     help="Backend setting, e.g. opt_level=all or memory_format=channels_last."),
        click.option("--protocol", "protocol_name", type=click.Choice(list(PROTOCOLS)),
                     default="default", show_default=True, help="Timing protocol."),
    ]):
        f = deco(f)
    return f


def target_of(device: str, backend: str, threads: int, options: tuple[str, ...],
              protocol_name: str = "default") -> Any:
    """The :class:`~perfstudent.pipeline.Target` of ``target_options``' values."""
    from perfstudent.pipeline import Target

    check_target_threads(device, threads)
    return Target(device, backend, threads, parse_options(options), protocol_name)


def check_target_threads(device: str, threads: int) -> None:
    """InputError unless ``--threads`` fits the device's CPUs (this machine's for a local one),
    before anything is built or written; the backend checks the same when it starts."""
    from perfstudent.profiler.backends import check_device_threads
    from perfstudent.profiler.devices import get_device

    check_device_threads(get_device(device), threads)


