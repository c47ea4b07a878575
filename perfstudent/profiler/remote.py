"""Remote boards through Apache TVM's RPC tracker: a sharded, fault-tolerant sweep.

:class:`TrackerRunner` implements the Runner protocol
(``run(shapes, on_result)``). For a batch of ConvShapes it

1. asks the tracker how many servers registered the device's key,
2. starts one worker thread per server; each requests its own session
   (``connect_tracker(host, port).request(key)``) and takes shapes from one
   shared queue,
3. per shape: builds it here for the device's target (serialised behind a lock;
   cross-linked with ``aarch64-linux-gnu-g++`` for a Pi), uploads the shared
   object, times it on the board (``vm.set_input`` + ``time_evaluator
   ("invoke_stateful")``) and hands the row to the main thread, which calls
   ``on_result`` as rows arrive (so the caller may write SQLite there).

A server that disappears costs only its row in flight: the shape goes back to
the queue and the other servers measure it. If every server is gone, the rows
that arrived are already delivered and a PerfStudentError names what is missing.
"""

from __future__ import annotations

import logging
import queue
import socket
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.profiler.measurement import Measurement, TimingProtocol
from perfstudent.profiler.tvm_support.build import (
    InputSpec,
    build_module,
    compiler_for,
    conv_inputs,
    conv_module,
    export_shared,
    random_inputs,
    resolve_target,
)
from perfstudent.profiler.tvm_support.timing import configure_threads, time_vm
from perfstudent.profiler.tvm_support.tuning import TuningState

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.devices import Device
    from perfstudent.students.widthspec import WidthSpec

log = logging.getLogger(__name__)
OnResult = Callable[["ConvShape", Measurement], None]


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
    """Time ConvShapes on every server of a key behind a TVM RPC tracker (see module doc).

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
        self._built: dict[ConvShape, Path] = {}
        self._tmp_path = Path(tempfile.gettempdir())

    def version(self) -> str:
        import tvm

        return str(tvm.__version__)

    def settings(self) -> dict[str, Any]:
        return ({"target": str(self.target), "pipeline": "zero", "rpc_key": self.key}
                | self.tuning.settings())

    def fingerprint(self) -> Any:
        """The LUT fingerprint of rows from these boards (device, TVM version, settings)."""
        from perfstudent.lut.fingerprint import Fingerprint

        return Fingerprint.for_backend(self)  # type: ignore[arg-type,unused-ignore]

    def close(self) -> None:
        """Nothing held between runs: sessions live for one ``run`` / ``time_model``."""

    def time_model(self, spec: WidthSpec) -> Measurement:
        """End-to-end latency of the student ``spec`` on one board of the key."""
        from perfstudent.profiler.tvm_support.student import student_module

        mod, inputs = student_module(spec, batch=1)
        executable = build_module(mod, self.target, self.tuning, tune_key=None,
                                  tune_on=self._tune_on())
        with tempfile.TemporaryDirectory(prefix="perfstudent-rpc-") as tmp:
            path = export_shared(executable, Path(tmp) / "student.so", self.compiler)
            if server_count(connect_tracker(self.host, self.port), self.key) == 0:
                raise PerfStudentError(f"no RPC server with key {self.key!r} is registered on "
                                       f"the tracker at {self.host}:{self.port}")
            session = self.request_session()
            configure_threads(self.threads, session)
            return self.time_remote(session, path, inputs)

    def run(self, shapes: Sequence[ConvShape], on_result: OnResult) -> None:
        """Measure each distinct shape once on some server of the key; rows go to ``on_result``."""
        todo = list(dict.fromkeys(shapes))
        if not todo:
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
                self._tune_all(todo)
            _Sweep(self, todo, servers).run(on_result)

    def _tune_all(self, shapes: list[ConvShape]) -> None:
        from tqdm import tqdm

        for shape in tqdm(shapes, desc=f"tune {self.key}", unit="layer",
                          disable=not self.progress):
            self.build(shape)

    # -- per-worker pieces (called from worker threads) --------------------------------------
    def request_session(self) -> Any:
        client = connect_tracker(self.host, self.port)
        return client.request(self.key, priority=1, session_timeout=self.session_timeout)

    def build(self, shape: ConvShape) -> Path:
        """Build (once, under a lock: builds are CPU-bound here) and export ``shape``."""
        with self._lock:
            if shape not in self._built:
                path = self._tmp_path / f"layer{len(self._built)}.so"
                executable = build_module(conv_module(shape), self.target, self.tuning,
                                          tune_key=shape.key(), tune_on=self._tune_on())
                self._built[shape] = export_shared(executable, path, self.compiler)
            return self._built[shape]

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

    def __init__(self, runner: TrackerRunner, shapes: list[ConvShape], servers: int) -> None:
        self.runner, self.shapes, self.servers = runner, shapes, servers
        self.work: queue.Queue[ConvShape] = queue.Queue()
        for shape in shapes:
            self.work.put(shape)
        self.results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()

    def run(self, on_result: OnResult) -> None:
        from tqdm import tqdm

        workers = [threading.Thread(target=self._worker, args=(i,), daemon=True,
                                    name=f"rpc-worker-{i}") for i in range(self.servers)]
        for worker in workers:
            worker.start()
        done: set[ConvShape] = set()
        failed: dict[ConvShape, str] = {}
        bar = tqdm(total=len(self.shapes), desc=f"rpc {self.runner.key}", unit="layer",
                   disable=not self.runner.progress)
        try:
            while len(done) + len(failed) < len(self.shapes):
                try:
                    kind, payload = self.results.get(timeout=0.2)
                except queue.Empty:
                    if not any(w.is_alive() for w in workers) and self.results.empty():
                        break
                    continue
                self._handle(kind, payload, done, failed, on_result, bar)
        finally:
            self.stop.set()
            bar.close()
        self._report(done, failed)

    def _handle(self, kind: str, payload: Any, done: set[ConvShape],
                failed: dict[ConvShape, str], on_result: OnResult, bar: Any) -> None:
        if kind == "row":
            shape, measurement = payload
            if shape not in done:  # a re-queued shape could in principle come back twice
                done.add(shape)
                on_result(shape, measurement)
                bar.update(1)
        elif kind == "failed":
            shape, message = payload
            failed[shape] = message
            bar.update(1)
        elif kind == "lost":
            log.warning("%s", payload)
        elif kind == "fatal":
            raise payload

    def _report(self, done: set[ConvShape], failed: dict[ConvShape, str]) -> None:
        missing = [s for s in self.shapes if s not in done and s not in failed]
        if missing:
            raise PerfStudentError(
                f"every RPC server of key {self.runner.key!r} was lost: {len(done)} rows were "
                f"stored, {len(missing)} are missing (first: {missing[0]}); re-run the same "
                "command when servers are back to measure only the missing rows")
        if failed:
            shape, message = next(iter(failed.items()))
            raise PerfStudentError(f"{len(failed)} layers failed on the board (first: {shape}: "
                                   f"{message}); {len(done)} rows were stored")

    def _worker(self, index: int) -> None:
        try:
            session = self.runner.request_session()
            configure_threads(self.runner.threads, session)
        except Exception as exc:  # a server that cannot be had is "lost"
            self.results.put(("lost", f"rpc worker {index}: no session ({exc})"))
            return
        while not self.stop.is_set():
            try:
                shape = self.work.get(timeout=0.1)
            except queue.Empty:
                continue
            if not self._measure(index, session, shape):
                return

    def _measure(self, index: int, session: Any, shape: ConvShape) -> bool:
        """Measure one shape; False if this worker's server is gone (shape re-queued)."""
        try:
            path = self.runner.build(shape)
        except Exception as exc:  # a local build error stops the sweep
            self.results.put(("fatal", exc if isinstance(exc, PerfStudentError) else
                              PerfStudentError(f"building {shape} failed: {exc}")))
            self.stop.set()
            return False
        try:
            measurement = self.runner.time_remote(session, path, conv_inputs(shape))
        except Exception as exc:  # decide below: server gone, or this layer
            if _alive(session, exc):
                self.results.put(("failed", (shape, str(exc).strip().splitlines()[-1])))
                return True
            self.work.put(shape)
            self.results.put(("lost", f"rpc worker {index}: server lost, {shape} re-queued"))
            return False
        self.results.put(("row", (shape, measurement)))
        return True
