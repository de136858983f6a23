"""The window's one client of the core: every service call off the main thread, plain data back.

Panels never call the core on the main thread. They ask the client:

* ``client.read(key, fn, on_result, on_error)`` runs ``fn(store)`` on a reading thread. Reads
  that share a ``key`` supersede each other: only the newest request's answer is delivered
  (as Orange's and superqt's workers do), so typing in a filter box never queues stale work.
* ``client.write(fn, on_result, on_error, changes=...)`` runs ``fn(store)`` on the one writing
  thread, in the order asked (a write may wait on another process's lock for many seconds; the
  window keeps painting). After a write succeeds the client emits :attr:`changed` once, naming
  what changed.
* When a job of this store ends, :meth:`job_finished` emits :attr:`changed` for what that kind of
  job touches (the job registry in :mod:`modelyard.core.jobs.kinds` says which).
* :meth:`start_live` follows what other processes change in the store (another window, a script,
  the CLI: :mod:`modelyard.ui.common.live`) and emits :attr:`changed` for it too.

``fn`` must return plain data (dataclasses, dicts, lists, frames) — never ORM objects, which
belong to the thread that made them. Callbacks run on the main thread.

:attr:`changed` carries a frozenset of topic names (:data:`TOPICS`); panels connect to it and
refresh what they show. :attr:`navigate` asks the window to show a room and, optionally, a thing
in it (``client.navigate.emit("registry", ("register_run", run_id))``): panels never reach into
each other. :attr:`saved` says a file was written for the user (an export): the window says where,
with "Show in folder".
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QThreadPool, Signal

from modelyard.core.jobs import kinds
from modelyard.core.store import Store
from modelyard.ui.common.background import Call
from modelyard.ui.common.collector import collect_on_main_thread
from modelyard.ui.common.turns import next_turn

# What can change (named by the core's job registry). Panels refresh on the topics they show.
TOPICS = kinds.TOPICS


def job_changes(kind: str | None) -> frozenset[str]:
    """The topics a finished job of ``kind`` changed (declared with the kind in core/jobs/kinds.py)."""
    return kinds.changes_of(kind or "")


def topics(names: Iterable[str] | str) -> frozenset[str]:
    """Check and normalise a set of topics (a typo is a programming error, caught in tests)."""
    out = frozenset([names] if isinstance(names, str) else names)
    unknown = out - TOPICS
    if unknown:
        raise ValueError(f"unknown change topics {sorted(unknown)}; known: {sorted(TOPICS)}")
    return out


class CoreClient(QObject):
    """One per window and store. See the module docstring."""

    changed = Signal(object)  # frozenset[str] of topics
    navigate = Signal(str, object)  # room, what to show there (or None)
    message = Signal(str, int)  # a line for the window's status bar, and for how many ms
    saved = Signal(str, str)  # a file was written for the user: what it is ("Bundle churn@v2"), its path
    _done = Signal(int, object, object)

    _instances: ClassVar[weakref.WeakSet[CoreClient]] = weakref.WeakSet()

    def __init__(self, store: Store | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        CoreClient._instances.add(self)
        collect_on_main_thread()  # cycles freed on worker threads crash Qt (ui/common/collector.py)
        self.store = store
        self._readers = QThreadPool(self)
        self._readers.setMaxThreadCount(2)
        self._writer = QThreadPool(self)
        self._writer.setMaxThreadCount(1)  # writes run one at a time, in the order asked
        self._token = 0
        self._pending: dict[int, tuple[str | None, Callable[[Any], None] | None,
                                       Callable[[Exception], None] | None, frozenset[str]]] = {}
        self._latest: dict[str, int] = {}
        self._closed = False
        self._live: Any = None  # the LiveFeed, once start_live() was called
        self._arrived: deque[tuple[int, Any, Exception | None]] = deque()  # answers not yet delivered
        self._done.connect(self._arrive)
        # What the user last looked at, per kind ("dataset_version": id, "run": run id, "model_version":
        # "churn@v2"): a panel's next step defaults to it (Train on the dataset version being looked at).
        self.selected: dict[str, Any] = {}

    def select(self, kind: str, value: Any) -> None:
        """Remember what the user is looking at (``kind`` as in :attr:`selected`); None forgets it."""
        if value is None:
            self.selected.pop(kind, None)
        else:
            self.selected[kind] = value

    # -- calls
    def read(self, key: str, fn: Callable[[Store], Any], on_result: Callable[[Any], None],
             on_error: Callable[[Exception], None] | None = None) -> int:
        """Run ``fn(store)`` off the main thread; deliver only the newest answer for ``key``."""
        return self._submit(self._readers, key, fn, on_result, on_error, frozenset())

    def write(self, fn: Callable[[Store], Any], on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[Exception], None] | None = None, *,
              changes: Iterable[str] | str = ()) -> int:
        """Run ``fn(store)`` on the writing thread; on success emit :attr:`changed` with ``changes``."""
        return self._submit(self._writer, None, fn, on_result, on_error, topics(changes))

    def _submit(self, pool: QThreadPool, key: str | None, fn: Callable[[Store], Any],
                on_result: Callable[[Any], None] | None, on_error: Callable[[Exception], None] | None,
                changes: frozenset[str]) -> int:
        if self._closed or self.store is None:
            return 0
        self._token += 1
        token = self._token
        if key is not None:
            self._latest[key] = token
        self._pending[token] = (key, on_result, on_error, changes)
        store = self.store
        pool.start(Call(lambda: fn(store), self._done, token))
        return token

    def _arrive(self, token: int, result: Any, error: Exception | None) -> None:
        """An answer came back: deliver it on a turn of its own. Answers that arrive together are
        posted events Qt would deliver back to back, before any timer or repaint; each shows
        something (a table filled, a chart made) and together they held the window over 100 ms."""
        self._arrived.append((token, result, error))
        if len(self._arrived) == 1:
            next_turn(self, self._deliver_next)

    def _deliver_next(self) -> None:
        if not self._arrived:
            return
        token, result, error = self._arrived.popleft()
        if self._arrived:
            next_turn(self, self._deliver_next)  # first: an answer that raises does not stall the rest
        self._deliver(token, result, error)

    def deliver_arrived(self) -> None:
        """Deliver every answer that has arrived, now, without waiting for their turns."""
        while self._arrived:
            self._deliver_next()

    def _deliver(self, token: int, result: Any, error: Exception | None) -> None:
        entry = self._pending.pop(token, None)
        if entry is None:
            return
        key, on_result, on_error, changes = entry
        if key is not None and self._latest.get(key) != token:
            return  # a newer read with this key was asked for: this answer is stale
        if key is not None:
            self._latest.pop(key, None)
        if error is not None:
            if on_error is not None:
                on_error(error)
            else:
                raise error
            return
        if on_result is not None:
            on_result(result)
        if changes:
            self.changed.emit(changes)

    # -- changes that did not come through write()
    def notify(self, changes: Iterable[str] | str) -> None:
        """Say that something changed (a finished job, a store switch)."""
        names = topics(changes)
        if names:
            self.changed.emit(names)

    def job_finished(self, handle: Any, outcome: Any = None) -> None:
        """A job of this store ended (connect :attr:`JobRunner.job_finished`): say what it changed."""
        spec = getattr(handle, "spec", None)
        self.notify(job_changes(getattr(spec, "kind", None)))

    # -- what other processes change
    def start_live(self) -> None:
        """Follow the changes other processes make to the store (:attr:`changed` names them),
        until :meth:`close` or another store (:meth:`set_store` follows that one instead)."""
        self._stop_live()
        if self.store is not None and not self._closed:
            from modelyard.ui.common.live import LiveFeed

            self._live = LiveFeed(self, self.store)

    @property
    def live(self) -> Any:
        """The running LiveFeed, or None."""
        return self._live

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.close()
            self._live.deleteLater()
            self._live = None

    # -- life
    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def set_store(self, store: Store) -> None:
        """Answers still in flight for the old store are dropped."""
        self._pending.clear()
        self._latest.clear()
        self.selected.clear()
        live = self._live is not None
        self._stop_live()
        self.store = store
        if live:
            self.start_live()
        self.notify(TOPICS)

    def active_thread_count(self) -> int:
        try:
            return self._readers.activeThreadCount() + self._writer.activeThreadCount()
        except RuntimeError:
            return 0

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._readers.waitForDone(timeout_ms) and self._writer.waitForDone(timeout_ms)

    def close(self, timeout_ms: int = 30_000) -> bool:
        """Stop following the store, refuse new calls, drop pending answers, and wait for the calls
        in flight."""
        self._closed = True
        self._stop_live()
        self._pending.clear()
        return self.wait(timeout_ms)

    @classmethod
    def instances(cls) -> list[CoreClient]:
        return list(cls._instances)
