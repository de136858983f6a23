"""What a step kind's handler sees (:class:`StepContext`) and returns (:class:`StepResult`).

A handler is ``handle(sc, params) -> StepResult``: ``params`` are the step's params with every
reference resolved. It runs the existing jobs through :meth:`StepContext.run_job` (so a cancel
or a timeout of the attempt reaches the job, and the job's log lines become the step's log),
raises :class:`StepBlocked` when a gate or a check stops the pipeline, and any
:class:`~modelyard.core.common.errors.ModelyardError` for a failure the user can act on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.jobs.runner import JobOutcome, JobSpec, create_job, run_job
from modelyard.core.pipelines.spec import Step
from modelyard.core.store import Store


class StepBlocked(ModelyardError):
    """A gate failed or a check found drift: the step ends ``blocked`` (the run exits 3)."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, outputs: dict[str, Any] | None = None,
                 records: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.outputs = dict(outputs or {})
        self.records = list(records or [])


@dataclass
class StepResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)  # [{"type": ..., "id": ...}] it created


def record(kind: str, ident: Any) -> dict[str, Any]:
    return {"type": kind, "id": str(ident)}


class _JobLines:
    """A job reporter that forwards the job's log lines and progress to the step."""

    def __init__(self, sc: StepContext) -> None:
        self.sc = sc

    def progress(self, fraction: float | None, message: str) -> None:
        self.sc.progress(fraction, message)

    def log(self, line: str) -> None:
        self.sc.log(line)


class StepContext:
    """One step of one run, across its attempts. Thread-safe where the scheduler touches it
    (``cancel``, ``lines``); the handler runs on one worker thread."""

    def __init__(self, store: Store, step: Step, *, run_id: int, step_run_id: int, folder: str,
                 on_log: Callable[[str, str], None], on_progress: Callable[[str, float | None, str], None]) -> None:
        self.store = store
        self.step = step
        self.run_id = run_id
        self.step_run_id = step_run_id
        self.folder = Path(folder)
        self._on_log = on_log
        self._on_progress = on_progress
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.cancel = threading.Event()  # the current attempt's: set on a run cancel or a timeout
        self.run_cancelled = False
        self.timed_out = False
        self.deadline: float | None = None  # time.monotonic() when the attempt times out
        self.job_id: int | None = None  # the last job it ran
        self.attempt = 0
        self.made: list[dict[str, Any]] = []  # the records the step created

    # -- attempts (the runner calls these)
    def new_attempt(self, timeout: float | None) -> None:
        with self._lock:
            self.attempt += 1
            self.timed_out = False
            self.cancel = threading.Event()
            if self.run_cancelled:
                self.cancel.set()
            self.deadline = time.monotonic() + float(timeout) if timeout else None

    def backoff(self, seconds: float) -> bool:
        """Wait ``seconds`` before the next attempt; True when the run was cancelled meanwhile."""
        with self._lock:
            self.deadline = None
            self.cancel = threading.Event()
            if self.run_cancelled:
                return True
            event = self.cancel
        return event.wait(max(0.0, float(seconds)))

    def cancel_run(self) -> None:
        with self._lock:
            self.run_cancelled = True
            self.cancel.set()

    def time_out(self) -> None:
        with self._lock:
            self.timed_out = True
            self.deadline = None
            self.cancel.set()

    # -- for handlers
    def path(self, value: str | Path) -> Path:
        """``value`` as an absolute path (relative paths are relative to the pipeline's folder)."""
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else self.folder / p

    def log(self, line: str) -> None:
        line = str(line).rstrip("\n")
        with self._lock:
            self.lines.append(line)
        self._on_log(self.step.name, line)

    def progress(self, fraction: float | None, message: str) -> None:
        self._on_progress(self.step.name, fraction, message)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled()

    def run_job(self, spec: JobSpec) -> dict[str, Any]:
        """Run ``spec`` on the job system (in a child process when its kind says so) under this
        attempt's cancel event; its result, or the job's error raised as a ModelyardError."""
        self.check_cancelled()
        self.job_id = create_job(self.store, spec)  # known while it runs (the step's row shows it)
        outcome: JobOutcome = run_job(self.store, spec, reporter=_JobLines(self), cancel_event=self.cancel,
                                      job_id=self.job_id)
        if outcome.status == "cancelled":
            raise JobCancelled()
        if not outcome.ok:
            error = ModelyardError(outcome.message, hint=outcome.hint)
            error.exit_code = outcome.exit_code
            raise error
        return dict(outcome.result or {})


def need(params: dict[str, Any], key: str, kind: str) -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise ModelyardError(f"A {kind} step needs '{key}'.", hint=f"Add '{key}:' under the step's params.")
    return value
