"""A resumable chain of steps with a state file, written atomically.

Each :class:`Step` has an id, the parameters that determine its output, an
action that produces the output, and a check that says whether the output on
disk is complete. Its *digest* is
``sha256(params, [(dep id, dep digest, dep finish time) for dep in deps])``,
so changing a setting, or re-running an upstream step, invalidates exactly the
steps downstream of it. A step is skipped when the state file records it done
with the same digest and its check passes; otherwise it is cleaned (partial
output removed, or kept for resuming, as the step decides), run, checked, and
recorded done. ``state.json`` is rewritten atomically after every transition,
so a killed experiment loses at most the step in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.records import Record

STATE_SCHEMA = "perfstudent.experiment-state/1"


@dataclass
class Step:
    """One unit of work; ``check()`` returns None when the output is complete, else why not."""

    id: str
    params: dict[str, Any]
    action: Callable[[], None]
    check: Callable[[], str | None]
    deps: tuple[str, ...] = ()
    #: Called before running with ``resumable`` (the state holds an unfinished attempt with the
    #: same digest): remove partial output, or keep it to resume from.
    clean: Callable[[bool], None] | None = None
    #: Skip whenever the check passes, even if this state file never ran it (e.g. LUT rows
    #: measured by another experiment: they are keyed by fingerprint, not by who made them).
    reuse_valid_output: bool = False


@dataclass
class StepOutcome:
    id: str
    ran: bool
    seconds: float


@dataclass(frozen=True)
class StepState(Record):
    """One step in the state file: status (running, done, failed), digest, times, duration."""

    status: str
    digest: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    error: str | None = None
    reused: bool = False


@dataclass
class State(Record):
    """The experiment's state file (``perfstudent.experiment-state/1``): per step, its state."""

    SCHEMA = STATE_SCHEMA

    steps: dict[str, StepState] = field(default_factory=dict)

    @classmethod
    def what(cls) -> str:
        return "experiment state"

    @classmethod
    def read(cls, path: Path) -> State:
        """The state at ``path``; an empty one if there is no file yet."""
        return cls.load(path) if path.exists() else cls()

    def mark(self, path: Path, step_id: str, **fields: Any) -> None:
        """Update one step's state and write the file (atomically)."""
        old = self.steps.get(step_id)
        self.steps[step_id] = replace(old, **fields) if old else StepState(**fields)
        self.save(path)

    def is_done(self, step_id: str, digest: str) -> bool:
        entry = self.steps.get(step_id)
        return entry is not None and entry.status == "done" and entry.digest == digest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def digest_of(step: Step, state: State) -> str:
    """The step's digest (module docstring); deps must already be in the state."""
    deps = []
    for dep in step.deps:
        entry = state.steps.get(dep)
        deps.append([dep, entry.digest if entry else None, entry.finished if entry else None])
    blob = json.dumps({"params": step.params, "deps": deps}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _run_one(step: Step, state: State, path: Path, digest: str, *, fresh: bool = False) -> float:
    if step.clean is not None:
        old = state.steps.get(step.id)
        step.clean(not fresh and old is not None and old.digest == digest)
    state.mark(path, step.id, status="running", digest=digest, started=_now(), finished=None)
    start = time.perf_counter()
    step.action()
    seconds = time.perf_counter() - start
    problem = step.check()
    if problem:
        state.mark(path, step.id, status="failed", error=problem)
        raise PerfStudentError(f"step {step.id} finished but its output is incomplete: {problem}")
    state.mark(path, step.id, status="done", finished=_now(), seconds=round(seconds, 3), error=None)
    return seconds


def matches(step_id: str, names: Collection[str]) -> bool:
    """Is ``step_id`` one of ``names`` or under one (``distill`` matches ``distill/perf/x0.5/s0``)?"""
    return any(step_id == n or step_id.startswith(n.rstrip("/") + "/") for n in names)


def check_redo(ids: Sequence[str], redo: Collection[str]) -> None:
    """InputError for a ``redo`` name that matches no step, listing the names that do."""
    unknown = [n for n in redo if not any(matches(i, [n]) for i in ids)]
    if unknown:
        groups = ", ".join(dict.fromkeys(i.split("/")[0] for i in ids))
        raise InputError(f"--redo {unknown[0]!r} matches no step; steps: {groups} "
                         f"(or a full id such as {ids[-1]!r})")


def pending_steps(steps: Sequence[Step], state: State, redo: Collection[str] = ()) -> list[str]:
    """The ids of the steps that will (probably) run: asked to be redone, not recorded done,
    recorded with another digest (a changed setting), or downstream of one that runs (its
    digest will change with the upstream finish time). Outputs are not checked here."""
    running: set[str] = set()
    for step in steps:
        entry = state.steps.get(step.id)
        if (matches(step.id, redo) or entry is None or entry.status != "done"
                or any(dep in running for dep in step.deps)
                or entry.digest != digest_of(step, state)):
            running.add(step.id)
    return [s.id for s in steps if s.id in running]


def step_kind(step_id: str) -> str:
    """What a step does, the first part of its id (``distill`` for ``distill/perf/x0.5/s0``)."""
    return step_id.split("/")[0]


def time_left(pending: Sequence[str], state: State) -> tuple[float, int]:
    """``(seconds, unknown)``: what the ``pending`` steps should take, each the mean duration
    of the finished steps of its kind that ran (not reused; earlier sessions count), and how
    many of them have no such step to go by.

    A step count is no clock here: a resumed experiment skips its finished steps in an
    instant, so a rate over steps (tqdm's own ETA) would promise minutes for hours of
    training.
    """
    spent: dict[str, list[float]] = {}
    for sid, entry in state.steps.items():
        if entry.status == "done" and not entry.reused and entry.seconds:
            spent.setdefault(step_kind(sid), []).append(entry.seconds)
    seconds, unknown = 0.0, 0
    for sid in pending:
        known = spent.get(step_kind(sid))
        if known:
            seconds += sum(known) / len(known)
        else:
            unknown += 1
    return seconds, unknown


def format_eta(seconds: float, unknown: int) -> str:
    """``ETA 5h12m``; ``ETA >= 5h12m`` when some steps have nothing to go by; ``ETA ?``."""
    if unknown and not seconds:
        return "ETA ?"
    minutes = round(seconds / 60)
    text = f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
    return f"ETA {'>= ' if unknown else ''}{text}"


def run_steps(steps: Sequence[Step], state_path: Path, *, progress: bool = True,
              log: Callable[[str], None] | None = None,
              redo: Collection[str] = ()) -> list[StepOutcome]:
    """Run ``steps`` in order, skipping finished ones (see the module docstring).

    ``redo``: step ids (or their first parts: ``measure``, ``distill/perf``) to run again
    from scratch even when finished; the steps downstream of them follow through their
    digests (a re-run step's finish time changes).
    """
    from tqdm import tqdm

    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate step ids")
    check_redo(ids, redo)
    state = State.read(state_path)
    stale = [k for k in state.steps if k not in ids]
    if stale:  # steps of an earlier configuration (e.g. a budget since removed)
        for key in stale:
            del state.steps[key]
        state.save(state_path)
    outcomes = []
    bar = tqdm(steps, desc="experiment", unit="step", disable=not progress,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    pending = pending_steps(steps, state, redo)
    for index, step in enumerate(bar):
        left = set(ids[index:])
        bar.set_postfix_str(f"{step.id}, "
                            f"{format_eta(*time_left([p for p in pending if p in left], state))}")
        digest = digest_of(step, state)
        fresh = matches(step.id, redo)
        valid = not fresh and step.check() is None
        if valid and (state.is_done(step.id, digest) or step.reuse_valid_output):
            if not state.is_done(step.id, digest):
                state.mark(state_path, step.id, status="done", digest=digest, started=None,
                           finished=_now(), seconds=0.0, reused=True)
            outcomes.append(StepOutcome(step.id, False, 0.0))
            continue
        if log:
            log(f"running {step.id}")
        seconds = _run_one(step, state, state_path, digest, fresh=fresh)
        outcomes.append(StepOutcome(step.id, True, seconds))
    bar.close()
    return outcomes
