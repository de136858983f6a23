"""The agent: fires a store's pipeline triggers on a machine with no window (``modelyard agent``).

Every ``interval`` seconds it

1. marks runs a dead process left ``running`` as ``interrupted`` (:meth:`Store.sweep_interrupted`),
   and takes over triggers whose claimer died before their run started;
2. claims every due trigger (:func:`.triggers.claim_due`: exactly once across agents and windows)
   and starts each claimed run on a thread of its own (at most ``jobs`` at once; the others wait
   queued);
   (before claiming, models named by an ``on: live_drift`` trigger whose prediction log grew get
   their live view read, and its drift alert recorded: :func:`modelyard.core.monitoring.live.check_new_alerts`);
3. delivers notifications waiting for a retry (:func:`modelyard.core.notify.deliver_pending`);

then sleeps. ``once`` does one pass and waits for the runs it started. Setting ``stop_event``
(Ctrl+C, SIGTERM) stops claiming, cancels the runs still going (recorded ``cancelled``, resumable)
and returns once they ended.

What happens is told to ``out`` as one plain dict per event (``{"event": "claimed" | "finished" |
"skipped" | "adopted" | "swept" | "error" | "stopping" | "left", ...}``; ``left``: a claimed run the
stop came before, left queued for the next agent); ``modelyard agent`` prints each as a
line (or a JSON line).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable
from typing import Any

from modelyard.core.pipelines.triggers import (
    MAX_SKIPPED,
    ON_TIME_S,
    SETTLE_S,
    Claim,
    Clock,
    SystemClock,
    start_due,
)
from modelyard.core.store import Store, team

__all__ = ["Agent", "run_agent"]

Out = Callable[[dict[str, Any]], None]


def run_agent(store: Store | str | os.PathLike[str] | None = None, *, db_url: str | None = None,
              interval: float = 30.0, once: bool = False, jobs: int = 1, clock: Clock | None = None,
              stop_event: threading.Event | None = None, out: Out | None = None,
              settle_s: float = SETTLE_S) -> dict[str, int]:
    """Run the agent on ``store`` (an open store, or a store folder / ``db_url`` to open) until
    ``stop_event`` is set, or for one pass with ``once``. Returns counts: ``claimed``, ``finished``,
    ``failed`` (runs that did not succeed), ``skipped``, ``errors``."""
    own = not isinstance(store, Store)
    opened = Store.open(store, db_url=db_url, create=False) if own else store
    assert isinstance(opened, Store)
    try:
        team.require(opened, "write", "Running the pipeline agent")
    except BaseException:
        if own:
            opened.close()
        raise
    agent = Agent(opened, interval=interval, jobs=jobs, clock=clock, stop_event=stop_event, out=out,
                  settle_s=settle_s)
    try:
        return agent.run(once=once)
    finally:
        if own:
            opened.close()


class Agent:
    """One agent's state: its thread pool, the runs it started, the errors it has told already."""

    def __init__(self, store: Store, *, interval: float = 30.0, jobs: int = 1, clock: Clock | None = None,
                 stop_event: threading.Event | None = None, out: Out | None = None,
                 settle_s: float = SETTLE_S) -> None:
        self.store = store
        self.interval = max(float(interval), 0.0)
        self.jobs = max(int(jobs), 1)
        self.clock = clock or SystemClock()
        self.stop_event = stop_event or threading.Event()
        self.cancel_event = threading.Event()  # set on stop: the runs still going are cancelled
        self.out = out or (lambda event: None)
        self.settle_s = settle_s
        self.counts = {"claimed": 0, "finished": 0, "failed": 0, "skipped": 0, "errors": 0}
        self._told: set[str] = set()  # trigger problems told once, not every pass
        self._live_seen: dict[str, int] = {}  # model -> the newest prediction log file read for alerts
        self._lock = threading.Lock()
        self._futures: set[cf.Future[None]] = set()
        self._pool = cf.ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="modelyard-agent-run")

    # ------------------------------------------------------------------ the loop
    def run(self, *, once: bool = False) -> dict[str, int]:
        try:
            while not self.stop_event.is_set():
                self.tick()
                if once or self.stop_event.wait(self.interval):
                    break
            self._wait_for_runs()
        finally:
            if self.stop_event.is_set():
                self.cancel_event.set()
            self._pool.shutdown(wait=True)
        with self._lock:
            return dict(self.counts)

    def tick(self) -> None:
        """One pass: sweep, adopt orphaned claims, claim and start due triggers, deliver notifications."""
        self._guard("sweep", self._sweep)
        if self.stop_event.is_set():
            return
        self._guard("live", self._live_alerts)
        started = self._guard("claim", lambda: start_due(
            self.store, now=self.clock.now(), on_time_s=max(ON_TIME_S, 2 * self.interval), settle_s=self.settle_s))
        skipped: dict[tuple[str, str], list[Claim]] = {}
        for item in started or ():
            claim = item.claim
            if item.adopted:
                self._emit("adopted", pipeline=claim.pipeline, trigger=claim.trigger, type=claim.type,
                           fire_key=claim.fire_key, run_id=item.run_id, detail=claim.detail)
            if item.run_id is not None:
                self._submit(claim, item.run_id)
            elif claim.decision == "skipped":
                skipped.setdefault((claim.pipeline, claim.trigger), []).append(claim)
            elif item.error and item.error not in self._told:
                self._told.add(item.error)  # a broken trigger is told once, not every pass
                self._error(item.error, pipeline=claim.pipeline, trigger=claim.trigger)
        for (pipeline, trigger), group in skipped.items():
            self._count("skipped", len(group))
            self._emit("skipped", pipeline=pipeline, trigger=trigger, count=len(group),
                       due=[c.fire_key for c in group], cron=group[0].detail.get("cron"),
                       capped=len(group) >= MAX_SKIPPED)  # older missed times were not counted
        self._guard("deliver", self._deliver)

    def _live_alerts(self) -> None:
        """Read the live view of each model an ``on: live_drift`` trigger names, when its prediction
        log has a new segment, and record its alert (which the claim that follows fires for)."""
        from modelyard.core.monitoring import live
        from modelyard.core.pipelines.triggers import live_drift_models

        models = live_drift_models(self.store)
        if models:
            live.check_new_alerts(self.store, models, self._live_seen)

    def _sweep(self) -> None:
        count = self.store.sweep_interrupted()
        if count:
            self._emit("swept", count=count)

    def _deliver(self) -> None:
        try:
            from modelyard.core.notify import deliver_pending
        except ImportError:  # the notify room is not there (an older checkout)
            return
        deliver_pending(self.store, now=self.clock.now())

    # ------------------------------------------------------------------ runs
    def _submit(self, claim: Claim, run_id: int) -> None:
        self._count("claimed")
        self._emit("claimed", pipeline=claim.pipeline, trigger=claim.trigger, type=claim.type,
                   fire_key=claim.fire_key, run_id=run_id, params=claim.params, detail=claim.detail)
        future = self._pool.submit(self._execute, claim, run_id)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: cf.Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _execute(self, claim: Claim, run_id: int) -> None:
        if self.cancel_event.is_set():  # stopped before its turn: the next agent takes the queued run over
            self._emit("left", pipeline=claim.pipeline, trigger=claim.trigger, run_id=run_id)
            return
        try:
            _execute_run(self.store, run_id, self.cancel_event)
            info = _run_info(self.store, run_id)
        except Exception as exc:  # noqa: BLE001 - told, never raised into the pool
            self._count("failed")
            self._error(f"Pipeline {claim.pipeline}: run {run_id} could not be executed: {_message(exc)}",
                        pipeline=claim.pipeline, run_id=run_id)
            return
        self._count("finished")
        if info.get("status") != "succeeded":
            self._count("failed")
        self._emit("finished", pipeline=claim.pipeline, trigger=claim.trigger, **info)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _wait_for_runs(self) -> None:
        """Wait for the runs this agent started; a stop on the way cancels them (and still waits)."""
        while True:
            with self._lock:
                pending = set(self._futures)
            if not pending:
                return
            if self.stop_event.is_set() and not self.cancel_event.is_set():
                self._emit("stopping", running=len(pending))
                self.cancel_event.set()
            cf.wait(pending, timeout=0.2)

    # ------------------------------------------------------------------ telling
    def _emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "at": self.clock.now().isoformat(timespec="seconds"), **fields}
        try:
            self.out(record)
        except Exception:  # noqa: BLE001 - a broken output (closed pipe) never stops the runs
            pass

    def _error(self, message: str, **fields: Any) -> None:
        self._count("errors")
        self._emit("error", message=message, **fields)

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a pass that failed is told; the next one tries again
            self._error(f"The agent could not {_DOING[what]}: {_message(exc)}")
            return None


_DOING = {"sweep": "look for interrupted runs", "claim": "look at the pipelines' triggers",
          "deliver": "deliver the waiting notifications"}


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    hint = getattr(exc, "hint", None)
    return f"{text} {hint}" if hint else text


def _execute_run(store: Store, run_id: int, cancel_event: threading.Event) -> None:
    """Run a queued pipeline run in this thread: through the ``pipeline.run`` job (so the jobs list
    shows it and its cancel reaches the steps) when that job kind exists, else the runner directly."""
    from modelyard.core.jobs import kinds

    if "pipeline.run" in kinds.KINDS:
        from modelyard.core.jobs.runner import JobSpec, run_job

        spec = JobSpec.for_kind("pipeline.run", f"Pipeline run {run_id}", {"run_id": run_id})
        run_job(store, spec, cancel_event=cancel_event)
        return
    from modelyard.core.pipelines.runner import execute_run

    execute_run(store, run_id, cancel_event=cancel_event)


def _run_info(store: Store, run_id: int) -> dict[str, Any]:
    from modelyard.core.store import models as m

    with store.session() as s:
        run = s.get(m.PipelineRun, run_id)
        if run is None:
            return {"run_id": run_id, "status": "gone"}
        duration = None
        if run.started_at is not None and run.ended_at is not None:
            duration = round((run.ended_at - run.started_at).total_seconds(), 3)
        return {"run_id": run_id, "status": run.status, "exit_code": run.exit_code, "error": run.error,
                "duration_s": duration}

