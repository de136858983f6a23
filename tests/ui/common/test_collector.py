"""Cyclic garbage is collected on the main thread only, once the window's workers exist.

A reference cycle holding a Qt widget's wrapper, collected on a worker thread, deletes the widget
off the GUI thread: the registry tests crashed in ``QObject::event`` in about half the runs when
the client's writing thread triggered a collection (ui/common/collector.py)."""

from __future__ import annotations

import gc
import threading

from modelyard.ui.common.client import CoreClient


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cycles_made_on_a_worker_thread_are_collected_on_the_main_thread(qtbot, store) -> None:
    client = CoreClient(store)
    where: list[str] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            where.append(threading.current_thread().name)

    gc.callbacks.append(record)
    try:
        def churn(_store):  # what a busy read or write does: allocate a lot, leave cycles behind
            for _ in range(50_000):
                _Cycle()
            return "done"

        answers: list[str] = []
        for _ in range(3):
            client.read("churn", churn, answers.append)
            qtbot.waitUntil(lambda n=len(answers) + 1: len(answers) == n, timeout=10_000)
        qtbot.waitUntil(lambda: threading.main_thread().name in where, timeout=5_000)
    finally:
        gc.callbacks.remove(record)
        client.close()
    assert where and set(where) == {threading.main_thread().name}, where
