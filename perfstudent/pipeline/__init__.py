"""The use cases, each wired once: the command line and the experiment steps are thin adapters.

profile -> LUT -> (validate) -> saliency -> plan -> distill -> measure -> front. A
:class:`Target` says where latencies are measured (device, backend, threads,
backend options, timing protocol); every use case that touches latency takes one,
so a LUT is read and written for exactly the fingerprint that measures it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from perfstudent.distill.data import load_dataset
from perfstudent.distill.runs import load_run
from perfstudent.errors import InputError
from perfstudent.lut import Fingerprint, LatencyTable, LatencyView, spec_context
from perfstudent.measurement import Measurement, TimingProtocol
from perfstudent.plan.enhance import Tolerance
from perfstudent.plan.enhance import enhance as enhance_student
from perfstudent.plan.planner import Plan, make_plan, plan_margin
from perfstudent.plan.saliency import Saliency, fisher_saliency, teacher_identity
from perfstudent.plan.strategies import get_strategy
from perfstudent.profiler.backends import Backend, get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.profiler.runner import make_runner
from perfstudent.profiler.sweep import SweepConfig, SweepReport, sweep
from perfstudent.students import WidthSpec, get_family
from perfstudent.students.memory import check_fits_memory

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Target:
    """Where latencies are measured: a device, a backend and its settings, a timing protocol."""

    device: str = "local"
    backend: str = "onnxruntime"
    threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    protocol: str = "default"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")

    def timing(self) -> TimingProtocol:
        return PROTOCOLS[self.protocol]

    def make_backend(self) -> Backend:
        return get_backend(self.backend, get_device(self.device), self.threads, **self.options)

    def fingerprint(self) -> Fingerprint:
        backend = self.make_backend()
        try:
            return Fingerprint.for_backend(backend)
        finally:
            backend.close()

    def view(self, table: LatencyTable) -> LatencyView:
        """The rows of this target's fingerprint (an InputError naming what differs if none)."""
        return table.view(self.fingerprint())


def open_view(target: Target, lut: Path | None) -> LatencyView:
    """The LUT at ``lut`` (None: the default one) as ``target`` reads it."""
    with LatencyTable.open(lut, create=False) as table:
        return target.view(table)


def residuals(target: Target, lut: Path | None, spec: WidthSpec,
              view: LatencyView | None = None) -> tuple[list[float], list[str] | None, bool]:
    """The residuals of the last ``lut validate`` of ``spec``'s context, each one's student kind
    (None if that validation did not store them), and whether they were re-read on ``view``.

    With ``view`` and a validation that stored its students (widths and measured ms), each
    residual is ``measured / view.predict(student) - 1``: re-read on the rows as ``view``
    reads them now (smoothed, rows added since). An older validation gives its stored ones.
    """
    with LatencyTable.open(lut, create=False) as table:
        found = table.validations(target.fingerprint(), spec_context(spec))
    if not found:
        return [], None, False
    last = found[-1]
    kinds = list(last["kinds"]) if last.get("kinds") is not None else None
    students = last.get("students")
    if view is not None and students:
        try:
            return ([float(s["measured_ms"]) / view.predict(spec.with_widths(s["widths"])).total_ms - 1
                     for s in students], kinds, True)
        except (InputError, KeyError, TypeError, ValueError, ZeroDivisionError):
            pass  # a student these rows cannot answer: the residuals as stored
    return list(last.get("residuals", [])), kinds, False


# -- profile ------------------------------------------------------------------------------
def profile(target: Target, lut: Path | None, config: SweepConfig, tracker: str | None = None,
            progress: bool = True) -> tuple[SweepReport, Path]:
    """Sweep ``config.family`` into the LUT at ``lut``; the report and the LUT's path.

    Refused before anything is built or opened: a network too large for this machine's memory.
    """
    spec = get_family(config.family).full_spec(config.input_size, config.in_channels,
                                               config.num_classes)
    check_fits_memory(spec, config.batch,
                      what=f"profiling {spec.family} at input size {spec.input_size}")
    runner = make_runner(target.device, target.backend, target.timing(), target.threads, tracker,
                         **target.options)
    try:
        with LatencyTable.open(lut) as table:
            return sweep(table, runner, config, progress=progress), table.path
    finally:
        runner.close()


def measure(target: Target, spec: WidthSpec, model: nn.Module | None = None) -> Measurement:
    """A whole student end to end with the target's protocol (refused first if it cannot fit
    in memory)."""
    check_fits_memory(spec, 1, what=f"measuring {spec.family} at input size {spec.input_size}")
    backend = target.make_backend()
    try:
        return backend.time_model(spec, target.timing(), model)
    finally:
        backend.close()


def measure_together(target: Target, specs: list[WidthSpec]) -> list[Measurement]:
    """Several students end to end with the target's protocol, in interleaved rounds (so that
    a drifting load affects them alike)."""
    backend = target.make_backend()
    try:
        return backend.measure([backend.prepare_model(spec) for spec in specs], target.timing())
    finally:
        backend.close()


# -- plan -----------------------------------------------------------------------------------
def plan(target: Target, lut: Path | None, strategy: str, budget_ms: float, base: WidthSpec,
         saliency: Saliency | None = None, margin_ms: float | None = None,
         teacher: Path | None = None) -> Plan:
    """Plan ``strategy`` for ``budget_ms`` on the LUT; ``margin_ms=None`` is ``--margin auto``.

    ``teacher`` (a run directory) is read only for a strategy that needs it (torch-pruning).
    """
    chooser = get_strategy(strategy)
    chooser.check_available()  # bad input is refused before the LUT is opened
    if saliency is not None:
        saliency.check_matches(base.family, base.input_size, get_family(base.family).full_widths())
    model = load_teacher(teacher, base, strategy) if chooser.needs_teacher else None
    view = open_view(target, lut)
    note = None
    if margin_ms is None:
        found, kinds, reread = residuals(target, lut, base, view)
        margin_ms, note = plan_margin(found, kinds, strategy, budget_ms)
        if found and not reread:
            note += ("; residuals as stored by a validation that kept no students, against "
                     "predictions of the rows then: `perfstudent lut validate` again re-reads them")
    result = make_plan(strategy, budget_ms, view, base, saliency, margin_ms,
                       device=target.device, backend=target.backend, threads=target.threads,
                       teacher=model)
    result.margin_note = note
    return result


def load_teacher(teacher: Path | None, base: WidthSpec, strategy: str) -> nn.Module:
    """The trained teacher of run ``teacher`` (``best.pt``, read with weights_only=True); it must
    be ``base``: the same family, input size, channels, classes and full widths."""
    if teacher is None:
        raise InputError(f"strategy {strategy} prunes the trained teacher: give --teacher RUN")
    run = load_run(teacher)
    if run.spec != base:
        raise InputError(f"teacher {teacher} is {run.spec.family} at {run.spec.input_size}px "
                         f"({run.spec.in_channels} channels, {run.spec.num_classes} classes"
                         f"{'' if run.spec.widths == base.widths else ', pruned slots'}); the plan "
                         f"is for the full {base.family} at {base.input_size}px "
                         f"({base.in_channels} channels, {base.num_classes} classes)")
    return run.model("best")


def enhance(target: Target, lut: Path | None, spec: WidthSpec, tolerance: Tolerance,
            saliency: Saliency | None = None, source: Plan | None = None,
            measure: bool = False) -> Plan:
    """Widen ``spec``'s slots within ``tolerance`` on the LUT (:mod:`perfstudent.plan.enhance`);
    with ``measure``, both students are measured end to end, together."""
    if saliency is not None:  # bad input is refused before the LUT is opened
        saliency.check_matches(spec.family, spec.input_size, get_family(spec.family).full_widths())
    result = enhance_student(open_view(target, lut), spec, tolerance, saliency, source,
                             device=target.device, backend=target.backend, threads=target.threads)
    if measure and result.enhanced is not None:
        before, after = measure_together(target, [spec, result.spec])
        result.enhanced = replace(result.enhanced, measured_before=before, measured_after=after)
    return result


# -- saliency -------------------------------------------------------------------------------
def _training_batches(bundle: Any, batch_size: int, batches: int,
                      seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` shuffled, un-augmented training batches (the data the teacher learned)."""
    stream = bundle.batches("train", batch_size, augment=False, shuffle=True, seed=seed)
    return itertools.islice(stream, batches)


def saliency(teacher: Path, data: str, *, batches: int = 100, batch_size: int = 64,
             data_dir: Path | None = None, seed: int = 0, train_mode: bool = False,
             progress: bool = True) -> Saliency:
    """Fisher saliency of the teacher run at ``teacher`` on ``batches`` batches of ``data``.

    Training data without augmentation, shuffled with ``seed``;
    ``N = batches × batch_size`` samples (fewer if the training set is smaller).
    See :func:`perfstudent.plan.saliency.fisher_saliency`.
    """
    from tqdm import tqdm


    if batches < 1 or batch_size < 1:
        raise InputError("--batches and --batch-size must be at least 1")
    run = load_run(Path(teacher))
    spec = run.spec
    # an image folder is read at the teacher's size (the other datasets have their own)
    bundle = load_dataset(data, data_dir=data_dir, seed=seed, input_size=spec.input_size)
    if (bundle.input_size, bundle.in_channels, bundle.num_classes) != (
            spec.input_size, spec.in_channels, spec.num_classes):
        raise InputError(
            f"data {data} ({bundle.input_size}px, {bundle.in_channels} channels, "
            f"{bundle.num_classes} classes) does not fit the teacher ({spec.input_size}px, "
            f"{spec.in_channels} channels, {spec.num_classes} classes)")
    family = get_family(spec.family)
    paths = {slot: family.slot_activation_path(slot) for slot in spec.widths}
    stream = tqdm(_training_batches(bundle, batch_size, batches, seed), total=batches,
                  desc="saliency", unit="batch", disable=not progress)
    scores, samples = fisher_saliency(run.model("best"), paths, stream, train_mode=train_mode)
    checkpoint = Path(run.path) / "best.pt"
    return Saliency(spec.family, spec.input_size, spec.in_channels, spec.num_classes, scores,
                    teacher_identity(Path(run.path), spec.to_dict(), checkpoint),
                    math.ceil(samples / batch_size), samples, "train" if train_mode else "eval")
