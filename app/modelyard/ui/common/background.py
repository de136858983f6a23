"""Quick background reads (not jobs): run a function on a pool thread, get its result as a signal.

For reads that take tens to hundreds of milliseconds — re-reading a 100,000-run table — and
should neither freeze the window nor appear in the Jobs dock. The function must return plain
data (never ORM objects); the callback runs on the main thread. The owner calls :meth:`wait`
before it goes away.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from modelyard.ui.common.collector import collect_on_main_thread


class Call(QRunnable):
    """``fn()`` on a pool thread; ``done.emit(token, result, error)`` hands the answer (or the
    exception) to the owner's thread. Shared by :class:`BackgroundReader` and the core client."""

    def __init__(self, fn: Callable[[], Any], done: Signal, token: int) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn, self._done, self._token = fn, done, token

    def run(self) -> None:
        try:
            result, error = self._fn(), None
        except Exception as exc:  # noqa: BLE001 - handed to the caller's on_error, never lost
            result, error = None, exc
        try:
            self._done.emit(self._token, result, error)
        except RuntimeError:  # the owner was deleted while this call ran
            pass


class BackgroundReader(QObject):
    """At most one read in flight; a newer request supersedes the answer of an older one."""

    _done = Signal(int, object, object)
    _instances: ClassVar[weakref.WeakSet[BackgroundReader]] = weakref.WeakSet()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        BackgroundReader._instances.add(self)
        collect_on_main_thread()  # cycles freed on worker threads crash Qt (ui/common/collector.py)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._token = 0
        self._callbacks: dict[int, tuple[Callable[[Any], None], Callable[[Exception], None] | None]] = {}
        self._closed = False
        self._done.connect(self._deliver)

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def submit(self, fn: Callable[[], Any], on_result: Callable[[Any], None],
               on_error: Callable[[Exception], None] | None = None) -> None:
        if self._closed:  # the owner is going away: a late callback must not start new work
            return
        self._token += 1
        self._callbacks = {self._token: (on_result, on_error)}  # older answers are dropped
        self._pool.start(Call(fn, self._done, self._token))

    def _deliver(self, token: int, result: Any, error: Exception | None) -> None:
        callbacks = self._callbacks.pop(token, None)
        if callbacks is None:
            return
        on_result, on_error = callbacks
        if error is not None:
            if on_error is not None:
                on_error(error)
        else:
            on_result(result)

    @classmethod
    def instances(cls) -> list[BackgroundReader]:
        return list(cls._instances)

    def active_thread_count(self) -> int:
        try:
            return self._pool.activeThreadCount()
        except RuntimeError:  # the C++ pool is already gone
            return 0

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)

    def close(self, timeout_ms: int = 10_000) -> bool:
        """Refuse new reads, drop pending answers, and wait for the read in flight."""
        self._closed = True
        self._callbacks = {}
        return self.wait(timeout_ms)
