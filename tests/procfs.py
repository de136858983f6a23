"""Reading a process's memory from Linux's /proc (tests/test_serving.py and tests/benchmarks/serve_memory.py)."""

from __future__ import annotations


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of process ``pid``, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out
