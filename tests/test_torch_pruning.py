"""The torch-pruning strategy: Torch-Pruning's group L2 importance, global ranking, bisection
to the budget on the planner's model; the teacher threaded through the planner, the
pipeline, the command line and the experiment; refused with an install hint without the extra."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from perfstudent import pipeline
from perfstudent.cli import cli
from perfstudent.errors import InputError
from perfstudent.plan import torch_pruning as tpp
from perfstudent.plan.planner import InfeasibleBudget, Plan, make_plan
from perfstudent.plan.problem import build_problem
from perfstudent.plan.strategies import default_strategy_names, get_strategy, strategy_names
from perfstudent.plan.synthetic import StaircaseModel
from perfstudent.students import WidthSpec, build, full_spec, get_family
from tests._rundirs import write_run
from tests.cli_contract import one_line_error

#: Tests that run Torch-Pruning; the ones that check its absence run without it too.
needs_tp = pytest.mark.skipif(importlib.util.find_spec("torch_pruning") is None,
                              reason="needs the compare extra (pip install 'perfstudent[compare]')")

MODEL = StaircaseModel(noise=0.05, seed=3)
BASE = full_spec("resnet20", 32, 1, 10)
HINT = "pip install 'perfstudent[compare]'"


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    torch.manual_seed(0)
    return build(BASE).eval()


def budget_at(fraction: float, base: WidthSpec = BASE) -> float:
    """``fraction`` of the way from the smallest student's prediction to the full network's."""
    ones = {s: [1.0] * w for s, w in base.widths.items()}
    smallest = build_problem(MODEL, base, ones, 1e9).smallest_ms()
    full = make_plan("perf", 1e9, MODEL, base).predicted_ms
    return smallest + fraction * (full - smallest)


def problem_for(budget_ms: float, base: WidthSpec = BASE) -> Any:
    return build_problem(MODEL, base, {s: [1.0] * w for s, w in base.widths.items()}, budget_ms)


def test_registered_but_not_a_default() -> None:
    assert "torch-pruning" in strategy_names()
    assert "torch-pruning" not in default_strategy_names()
    assert default_strategy_names() == ["perf", "pruned", "uniform"]
    chooser = get_strategy("torch-pruning")
    assert chooser.needs_teacher and chooser.extra == "compare" and not chooser.needs_saliency


@needs_tp
@pytest.mark.parametrize("fraction", [0.2, 0.45, 0.7, 0.95])
def test_plan_is_a_valid_student_within_the_budget(teacher: nn.Module, fraction: float) -> None:
    budget = budget_at(fraction)
    plan = make_plan("torch-pruning", budget, MODEL, BASE, teacher=teacher)
    assert plan.strategy == "torch-pruning"
    assert plan.predicted_ms <= budget
    assert MODEL.fixed_ms(plan.spec) + sum(
        MODEL.slot_ms(plan.spec, s, w) for s, w in plan.spec.widths.items()) == pytest.approx(
            plan.predicted_ms)
    spec = WidthSpec.from_dict(plan.spec.to_dict())  # validates against the family
    assert (spec.family, spec.input_size, spec.in_channels, spec.num_classes) == ("resnet20", 32, 1, 10)
    assert all(1 <= spec.widths[s] <= full for s, full in BASE.widths.items())
    full_macs = sum(layer.shape.macs for layer in get_family("resnet20").layers(BASE))
    assert plan.macs is not None and 0 < plan.macs <= full_macs


@needs_tp
def test_bisection_finds_the_fewest_removals_that_fit(teacher: nn.Module) -> None:
    """The answer fits and one channel fewer removed would not: the most MACs that fit."""
    problem = problem_for(budget_at(0.5))
    convs = tpp.slot_convs(teacher, BASE)
    tp = tpp.require()
    graph = tp.DependencyGraph().build_dependency(teacher, example_inputs=tpp.example_input(BASE))
    order = tpp.removal_order(tpp.slot_importance(tp, graph, teacher, convs))
    assert len(order) == sum(BASE.widths.values()) - len(BASE.widths)  # each slot keeps one
    n = tpp.fewest_removals(problem, order)
    assert n is not None and n > 0
    assert problem.fits(tpp.widths_after(BASE.widths, order[:n]))
    assert not problem.fits(tpp.widths_after(BASE.widths, order[:n - 1]))
    result = tpp.prune_teacher(problem, teacher)
    assert result is not None and result.removed == n
    assert result.widths == tpp.widths_after(BASE.widths, order[:n])
    assert next(p.shape for p in teacher.parameters()) == (16, 1, 3, 3)  # the teacher is untouched


@needs_tp
def test_only_slot_channels_change(teacher: nn.Module) -> None:
    """The pruned teacher is the family's network at the planned widths, and every layer outside
    the slots keeps the teacher's weights exactly."""
    result = tpp.prune_teacher(problem_for(budget_at(0.3)), teacher)
    assert result is not None
    student = build(BASE.with_widths(result.widths))
    student.load_state_dict(result.model.state_dict())  # same structure, slot widths aside
    slot_modules = tuple(f"{s}.{m}." for s in BASE.widths for m in ("conv1", "bn1", "conv2"))
    before, after = teacher.state_dict(), result.model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        if not key.startswith(slot_modules):
            assert torch.equal(after[key], value), key
    changed = [key for key in before if before[key].shape != after[key].shape]
    assert changed and all(key.startswith(slot_modules) for key in changed)


@needs_tp
def test_the_least_important_channel_goes_first(teacher: nn.Module) -> None:
    """Group L2 magnitude: a channel with zero weights in its whole group ranks last."""
    import copy

    model = copy.deepcopy(teacher)
    block = model.get_submodule("layer2.1")
    with torch.no_grad():
        block.conv1.weight[5].zero_()
        block.bn1.weight[5] = 0.0
        block.bn1.bias[5] = 0.0
        block.conv2.weight[:, 5].zero_()
    tp = tpp.require()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=tpp.example_input(BASE))
    order = tpp.removal_order(tpp.slot_importance(tp, graph, model, tpp.slot_convs(model, BASE)))
    assert order[0] == ("layer2.1", 5)


@needs_tp
def test_one_channel_per_slot_is_as_far_as_it_goes(teacher: nn.Module) -> None:
    """Torch-Pruning removes channels down to one per slot, no further: a budget that student
    fits is reached; below it, none (another width of the first step may be cheaper on a noisy
    LUT, but Torch-Pruning's bisection ends at one channel per slot)."""
    ones = BASE.with_widths(dict.fromkeys(BASE.widths, 1))
    tightest = MODEL.fixed_ms(ones) + sum(MODEL.slot_ms(ones, s, 1) for s in ones.widths)
    budget = tightest + len(BASE.widths) * 1e-3  # + the grid's rounding (1 us per slot)
    plan = make_plan("torch-pruning", budget, MODEL, BASE, teacher=teacher)
    assert plan.predicted_ms <= budget
    with pytest.raises(InfeasibleBudget):
        make_plan("torch-pruning", tightest * 0.99, MODEL, BASE, teacher=teacher)


@needs_tp
def test_wrong_teachers(teacher: nn.Module) -> None:
    with pytest.raises(InputError, match="needs the trained teacher"):
        make_plan("torch-pruning", budget_at(0.5), MODEL, BASE)
    thin = build(BASE.with_widths({s: w // 2 for s, w in BASE.widths.items()}))
    with pytest.raises(InputError, match="has 8 channels; the full resnet20 has 16"):
        make_plan("torch-pruning", budget_at(0.5), MODEL, BASE, teacher=thin)
    with pytest.raises(InputError, match="the full wrn-16-2 has 32"):
        make_plan("torch-pruning", 1e9, MODEL, full_spec("wrn-16-2", 32, 1, 10), teacher=teacher)


@needs_tp
def test_other_families() -> None:
    """DenseNet bottlenecks and pre-activation WRN blocks: the slot groups stay inside the slots."""
    for family in ("densenet-bc-40", "wrn-16-2"):
        base = full_spec(family, 32, 1, 10)
        torch.manual_seed(1)
        model = build(base).eval()
        budget = budget_at(0.5, base)
        plan = make_plan("torch-pruning", budget, MODEL, base, teacher=model)
        assert plan.predicted_ms <= budget and plan.spec.widths != base.widths


# -- without the extra ----------------------------------------------------------------------
@pytest.fixture
def no_torch_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import torch_pruning`` fails, as without ``perfstudent[compare]``."""
    monkeypatch.setitem(sys.modules, "torch_pruning", None)


@pytest.fixture
def synthetic_lut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "open_view", lambda target, lut: MODEL)
    monkeypatch.setattr(pipeline, "residuals", lambda target, lut, spec, view=None: ([], None, False))


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("t") / "teacher", BASE, acc=0.5, kind="train")


@pytest.mark.usefixtures("no_torch_pruning")
def test_without_the_extra_the_library_says_how_to_install(teacher: nn.Module) -> None:
    with pytest.raises(InputError, match=r"pip install 'perfstudent\[compare\]'"):
        make_plan("torch-pruning", 1.0, MODEL, BASE, teacher=teacher)
    make_plan("perf", 1e9, MODEL, BASE)  # the others do not care


@pytest.mark.usefixtures("no_torch_pruning", "synthetic_lut")
def test_without_the_extra_the_plan_command_exits_2(tmp_path: Path, teacher_run: Path) -> None:
    out = tmp_path / "p.json"
    result = CliRunner().invoke(cli, ["plan", "--budget", "1s", "--family", "resnet20",
                                      "--strategy", "torch-pruning", "--teacher", str(teacher_run),
                                      "--out", str(out)])
    assert HINT in one_line_error(result)
    assert not out.exists()


@pytest.mark.usefixtures("no_torch_pruning")
def test_without_the_extra_an_experiment_is_refused_before_it_writes(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text('[experiment]\nbudgets = [0.8]\nstrategies = ["perf", "torch-pruning"]\n'
                      '[data]\ndataset = "digits"\n')
    result = CliRunner().invoke(cli, ["experiment", "--config", str(config),
                                      "--out", str(tmp_path / "exp")])
    assert HINT in one_line_error(result)
    assert not (tmp_path / "exp").exists()


# -- the command line and the experiment --------------------------------------------------------
@needs_tp
@pytest.mark.usefixtures("synthetic_lut")
def test_plan_command_prunes_the_teacher_run(tmp_path: Path, teacher_run: Path) -> None:
    out = tmp_path / "tp.json"
    budget = budget_at(0.5)
    result = CliRunner().invoke(cli, ["plan", "--budget", f"{budget}ms", "--family", "resnet20",
                                      "--strategy", "torch-pruning", "--teacher", str(teacher_run),
                                      "--margin", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.strategy == "torch-pruning" and plan.predicted_ms <= budget
    assert plan.spec.input_size == 32 and plan.spec.in_channels == 1  # the teacher's dimensions
    assert plan.macs is not None and "M MACs" in result.output


@pytest.mark.usefixtures("synthetic_lut")
@pytest.mark.parametrize(("args", "message"), [
    ([], "give --teacher RUN"),
    (["--teacher", "@missing"], "run directory not found"),
    (["--teacher", "@run", "--input-size", "16"], "the plan is for the full resnet20 at 16px"),
    (["--teacher", "@run", "--num-classes", "100"], "100 classes"),
])
def test_plan_command_bad_teacher_exits_2(tmp_path: Path, teacher_run: Path, args: list[str],
                                          message: str) -> None:
    args = [str(teacher_run) if a == "@run" else str(tmp_path / "nope") if a == "@missing" else a
            for a in args]
    out = tmp_path / "p.json"
    result = CliRunner().invoke(cli, ["plan", "--budget", "1s", "--family", "resnet20",
                                      "--strategy", "torch-pruning", *args, "--out", str(out)])
    assert message in one_line_error(result)
    assert not out.exists()


def test_plan_command_will_not_write_over_the_teacher(tmp_path: Path, teacher_run: Path) -> None:
    before = (teacher_run / "best.pt").read_bytes()
    result = CliRunner().invoke(cli, ["plan", "--budget", "1s", "--family", "resnet20",
                                      "--strategy", "torch-pruning", "--teacher", str(teacher_run),
                                      "--out", str(teacher_run / "best.pt")])
    assert "also an input" in one_line_error(result)
    assert (teacher_run / "best.pt").read_bytes() == before


@needs_tp
def test_experiment_plan_step_gives_the_teacher(tmp_path: Path) -> None:
    """The experiment's plan step on a real LUT (rows written, not timed) and a teacher run for
    its data (8×8 digits)."""
    from perfstudent.experiment import planning as pl
    from perfstudent.experiment.actions import Context
    from perfstudent.experiment.config import from_dict
    from perfstudent.lut import Fingerprint, LatencyTable
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device
    from tests.lut_helpers import fill_lut

    lut = tmp_path / "lut.sqlite"
    fp = Fingerprint.for_backend(get_backend("onnxruntime", get_device("local"), 1))
    with LatencyTable.open(lut) as table:
        fill_lut(table, fp, "resnet20", 8, in_channels=1)
    config = from_dict({"experiment": {"budgets": [0.95], "strategies": ["torch-pruning"]},
                        "device": {"lut": str(lut)}, "data": {"dataset": "digits"}}, tmp_path)
    ctx = Context(config, tmp_path / "exp", lut, 8, 1, 10, progress=False)
    teacher_run = write_run(tmp_path / "teacher", ctx.full_spec(), acc=0.5, kind="train")
    budgets, out = tmp_path / "budgets.json", tmp_path / "plan.json"
    pl.budgets(ctx, budgets)
    pl.plan(ctx, "torch-pruning", "x0.95", budgets, teacher_run, None, out)
    assert pl.check_plan(out, "torch-pruning") is None
    data = json.loads(out.read_text())
    assert data["strategy"] == "torch-pruning" and data["macs"] > 0
    assert data["spec"]["widths"] != ctx.full_spec().widths
