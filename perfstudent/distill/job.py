"""Resolve a TrainConfig into what a run needs, validating everything before anything is written.

The student's WidthSpec comes from ``--family`` (full width for the data), a
``--spec`` file or a ``--plan`` file (its ``"spec"``); it must fit the data
(input channels, classes, input size). A teacher run must hold the same
family as the student (so its ``stage_paths()`` match one to one) and have
been trained for the same input channels and classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from perfstudent.distill.data import DatasetBundle, load_dataset
from perfstudent.distill.runs import Run, load_run
from perfstudent.errors import InputError
from perfstudent.io import read_json
from perfstudent.students import WidthSpec, full_spec
from perfstudent.students.memory import check_fits_memory


@dataclass
class Job:
    """The validated inputs of one run."""

    data: DatasetBundle
    spec: WidthSpec
    plan: dict[str, Any] | None
    teacher_run: Run | None
    teacher: nn.Module | None


def resolve_spec(family: str | None, spec_path: Path | None, plan_path: Path | None,
                 data: DatasetBundle) -> tuple[WidthSpec, dict[str, Any] | None]:
    """The student's WidthSpec (and the plan dict, if any), checked against the data."""
    given = [x for x in (family, spec_path, plan_path) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --family, --spec or --plan")
    plan = None
    if family is not None:
        spec = full_spec(family, data.input_size, data.in_channels, data.num_classes)
    elif spec_path is not None:
        spec = WidthSpec.load(spec_path)
    else:
        assert plan_path is not None
        plan = read_json(plan_path, "plan")
        if not isinstance(plan, dict) or not isinstance(plan.get("spec"), dict):
            raise InputError(f"plan {plan_path} has no \"spec\" object")
        try:
            spec = WidthSpec.from_dict(plan["spec"])
        except InputError as exc:
            raise InputError(f"plan {plan_path}: {exc}") from None
    check_fits(spec, data, "student spec")
    return spec, plan


def check_fits(spec: WidthSpec, data: DatasetBundle, what: str) -> None:
    """InputError unless ``spec`` has the data's input channels, classes and input size."""
    wrong = [f"{name} {have} (data: {want})" for name, have, want in (
        ("in_channels", spec.in_channels, data.in_channels),
        ("num_classes", spec.num_classes, data.num_classes),
        ("input_size", spec.input_size, data.input_size)) if have != want]
    if wrong:
        raise InputError(f"{what} ({spec.family}) does not fit dataset {data.name}: {', '.join(wrong)}")


def load_teacher(path: Path, student: WidthSpec, data: DatasetBundle) -> tuple[Run, nn.Module]:
    """Load a teacher run's best model, checking it matches the student's family and the data."""
    run = load_run(path)
    if run.spec.family != student.family:
        raise InputError(f"teacher {path} is a {run.spec.family} but the student is a {student.family}: "
                         "attention transfer matches stage outputs of the same family")
    wrong = [f"{name} {have} (data: {want})" for name, have, want in (
        ("in_channels", run.spec.in_channels, data.in_channels),
        ("num_classes", run.spec.num_classes, data.num_classes)) if have != want]
    if wrong:
        raise InputError(f"teacher {path} was not trained for dataset {data.name}: {', '.join(wrong)}")
    model = run.model("best")
    for p in model.parameters():
        p.requires_grad_(False)
    return run, model


def prepare_job(config: Any) -> Job:
    """Load data, spec, plan and teacher for ``config`` (a TrainConfig); writes nothing."""
    data = load_dataset(config.data, config.data_dir, 0, config.train_limit, config.test_limit,
                        config.input_size)
    spec, plan = resolve_spec(config.family, config.spec, config.plan, data)
    # a batch larger than the training set is the whole set (DatasetBundle.batches)
    check_fits_memory(spec, min(config.batch_size, len(data.train)), training=True)
    teacher_run, teacher = (None, None)
    if config.teacher is not None:
        teacher_run, teacher = load_teacher(config.teacher, spec, data)
    elif config.kind == "distill":
        raise InputError("distill needs --teacher TEACHER_RUN")
    return Job(data, spec, plan, teacher_run, teacher)
