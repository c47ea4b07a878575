"""Remote boards through Apache TVM's RPC tracker: a sharded, fault-tolerant sweep.

:class:`TrackerRunner` implements the Runner protocol
(:class:`perfstudent.profiler.runner.Runner`). For a round of jobs
(``run(jobs, on_result)``) or of whole networks (``time_models(specs)``) it

1. asks the tracker how many servers registered the device's key,
2. starts one worker thread per server; each requests its own session
   (``connect_tracker(host, port).request(key)``) and takes work from one
   shared queue,
3. per job: builds it here (``job.build()`` -> ONNX export -> Relax ->
   ``tvm.compile`` for the device's target -> shared object, serialised behind
   a lock; cross-linked with ``aarch64-linux-gnu-g++`` for a Pi), uploads the
   shared object, times it on the board (``vm.set_input`` + ``time_evaluator
   ("invoke_stateful")``, :func:`perfstudent.profiler.tvm_support.timing.time_vm`:
   not the interleaved protocol of local runs) and hands the row to the main
   thread, which calls ``on_result`` as rows arrive (so the caller may write
   SQLite there).

A server that disappears costs only its job in flight: the job goes back to
the queue and the other servers measure it. If every server is gone, the rows
that arrived are already delivered and a PerfStudentError names what is missing.
"""

from __future__ import annotations

import logging
import queue
import socket
import tempfile
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.measurement import Measurement, TimingProtocol
from perfstudent.profiler.tvm_support.build import (
    InputSpec,
    build_module,
    compiler_for,
    export_shared,
    random_inputs,
    resolve_target,
)
from perfstudent.profiler.tvm_support.timing import configure_threads, time_vm
from perfstudent.profiler.tvm_support.tuning import TuningState

if TYPE_CHECKING:
    from perfstudent.lut.fingerprint import Fingerprint
    from perfstudent.profiler.chains import Builder, Job
    from perfstudent.profiler.devices import Device
    from perfstudent.students.widthspec import WidthSpec

log = logging.getLogger(__name__)
OnResult = Callable[["Job", Measurement], None]


@dataclass(frozen=True)
class _Unit:
    """One thing to build and time on a board: a job's chain or a whole network."""

    key: Hashable  # a job's Chain, or ("model", index) in time_models
    label: str
    build: Builder = field(compare=False, repr=False)

    def __str__(self) -> str:
        return self.label


def parse_tracker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port), an InputError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--tracker must be HOST:PORT (e.g. 127.0.0.1:9190), got {text!r}")
    return host, int(port)


def tracker_listening(host: str, port: int, timeout_s: float = 5.0) -> bool:
    """True if something accepts TCP connections at host:port (checked without TVM)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def connect_tracker(host: str, port: int) -> Any:
    """A tracker client; a clear error at once if nothing listens there.

    (TVM's own client retries for tens of seconds and leaks sockets on failure.)
    """
    from tvm import rpc

    if not tracker_listening(host, port):
        raise PerfStudentError(f"cannot reach the TVM RPC tracker at {host}:{port}; start one: "
                               f"python -m tvm.exec.rpc_tracker --host {host} --port {port}")
    try:
        return rpc.connect_tracker(host, port)
    except (RuntimeError, OSError) as exc:
        raise PerfStudentError(f"cannot reach the TVM RPC tracker at {host}:{port} ({exc})"
                               ) from None


def server_count(client: Any, key: str) -> int:
    """Servers registered on the tracker under ``key`` (free or busy)."""
    summary = client.summary()
    return sum(1 for s in summary.get("server_info", []) if s.get("key") == f"server:{key}")


def make_tracker_runner(tracker: str, device: Device, backend: str,
                        protocol: TimingProtocol | None = None, threads: int | None = None,
                        **options: Any) -> TrackerRunner:
    """The Runner for ``--tracker HOST:PORT`` (called by ``profiler.runner.make_runner``).

    Boards behind a tracker run TVM-built code, so only ``backend="tvm"`` works;
    options: ``tune_trials``, ``tuning_dir``, ``key`` (default: the device's RPC key).
    """
    if backend != "tvm":
        raise InputError(f"--tracker needs --backend tvm (boards behind a TVM RPC tracker run "
                         f"TVM-built code), got --backend {backend}")
    known = {"tune_trials", "tuning_dir", "key", "session_timeout", "progress"}
    unknown = set(options) - known
    if unknown:
        raise InputError(f"unknown options for remote tvm: {', '.join(sorted(unknown))}")
    return TrackerRunner(device, tracker, protocol, threads, **options)


class TrackerRunner:
    """Time jobs and networks on every server of a key behind a TVM RPC tracker (module doc).

    Quacks like a Backend for fingerprinting: ``name``, ``device``, ``threads``,
    ``version()`` and ``settings()`` (target, pipeline, tuning state, rpc key).
    """

    name = "tvm"

    def __init__(self, device: Device, tracker: str, protocol: TimingProtocol | None = None,
                 threads: int | None = None, key: str | None = None, tune_trials: int | str = 0,
                 tuning_dir: Path | None = None, session_timeout: float = 0,
                 progress: bool = True) -> None:
        self.device = device
        self.host, self.port = parse_tracker(tracker)
        self.key = key or device.rpc_key or device.name
        self.protocol = protocol or TimingProtocol()
        self.threads = threads or device.default_threads
        self.target = resolve_target(device)
        self.compiler = compiler_for(self.target, device)
        export_shared_check(self.compiler)
        self.tuning = TuningState(self.target, tune_trials, tuning_dir)
        self.session_timeout, self.progress = session_timeout, progress
        self._lock = threading.Lock()
        self._built: dict[Hashable, tuple[Path, list[InputSpec]]] = {}
        self._tmp_path = Path(tempfile.gettempdir())

    def version(self) -> str:
        import tvm

        return str(tvm.__version__)

    def settings(self) -> dict[str, Any]:
        return ({"target": str(self.target), "pipeline": "zero", "rpc_key": self.key}
                | self.tuning.settings())

    def fingerprint(self) -> Fingerprint:
        """The LUT fingerprint of rows from these boards (device, TVM version, settings)."""
        from perfstudent.lut.fingerprint import Fingerprint

        return Fingerprint.for_backend(self)  # type: ignore[arg-type,unused-ignore]

    def width_alignment(self) -> int:
        """TVM's kernels have no channel blocking the sweep must follow."""
        return 1

    def close(self) -> None:
        """Nothing held between runs: sessions live for one ``run`` / ``time_models``."""

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Measure each distinct job (by chain) once on some server; rows go to ``on_result``."""
        by_key: dict[Hashable, Job] = {job.chain: job for job in jobs}
        units = [_Unit(key, str(key), job.build) for key, job in by_key.items()]
        self._run_units(units, lambda unit, m: on_result(by_key[unit.key], m), "row")

    def time_models(self, specs: Sequence[WidthSpec]) -> list[Measurement]:
        """End-to-end latency of each student of ``specs`` (batch 1), on the servers of the key."""
        units = [_Unit(("model", i), f"{spec.family} network {i}", _network_builder(spec))
                 for i, spec in enumerate(specs)]
        got: dict[Hashable, Measurement] = {}
        self._run_units(units, lambda unit, m: got.__setitem__(unit.key, m), "network")
        return [got[unit.key] for unit in units]

    def _run_units(self, units: list[_Unit], deliver: Callable[[_Unit, Measurement], None],
                   what: str) -> None:
        if not units:
            return
        servers = server_count(connect_tracker(self.host, self.port), self.key)
        if servers == 0:
            raise PerfStudentError(
                f"no RPC server with key {self.key!r} is registered on the tracker at "
                f"{self.host}:{self.port}; on each board run: perfstudent serve --tracker "
                f"{self.host}:{self.port} --key {self.key}")
        with tempfile.TemporaryDirectory(prefix="perfstudent-rpc-") as tmp:
            self._tmp_path = Path(tmp)
            self._built.clear()
            if self.tuning.trials:
                # tune first: MetaSchedule measures candidates on the same boards, which the
                # sweep's workers would otherwise hold for its whole duration
                self._tune_all(units, what)
            _Sweep(self, units, servers, what).run(deliver)

    def _tune_all(self, units: list[_Unit], what: str) -> None:
        from tqdm import tqdm

        for unit in tqdm(units, desc=f"tune {self.key}", unit=what, disable=not self.progress):
            self.build(unit)

    # -- per-worker pieces (called from worker threads) --------------------------------------
    def request_session(self) -> Any:
        client = connect_tracker(self.host, self.port)
        return client.request(self.key, priority=1, session_timeout=self.session_timeout)

    def build(self, unit: _Unit) -> tuple[Path, list[InputSpec]]:
        """Build ``unit`` once (under a lock: builds are CPU-bound here) as a shared object.

        ``unit.build()`` -> ONNX export -> Relax -> ``tvm.compile`` for the board's
        target (tuned under the graph's structure key) -> shared object; also its inputs.
        """
        from perfstudent.profiler.tvm_support.student import onnx_module

        with self._lock:
            if unit.key not in self._built:
                path = self._tmp_path / f"module{len(self._built)}.so"
                mod, inputs, tune_key = onnx_module(*unit.build())
                executable = build_module(mod, self.target, self.tuning, tune_key=tune_key,
                                          tune_on=self._tune_on())
                self._built[unit.key] = (export_shared(executable, path, self.compiler), inputs)
            return self._built[unit.key]

    def _tune_on(self) -> tuple[Any, Any] | None:
        """Tuning candidates are measured on the boards themselves (UNTESTED on real boards)."""
        if self.tuning.trials == 0:
            return None
        from perfstudent.profiler.tvm_support.tuning import rpc_tuning

        return rpc_tuning(self.host, self.port, self.key, self.compiler)

    def time_remote(self, session: Any, path: Path, inputs: list[InputSpec]) -> Measurement:
        """Upload ``path``, load it in a Relax VM on the board, set random inputs, time it."""
        from tvm import relax

        # bytes, not a path: TVM's upload(path) leaves the file open
        session.upload(bytearray(path.read_bytes()), target=path.name)
        dev = session.cuda(0) if self.device.kind == "cuda" else session.cpu(0)
        vm = relax.VirtualMachine(session.load_module(path.name), dev)
        vm.set_input("main", *random_inputs(inputs, dev))
        return time_vm(vm, dev, self.protocol)


def export_shared_check(compiler: str | None) -> None:
    """Fail before any work if the (cross) compiler needed for shared objects is missing."""
    import shutil

    from perfstudent.profiler.tvm_support.build import CROSS_PACKAGES

    if compiler is not None and shutil.which(compiler) is None:
        package = CROSS_PACKAGES.get(compiler, f"the cross compiler providing {compiler}")
        raise InputError(f"cross compiler {compiler} not found; install it "
                         f"(Debian/Ubuntu: sudo apt install {package})")


def _network_builder(spec: WidthSpec) -> Builder:
    """Builds the student ``spec`` and names its one input ``(1, C, H, W)``."""
    def build() -> tuple[Any, list[tuple[int, ...]]]:
        from perfstudent.students import build as build_student

        return build_student(spec), [(1, spec.in_channels, spec.input_size, spec.input_size)]

    return build


_GONE = ("kShutdown", "Broken pipe", "Connection reset", "Socket", "closed", "EOF")


def _alive(session: Any, error: Exception) -> bool:
    """Is the server still there after ``error``? (a transport error, or a fresh round trip)"""
    if any(word in str(error) for word in _GONE):
        return False
    try:
        session.get_function("runtime.config_threadpool")  # a round trip to the server
        return True
    except Exception:  # any failure means the session is gone
        return False


class _Sweep:
    """One sharded run: a shared work queue, one worker per server, results to the caller."""

    def __init__(self, runner: TrackerRunner, units: list[_Unit], servers: int,
                 what: str = "row") -> None:
        self.runner, self.units, self.servers, self.what = runner, units, servers, what
        self.work: queue.Queue[_Unit] = queue.Queue()
        for unit in units:
            self.work.put(unit)
        self.results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()

    def run(self, deliver: Callable[[_Unit, Measurement], None]) -> None:
        from tqdm import tqdm

        workers = [threading.Thread(target=self._worker, args=(i,), daemon=True,
                                    name=f"rpc-worker-{i}") for i in range(self.servers)]
        for worker in workers:
            worker.start()
        done: set[Hashable] = set()
        failed: dict[_Unit, str] = {}
        bar = tqdm(total=len(self.units), desc=f"rpc {self.runner.key}", unit=self.what,
                   disable=not self.runner.progress)
        try:
            while len(done) + len(failed) < len(self.units):
                try:
                    kind, payload = self.results.get(timeout=0.2)
                except queue.Empty:
                    if not any(w.is_alive() for w in workers) and self.results.empty():
                        break
                    continue
                self._handle(kind, payload, done, failed, deliver, bar)
        finally:
            self.stop.set()
            bar.close()
        self._report(done, failed)

    def _handle(self, kind: str, payload: Any, done: set[Hashable], failed: dict[_Unit, str],
                deliver: Callable[[_Unit, Measurement], None], bar: Any) -> None:
        if kind == "row":
            unit, measurement = payload
            if unit.key not in done:  # a re-queued job could in principle come back twice
                done.add(unit.key)
                deliver(unit, measurement)
                bar.update(1)
        elif kind == "failed":
            unit, message = payload
            failed[unit] = message
            bar.update(1)
        elif kind == "lost":
            log.warning("%s", payload)
        elif kind == "fatal":
            raise payload

    def _report(self, done: set[Hashable], failed: dict[_Unit, str]) -> None:
        missing = [u for u in self.units if u.key not in done and u not in failed]
        if missing:
            raise PerfStudentError(
                f"every RPC server of key {self.runner.key!r} was lost: {len(done)} rows were "
                f"stored, {len(missing)} are missing (first: {missing[0]}); re-run the same "
                "command when servers are back to measure only the missing rows")
        if failed:
            unit, message = next(iter(failed.items()))
            raise PerfStudentError(f"{len(failed)} {self.what}s failed on the board (first: "
                                   f"{unit}: {message}); {len(done)} rows were stored")

    def _worker(self, index: int) -> None:
        try:
            session = self.runner.request_session()
            configure_threads(self.runner.threads, session)
        except Exception as exc:  # a server that cannot be had is "lost"
            self.results.put(("lost", f"rpc worker {index}: no session ({exc})"))
            return
        while not self.stop.is_set():
            try:
                unit = self.work.get(timeout=0.1)
            except queue.Empty:
                continue
            if not self._measure(index, session, unit):
                return

    def _measure(self, index: int, session: Any, unit: _Unit) -> bool:
        """Measure one unit; False if this worker's server is gone (unit re-queued)."""
        try:
            path, inputs = self.runner.build(unit)
        except Exception as exc:  # a local build error stops the sweep
            self.results.put(("fatal", exc if isinstance(exc, PerfStudentError) else
                              PerfStudentError(f"building {unit} failed: {exc}")))
            self.stop.set()
            return False
        try:
            measurement = self.runner.time_remote(session, path, inputs)
        except Exception as exc:  # decide below: server gone, or this job
            if _alive(session, exc):
                self.results.put(("failed", (unit, str(exc).strip().splitlines()[-1])))
                return True
            self.work.put(unit)
            self.results.put(("lost", f"rpc worker {index}: server lost, {unit} re-queued"))
            return False
        self.results.put(("row", (unit, measurement)))
        return True
