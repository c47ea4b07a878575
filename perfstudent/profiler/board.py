"""On the board itself: detect a Raspberry Pi 4, read throttling and temperature.

``vcgencmd get_throttled`` prints ``throttled=0x50005``: bit flags of the
firmware (Raspberry Pi documentation, "vcgencmd")::

    bit 0  under-voltage now          bit 16 under-voltage has occurred
    bit 1  ARM frequency capped now   bit 17 frequency capping has occurred
    bit 2  throttled now              bit 18 throttling has occurred
    bit 3  soft temperature limit now bit 19 soft temperature limit has occurred

The "has occurred" bits are sticky until reboot, so a batch of rows is refused
when a *current* bit is set before or after it, or an "occurred" bit appears
that was not set before it. :class:`ThrottleGuardRunner` wraps any Runner
(:class:`perfstudent.profiler.runner.Runner`; it does not look inside the jobs)
with that check and re-measures refused batches after a cool-down.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from perfstudent.errors import InputError, PerfStudentError

if TYPE_CHECKING:
    from perfstudent.measurement import Measurement
    from perfstudent.profiler.devices import Device
    from perfstudent.students.widthspec import WidthSpec

log = logging.getLogger(__name__)

MODEL_PATH = Path("/proc/device-tree/model")
THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
_FLAG_NAMES = ("under-voltage", "frequency capped", "throttled", "soft temperature limit")


def read_board_model(path: Path = MODEL_PATH) -> str | None:
    """The device-tree model string (NUL-terminated in the file), or None if absent."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    return text.rstrip("\x00\n ").strip() or None


def is_raspberry_pi4(model: str | None) -> bool:
    """True for "Raspberry Pi 4 Model B ..." and the Compute Module 4 (same SoC, BCM2711)."""
    return bool(model) and bool(re.match(r"Raspberry Pi (4|Compute Module 4)\b", model or ""))


def on_raspberry_pi4(path: Path = MODEL_PATH) -> bool:
    return is_raspberry_pi4(read_board_model(path))


@dataclass(frozen=True)
class ThrottleState:
    """Decoded ``get_throttled`` flags (``flags`` is the raw integer)."""

    flags: int

    @property
    def now(self) -> int:
        return self.flags & 0xF

    @property
    def occurred(self) -> int:
        return (self.flags >> 16) & 0xF

    @property
    def throttled_now(self) -> bool:
        return self.now != 0

    def describe(self) -> str:
        now = [n for i, n in enumerate(_FLAG_NAMES) if self.now >> i & 1]
        past = [n for i, n in enumerate(_FLAG_NAMES) if self.occurred >> i & 1]
        return (f"0x{self.flags:x} (now: {', '.join(now) or 'none'}; "
                f"since boot: {', '.join(past) or 'none'})")


def parse_throttled(text: str) -> ThrottleState:
    """Parse ``vcgencmd get_throttled`` output (``throttled=0x50005``)."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not match:
        raise PerfStudentError(f"cannot parse vcgencmd get_throttled output: {text.strip()!r}")
    return ThrottleState(int(match.group(1), 0))


def parse_thermal_zone(text: str) -> float:
    """``/sys/class/thermal/thermal_zone0/temp`` holds millidegrees Celsius -> degrees C."""
    try:
        return int(text.strip()) / 1000.0
    except ValueError:
        raise PerfStudentError(f"cannot parse thermal zone temperature {text.strip()!r}") from None


def parse_measure_temp(text: str) -> float:
    """``vcgencmd measure_temp`` prints ``temp=48.3'C`` -> 48.3 (degrees C)."""
    match = re.search(r"temp=([-\d.]+)", text)
    if not match:
        raise PerfStudentError(f"cannot parse vcgencmd measure_temp output: {text.strip()!r}")
    return float(match.group(1))


@dataclass(frozen=True)
class BoardSample:
    throttle: ThrottleState
    temp_c: float | None


class Board:
    """Reads a board's throttle flags and temperature (``vcgencmd``, sysfs)."""

    def __init__(self, vcgencmd: str | None = None, thermal_path: Path = THERMAL_PATH) -> None:
        self.vcgencmd = vcgencmd or shutil.which("vcgencmd") or "/usr/bin/vcgencmd"
        self.thermal_path = thermal_path

    def _vcgencmd(self, *args: str) -> str:
        try:
            return subprocess.run([self.vcgencmd, *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise PerfStudentError(f"cannot run {self.vcgencmd} {' '.join(args)}: {exc}") from None

    def temperature(self) -> float | None:
        try:
            return parse_thermal_zone(self.thermal_path.read_text())
        except OSError:
            pass
        try:
            return parse_measure_temp(self._vcgencmd("measure_temp"))
        except PerfStudentError:
            return None

    def sample(self) -> BoardSample:
        return BoardSample(parse_throttled(self._vcgencmd("get_throttled")), self.temperature())


class SampledBoard(Protocol):
    def sample(self) -> BoardSample: ...


def batch_refused(before: BoardSample, after: BoardSample) -> bool:
    """A batch is refused if throttling is active at either end or newly occurred during it."""
    new = after.throttle.occurred & ~before.throttle.occurred
    return before.throttle.throttled_now or after.throttle.throttled_now or new != 0


J = TypeVar("J")


class Runner(Protocol[J]):
    """The Runner protocol (:class:`perfstudent.profiler.runner.Runner`) over any kind of job."""

    def fingerprint(self) -> Any: ...

    def width_alignment(self) -> int: ...

    def run(self, jobs: Sequence[J], on_result: Callable[[J, Measurement], None]) -> None: ...

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]: ...

    def close(self) -> None: ...


class ThrottleGuardRunner(Generic[J]):
    """Wrap a Runner: rows of a batch measured while the board throttled are re-measured.

    Per batch of ``batch_size`` jobs: sample the board, wait (``cooldown_s``,
    up to ``max_waits`` times) while it is throttled, run the batch into a
    buffer, sample again; deliver the buffer only if :func:`batch_refused` is
    False, else cool down and re-measure the batch (at most ``max_retries``).
    Whole networks (:meth:`time_models`) are guarded the same way, all of one
    call as one batch.
    """

    def __init__(self, inner: Runner[J], board: SampledBoard, batch_size: int = 8,
                 cooldown_s: float = 60.0, max_retries: int = 3, max_waits: int = 10,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if batch_size < 1:
            raise InputError("batch_size must be >= 1")
        self.inner, self.board, self.batch_size = inner, board, batch_size
        self.cooldown_s, self.max_retries, self.max_waits = cooldown_s, max_retries, max_waits
        self.sleep = sleep
        self.refused = 0  # batches refused so far (for reports and tests)

    def fingerprint(self) -> Any:
        return self.inner.fingerprint()

    def width_alignment(self) -> int:
        return self.inner.width_alignment()

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        """Whole networks: one guarded call of the inner runner, retried like a batch."""
        for _attempt in range(self.max_retries + 1):
            before = self._cool()
            measurements = self.inner.time_models(specs)
            after = self.board.sample()
            if not batch_refused(before, after):
                return measurements
            self.refused += 1
            log.warning("refused %d networks measured while throttled (%s -> %s)",
                        len(measurements), before.throttle.describe(), after.throttle.describe())
            self.sleep(self.cooldown_s)
        raise PerfStudentError(f"every attempt at {len(specs)} networks was throttled; improve "
                               "cooling or power supply")

    def close(self) -> None:
        self.inner.close()

    def run(self, jobs: Sequence[J], on_result: Callable[[J, Measurement], None]) -> None:
        for start in range(0, len(jobs), self.batch_size):
            self._run_batch(list(jobs[start:start + self.batch_size]), on_result)

    def _cool(self) -> BoardSample:
        sample = self.board.sample()
        for _ in range(self.max_waits):
            if not sample.throttle.throttled_now:
                return sample
            log.warning("board throttled (%s, %s C): cooling down %.0f s",
                        sample.throttle.describe(), sample.temp_c, self.cooldown_s)
            self.sleep(self.cooldown_s)
            sample = self.board.sample()
        raise PerfStudentError(f"board still throttled after {self.max_waits} cool-downs: "
                               f"{sample.throttle.describe()}, {sample.temp_c} C; "
                               "improve cooling or power supply")

    def _run_batch(self, batch: list[J], on_result: Callable[[J, Measurement], None]) -> None:
        for _attempt in range(self.max_retries + 1):
            before = self._cool()
            buffer: list[tuple[J, Measurement]] = []
            self.inner.run(batch, _collector(buffer))
            after = self.board.sample()
            if not batch_refused(before, after):
                for job, measurement in buffer:
                    on_result(job, measurement)
                return
            self.refused += 1
            log.warning("refused %d rows measured while throttled (%s -> %s, %s -> %s C)",
                        len(buffer), before.throttle.describe(), after.throttle.describe(),
                        before.temp_c, after.temp_c)
            self.sleep(self.cooldown_s)
        raise PerfStudentError(f"every attempt at a batch of {len(batch)} rows was throttled; "
                               "improve cooling or power supply")


def _collector(buffer: list[tuple[J, Measurement]]) -> Callable[[J, Measurement], None]:
    return lambda job, measurement: buffer.append((job, measurement))


def guard_on_board(runner: Any, device: Device, model_path: Path = MODEL_PATH,
                   board: SampledBoard | None = None) -> Any:
    """``runner`` wrapped in a ThrottleGuardRunner when running on the Pi 4 itself."""
    if device.properties.get("board") == "raspberry-pi-4" and device.reach == "local" \
            and on_raspberry_pi4(model_path):
        return ThrottleGuardRunner(runner, board or Board())
    return runner


def require_reachable(device: Device, tracker: str | None) -> None:
    """A board device run here needs this machine to be that board, or a --tracker."""
    if tracker is not None or device.reach == "local":
        return
    key = device.rpc_key or device.name
    raise InputError(
        f"device {device.name!r} is not this machine and no --tracker was given. Either run "
        f"perfstudent on the board itself, or start a TVM RPC server there "
        f"(perfstudent serve --tracker HOST:PORT --key {key}, or python -m tvm.exec.rpc_server "
        f"--tracker HOST:PORT --key {key}) and pass --tracker HOST:PORT"
    )
