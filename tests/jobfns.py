"""Job functions and child-process entry points used by the tests.

They live in a plain module (not a test file) so spawned child processes can import them by
name: ``JobSpec(func="jobfns:slow", ...)``. tests/conftest.py puts this folder on sys.path.
Add functions freely; do not change the behaviour of existing ones (other tests rely on it).
"""

from __future__ import annotations

import os
import time
from typing import Any

# --------------------------------------------------------------------------- jobs (store / jobs tests)


def ok(ctx: Any, *, value: int = 42, lines: int = 3) -> dict[str, Any]:
    """Succeeds: logs ``lines`` lines, reports progress, returns ``{"value": value}``."""
    for i in range(lines):
        ctx.log(f"line {i + 1} of {lines}")
        ctx.progress((i + 1) / max(lines, 1), f"step {i + 1}")
    return {"value": value}


def user_error(ctx: Any, *, message: str = "The column 'price' is missing from sales.csv.") -> None:
    """Fails the way bad input fails: a ModelyardError whose message is meant for the user."""
    from modelyard.core.common.errors import ModelyardError

    ctx.log("checking the input")
    raise ModelyardError(message)


def crash(ctx: Any) -> None:
    """Fails the way a bug fails: an unexpected exception."""
    ctx.log("about to divide")
    _inner_helper_that_crashes()


def _inner_helper_that_crashes() -> None:
    values: dict[str, int] = {}
    values["n"] = 1 // 0


def slow(ctx: Any, *, seconds: float = 30.0) -> dict[str, Any]:
    """Runs for ``seconds``, reporting progress (a cancellation point) every 50 ms."""
    start = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - start) < seconds:
        ctx.progress(elapsed / seconds, f"tick {n}")
        n += 1
        time.sleep(0.05)
    return {"ticks": n}


def slow_with_run(ctx: Any, *, seconds: float = 30.0, experiment: str = "killed") -> dict[str, Any]:
    """Like :func:`slow`, after recording a 'running' run owned by this process (as training does)."""
    from modelyard.core.common.procs import hostname
    from modelyard.core.store import models as m

    with ctx.store.write() as s:
        exp = m.Experiment(name=experiment)
        s.add(exp)
        s.flush()
        s.add(m.Run(experiment_id=exp.id, name="doomed", status="running", host=hostname(), pid=os.getpid(),
                    heartbeat_at=m.utcnow(), job_id=ctx.job_id))
    ctx.log("run recorded")
    return slow(ctx, seconds=seconds)


def many_progress(ctx: Any, *, steps: int = 100_000) -> dict[str, Any]:
    """Calls ctx.progress ``steps`` times with tiny increments (throttling must absorb it)."""
    for i in range(steps):
        ctx.progress(i / steps)
    return {"steps": steps}


def die(ctx: Any, *, code: int = 3) -> None:
    """Ends its process at once, as a crash in native code would (only for process=True jobs)."""
    ctx.progress(0.1, "about to die")
    os._exit(code)


# --------------------------------------------------------------------------- concurrency (test_store)


def concurrent_writer(root: str, worker: int, n: int, queue: Any) -> None:
    """One of several processes writing to the same store at once.

    Each of ``n`` iterations is a small write transaction, rotating through job rows, experiments
    with a run, params and metrics, audit events, and artifacts saved with the session (half of
    them with bytes every worker shares, so the same file is registered concurrently); reads are
    interleaved. Reports ``("ok", worker, counts)`` or ``("error", worker, traceback)`` on ``queue``.
    """
    import traceback

    from sqlalchemy import func, select

    try:
        from modelyard.core.store import Store
        from modelyard.core.store import models as m

        counts = {"jobs": 0, "experiments": 0, "runs": 0, "params": 0, "metrics": 0, "audit": 0,
                  "artifacts_own": 0, "artifacts_shared": 0, "reads": 0}
        with Store.open(root) as store:
            for i in range(n):
                kind = i % 5
                if kind == 0:
                    with store.write() as s:
                        s.add(m.Job(kind="test.concurrent", title=f"w{worker} job {i}", status="succeeded",
                                    params={"worker": worker, "i": i}, log=""))
                    counts["jobs"] += 1
                elif kind == 1:
                    with store.write() as s:
                        exp = m.Experiment(name=f"w{worker}-exp-{i}")
                        s.add(exp)
                        s.flush()
                        run = m.Run(experiment_id=exp.id, name=f"run {i}", status="finished")
                        s.add(run)
                        s.flush()
                        s.add_all([m.Param(run_id=run.id, key=f"p{k}", value=str(k)) for k in range(3)])
                        s.add_all([m.Metric(run_id=run.id, key="loss", step=k, timestamp=1_700_000_000_000 + k,
                                            value=1.0 / (k + 1)) for k in range(4)])
                        s.add(m.LatestMetric(run_id=run.id, key="loss", step=3, timestamp=1_700_000_000_003, value=0.25))
                    counts["experiments"] += 1
                    counts["runs"] += 1
                    counts["params"] += 3
                    counts["metrics"] += 4
                elif kind == 2:
                    with store.write() as s:
                        s.add(m.AuditEvent(actor=f"worker{worker}", entity_type="test", entity_id=str(i),
                                           action="touch", details={"worker": worker}))
                    counts["audit"] += 1
                elif kind == 3:
                    with store.write() as s:
                        store.artifacts.put_bytes(f"worker {worker} item {i}".encode(), session=s)
                    counts["artifacts_own"] += 1
                else:
                    with store.write() as s:
                        store.artifacts.put_bytes(f"shared item {i}".encode(), session=s)
                    counts["artifacts_shared"] += 1
                if i % 3 == 0:
                    with store.session() as s:
                        s.scalar(select(func.count()).select_from(m.Job))
                        s.scalars(select(m.Run).order_by(m.Run.id.desc()).limit(5)).all()
                    counts["reads"] += 1
        queue.put(("ok", worker, counts))
    except BaseException:  # noqa: BLE001 - the parent asserts on what we report
        queue.put(("error", worker, traceback.format_exc()))
        raise


def open_store_and_report(root: str, queue: Any) -> None:
    """Open (creating if needed) the store at ``root``; report its id and schema revision on ``queue``."""
    import traceback

    try:
        from modelyard.core.store import Store

        with Store.open(root) as store:
            queue.put(("ok", os.getpid(), {"store_id": store.meta().get("store_id"),
                                           "revision": store.current_revision()}))
    except BaseException:  # noqa: BLE001 - the parent asserts on what we report
        queue.put(("error", os.getpid(), traceback.format_exc()))
        raise


def write_in_one_transaction(ctx: Any, *, rows: int = 50) -> dict[str, Any]:
    """Saves ``rows`` audit events in one write transaction, reporting progress and logging inside it."""
    from modelyard.core.store import models as m

    ctx.log("writing")
    time.sleep(0.6)  # so the progress calls below are due to be written to the job row
    with ctx.store.write() as s:
        for i in range(rows):
            s.add(m.AuditEvent(actor="job", entity_type="row", entity_id=str(i), action="import"))
            s.flush()  # the transaction now holds the database's write lock
            ctx.progress((i + 1) / rows, f"row {i + 1} of {rows}")
            ctx.log(f"saved row {i + 1}")
    return {"rows": rows}


# --------------------------------------------------------------------------- job kind clean-ups (tests/core/jobs)

CLEANUP_CALLS: list[tuple[int, str, str | None]] = []  # what record_cleanup saw (it runs in the runner's process)


def record_cleanup(store: Any, job_id: int, status: str, error: str | None) -> None:
    """A kind's clean-up that remembers its calls in :data:`CLEANUP_CALLS`."""
    CLEANUP_CALLS.append((job_id, status, error))


def failing_cleanup(store: Any, job_id: int, status: str, error: str | None) -> None:
    """A kind's clean-up that fails (the runner logs it and keeps the job's outcome)."""
    raise RuntimeError("the clean-up broke")
