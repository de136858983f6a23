"""Jobs: plain core functions that report progress and honour cancellation.

A job function takes a :class:`JobContext` first and JSON-able keyword parameters, and returns
a JSON-able dict (or ``None``)::

    def verify_artifacts(ctx: JobContext, *, quick: bool = False) -> dict:
        for i, item in enumerate(items):
            ctx.progress(i / len(items), f"checking {item}")   # also a cancellation point
            ...
        return {"checked": len(items)}

It is described by a :class:`JobSpec` (the function's ``"module:function"`` path, a title,
parameters, and whether it runs in a child process), built from its kind in the registry
(:mod:`.kinds`) with :meth:`JobSpec.for_kind`, and executed by :func:`run_job`, which records
the job in the store (queued -> running -> succeeded | failed | cancelled) with its log and
error, and after a cancel or failure calls the kind's clean-up (ending the runs a killed
training child left running, say): callers never tidy up after a job. The CLI calls :func:`run_job` in the foreground with a text progress bar; the Qt
runner (:mod:`modelyard.ui.common.jobrunner`) calls it on a worker thread and turns the reporter callbacks
into signals. Nothing here knows about Qt.

Rules for job functions: open your own sessions from ``ctx.store`` (never receive or return ORM
objects), return plain data, raise :class:`~modelyard.core.common.errors.ModelyardError` with a message
for the user when the input is bad, and call ``ctx.progress`` or ``ctx.check_cancelled`` often
enough that cancellation is felt within a second or two. A job whose spec says
``process=True`` runs in a child process and is killed at once on cancel, so it must keep each
write in one transaction (``store.write()``): a kill then leaves nothing half-written.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select, update

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.common.procs import current_user, hostname
from modelyard.core.jobs import kinds
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.store import Store
from modelyard.core.store import models as m

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
FLUSH_INTERVAL_S = 0.5
MAX_LOG_CHARS = 1_000_000


@dataclass(frozen=True)
class JobSpec:
    """What to run. Plain, picklable data: it crosses threads and processes.

    The application builds specs with :meth:`for_kind` (function and process from the registry,
    :mod:`.kinds`); a spec made by hand (tests, scripts) runs too, without a kind's clean-up.
    """

    func: str  # "package.module:function"
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    process: bool = False  # run in a child process (killable at once)
    kind: str = ""  # the registered kind (e.g. "store.verify"), its clean-up's key; else a label for lists

    @property
    def label(self) -> str:
        return self.kind or self.func.rsplit(":", 1)[-1]

    @classmethod
    def for_kind(cls, kind: str, title: str, params: dict[str, Any] | None = None, *,
                 process: bool | None = None) -> JobSpec:
        """The spec of a job of ``kind`` (registered in :mod:`.kinds`; an unknown kind is a KeyError).
        ``process`` overrides the kind's choice (a caller that wants it in this thread)."""
        k = kinds.get(kind)
        return cls(func=k.func, title=title, params=dict(params or {}),
                   process=k.process if process is None else bool(process), kind=k.name)


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    status: str  # succeeded | failed | cancelled
    result: dict[str, Any] | None = None
    error: str | None = None  # the whole message for the user (message and hint)
    hint: str | None = None  # the hint alone, when the error carried one
    exit_code: int = 0  # what the CLI exits with: 0 ok, 1 failure, 3 a gate or check failed

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def message(self) -> str:
        """The error without its hint (``error`` is the message followed by the hint): show it
        with :attr:`hint` once, never the hint twice."""
        text = (self.error or f"The job ended {self.status}.").strip()
        if self.hint and text.endswith(self.hint):
            text = text[: -len(self.hint)].rstrip()
        return text


class Reporter(Protocol):
    def progress(self, fraction: float | None, message: str) -> None: ...
    def log(self, line: str) -> None: ...


class NullReporter:
    def progress(self, fraction: float | None, message: str) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def resolve(func: str) -> Callable[..., Any]:
    module_name, _, attr = func.partition(":")
    if not attr:
        raise ValueError(f"job function must be given as 'module:function', not {func!r}")
    return getattr(importlib.import_module(module_name), attr)


class JobContext:
    """What a job function sees: the store, progress and log reporting, and cancellation.

    ``progress`` and ``log`` are cheap to call often: progress reaches the reporter only when
    it moves by at least 0.5 % or the message changes, and the store's job row is updated at
    most twice a second.
    """

    def __init__(
        self,
        store: Store,
        job_id: int,
        reporter: Reporter | None = None,
        cancel_event: threading.Event | None = None,
        *,
        record: bool = True,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self._reporter = reporter or NullReporter()
        self._cancel = cancel_event or threading.Event()
        self._record = record
        self._fraction: float | None = None
        self._message = ""
        self._log_pending: list[str] = []
        self._last_flush = 0.0
        self._dirty = False

    # -- cancellation
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """The event a cancel sets: hand it to work that checks it itself (a pipeline run's steps)."""
        return self._cancel

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def sub(self, start: float, end: float, *, monotonic: bool = False) -> ProgressSlice:
        """A context-like view whose ``progress(fraction, message)`` maps 0..1 into ``[start, end]``
        of this job's bar (still a cancellation point); see :mod:`.progress`."""
        return ProgressSlice(self, start, end, monotonic=monotonic)

    # -- reporting
    def progress(self, fraction: float | None, message: str | None = None) -> None:
        """Report progress (0..1, or None when unknown). Raises JobCancelled if cancelled."""
        self.check_cancelled()
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        msg = self._message if message is None else message
        moved = (
            fraction is not None
            and (self._fraction is None or abs(fraction - self._fraction) >= 0.005 or fraction == 1.0)
        ) or (fraction is None) != (self._fraction is None)
        if moved or msg != self._message:
            self._fraction, self._message = fraction, msg
            self._dirty = True
            self._reporter.progress(fraction, msg)
            self._maybe_flush()

    def log(self, line: str) -> None:
        line = str(line).rstrip("\n")
        self._log_pending.append(line)
        self._dirty = True
        self._reporter.log(line)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Write progress, message and new log lines to the job's row."""
        if not self._record or not self._dirty:
            return
        if self.store.in_write():
            # The job is inside its own store.write() in this thread: a second write
            # transaction would wait on that one's lock until the busy timeout and fail with
            # "database is locked". Keep everything pending; the next call after the block
            # (at the latest run_job's final flush) writes it.
            return
        lines, self._log_pending = self._log_pending, []
        self._dirty = False
        self._last_flush = time.monotonic()
        with self.store.write() as s:
            job = s.get(m.Job, self.job_id)
            if job is None:
                return
            job.progress = self._fraction
            job.message = self._message
            job.heartbeat_at = m.utcnow()
            if lines:
                job.log = ((job.log or "") + "\n".join(lines) + "\n")[-MAX_LOG_CHARS:]


# --------------------------------------------------------------------------- recording


def create_job(store: Store, spec: JobSpec) -> int:
    """Record a queued job and return its id."""
    with store.write() as s:
        job = m.Job(kind=spec.label, title=spec.title if len(spec.title) <= 300 else spec.title[:299] + "…", status="queued", params=spec.params, actor=current_user())
        s.add(job)
        s.flush()
        return job.id


def _mark_running(store: Store, job_id: int) -> None:
    now = m.utcnow()
    with store.write() as s:
        s.execute(
            update(m.Job)
            .where(m.Job.id == job_id)
            .values(status="running", started_at=now, heartbeat_at=now, host=hostname(), pid=os.getpid())
        )


def _finish(store: Store, job_id: int, status: str, *, result: Any = None, error: str | None = None,
            log_tail: str | None = None) -> None:
    with store.write() as s:
        job = s.get(m.Job, job_id)
        if job is None:
            return
        job.status = status
        job.ended_at = m.utcnow()
        job.result = result
        job.error = error
        if status == "succeeded":
            job.progress = 1.0
        if log_tail:
            job.log = ((job.log or "") + log_tail)[-MAX_LOG_CHARS:]


def cancel_requested_message() -> str:
    return "Cancelled by the user."


@dataclass(frozen=True)
class _Failure:
    error: str
    hint: str | None
    exit_code: int
    traceback: str | None  # for the log; None when the message says enough


def _describe(exc: BaseException) -> _Failure:
    if isinstance(exc, ModelyardError):
        return _Failure(str(exc), exc.hint, exc.exit_code, None)
    tb = "".join(traceback.format_exception(exc))
    if isinstance(exc, OSError) and exc.filename is not None:  # a file problem (a path too long, a full disk...)
        from modelyard.core.common.outputs import file_error

        err = file_error(exc)
        return _Failure(err.message, err.hint, 1, tb)
    return _Failure(f"Unexpected error: {type(exc).__name__}: {exc}. The job log has the details.", None, 1, tb)


def _clean_up(store: Store, spec: JobSpec, job_id: int, status: str, error: str | None) -> str:
    """Run the kind's clean-up after a cancel or failure (see :mod:`.kinds`); what to add to the
    job's log (empty, or why the clean-up failed: it never makes the job's outcome worse)."""
    kind = kinds.find(spec.kind)
    if kind is None or kind.cleanup is None:
        return ""
    try:
        resolve(kind.cleanup)(store, job_id, status, error)
    except Exception as exc:  # noqa: BLE001 - the job's own outcome is what the caller needs
        return f"Clean-up after the job ({kind.cleanup}) failed: {type(exc).__name__}: {exc}\n"
    return ""


def _failed(store: Store, spec: JobSpec, job_id: int, f: _Failure) -> JobOutcome:
    tail = (f.traceback or "") + _clean_up(store, spec, job_id, "failed", f.error)
    _finish(store, job_id, "failed", error=f.error, log_tail=tail or None)
    return JobOutcome(job_id, "failed", error=f.error, hint=f.hint, exit_code=f.exit_code)


def _cancelled(store: Store, spec: JobSpec, job_id: int) -> JobOutcome:
    tail = _clean_up(store, spec, job_id, "cancelled", cancel_requested_message())
    _finish(store, job_id, "cancelled", error=cancel_requested_message(), log_tail=tail or None)
    return JobOutcome(job_id, "cancelled", error=cancel_requested_message(), exit_code=1)


def run_job(
    store: Store,
    spec: JobSpec,
    *,
    reporter: Reporter | None = None,
    cancel_event: threading.Event | None = None,
    job_id: int | None = None,
) -> JobOutcome:
    """Execute ``spec`` now, in this thread (or its child process), recording everything.

    Never raises for a failure of the job itself: the outcome says succeeded, failed or
    cancelled, and the store's job row says the same. After a cancel or failure the kind's
    clean-up (:mod:`.kinds`) has run before this returns.
    """
    cancel_event = cancel_event or threading.Event()
    if job_id is None:
        job_id = create_job(store, spec)
    if cancel_event.is_set():
        return _cancelled(store, spec, job_id)
    _mark_running(store, job_id)
    if spec.process:
        return _run_in_child(store, spec, job_id, reporter, cancel_event)
    ctx = JobContext(store, job_id, reporter, cancel_event)
    try:
        fn = resolve(spec.func)
        result = fn(ctx, **spec.params)
    except JobCancelled:
        ctx.flush()
        return _cancelled(store, spec, job_id)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none escapes
        ctx.flush()
        return _failed(store, spec, job_id, _describe(exc))
    except BaseException:  # KeyboardInterrupt, SystemExit: record, then let it go on
        ctx.flush()
        _cancelled(store, spec, job_id)
        raise
    ctx.flush()
    _finish(store, job_id, "succeeded", result=result)
    return JobOutcome(job_id, "succeeded", result=result)


# --------------------------------------------------------------------------- child process


class _PipeReporter:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def progress(self, fraction: float | None, message: str) -> None:
        self.conn.send(("progress", fraction, message))

    def log(self, line: str) -> None:
        self.conn.send(("log", line))


def _child_main(root: str, db_url: str, func: str, params: dict[str, Any], job_id: int, conn: Any) -> None:
    """Entry point of a job's child process. Reports through ``conn``; the parent records."""
    import signal

    # Ctrl+C in a terminal reaches the whole process group: the parent decides, the child obeys.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        store = Store.open(root, db_url=db_url, create=False, sweep=False)
        ctx = JobContext(store, job_id, _PipeReporter(conn), record=False)
        result = resolve(func)(ctx, **params)
        conn.send(("done", result))
    except JobCancelled:
        conn.send(("cancelled",))
    except Exception as exc:  # noqa: BLE001
        conn.send(("failed", _describe(exc)))
    finally:
        conn.close()


def _run_in_child(store: Store, spec: JobSpec, job_id: int, reporter: Reporter | None,
                  cancel_event: threading.Event) -> JobOutcome:
    ctx = JobContext(store, job_id, reporter)  # records what the child reports
    mpctx = mp.get_context("spawn")
    parent_conn, child_conn = mpctx.Pipe(duplex=False)
    proc = mpctx.Process(
        target=_child_main,
        args=(str(store.root), store.db_url, spec.func, spec.params, job_id, child_conn),
        name=f"modelyard-job-{job_id}",
        daemon=True,
    )
    proc.start()
    child_conn.close()
    ctx.log(f"Started in process {proc.pid}.")
    outcome: JobOutcome | None = None
    try:
        while outcome is None:
            if cancel_event.is_set():
                proc.terminate()
                proc.join(2)
                if proc.is_alive():
                    proc.kill()
                ctx.flush()
                outcome = _cancelled(store, spec, job_id)
                break
            if parent_conn.poll(0.05):
                try:
                    msg = parent_conn.recv()
                except EOFError:
                    msg = ("died",)
                kind = msg[0]
                if kind == "progress":
                    ctx.progress(msg[1], msg[2])
                elif kind == "log":
                    ctx.log(msg[1])
                elif kind == "done":
                    ctx.flush()
                    _finish(store, job_id, "succeeded", result=msg[1])
                    outcome = JobOutcome(job_id, "succeeded", result=msg[1])
                elif kind == "cancelled":
                    ctx.flush()
                    outcome = _cancelled(store, spec, job_id)
                elif kind == "failed":
                    ctx.flush()
                    outcome = _failed(store, spec, job_id, msg[1])
                else:
                    outcome = _child_died(store, spec, ctx, job_id, proc, cancel_event)
            elif not proc.is_alive() and not parent_conn.poll(0):
                outcome = _child_died(store, spec, ctx, job_id, proc, cancel_event)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent_conn.close()
    return outcome


def _child_died(store: Store, spec: JobSpec, ctx: JobContext, job_id: int, proc: Any,
                cancel_event: threading.Event) -> JobOutcome:
    proc.join(1)
    ctx.flush()
    if cancel_event.is_set():  # it died while we were stopping it
        return _cancelled(store, spec, job_id)
    error = f"The job's process ended unexpectedly (exit code {proc.exitcode})."
    return _failed(store, spec, job_id, _Failure(error, None, 1, None))


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class JobRecord:
    """A job row as plain data (safe to hand to another thread)."""

    id: int
    kind: str
    title: str
    status: str
    progress: float | None
    message: str | None
    error: str | None
    created_at: Any
    started_at: Any
    ended_at: Any
    actor: str | None
    pid: int | None
    host: str | None
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("created_at", "started_at", "ended_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or m.utcnow()
        return (end - self.started_at).total_seconds()


def _record(job: m.Job) -> JobRecord:
    return JobRecord(job.id, job.kind, job.title, job.status, job.progress, job.message, job.error,
                     job.created_at, job.started_at, job.ended_at, job.actor, job.pid, job.host,
                     job.params, job.result)


def list_jobs(store: Store, *, limit: int = 200, status: str | None = None) -> list[JobRecord]:
    """Newest first."""
    with store.session() as s:
        q = select(m.Job).order_by(m.Job.id.desc()).limit(limit)
        if status:
            q = q.where(m.Job.status == status)
        return [_record(j) for j in s.scalars(q)]


def get_job(store: Store, job_id: int) -> tuple[JobRecord, str]:
    """The job and its log."""
    from modelyard.core.common.errors import NotFoundError

    with store.session() as s:
        job = s.get(m.Job, job_id)
        if job is None:
            raise NotFoundError(f"There is no job {job_id} in this store.", hint="'modelyard jobs list' shows the jobs.")
        return _record(job), job.log or ""
