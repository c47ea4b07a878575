"""Board detection, throttle/temperature parsing (fixtures of the real formats), the guard."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError, PerfStudentError
from perfstudent.measurement import Measurement
from perfstudent.profiler.board import (
    Board,
    ThrottleGuardRunner,
    batch_refused,
    is_raspberry_pi4,
    parse_measure_temp,
    parse_thermal_zone,
    parse_throttled,
    read_board_model,
    require_reachable,
)
from perfstudent.profiler.chains import Job, chain_job
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec, get_family
from perfstudent.students.widthspec import WidthSpec

FIX = Path(__file__).parent / "fixtures" / "board"


def test_board_model_detection() -> None:
    assert read_board_model(FIX / "model-rpi4b") == "Raspberry Pi 4 Model B Rev 1.4"
    assert is_raspberry_pi4(read_board_model(FIX / "model-rpi4b"))
    assert is_raspberry_pi4(read_board_model(FIX / "model-cm4"))
    assert not is_raspberry_pi4(read_board_model(FIX / "model-rpi3b"))
    assert read_board_model(FIX / "does-not-exist") is None and not is_raspberry_pi4(None)


@pytest.mark.parametrize(("name", "flags", "now", "occurred"), [
    ("ok", 0x0, 0, 0),
    ("occurred", 0x50000, 0, 0b0101),   # under-voltage + throttling since boot
    ("now", 0x50005, 0b0101, 0b0101),   # under-voltage and throttled right now
    ("softtemp", 0x80008, 0b1000, 0b1000),
])
def test_parse_throttled(name: str, flags: int, now: int, occurred: int) -> None:
    state = parse_throttled((FIX / f"get_throttled-{name}.txt").read_text())
    assert (state.flags, state.now, state.occurred) == (flags, now, occurred)
    assert state.throttled_now == (now != 0)
    if name == "now":
        assert "under-voltage" in state.describe() and "throttled" in state.describe()


def test_parse_temperatures_and_garbage() -> None:
    assert parse_thermal_zone((FIX / "thermal_zone0_temp").read_text()) == pytest.approx(47.712)
    assert parse_measure_temp((FIX / "measure_temp.txt").read_text()) == pytest.approx(47.7)
    for func in (parse_throttled, parse_thermal_zone, parse_measure_temp):
        with pytest.raises(PerfStudentError):
            func("VCHI initialization failed")


def _fake_vcgencmd(tmp_path: Path, sequence: list[str]) -> Path:
    """A ``vcgencmd`` script replaying fixture outputs of ``get_throttled`` in order."""
    (tmp_path / "seq").write_text("\n".join(str(FIX / f"get_throttled-{n}.txt") for n in sequence))
    script = tmp_path / "vcgencmd"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1\" = measure_temp ]; then cat {FIX / 'measure_temp.txt'}; exit 0; fi\n"
        f"n=$(cat {tmp_path}/count 2>/dev/null || echo 1)\n"
        f"f=$(sed -n \"${{n}}p\" {tmp_path}/seq); [ -n \"$f\" ] || f=$(tail -n1 {tmp_path}/seq)\n"
        f"echo $((n+1)) > {tmp_path}/count; cat \"$f\"\n")
    script.chmod(0o755)
    return script


def test_board_reads_through_vcgencmd_and_sysfs(tmp_path: Path) -> None:
    board = Board(str(_fake_vcgencmd(tmp_path, ["now"])), thermal_path=FIX / "thermal_zone0_temp")
    sample = board.sample()
    assert sample.throttle.flags == 0x50005 and sample.temp_c == pytest.approx(47.712)
    no_sysfs = Board(str(_fake_vcgencmd(tmp_path, ["ok"])), thermal_path=tmp_path / "none")
    assert no_sysfs.temperature() == pytest.approx(47.7)


def _matmul_ms(size: int) -> Measurement:
    """Three samples of a ``size`` x ``size`` matmul (a real, tiny measurement)."""
    a = np.ones((size, size), dtype=np.float32)
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a.T
        samples.append((time.perf_counter() - t0) * 1e3)
    return Measurement.from_samples(samples, inner=1, estimator="median")


class NumpyRunner:
    """A real (tiny) runner of the Runner protocol: times a matmul of the job's block width."""

    def __init__(self) -> None:
        self.calls: list[list[Job]] = []
        self.model_calls: list[list[WidthSpec]] = []
        self.closed = False

    def fingerprint(self) -> str:
        return "numpy-fingerprint"

    def width_alignment(self) -> int:
        return 4

    def run(self, jobs: Sequence[Job], on_result: Callable[[Job, Measurement], None]) -> None:
        self.calls.append(list(jobs))
        for job in jobs:
            on_result(job, _matmul_ms(job.chain.block.width))

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        self.model_calls.append(list(specs))
        return [_matmul_ms(sum(spec.widths.values())) for spec in specs]

    def close(self) -> None:
        self.closed = True


SPEC = full_spec("resnet20", input_size=8)
BLOCK = get_family("resnet20").block_shapes(SPEC)["layer1.0"]
JOBS = [chain_job(SPEC, "layer1.0", Chain(BLOCK.at(w))) for w in (1, 4, 8, 12, 16)]


def test_guard_refuses_a_throttled_batch_and_remeasures(tmp_path: Path) -> None:
    # batch 1: ok -> ok (kept); batch 2: ok -> throttled (refused), then ok -> ok (kept)
    script = _fake_vcgencmd(tmp_path, ["ok", "ok", "ok", "now", "ok", "ok"])
    inner, sleeps, got = NumpyRunner(), [], []  # type: ignore[var-annotated]
    guard = ThrottleGuardRunner(inner, Board(str(script), FIX / "thermal_zone0_temp"),
                                batch_size=3, cooldown_s=7.0, sleep=sleeps.append)
    guard.run(JOBS, lambda j, m: got.append(j))
    assert got == JOBS  # each row exactly once, in order, none from the refused attempt
    assert guard.refused == 1 and sleeps == [7.0]
    assert [len(c) for c in inner.calls] == [3, 2, 2]
    assert inner.calls[1] == inner.calls[2] == JOBS[3:]  # the refused batch measured again


def test_guard_passes_the_rest_of_the_runner_protocol_through(tmp_path: Path) -> None:
    # networks: ok -> throttled (refused), then ok -> ok (kept)
    script = _fake_vcgencmd(tmp_path, ["ok", "now", "ok", "ok"])
    inner, sleeps = NumpyRunner(), []  # type: ignore[var-annotated]
    guard = ThrottleGuardRunner(inner, Board(str(script), FIX / "thermal_zone0_temp"),
                                cooldown_s=3.0, sleep=sleeps.append)
    assert guard.fingerprint() == "numpy-fingerprint" and guard.width_alignment() == 4
    specs = [SPEC, SPEC.with_widths({"layer1.0": 4})]
    nets = guard.time_models(specs)
    assert len(nets) == 2 and all(len(n.samples_ms) == 3 for n in nets)
    assert inner.model_calls == [specs, specs] and guard.refused == 1 and sleeps == [3.0]
    guard.close()
    assert inner.closed


def test_guard_waits_while_throttled_then_fails(tmp_path: Path) -> None:
    assert batch_refused(parse_sample("occurred"), parse_sample("occurred")) is False
    assert batch_refused(parse_sample("ok"), parse_sample("occurred")) is True
    script = _fake_vcgencmd(tmp_path, ["now"])
    guard = ThrottleGuardRunner(NumpyRunner(), Board(str(script), FIX / "thermal_zone0_temp"),
                                max_waits=2, sleep=lambda s: None)
    with pytest.raises(PerfStudentError, match="still throttled"):
        guard.run(JOBS[:1], lambda j, m: None)


def parse_sample(name: str):  # type: ignore[no-untyped-def]
    from perfstudent.profiler.board import BoardSample

    return BoardSample(parse_throttled((FIX / f"get_throttled-{name}.txt").read_text()), 40.0)


def test_pi4_without_tracker_says_both_ways() -> None:
    pi4 = get_device("pi4")
    if pi4.reach == "local":
        pytest.skip("this machine is a Raspberry Pi 4")
    with pytest.raises(InputError) as info:
        require_reachable(pi4, tracker=None)
    assert "on the board itself" in str(info.value) and "--tracker HOST:PORT" in str(info.value)
    require_reachable(pi4, tracker="127.0.0.1:9190")  # no error with a tracker


def test_runs_on_a_pi4_are_guarded(tmp_path: Path) -> None:
    from dataclasses import replace

    from perfstudent.profiler.board import guard_on_board

    on_board = replace(get_device("pi4"), reach="local")  # as the descriptor reads on a Pi
    inner = NumpyRunner()
    board = Board(str(_fake_vcgencmd(tmp_path, ["ok"])), FIX / "thermal_zone0_temp")
    guarded = guard_on_board(inner, on_board, FIX / "model-rpi4b", board)
    assert isinstance(guarded, ThrottleGuardRunner) and guarded.inner is inner
    got: list[Job] = []
    guarded.run(JOBS[:2], lambda j, m: got.append(j))
    assert got == JOBS[:2]
    assert guard_on_board(inner, on_board, FIX / "model-rpi3b", board) is inner
    assert guard_on_board(inner, get_device("local"), FIX / "model-rpi4b", board) is inner
