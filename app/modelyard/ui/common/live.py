"""The window follows what other processes change in its store (another window, a script, the CLI).

:class:`LiveFeed` (owned by the window's :class:`~modelyard.ui.common.client.CoreClient`) runs a
:class:`modelyard.core.store.live.Watcher` on a thread of its own — never the main thread, which
only ever receives the topics — and calls ``client.notify(topics)`` on the main thread, so the
panels refresh as they do after the window's own writes. A burst of changes is coalesced: at
most one notification per :data:`COALESCE_MS`, carrying every topic that arrived meanwhile.
When the watcher lost track (a reconnect, or a watcher that failed and was made again), every
topic is notified.

Closing ends the thread within :data:`POLL_S` (it never waits on the database longer than that
at a time); the thread is a daemon, so even a watcher stuck reconnecting to a server that went
away never holds up quitting.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from modelyard.core.jobs import kinds

POLL_S = 0.25  # the longest the thread waits on the database before looking whether to stop
COALESCE_MS = 250  # at most one notification this often
RETRY_S = 2.0  # after a failure to follow the store (it went away), try again this much later
log = logging.getLogger(__name__)


class LiveFeed(QObject):
    """Follows ``store`` for ``client`` until :meth:`close`. See the module docstring."""

    _arrived = Signal(object)  # frozenset[str] of topics, emitted on the feed's thread

    def __init__(self, client: Any, store: Any) -> None:
        super().__init__(client)
        self._client = client
        self._store = store
        self._stop = threading.Event()
        self._pending: set[str] = set()
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        self._arrived.connect(self._take)  # queued onto the main thread (this object lives there)
        self.notified = 0  # notifications sent (for tests and the curious)
        self._thread = threading.Thread(target=self._follow, name="modelyard-live", daemon=True)
        self._thread.start()

    # -- the feed's thread: no widgets, no client calls here
    def _follow(self) -> None:
        from modelyard.core.store.live import Changes, Watcher

        if not Watcher.followable(self._store):
            return
        watcher = None
        lost = False  # a watcher failed: what changed until the next one started is unknown
        while not self._stop.is_set():
            try:
                if watcher is None:
                    watcher = Watcher(self._store)
                changes = watcher.poll(POLL_S)
            except Exception as exc:  # noqa: BLE001 - the store went away, the server is down...
                log.info("not following %s for now: %s", getattr(self._store, "display_location", "the store"), exc)
                if watcher is not None:
                    watcher.close()
                    watcher = None
                lost = True
                self._stop.wait(RETRY_S)
                continue
            if lost:
                lost, changes = False, Changes(kinds.TOPICS, everything=True)
            if changes is None or self._stop.is_set():
                continue
            topics = kinds.TOPICS if changes.everything else changes.topics & kinds.TOPICS
            try:
                self._arrived.emit(frozenset(topics))
            except RuntimeError:  # the window went away while this was on its way
                break
        if watcher is not None:
            watcher.close()

    # -- the main thread
    def _take(self, topics: frozenset[str]) -> None:
        if self._stop.is_set() or not topics:
            return
        self._pending |= topics
        if not self._timer.isActive():
            since_ms = (time.monotonic() - self._last) * 1000
            self._timer.start(max(0, int(COALESCE_MS - since_ms)))

    def _flush(self) -> None:
        topics, self._pending = frozenset(self._pending), set()
        if self._stop.is_set() or not topics:
            return
        self._last = time.monotonic()
        self.notified += 1
        self._client.notify(topics)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout_s: float = 0.5) -> bool:
        """Stop following; True when the thread ended within ``timeout_s``."""
        self._stop.set()
        self._timer.stop()
        self._pending.clear()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
