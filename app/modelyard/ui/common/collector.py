"""Python's cyclic garbage collection, run on the main thread only.

Python collects reference cycles in whichever thread happens to allocate when a generation's
threshold is crossed. Once the window's reads, writes and jobs run on worker threads (the core
client, background readers, the job runner), that is often a worker: a cycle holding a Qt
widget's wrapper is then destroyed there, deleting the widget off the GUI thread while the main
thread still delivers events to it — a segmentation fault some runs later (seen as a crash in
``QObject::event`` on a queued call to a ``QLabel`` while a registry write ran on the client's
writing thread). As pyqtgraph's ``GarbageCollector`` does, automatic collection is switched off
once the first worker-owning object exists and the same thresholds are checked by a timer on
the main thread, so every cycle is freed there.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 500


class _MainThreadCollector(QObject):
    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        self.long_lived = len(gc.get_objects(generation=2))
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start()

    def check(self) -> None:
        """Collect what Python would have collected by now, with its rules: a generation whose
        count passed its threshold, and the oldest one only once the objects that survived into
        it since the last full collection are a quarter of those it held then (CPython's
        ``long_lived_pending > long_lived_total / 4``, which keeps full collections rare)."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0:
            return
        if c1 <= t1:
            gc.collect(0)
            return
        if c2 > t2:
            held = len(gc.get_objects(generation=2))
            if held - self.long_lived > self.long_lived // 4:
                gc.collect(2)
                self.long_lived = len(gc.get_objects(generation=2))
                return
        gc.collect(1)


_collector: _MainThreadCollector | None = None


def collect_on_main_thread() -> None:
    """Make sure cycles are only collected on the main thread (idempotent; call it on the main
    thread from anything that starts worker threads)."""
    global _collector
    app = QCoreApplication.instance()
    if app is None or threading.current_thread() is not threading.main_thread():
        return
    if _collector is None:
        _collector = _MainThreadCollector(app)
        app.destroyed.connect(_forget)


def _forget() -> None:
    global _collector
    _collector = None
    gc.enable()
