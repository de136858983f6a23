"""A clock for "how long did the window hold its main thread": wall time minus the time the
calling thread was ready to run but waited for a CPU (Linux's per-thread run-queue wait,
``/proc/thread-self/schedstat``).

A stall meter ticks a timer on the main thread and takes the longest gap between two ticks.
On a machine busy with other processes (the suite runs two test processes on two cores) part of
a gap is the thread waiting its turn for a CPU — the machine's doing, not the window's. Waiting
on a lock, the GIL, a process or I/O is *not* run-queue wait (the thread sleeps), so this clock
still counts every way the window can block itself. Elsewhere (no schedstat) it is the wall clock.
"""

from __future__ import annotations

import time

_SCHEDSTAT = "/proc/thread-self/schedstat"


def _runqueue_wait_s() -> float:
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def held_clock() -> float:
    """Seconds, for differences only: the calling thread's wall time less its run-queue wait."""
    return time.perf_counter() - _runqueue_wait_s()


def runqueue_wait_s() -> float:
    """The calling thread's run-queue wait so far (0.0 where the system does not say)."""
    return _runqueue_wait_s()
