"""Runs core jobs off the main thread and turns their context into Qt signals.

:class:`JobRunner` owns a private ``QThreadPool``. ``submit(spec)`` records the job (queued),
starts a worker and returns a :class:`JobHandle` living in the main thread, whose signals
carry plain data only (fractions, strings, :class:`~modelyard.core.jobs.runner.JobOutcome`): workers
never touch widgets and no ORM object crosses a thread. A spec with ``process=True`` runs in
a child process (see :func:`modelyard.core.jobs.runner.run_job`) and is killed at once on cancel;
any other job stops at its next ``ctx.progress``/``ctx.check_cancelled``.
"""

from __future__ import annotations

import threading
import weakref
from typing import ClassVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from modelyard.core.jobs.runner import JobOutcome, JobSpec, create_job, run_job
from modelyard.core.store import Store
from modelyard.ui.common.collector import collect_on_main_thread


class JobHandle(QObject):
    """One submitted job, as seen from the main thread."""

    progressed = Signal(object, str)  # fraction in 0..1 or None, message
    logged = Signal(str)
    finished = Signal(object)  # JobOutcome

    def __init__(self, job_id: int, spec: JobSpec, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.spec = spec
        self.cancel_event = threading.Event()
        self.fraction: float | None = None
        self.message = ""
        self.outcome: JobOutcome | None = None
        self.progressed.connect(self._remember)
        self.finished.connect(self._done)

    def _remember(self, fraction: float | None, message: str) -> None:
        self.fraction, self.message = fraction, message

    def _done(self, outcome: JobOutcome) -> None:
        self.outcome = outcome

    @property
    def running(self) -> bool:
        return self.outcome is None

    def cancel(self) -> None:
        self.cancel_event.set()

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} {self.spec.label} {'running' if self.running else self.outcome.status}>"


class _SignalReporter:
    """A core Reporter that emits the handle's signals (thread-safe, queued to the main thread)."""

    def __init__(self, handle: JobHandle) -> None:
        self._progressed = handle.progressed
        self._logged = handle.logged

    def progress(self, fraction: float | None, message: str) -> None:
        self._progressed.emit(fraction, message)

    def log(self, line: str) -> None:
        self._logged.emit(line)


class _Worker(QRunnable):
    def __init__(self, store: Store, handle: JobHandle) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._store = store
        self._spec = handle.spec
        self._job_id = handle.job_id
        self._cancel = handle.cancel_event
        self._reporter = _SignalReporter(handle)
        self._finished = handle.finished

    def run(self) -> None:
        try:
            outcome = run_job(self._store, self._spec, reporter=self._reporter,
                              cancel_event=self._cancel, job_id=self._job_id)
        except BaseException as exc:  # noqa: BLE001 - e.g. the store vanished; never kill the pool
            outcome = JobOutcome(self._job_id, "failed", error=f"The job could not be recorded: {exc}")
        self._finished.emit(outcome)


class JobRunner(QObject):
    """Executes jobs for one store on background threads."""

    job_started = Signal(object)  # JobHandle
    job_finished = Signal(object, object)  # JobHandle, JobOutcome
    running_count_changed = Signal(int)

    _instances: ClassVar[weakref.WeakSet[JobRunner]] = weakref.WeakSet()

    def __init__(self, store: Store, parent: QObject | None = None, *, max_threads: int | None = None) -> None:
        super().__init__(parent)
        collect_on_main_thread()  # cycles freed on worker threads crash Qt (ui/common/collector.py)
        self.store = store
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads or max(2, QThreadPool.globalInstance().maxThreadCount()))
        self._handles: list[JobHandle] = []
        JobRunner._instances.add(self)

    @classmethod
    def instances(cls) -> list[JobRunner]:
        return list(cls._instances)

    def active_thread_count(self) -> int:
        try:
            return self._pool.activeThreadCount()
        except RuntimeError:  # the C++ pool is already gone
            return 0

    def submit(self, spec: JobSpec) -> JobHandle:
        job_id = create_job(self.store, spec)
        handle = JobHandle(job_id, spec, self)
        handle.finished.connect(self._on_finished)  # bound method of a main-thread QObject: queued
        self._handles.append(handle)
        self._pool.start(_Worker(self.store, handle))
        self.job_started.emit(handle)
        self.running_count_changed.emit(self.running_count())
        return handle

    def _on_finished(self, outcome: JobOutcome) -> None:
        handle = self.handle(outcome.job_id)
        self.job_finished.emit(handle, outcome)
        self.running_count_changed.emit(self.running_count())

    def handles(self) -> list[JobHandle]:
        return list(self._handles)

    def handle(self, job_id: int) -> JobHandle | None:
        return next((h for h in self._handles if h.job_id == job_id), None)

    def running(self) -> list[JobHandle]:
        return [h for h in self._handles if h.running]

    def running_count(self) -> int:
        return sum(1 for h in self._handles if h.running)

    def cancel_all(self) -> None:
        for h in self.running():
            h.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until every worker has ended (True) or the timeout passed (False).

        Finished signals queued meanwhile are delivered by the next event-loop turn.
        """
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the workers to end."""
        self.cancel_all()
        return self.wait(timeout_ms)
