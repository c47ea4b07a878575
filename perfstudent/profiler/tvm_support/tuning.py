"""MetaSchedule tuning databases, kept on disk next to the LUT and reused.

One database directory per (target, trial budget):
``<tuning dir>/<sha256(target)[:12]>-t<trials>/`` holding MetaSchedule's JSON
database plus ``tuned.json`` (the ConvShape keys already tuned, so a shape is
tuned once and later sweeps only apply the records). The directory name is the
``tuning_db`` setting recorded in the fingerprint: rows of different trial
budgets or targets never mix, and untuned rows (``tune_trials = 0``,
``tuning_db = None``) never mix with tuned ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from perfstudent.errors import InputError
from perfstudent.io import atomic_write_text

#: MetaSchedule's default 30 s builder timeout kills every build on a 2-core
#: machine (each worker spends 26-65 s importing TVM).
BUILDER_TIMEOUT_S = 300


def default_tuning_dir() -> Path:
    """``tvm-tuning/`` beside the LUT (``$PERFSTUDENT_LUT``'s folder, else the user data dir)."""
    if os.environ.get("PERFSTUDENT_LUT"):
        return Path(os.environ["PERFSTUDENT_LUT"]).parent / "tvm-tuning"
    from platformdirs import user_data_dir

    return Path(user_data_dir("perfstudent")) / "tvm-tuning"


class TuningState:
    """The tuning configuration of a TVM backend: trials per shape and its database."""

    def __init__(self, target: Any, trials: int | str, tuning_dir: Path | str | None = None,
                 ) -> None:
        try:  # options may arrive as text from ``-o tune_trials=64``
            trials = int(trials)
        except ValueError:
            raise InputError(f"tune_trials must be an integer, got {trials!r}") from None
        if trials < 0:
            raise InputError(f"tune_trials must be >= 0, got {trials}")
        self.target = target
        self.trials = trials
        digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
        self.db_name = f"{digest}-t{trials}" if trials else None
        root = Path(tuning_dir) if tuning_dir is not None else default_tuning_dir()
        self.db_dir = root / self.db_name if self.db_name else None

    def settings(self) -> dict[str, Any]:
        return {"tune_trials": self.trials, "tuning_db": self.db_name}

    def _tuned_keys(self) -> set[str]:
        assert self.db_dir is not None
        path = self.db_dir / "tuned.json"
        return set(json.loads(path.read_text())) if path.exists() else set()

    def _mark_tuned(self, key: str) -> None:
        assert self.db_dir is not None
        keys = sorted(self._tuned_keys() | {key})
        atomic_write_text(self.db_dir / "tuned.json", json.dumps(keys, indent=1))

    def apply(self, fused: Any, key: str | None, runner: Any = "local",
              builder: Any = None) -> Any:
        """Tune ``fused`` (once per ``key``) and return it with the best schedules applied."""
        import tvm
        from tvm import relax
        from tvm.s_tir import meta_schedule as ms

        assert self.db_dir is not None
        self.db_dir.mkdir(parents=True, exist_ok=True)
        if key is None or key not in self._tuned_keys():
            _drop_unnamed_handlers()
            ms.relax_integration.tune_relax(
                mod=fused, params={}, target=self.target, work_dir=str(self.db_dir),
                max_trials_global=self.trials,
                builder=builder or ms.builder.LocalBuilder(timeout_sec=BUILDER_TIMEOUT_S),
                runner=runner, database=ms.database.JSONDatabase(work_dir=str(self.db_dir)),
            )
            if key is not None:
                self._mark_tuned(key)
        with self.target, tvm.transform.PassContext(opt_level=3):
            return relax.transform.MetaScheduleApplyDatabase(work_dir=str(self.db_dir))(fused)


def _drop_unnamed_handlers(name: str = "tvm.s_tir.meta_schedule") -> None:
    """Detach unnamed handlers from MetaSchedule's logger before a tuning run.

    ``tune_relax`` re-configures that logger with ``logging.config.dictConfig``,
    listing its current handlers *by name*, and fails (``'NoneType' object has no
    attribute 'format'``) on one without a name. After a first tuning run the
    logger no longer propagates, and pytest (9) then attaches its unnamed capture
    handlers to it, so a second tuning run in one test process failed. dictConfig
    replaces the logger's handlers anyway, so detaching them first changes nothing else.
    """
    logger = logging.getLogger(name)
    for handler in [h for h in logger.handlers if h.get_name() is None]:
        logger.removeHandler(handler)


def export_cross(compiler: str, mod: Any) -> str:
    """MetaSchedule ``f_export`` for boards: a shared object linked by ``compiler``."""
    from tvm.support import cc

    path = os.path.join(tempfile.mkdtemp(prefix="perfstudent-ms-"), "candidate.so")
    mod.export_library(path, fcompile=cc.cross_compiler(compiler))
    return path


def rpc_tuning(host: str, port: int, key: str, compiler: str | None,
               session_timeout_s: int = 120) -> tuple[Any, Any]:
    """(builder, runner) that build here and measure candidates on the boards of ``key``.

    Candidates are linked with ``compiler`` (e.g. ``aarch64-linux-gnu-g++``) in
    MetaSchedule's builder workers (which must import perfstudent), and timed on
    the boards by MetaSchedule's RPC runner through the same tracker.
    """
    from tvm.s_tir import meta_schedule as ms

    f_export = functools.partial(export_cross, compiler) if compiler else None
    builder = ms.builder.LocalBuilder(timeout_sec=BUILDER_TIMEOUT_S, f_export=f_export)
    config = ms.runner.RPCConfig(tracker_host=host, tracker_port=port, tracker_key=key,
                                 session_timeout_sec=session_timeout_s)
    return builder, ms.runner.RPCRunner(rpc_config=config)
