"""The sweep's rounds, adaptive refinement and resume, driven by a synthetic-cost runner.

The runner below is a test double for the *device*: it answers each shape with a
known cost formula (a staircase in channels) so the sweep logic can be checked
against exact expectations; real timing is covered in test_backends and the CLI tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from perfstudent.convshape import ConvShape
from perfstudent.lut import Fingerprint, LatencyTable
from perfstudent.profiler.measurement import Measurement
from perfstudent.profiler.sweep import SweepConfig, coarse_widths, sweep
from perfstudent.students import family_shapes, full_spec
from perfstudent.students.widthspec import WidthSpec
from tests.lut_helpers import fingerprint, measurement


def step_cost(shape: ConvShape) -> float:
    """Staircase: cost grows with the number of 8-channel blocks of cin and cout."""
    return 0.001 * ((shape.cin + 7) // 8) * ((shape.cout + 7) // 8) * shape.out_height * shape.out_width


class FormulaRunner:
    def __init__(self, fail_after: int | None = None, spread: float = 0.0) -> None:
        self.calls: list[ConvShape] = []
        self.fail_after = fail_after
        self.spread = spread  # relative half-spread of the three repeats

    def fingerprint(self) -> Fingerprint:
        return fingerprint()

    def run(self, shapes: Sequence[ConvShape], on_result: Callable[[ConvShape, Measurement], None]) -> None:
        for shape in shapes:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise KeyboardInterrupt
            self.calls.append(shape)
            cost = step_cost(shape)
            on_result(shape, measurement(cost, self.spread * cost))

    def time_model(self, spec: WidthSpec) -> Measurement:
        from perfstudent.students import conv_shapes

        return measurement(sum(step_cost(layer.shape) for layer in conv_shapes(spec)) + 0.2)

    def close(self) -> None:
        pass


CONFIG = SweepConfig("resnet20", input_size=8)


def test_coarse_grid() -> None:
    assert coarse_widths(16, 4) == [1, 4, 8, 12, 16]
    assert coarse_widths(3, 4) == [1, 2, 3]


def test_exhaustive_measures_every_family_shape_once(tmp_path: Path) -> None:
    runner = FormulaRunner()
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        report = sweep(table, runner, SweepConfig("resnet20", input_size=8, exhaustive=True), False)
        expected = set(family_shapes("resnet20", 8))
        assert set(runner.calls) == expected and len(runner.calls) == len(expected)
        assert table.count(fingerprint()) == len(expected) == report.measured
        # overhead: network (= sum + 0.2 by construction) minus the rows
        assert report.overhead_ms == pytest.approx(0.2)


def test_adaptive_finds_the_staircase_with_fewer_measurements(tmp_path: Path) -> None:
    runner = FormulaRunner()
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        sweep(table, runner, CONFIG, progress=False)
        view = table.view(fingerprint())
    shapes = family_shapes("resnet20", 8)
    assert len(runner.calls) <= 0.6 * len(shapes)
    errors = [abs(view.layer_ms(s) / step_cost(s) - 1) for s in shapes]
    assert max(errors) < 1e-9  # a pure staircase is reproduced exactly
    spec = full_spec("resnet20", 8).with_widths({"layer2.1": 13, "layer3.0": 37})
    assert view.predict(spec).total_ms == pytest.approx(runner.time_model(spec).median_ms)


def test_differences_within_the_noise_are_not_chased(tmp_path: Path) -> None:
    quiet, noisy = FormulaRunner(), FormulaRunner(spread=0.9)  # IQR = 90% of the median
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
        assert not set(first.calls) & set(second.calls)
        fresh = FormulaRunner()
        with LatencyTable.open(tmp_path / "fresh.sqlite") as other:
            sweep(other, fresh, CONFIG, progress=False)
        assert set(first.calls) | set(second.calls) == set(fresh.calls)
        assert table.count(fingerprint()) == len(fresh.calls)
        again = FormulaRunner()
        report = sweep(table, again, CONFIG, progress=False)
        assert again.calls == [] and report.measured == 0
