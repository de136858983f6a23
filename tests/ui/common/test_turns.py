"""Work split into turns of the event loop lets the window's timers run between the turns."""

from __future__ import annotations

import time

from held_clock import held_clock
from modelyard.ui.common import turns
from PySide6.QtCore import QObject, Qt, QTimer


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def test_a_timer_ticks_between_the_turns(qtbot):
    """Each step holds the main thread 30 ms; a 5 ms timer (an animation, a progress bar, the
    next key press's repaint) still runs between any two of them. Chained ``singleShot(0)`` calls
    ran two or three steps back to back before a timer got its turn (a 60-90 ms hold)."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(held_clock()))
    done: list[int] = []
    owner = QObject()
    timer.start()
    qtbot.wait(30)
    turns.in_turns(owner, [lambda i=i: (busy(30), done.append(i)) for i in range(6)], on_done=lambda: done.append(-1))
    qtbot.waitUntil(lambda: -1 in done, timeout=5000)
    timer.stop()
    assert done == [0, 1, 2, 3, 4, 5, -1]
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 50, f"the timer waited {max(gaps):.0f} ms: steps ran back to back"


def test_a_newer_drawing_stops_the_older_turns(qtbot):
    owner = QObject()
    done: list[str] = []
    token = turns.in_turns(owner, [lambda: done.append("a1"), lambda: done.append("a2"), lambda: done.append("a3")])
    token.cancel()  # a newer snapshot arrived after the first step
    turns.in_turns(owner, [lambda: done.append("b1"), lambda: done.append("b2")], on_done=lambda: done.append("b"))
    qtbot.waitUntil(lambda: "b" in done, timeout=2000)
    qtbot.wait(20)
    assert done == ["a1", "b1", "b2", "b"]


def test_the_turns_stop_with_their_owner(qtbot):
    owner = QObject()
    done: list[int] = []
    turns.in_turns(owner, [lambda: done.append(1), lambda: done.append(2)])
    owner.deleteLater()
    qtbot.wait(50)
    assert done == [1]
