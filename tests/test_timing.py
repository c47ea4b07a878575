"""The timing protocol on a fake clock: interleaving, the drift guard, re-measurement, estimators.

Items and the canary advance a fake clock by their cost; during injected slow
phases every cost is multiplied. Nothing here sleeps or reads a real clock.
"""

from __future__ import annotations

import pytest

from perfstudent.errors import InputError
from perfstudent.measurement import Measurement, TimingProtocol
from perfstudent.profiler.timing import DriftGuard, measure_interleaved

PROTOCOL = TimingProtocol(warmup_s=0.0, block_s=0.004, rounds=5, canary_every=2, slow_factor=1.15,
                          extra_rounds=20)


class Clock:
    def __init__(self, slow: list[tuple[float, float]] = (), factor: float = 2.0) -> None:
        self.t, self.slow, self.factor = 0.0, list(slow), factor
        self.log: list[tuple[str, float]] = []

    def item(self, name: str, cost_s: float):
        def call() -> None:
            slow = any(a <= self.t < b for a, b in self.slow)
            self.log.append((name, self.t))
            self.t += cost_s * (self.factor if slow else 1.0)
        return call

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def guard(self, protocol: TimingProtocol = PROTOCOL) -> DriftGuard:
        return DriftGuard(self.item("canary", 0.0005), protocol, self.timer, self.sleep)

    def timer(self, fn, inner: int) -> float:
        start = self.t
        for _ in range(inner):
            fn()
        return self.t - start


def run(clock: Clock, costs: dict[str, float], protocol: TimingProtocol = PROTOCOL,
        guard: DriftGuard | None = None) -> dict[str, Measurement]:
    guard = guard or clock.guard(protocol)
    found = measure_interleaved([clock.item(n, c) for n, c in costs.items()], protocol, clock.timer,
                                guard)
    return dict(zip(costs, found, strict=True))


COSTS = {"a": 0.001, "b": 0.0002, "c": 0.003}


def test_quiet_machine_gives_the_true_cost_from_rounds_samples() -> None:
    found = run(Clock(), COSTS)
    for name, cost in COSTS.items():
        assert found[name].ms == pytest.approx(cost * 1e3)
        assert len(found[name].samples_ms) == PROTOCOL.rounds and found[name].slow_ms == ()
        assert not found[name].noisy


def test_rounds_interleave_the_items() -> None:
    clock = Clock()
    run(clock, COSTS)
    order = [n for n, _ in clock.log if n != "canary"]
    starts = [i for i in range(1, len(order)) if order[i] != order[i - 1]]
    # every item is visited in every round: the item sequence changes at least 3 times a round
    assert len(starts) >= 3 * (PROTOCOL.rounds - 1)


def test_rows_taken_in_a_slow_phase_are_remeasured_and_the_figure_is_unaffected() -> None:
    clock = Clock(slow=[(0.02, 0.05), (0.09, 0.12)], factor=2.0)
    found = run(clock, COSTS)
    assert any(found[n].slow_ms for n in COSTS), "the slow phases must have hit some samples"
    for name, cost in COSTS.items():
        m = found[name]
        assert len(m.samples_ms) >= PROTOCOL.rounds
        assert m.ms == pytest.approx(cost * 1e3)  # only fast-phase samples count
        assert all(s == pytest.approx(2 * cost * 1e3) for s in m.slow_ms)


def test_a_measurement_wholly_in_a_slow_phase_is_caught_by_the_guards_history() -> None:
    clock = Clock(factor=1.5)
    guard = clock.guard()
    run(clock, {"warm": 0.001}, guard=guard)           # the guard learns the fast canary
    clock.slow = [(clock.t, clock.t + 2.0)]            # the next measurement starts in a 2 s phase
    found = run(clock, COSTS, guard=guard)
    for name, cost in COSTS.items():
        assert found[name].ms == pytest.approx(cost * 1e3)
    assert 1.5 < guard.waited_s < 2.1  # it waited the phase out instead of measuring inside it


def test_a_slow_phase_that_never_ends_is_flagged_not_hidden() -> None:
    clock = Clock(factor=1.5)
    guard = clock.guard()
    for _ in range(300):  # a long fast history: one slow measurement cannot pass for normal
        guard.sample()
    clock.slow = [(clock.t, 1e9)]
    found = run(clock, COSTS, guard=guard)
    for name, cost in COSTS.items():
        assert found[name].noisy
        assert found[name].ms == pytest.approx(1.5 * cost * 1e3)
    assert guard.waited_s == pytest.approx(PROTOCOL.max_wait_s, abs=0.06)  # one budget, not more


def test_without_a_canary_nothing_is_set_aside() -> None:
    clock = Clock(slow=[(0.0, 0.02)])
    protocol = TimingProtocol(warmup_s=0.0, block_s=0.004, rounds=5, canary_every=0)
    found = measure_interleaved([clock.item(n, c) for n, c in COSTS.items()], protocol, clock.timer)
    assert all(m.slow_ms == () and len(m.samples_ms) == 5 for m in found)


def test_estimators_and_the_record_round_trip() -> None:
    m = Measurement.from_samples([4.0, 1.0, 3.0, 2.0, 5.0], inner=7, slow_ms=[9.0])
    assert m.ms == pytest.approx(1.8) and m.with_estimator("min").ms == 1.0
    assert m.with_estimator("median").ms == 3.0 and m.spread == pytest.approx(2.0 / 3.0)
    back = Measurement.from_dict(m.to_dict())
    assert back == m and back.ms == m.ms
    for bad in ({"samples_ms": []}, {"samples_ms": [1.0, float("nan")]}, {"samples_ms": [-1.0]},
                {"samples_ms": [1.0], "estimator": "mode"}, {"samples_ms": "1.0"},
                {"samples_ms": [1.0], "inner": 0}, [1.0]):
        with pytest.raises(InputError):
            Measurement.from_dict(bad)


def test_protocol_values_are_checked() -> None:
    for bad in ({"rounds": 2}, {"block_s": 0.0}, {"slow_factor": 1.0}, {"estimator": "max"},
                {"group": 0}, {"canary_every": -1}):
        with pytest.raises(InputError):
            TimingProtocol(**bad)  # type: ignore[arg-type]
