"""tests/held_clock.py: the stall meters' clock leaves out the time a thread only waited for a CPU
(other processes had it) and keeps every way it can block itself (here: sleeping)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from held_clock import held_clock


def test_waiting_for_a_cpu_is_left_out_and_blocking_is_counted():
    hogs = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
            for _ in range(2 * (os.cpu_count() or 2))]  # twice as many runnable processes as cores
    try:
        time.sleep(0.3)
        start_wall, start_held = time.perf_counter(), held_clock()
        while time.perf_counter() - start_wall < 1.0:
            pass  # busy: runnable all along, on a CPU only part of the time
        wall, held = time.perf_counter() - start_wall, held_clock() - start_held
        assert held < 0.9 * wall, f"busy {wall:.2f} s beside busier processes, counted {held:.2f} s"
        start_wall, start_held = time.perf_counter(), held_clock()
        time.sleep(0.5)  # blocked: not waiting for a CPU
        held = held_clock() - start_held
        assert held >= 0.45, f"a 0.5 s sleep counted as {held:.2f} s"
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
