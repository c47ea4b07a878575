"""Planning commands: ``saliency`` (Fisher scores of a teacher) and ``plan`` (widths for a budget)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from perfstudent.cli._root import cli
from perfstudent.cli.options import parse_options
from perfstudent.plan.strategies import strategy_names

if TYPE_CHECKING:
    from perfstudent.plan.planner import Plan, Verification
    from perfstudent.plan.saliency import Saliency


@cli.command()
@click.option("--teacher", type=click.Path(path_type=Path), required=True,
              help="Teacher run directory (from perfstudent train).")
@click.option("--data", required=True, help="Dataset the teacher was trained on, e.g. digits.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Dataset cache directory.")
@click.option("--batches", type=click.IntRange(min=1), default=100, show_default=True,
              help="Training batches to accumulate over.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffling seed.")
@click.option("--train-mode/--eval-mode", default=False, show_default=True,
              help="Run the teacher in train mode (BN batch statistics) as pytorch-prunes does.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output saliency JSON.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds something of another kind (a LUT, a checkpoint, ...).")
def saliency(teacher: Path, data: str, data_dir: Path | None, batches: int, batch_size: int,
             seed: int, train_mode: bool, out: Path, force: bool) -> None:
    """Fisher saliency of every prunable channel of a teacher.

    Δ_c = 1/(2N) Σ_n (Σ_hw a·g)² on each slot's post-BN-ReLU activation,
    with g the gradient of the cross-entropy on N training samples.

    \b
    Example:
      perfstudent saliency --teacher runs/teacher --data digits --batches 20 --out sal.json
    """
    from perfstudent.guards import check_output
    from perfstudent.pipeline import saliency as run_saliency

    check_output(out, "perfstudent.saliency file", [teacher / "best.pt", teacher / "last.pt"],
                 force=force)
    result = run_saliency(teacher, data, batches=batches, batch_size=batch_size, data_dir=data_dir,
                          seed=seed, train_mode=train_mode)
    result.save(out)
    click.echo(f"Fisher saliency of {result.family} ({len(result.slots)} slots) over "
               f"{result.samples} samples in {result.batches} batches ({result.mode} mode)")
    for slot, scores in result.slots.items():
        ranked = sorted(scores, reverse=True)
        click.echo(f"  {slot:<12} {len(scores):>4} channels  max {ranked[0]:.3g}  "
                   f"median {ranked[len(ranked) // 2]:.3g}  min {ranked[-1]:.3g}")
    click.echo(f"wrote {out}")


@cli.command()
@click.option("--budget", required=True, help="Latency budget with a unit: 30ms, 0.03s, 1500us.")
@click.option("--family", "--arch", "family", required=True, help="Student family, e.g. resnet20.")
@click.option("--device", default="local", show_default=True)
@click.option("--backend", default="onnxruntime", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads the LUT was profiled with.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Backend setting the LUT was profiled with, e.g. opt_level=all.")
@click.option("--input-size", type=click.IntRange(min=1), default=None,
              help="Input resolution (default: the saliency file's, else the teacher's, else the "
                   "family's).")
@click.option("--in-channels", type=click.IntRange(min=1), default=None)
@click.option("--num-classes", type=click.IntRange(min=1), default=None)
@click.option("--lut", type=click.Path(path_type=Path), default=None,
              help="LUT file (default: $PERFSTUDENT_LUT or the user data directory).")
@click.option("--saliency", "saliency_path", type=click.Path(path_type=Path), default=None,
              help="Saliency JSON from perfstudent saliency (default: every channel counts 1).")
@click.option("--strategy", type=click.Choice(strategy_names()), default="perf",
              show_default=True,
              help="torch-pruning prunes --teacher with Torch-Pruning (pip install "
                   "'perfstudent[compare]').")
@click.option("--teacher", type=click.Path(path_type=Path), default=None,
              help="Teacher run directory (from perfstudent train): what torch-pruning prunes.")
@click.option("--margin", default="auto", show_default=True,
              help="Plan this far below the budget: a duration (0, 50us) or auto, a conformal bound "
                   "from the residuals `lut validate` stored, so 95% of plans measure within budget "
                   "(the larger of the bound over every student and over this strategy's own plans).")
@click.option("--verify", is_flag=True, help="Measure the planned student end to end.")
@click.option("--protocol", "protocol_name", type=click.Choice(["default", "fast", "careful"]),
              default="default", show_default=True, help="Timing protocol of --verify.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output plan JSON.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds something of another kind (a LUT, a checkpoint, ...).")
def plan(budget: str, family: str, device: str, backend: str, threads: int,
         options: tuple[str, ...], input_size: int | None, in_channels: int | None, num_classes: int | None,
         lut: Path | None, saliency_path: Path | None, strategy: str, teacher: Path | None,
         margin: str, verify: bool, protocol_name: str, out: Path, force: bool) -> None:
    """Choose per-slot widths of a student that fits a latency budget.

    \b
    Example:
      perfstudent plan --budget 2ms --family resnet20 --device local --backend onnxruntime \\
          --threads 1 --saliency sal.json --out plan.json
      perfstudent plan --budget 2ms --family resnet20 --strategy torch-pruning \\
          --teacher runs/teacher --out tp.json
    """
    from perfstudent.durations import parse_duration_ms
    from perfstudent.guards import check_output
    from perfstudent.lut import default_lut_path
    from perfstudent.pipeline import Target
    from perfstudent.pipeline import plan as run_plan
    from perfstudent.plan.planner import plan_summary
    from perfstudent.plan.saliency import Saliency
    from perfstudent.students import full_spec

    teacher_files = [teacher / "best.pt", teacher / "last.pt"] if teacher else []
    check_output(out, "perfstudent.plan file",
                 [lut or default_lut_path(), saliency_path, *teacher_files], force=force)
    budget_ms = parse_duration_ms(budget, "budget")
    margin_ms = None if margin == "auto" else parse_duration_ms(margin, "margin", allow_zero=True)
    sal = Saliency.load(saliency_path) if saliency_path else None
    size, channels, classes = _dims_of(sal, teacher)
    base = full_spec(family, input_size or size, in_channels or channels, num_classes or classes)
    target = Target(device, backend, threads, parse_options(options), protocol_name)
    result = run_plan(target, lut, strategy, budget_ms, base, sal, margin_ms, teacher)
    click.echo(plan_summary(result))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if verify:
        result.verified = _verify(result, target)
    result.save(out)
    click.echo(f"wrote {out}")


def _dims_of(sal: Saliency | None, teacher: Path | None) -> tuple[int | None, int | None, int | None]:
    """Input size, channels and classes a plan defaults to: the saliency file's, else the
    teacher run's, else (None) the family's."""
    if sal is not None:
        return sal.input_size, sal.in_channels, sal.num_classes
    if teacher is not None:
        from perfstudent.distill.runs import load_run

        spec = load_run(teacher).spec
        return spec.input_size, spec.in_channels, spec.num_classes
    return None, None, None


def _verify(result: Plan, target: Any) -> Verification:
    from perfstudent.durations import format_ms
    from perfstudent.pipeline import measure as run_measure
    from perfstudent.plan.planner import Verification

    measured = run_measure(target, result.spec)
    verdict = "within budget" if measured.ms <= result.budget_ms else "OVER budget"
    click.echo(f"verify: measured {format_ms(measured.ms)} (spread {measured.spread:.1%}), "
               f"predicted {format_ms(result.predicted_ms)}, budget {format_ms(result.budget_ms)}: "
               f"{verdict} (slack {(result.budget_ms - measured.ms) / result.budget_ms:+.1%})")
    return Verification(measured.ms, measured.ms <= result.budget_ms, target.protocol, measured)
