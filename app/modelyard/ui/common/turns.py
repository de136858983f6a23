"""Main-thread work split into turns of the event loop, with the window's timers between them.

Drawing a pyqtgraph chart takes 15-40 ms of the main thread, so views that draw several draw one
per turn. The next turn must not be a ``QTimer.singleShot(0, …)``: that is a posted event, and Qt
delivers posted events before it looks at its timers, so a chain of them ran two or three steps
back to back (a 60-90 ms hold) before any timer — an animation, a progress bar, a repaint —
got its turn. A 1 ms timer is queued with the others, so they take turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer

NEXT_TURN_MS = 1


def next_turn(context: QObject, fn: Callable[[], object]) -> None:
    """Call ``fn`` on a later turn of the event loop, after the timers already due (dropped if
    ``context`` is deleted first)."""
    QTimer.singleShot(NEXT_TURN_MS, context, fn)


class Turns:
    """The steps still to run; :meth:`cancel` drops them (a newer drawing replaces this one)."""

    def __init__(self, context: QObject, steps: Sequence[Callable[[], object]],
                 on_done: Callable[[], object] | None) -> None:
        self.context = context
        self.steps = list(steps)
        self.on_done = on_done
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.steps = []

    def _run(self) -> None:
        if self.cancelled:
            return
        if not self.steps:
            if self.on_done is not None:
                self.on_done()
            return
        self.steps.pop(0)()
        if self.steps or self.on_done is not None:
            # a lambda, not the bound method: PySide keeps a bound method's object only weakly
            next_turn(self.context, lambda: self._run())


def in_turns(context: QObject, steps: Sequence[Callable[[], object]],
             on_done: Callable[[], object] | None = None) -> Turns:
    """Run the first step now and each further one on its own turn of the event loop, then
    ``on_done``. The turns stop when ``context`` is deleted or the returned :class:`Turns` is
    cancelled."""
    turns = Turns(context, steps, on_done)
    turns._run()
    return turns
