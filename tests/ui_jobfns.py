"""Job functions the GUI tests start. Importable by name, so they also run in child processes."""

from __future__ import annotations

import time

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobContext


def ticking(ctx: JobContext, *, seconds: float = 30.0, step: float = 0.02) -> dict:
    """Reports progress until ``seconds`` pass; every report is a cancellation point."""
    start = time.monotonic()
    ctx.log("ticking started")
    while (elapsed := time.monotonic() - start) < seconds:
        ctx.progress(elapsed / seconds, f"{elapsed:.1f} s of {seconds:.0f} s")
        time.sleep(step)
    return {"seconds": seconds}


def busy_without_checks(ctx: JobContext, *, seconds: float = 30.0) -> dict:
    """CPU-bound work that never checks for cancellation: only a child process can stop it at once."""
    ctx.progress(0.0, "crunching")
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1
    return {"x": x}


def refuse(ctx: JobContext, *, path: str = "data.csv") -> None:
    ctx.progress(0.5, "reading")
    raise ModelyardError(f"{path}, row 3: expected 4 columns, found 5.", hint="Fix the row or pick another file.")


def quiet(ctx: JobContext, *, path: str = "churn.mybundle") -> dict:
    """Writes no log line (as an export does) and says what it made in its result."""
    ctx.progress(0.5, f"Writing {path}")
    return {"path": path, "size_bytes": 2048}


def fail_after(ctx: JobContext, *, seconds: float = 1.0) -> None:
    """Runs a while, then fails with a message for the user."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.progress(None, "waiting")
        time.sleep(0.02)
    raise ModelyardError("churn.csv: the column 'churned' is empty.", hint="Pick another target.")


def unknown_length(ctx: JobContext, *, seconds: float = 30.0) -> dict:
    """A phase whose length nobody knows (a fit): progress None until cancelled or done."""
    ctx.progress(0.3, "Loading")
    ctx.progress(None, "Fitting RandomForestClassifier on 7,043 rows")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.check_cancelled()
        time.sleep(0.02)
    return {"fitted": True}
