"""``perfstudent experiment`` and ``perfstudent quickstart``."""

from __future__ import annotations

from pathlib import Path

import click

from perfstudent.cli._root import cli
from perfstudent.experiment.engine import StepOutcome


def _finish(out: Path, outcomes: list[StepOutcome]) -> None:
    import pandas as pd

    from perfstudent.experiment.report import result_table

    ran = [o for o in outcomes if o.ran]
    click.echo(f"{len(ran)} step(s) run, {len(outcomes) - len(ran)} already done "
               f"({sum(o.seconds for o in ran):.0f} s)")
    summary = out / "front" / "front-summary.csv"
    if summary.is_file():
        table = result_table(pd.read_csv(summary))
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"front:  {out / 'front' / 'front.png'}")
    click.echo(f"report: {out / 'report.md'}")


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
              help="Experiment TOML (see examples/).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Experiment directory (default: [experiment] out, else NAME next to the config).")
@click.option("--redo", multiple=True, metavar="STEP",
              help="Run this step again even if finished (a step id or its first parts: measure, "
                   "distill/perf); what depends on it follows. Repeatable.")
def experiment(config_path: Path, out: Path | None, redo: tuple[str, ...]) -> None:
    """Run the paper's comparison end to end; re-running resumes and skips finished steps.

    Profile (if the LUT lacks rows) -> teacher -> saliency -> for each budget x
    strategy: plan -> for each seed: distill (AT) -> one measurement of every run
    together -> front and report.md.

    \b
    Example:
      perfstudent experiment --config examples/quick.toml
      perfstudent experiment --config examples/fashion-mnist.toml --out exp-fmnist
      perfstudent experiment --config examples/quick.toml --redo measure   # on a quiet machine
    """
    from perfstudent.experiment import load_config, run_experiment

    config = load_config(config_path)
    name = config["experiment"]["name"]
    out = out or config.path("experiment", "out") or config.base_dir / name
    _finish(out, run_experiment(config, out, log=lambda m: click.echo(m, err=True), redo=redo))


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("perfstudent-quickstart"),
              show_default=True, help="Experiment directory.")
@click.option("--data", "dataset", type=click.Choice(["fashion-mnist", "digits"]), default=None,
              help="Dataset (default: fashion-mnist when installed, else digits).")
def quickstart(out: Path, dataset: str | None) -> None:
    """The experiment on embedded defaults: this CPU, ONNX Runtime 1 thread, resnet20.

    A few minutes on 2 cores; ends with the path of the front and a short table.
    Re-running resumes and skips finished steps.

    \b
    Example:
      perfstudent quickstart
      perfstudent quickstart --out qs --data digits
    """
    from perfstudent.experiment import run_experiment
    from perfstudent.experiment.quickstart import quickstart_config

    config = quickstart_config(out, dataset)
    _finish(out, run_experiment(config, out, log=lambda m: click.echo(m, err=True)))
