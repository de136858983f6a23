"""Answers that arrive together are delivered one per turn of the event loop."""

from __future__ import annotations

import threading
import time

from held_clock import held_clock
from modelyard.ui.common.client import CoreClient
from PySide6.QtCore import Qt, QTimer


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def test_answers_that_arrive_together_let_the_window_breathe_between_them(qtbot, store):
    """Three reads finish at the same moment and each answer takes 40 ms of the main thread to
    show (a chart made, a table filled): a 5 ms timer still runs between any two of them. Delivered
    as they were posted, the three ran back to back and held the window ~120 ms."""
    client = CoreClient(store)
    release = threading.Event()
    shown: list[int] = []
    for i in range(3):
        client.read(f"part {i}", lambda _store: release.wait(10), lambda _r, i=i: (busy(40), shown.append(i)))
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(held_clock()))
    timer.start()
    qtbot.wait(30)
    release.set()
    time.sleep(0.1)  # the main thread is busy while all three answers arrive
    qtbot.waitUntil(lambda: len(shown) == 3, timeout=5000)
    timer.stop()
    client.close()
    assert sorted(shown) == [0, 1, 2]
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:], strict=False)]
    # one gap holds the 100 ms sleep above and at most one answer (40 ms) after it, not all three
    assert gaps and max(gaps) < 170, f"the timer waited {max(gaps):.0f} ms: answers ran back to back"


def test_a_write_s_answer_and_its_change_come_in_order(qtbot, store):
    client = CoreClient(store)
    events: list[str] = []
    client.changed.connect(lambda names: events.append("changed " + ",".join(sorted(names))))
    client.write(lambda _s: 1, lambda r: events.append(f"first {r}"), changes="models")
    client.write(lambda _s: 2, lambda r: events.append(f"second {r}"), changes="runs")
    qtbot.waitUntil(lambda: len(events) == 4, timeout=5000)
    client.close()
    assert events == ["first 1", "changed models", "second 2", "changed runs"]
