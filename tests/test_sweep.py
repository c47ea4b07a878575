"""The sweep's series, residue classes, adaptive refinement, overhead term and resume.

The runner below is a test double for the *device*: it answers each chain with a
known cost formula (its blocks' costs + an entry cost) and each network with
``Σ blocks + 0.2 ms``, so the sweep logic can be checked against exact
expectations; real timing is covered in test_backends and the CLI tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from perfstudent.blockshape import BlockShape, Chain
from perfstudent.lut import Fingerprint, LatencyTable
from perfstudent.measurement import Measurement
from perfstudent.profiler.chains import Job
from perfstudent.profiler.sweep import SweepConfig, class_members, coarse_positions, fit_overhead, sweep
from perfstudent.students import full_spec, get_family
from perfstudent.students.widthspec import WidthSpec
from tests.lut_helpers import fingerprint, measurement

ENTRY_MS = 0.05  # what a chain's own entry and exit cost (graph input and output)
FIXED_MS = 0.2   # what a network costs beyond its blocks


def step_cost(block: BlockShape) -> float:
    """Staircase: grows with the number of 8-channel blocks of the slot width."""
    first = block.layers[0]
    return 0.001 * ((block.width + 7) // 8) * first.cin * first.height / first.stride


def two_staircases(block: BlockShape) -> float:
    """Multiples of 4 on a staircase of 16-channel steps, the other widths on a dearer line
    (ONNX Runtime at ``all`` on an AVX-512 CPU)."""
    first = block.layers[0]
    scale = 0.001 * first.cin * first.height / first.stride
    if block.width % 4 == 0:
        return scale * ((block.width + 15) // 16)
    return scale * (0.5 + block.width / 16)


def row_cost(block: BlockShape, cost: Callable[[BlockShape], float] = step_cost) -> float:
    """What the LUT should hold: the block's cost plus its anchor's entry (the block alone at full
    width: ``anchor + T(chain at w) - T(chain at full)``; the neighbours cancel)."""
    return cost(block) + ENTRY_MS


class FormulaRunner:
    def __init__(self, fail_after: int | None = None, spread: float = 0.0, alignment: int = 1,
                 cost: Callable[[BlockShape], float] = step_cost) -> None:
        self.calls: list[Job] = []
        self.fail_after, self.spread, self.alignment, self.cost = fail_after, spread, alignment, cost

    def fingerprint(self) -> Fingerprint:
        return fingerprint(width_alignment=self.alignment) if self.alignment > 1 else fingerprint()

    def width_alignment(self) -> int:
        return self.alignment

    def run(self, jobs: Sequence[Job], on_result: Callable[[Job, Measurement], None]) -> None:
        for job in jobs:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise KeyboardInterrupt
            self.calls.append(job)
            chain = job.chain
            ms = sum(self.cost(b) for b in (chain.before, chain.block, chain.after) if b) + ENTRY_MS
            on_result(job, measurement(ms, self.spread * ms))

    def network_ms(self, spec: WidthSpec) -> float:
        blocks = get_family(spec.family).block_shapes(spec)
        return sum(self.cost(b) for b in blocks.values()) + FIXED_MS

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        return [measurement(self.network_ms(s)) for s in specs]

    def close(self) -> None:
        pass


CONFIG = SweepConfig("resnet20", input_size=8)


def contexts(spec: WidthSpec) -> list[Chain]:
    return list(dict.fromkeys(get_family(spec.family).slot_chains(spec).values()))


def exhaustive_rows(spec: WidthSpec) -> int:
    """Every (context, width), plus one anchor per distinct block (the block alone at full)."""
    return sum(c.block.full for c in contexts(spec)) + len({c.block for c in contexts(spec)})


def test_classes_and_the_coarse_grid() -> None:
    assert class_members(6, 1) == [[1, 2, 3, 4, 5, 6]]
    assert class_members(9, 4) == [[4, 8], [1, 2, 3, 5, 6, 7, 9]]
    assert coarse_positions(16, 4) == [0, 4, 8, 12, 15]
    assert coarse_positions(3, 4) == [0, 1, 2]


def test_exhaustive_measures_every_row_once_and_fits_the_overhead(tmp_path: Path) -> None:
    runner = FormulaRunner()
    spec = full_spec("resnet20", 8)
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        report = sweep(table, runner, SweepConfig("resnet20", input_size=8, exhaustive=True), False)
        assert len(runner.calls) == len({j.chain for j in runner.calls}) == exhaustive_rows(spec)
        assert table.count(fingerprint()) == report.measured == len(runner.calls)
        view = table.view(fingerprint())
    # every slot row carries its anchor's entry, so the overhead term is FIXED_MS minus nine
    assert report.overhead_ms == pytest.approx(FIXED_MS - 9 * ENTRY_MS)
    student = spec.with_widths({"layer1.2": 3, "layer2.0": 30, "layer3.1": 41})
    assert view.predict(student).total_ms == pytest.approx(runner.network_ms(student))


def test_adaptive_finds_the_staircase_with_fewer_measurements(tmp_path: Path) -> None:
    runner = FormulaRunner()
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        sweep(table, runner, CONFIG, progress=False)
        view = table.view(fingerprint())
    spec = full_spec("resnet20", 8)
    assert len(runner.calls) <= 0.6 * exhaustive_rows(spec)
    for context in contexts(spec):
        for w in range(1, context.block.full + 1):
            assert view.chain_ms(context.at(w)) == pytest.approx(row_cost(context.block.at(w)))
    student = spec.with_widths({"layer2.1": 13, "layer3.0": 37})
    assert view.predict(student).total_ms == pytest.approx(runner.network_ms(student))


def test_residue_classes_follow_two_interleaved_staircases(tmp_path: Path) -> None:
    runner = FormulaRunner(alignment=4, cost=two_staircases)
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        sweep(table, runner, CONFIG, progress=False)
        view = table.view(fingerprint(width_alignment=4))
    spec = full_spec("resnet20", 8)
    assert len(runner.calls) <= 0.8 * exhaustive_rows(spec)
    for context in contexts(spec):
        for w in range(1, context.block.full + 1):
            assert view.chain_ms(context.at(w)) == pytest.approx(row_cost(context.block.at(w),
                                                                          two_staircases))


def test_differences_within_the_noise_are_not_chased(tmp_path: Path) -> None:
    quiet, noisy = FormulaRunner(), FormulaRunner(spread=0.9)  # IQR = 90% of the value
    with LatencyTable.open(tmp_path / "q.sqlite") as a, LatencyTable.open(tmp_path / "n.sqlite") as b:
        sweep(a, quiet, CONFIG, progress=False)
        sweep(b, noisy, CONFIG, progress=False)
    assert len(noisy.calls) < len(quiet.calls)


def test_killed_sweep_resumes_without_measuring_twice(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    first = FormulaRunner(fail_after=40)
    with LatencyTable.open(path) as table, pytest.raises(KeyboardInterrupt):
        sweep(table, first, CONFIG, progress=False)
    with LatencyTable.open(path) as table:
        assert table.count(fingerprint()) == 40
        second = FormulaRunner()
        sweep(table, second, CONFIG, progress=False)
        chains = {j.chain for j in first.calls}, {j.chain for j in second.calls}
        assert not chains[0] & chains[1]
        fresh = FormulaRunner()
        with LatencyTable.open(tmp_path / "fresh.sqlite") as other:
            sweep(other, fresh, CONFIG, progress=False)
        assert chains[0] | chains[1] == {j.chain for j in fresh.calls}
        assert table.count(fingerprint()) == len(fresh.calls)
        again = FormulaRunner()
        report = sweep(table, again, CONFIG, progress=False)
        assert again.calls == [] and report.measured == 0


def test_the_overhead_fit_recovers_fixed_and_scale() -> None:
    points = [(rows, 0.3 + 1.2 * rows) for rows in (0.5, 0.8, 1.1, 1.6)]
    fixed, scale, how = fit_overhead(points)
    assert (fixed, scale) == (pytest.approx(0.3), pytest.approx(1.2)) and how == "least squares"
    wild = [(0.5, 0.1), (0.6, 2.0), (0.7, 5.0)]  # a slope of 24: refused, median residual instead
    fixed, scale, how = fit_overhead(wild)
    assert scale == 1.0 and fixed == pytest.approx(1.4) and "median" in how
    assert fit_overhead([(1.0, 1.5), (1.0, 1.7)])[1] == 1.0  # too few distinct points


def test_no_overhead_fit_predicts_the_smallest_student_at_or_below_zero() -> None:
    """Noisy points (a load spike during the calibration): a steep line with a large negative
    intercept would predict the smallest student (rows 0.4 ms) at -0.5 ms: refused."""
    steep = [(1.0, 0.4), (2.0, 2.3), (3.0, 4.2)]  # slope 1.9 (in range), intercept -1.5
    assert fit_overhead(steep)[2] == "least squares"  # without a floor, accepted
    fixed, scale, how = fit_overhead(steep, floor_rows=0.4)
    assert (fixed, scale) == (pytest.approx(0.3), 1.0) and "median" in how  # of network - rows
    assert fixed + scale * 0.4 > 0
    hopeless = [(1.0, 0.2), (2.0, 0.3), (3.0, 0.4)]  # rows over-count: scale 0.1, residuals < -0.6
    fixed, scale, how = fit_overhead(hopeless, floor_rows=0.5)
    assert fixed == 0.0 and scale == pytest.approx(0.15) and "proportional" in how


class ColdNetworkRunner(FormulaRunner):
    """Blocks cost 25% more inside the whole network than in their chains (cold caches)."""

    def network_ms(self, spec: WidthSpec) -> float:
        blocks = get_family(spec.family).block_shapes(spec)
        return 1.25 * sum(self.cost(b) + ENTRY_MS for b in blocks.values()) + FIXED_MS


def test_a_network_dearer_than_its_chains_is_predicted_through_the_scale(tmp_path: Path) -> None:
    runner = ColdNetworkRunner()
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        report = sweep(table, runner, CONFIG, progress=False)
        view = table.view(fingerprint())
    spec = full_spec("resnet20", 8)
    assert view.scale(spec) == pytest.approx(1.25) and report.overhead_ms == pytest.approx(FIXED_MS)
    for student in (spec.with_widths({"layer2.1": 13, "layer3.0": 37}), spec.with_widths({"layer1.0": 1})):
        assert view.predict(student).total_ms == pytest.approx(runner.network_ms(student))
    assert view.slot_ms(spec, "layer2.1", 13) == pytest.approx(1.25 * view.slot_rows(
        spec.with_widths({"layer2.1": 13}))[4][2])
