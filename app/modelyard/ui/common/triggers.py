"""The open window fires pipeline triggers, as ``modelyard agent`` does on a machine with no display.

Every :data:`INTERVAL_MS` a :class:`TriggerTimer` asks the core, on the client's writing thread,
to claim what is due (:func:`modelyard.core.pipelines.triggers.start_due`: schedules, new files,
drift) and to retry notifications waiting for delivery; each claimed run is then started as a
``pipeline.run`` job through the window's job runner, so it shows in the Jobs dock and the
Pipelines panel like a run started by hand. Claims go through the store's unique trigger-firing
rows: an agent and an open window on one store never run the same occasion twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

INTERVAL_MS = 30_000


def _pass(store: Any) -> list[Any]:
    """One pass in the writing thread: claim and create the runs, then retry due notifications."""
    from modelyard.core.notify import deliver_pending
    from modelyard.core.pipelines.triggers import SystemClock, start_due

    now = SystemClock().now()
    started = start_due(store, now=now)
    deliver_pending(store, now=now)
    return started


class TriggerTimer(QObject):
    """Fires the store's triggers while the window is open. ``submit(spec)`` starts a job."""

    fired = Signal(object)  # list of core.pipelines.triggers.Started, after each pass that did something

    def __init__(self, client: Any, submit: Callable[[Any], Any], parent: QObject | None = None, *,
                 interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.client = client
        self._submit = submit
        self._busy = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def tick(self) -> None:
        if self._busy:  # the last pass has not come back (a slow folder, a busy store)
            return
        self._busy = True
        self.client.write(_pass, self._started, self._failed)

    def _failed(self, exc: Exception) -> None:
        self._busy = False
        self.client.message.emit(f"Pipeline triggers were not checked: {getattr(exc, 'message', exc)}", 8000)

    def _started(self, started: list[Any]) -> None:
        from modelyard.core.pipelines.runner import pipeline_job_spec

        self._busy = False
        for item in started:
            if item.run_id is not None:
                self._submit(pipeline_job_spec(item.run_id, title=f"Pipeline {item.claim.pipeline} "
                                                                  f"(run {item.run_id}, {item.claim.type})"))
            elif item.error:
                self.client.message.emit(item.error, 8000)
        if started:
            self.client.notify("pipelines")
            self.fired.emit(started)
