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
import time

from PySide6.QtCore import QCoreApplication, QObject, QTimer

from modelyard.ui.common import warmup

INTERVAL_MS = 100
FULL_EVERY_S = 600.0  # a real full collection (frozen objects included) at most this often


class _MainThreadCollector(QObject):
    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        gc.disable()
        gc.freeze()  # what exists now (modules, classes, the window) is not scanned again (below)
        self.frozen = gc.get_freeze_count()
        self.last_full = time.monotonic()
        self.warm_frozen = False
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> None:
        """Collect what Python would have collected by now, with its rules: a generation whose
        count passed its threshold, and the oldest one only once the objects that survived into
        it are a quarter of the long-lived ones (CPython's ``long_lived_pending >
        long_lived_total / 4``, which keeps full collections rare).

        Survivors of a collection of the oldest generation are frozen (``gc.freeze``), so the
        next one scans only what was made since: a full scan of the window's heap (a 100,000-run
        table, pandas, scikit-learn) takes 100-150 ms, a pause the window would show. Cycles
        among frozen objects are freed by a real full collection every ``FULL_EVERY_S``.
        """
        if warmup.warmed.is_set() and not self.warm_frozen:
            # the heavy libraries the warm-up imported are long-lived too: one collection now,
            # while the window is idle, instead of in the middle of the user's first import
            self.warm_frozen = True
            gc.collect(2)
            gc.freeze()
            self.frozen = gc.get_freeze_count()
            return
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0:
            return
        if c1 <= t1:
            gc.collect(0)
            return
        if c2 > t2 and len(gc.get_objects(generation=2)) > self.frozen // 4:
            if time.monotonic() - self.last_full > FULL_EVERY_S:
                gc.unfreeze()
                self.last_full = time.monotonic()
            gc.collect(2)
            gc.freeze()
            self.frozen = gc.get_freeze_count()
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
    gc.unfreeze()
    gc.enable()
