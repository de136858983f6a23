"""Runs a pipeline's graph on the job system, and records every run.

::

    from modelyard.core.pipelines.runner import run_pipeline, resume_run

    outcome = run_pipeline(store, "pipelines/churn.yaml", params={"data": "march.csv"}, jobs=2)
    outcome.status, outcome.exit_code          # "blocked", 3 (a gate stopped it)
    resume_run(store, outcome.run_id)          # after fixing the cause: the failed step and what follows

:func:`create_run` records a ``queued`` run with every step ``pending``; :func:`execute_run` runs
it in this thread: a scheduler loop hands the steps whose needs are done to a pool of ``jobs``
worker threads; each step runs its job(s) with :func:`~modelyard.core.jobs.runner.run_job` (in a
child process where the job kind says, so two training branches use two cores). Per step:
references resolved (:mod:`.refs`), the cache consulted (:mod:`.cache`: an unchanged step is
``cached`` and reuses the earlier outputs), then up to ``1 + retries`` attempts with back-off
(``retry_delay * 2**i``), each limited to ``timeout`` seconds (the attempt's job is cancelled and
the attempt fails "timed out after N s"). A failed or blocked step's downstream steps are
``skipped``; independent branches go on. A cancel cancels the running steps' jobs (``cancelled``)
and skips the rest. The run ends ``cancelled`` > ``failed`` > ``blocked`` > ``succeeded``.

Recorded: the run's host, pid and heartbeat (every :data:`HEARTBEAT_S`); each step's status,
attempts, times, resolved params, cache key, outputs, log (its jobs' log lines), error and the
records it created, each linked ``pipeline_run -> record`` ("produced"); the audit events
``pipeline_run`` ``start`` and ``end``. A step costs the runner two write transactions (start,
end) and a cached step one read and one write.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update

from modelyard.core.common.errors import (
    GateFailed,
    JobCancelled,
    ModelyardError,
    NotFoundError,
)
from modelyard.core.common.procs import current_user, hostname
from modelyard.core.jobs.runner import JobSpec
from modelyard.core.pipelines import refs
from modelyard.core.pipelines.cache import cache_key, still_there
from modelyard.core.pipelines.catalog import save_pipeline
from modelyard.core.pipelines.spec import STEP_DONE, Pipeline, Step
from modelyard.core.pipelines.steps import handler
from modelyard.core.pipelines.steps.base import StepBlocked, StepContext, StepResult
from modelyard.core.store import Store, records
from modelyard.core.store import models as m

HEARTBEAT_S = 2.0
POLL_S = 0.1  # how often the scheduler looks at cancel and timeouts while steps run
_BAD = ("failed", "blocked", "skipped", "cancelled", "interrupted")
_LINK_TYPES = {"check": "monitoring_check", "split": "dataset_split"}  # a step's record type -> the lineage graph's node type


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class PipelineOutcome:
    run_id: int
    status: str  # succeeded | failed | blocked | cancelled | interrupted
    exit_code: int  # 0 succeeded, 3 blocked, 1 otherwise
    error: str | None = None
    steps: dict[str, str] = field(default_factory=dict)  # name -> status

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "exit_code": self.exit_code, "error": self.error,
                "steps": dict(self.steps)}


def exit_code_of(status: str) -> int:
    return 0 if status == "succeeded" else 3 if status == "blocked" else 1


class PipelineReporter(Protocol):
    """What a run tells its watcher as it goes. Called from the runner's threads (the scheduler
    and the step workers): implementations must be thread-safe and quick."""

    def step(self, name: str, status: str) -> None: ...
    def log(self, name: str, line: str) -> None: ...
    def progress(self, name: str, fraction: float | None, message: str) -> None: ...


class NullPipelineReporter:
    def step(self, name: str, status: str) -> None:
        pass

    def log(self, name: str, line: str) -> None:
        pass

    def progress(self, name: str, fraction: float | None, message: str) -> None:
        pass


# --------------------------------------------------------------------------- creating runs


def _merge_params(pipeline: Pipeline, params: dict[str, Any] | None) -> dict[str, Any]:
    given = dict(params or {})
    unknown = sorted(set(given) - set(pipeline.params))
    if unknown:
        known = ", ".join(sorted(pipeline.params)) or "none"
        raise ModelyardError(f"The pipeline {pipeline.name!r} has no parameter{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown)}.", hint=f"Its parameters: {known} (declared under 'params:').")
    return {**pipeline.params, **{k: _as_default_type(pipeline, k, v) for k, v in given.items()}}


def _as_default_type(pipeline: Pipeline, name: str, value: Any) -> Any:
    """A value given as text (``--param n=3``, the Run form) read as its default's type (a number,
    true/false); other values as given."""
    default = pipeline.params.get(name)
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else f"a number like its default {default!r}"
        raise ModelyardError(f"The parameter {name!r} of {pipeline.name!r} must be {kind}, not {value!r}.",
                             hint=f"Give it as --param {name}=VALUE.") from None
    return value


def _insert_run(store: Store, pipeline_id: int, pipeline: Pipeline, params: dict[str, Any], *,
                trigger: dict[str, Any] | None, jobs: int, force: bool, resume_of: int | None) -> int:
    try:
        jobs = int(jobs)
    except (TypeError, ValueError):
        jobs = 0
    if jobs < 1:
        raise ModelyardError(f"jobs must be a whole number of at least 1 (got {jobs!r}).",
                             hint="Run at most that many steps at once: --jobs 2.")
    with store.write() as s:
        run = m.PipelineRun(pipeline_id=pipeline_id, status="queued", params=params, spec=pipeline.to_json(),
                            spec_sha256=pipeline.sha256, trigger=dict(trigger or {"type": "manual"}),
                            resumed_from=resume_of, max_parallel=jobs, force=bool(force), actor=current_user())
        s.add(run)
        s.flush()
        for i, st in enumerate(pipeline.steps):
            s.add(m.PipelineStepRun(run_id=run.id, step=st.name, kind=st.kind, position=st.position or i,
                                    status="pending"))
        return run.id


def create_run(store: Store, pipeline: Pipeline, *, params: dict[str, Any] | None = None,
               trigger: dict[str, Any] | None = None, jobs: int = 1, force: bool = False,
               resume_of: int | None = None) -> int:
    """List ``pipeline`` in the store (or update it) and record a ``queued`` run of it, every step
    ``pending``; returns the run's id. ``params`` override the pipeline's defaults (an unknown
    name is refused, naming it)."""
    merged = _merge_params(pipeline, params)
    pipeline_id = save_pipeline(store, pipeline)
    return _insert_run(store, pipeline_id, pipeline, merged, trigger=trigger, jobs=jobs, force=force,
                       resume_of=resume_of)


def run_pipeline(store: Store, path_or_pipeline: str | os.PathLike[str] | Pipeline, *,
                 params: dict[str, Any] | None = None, jobs: int = 1, force: bool = False,
                 reporter: PipelineReporter | None = None, cancel_event: threading.Event | None = None,
                 trigger: dict[str, Any] | None = None) -> PipelineOutcome:
    """Load the pipeline file (unless given a :class:`Pipeline`), record a run and execute it now."""
    pipeline = path_or_pipeline
    if not isinstance(pipeline, Pipeline):
        from modelyard.core.pipelines.loading import load_pipeline

        pipeline = load_pipeline(Path(path_or_pipeline))
    run_id = create_run(store, pipeline, params=params, trigger=trigger, jobs=jobs, force=force)
    return execute_run(store, run_id, reporter=reporter, cancel_event=cancel_event)


def resume_run(store: Store, run_id: int, *, jobs: int | None = None, reporter: PipelineReporter | None = None,
               cancel_event: threading.Event | None = None) -> PipelineOutcome:
    """A new run of the pipeline as run ``run_id`` ran it (same spec and params) that reuses the
    outputs of its succeeded and cached steps and runs the others and every step after them."""
    return execute_run(store, create_resume_run(store, run_id, jobs=jobs), reporter=reporter,
                       cancel_event=cancel_event)


def create_resume_run(store: Store, run_id: int, *, jobs: int | None = None) -> int:
    """Record the queued run that resumes run ``run_id`` (see :func:`resume_run`) and return its id;
    the window executes it as a ``pipeline.run`` job. Refuses a run that succeeded or has not ended."""
    with store.session() as s:
        old = s.get(m.PipelineRun, int(run_id))
        if old is None:
            raise NotFoundError(f"There is no pipeline run {run_id} in this store.",
                                hint="'modelyard pipeline runs' lists the runs.")
        status, spec, params = old.status, dict(old.spec), dict(old.params or {})
        pipeline_id, parallel, force = old.pipeline_id, old.max_parallel, old.force
    if status == "succeeded":
        raise ModelyardError(f"Pipeline run {run_id} succeeded: there is nothing to resume.",
                             hint="Run the pipeline again instead (with --force to rerun every step).")
    if status in ("queued", "running"):
        raise ModelyardError(f"Pipeline run {run_id} is still {status}; it can be resumed once it ended.",
                             hint="Cancel it first, or wait for it to end.")
    pipeline = Pipeline.from_json(spec)
    return _insert_run(store, pipeline_id, pipeline, params, trigger={"type": "resume", "run": int(run_id)},
                       jobs=jobs or parallel, force=force, resume_of=int(run_id))


# --------------------------------------------------------------------------- executing


@dataclass
class _Done:
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Execution:
    def __init__(self, store: Store, run_id: int, reporter: PipelineReporter, cancel: threading.Event) -> None:
        self.store, self.run_id, self.reporter, self.cancel = store, int(run_id), reporter, cancel
        with store.session() as s:
            run = s.get(m.PipelineRun, self.run_id)
            if run is None:
                raise NotFoundError(f"There is no pipeline run {run_id} in this store.",
                                    hint="'modelyard pipeline runs' lists the runs.")
            if run.status != "queued":
                raise ModelyardError(f"Pipeline run {run_id} is {run.status}, not queued: it cannot be run again.",
                                     hint="Resume it ('modelyard pipeline resume') or start a new run.")
            self.pipeline = Pipeline.from_json(run.spec)
            try:
                self.order = self.pipeline.order()
            except ValueError as exc:  # validation refuses a cycle; a Pipeline built by hand may have one
                raise ModelyardError(f"Pipeline run {run_id} cannot run: {exc}.",
                                     hint="Validate the file ('modelyard pipeline validate') and fix its needs.") from None
            self.params = dict(run.params or {})
            self.jobs = max(1, run.max_parallel or 1)
            self.force = bool(run.force)
            self.pipeline_id = run.pipeline_id
            self.resumed_from = run.resumed_from
            self.step_ids = dict(s.execute(select(m.PipelineStepRun.step, m.PipelineStepRun.id)
                                           .where(m.PipelineStepRun.run_id == self.run_id)).all())
            self.reuse: dict[str, tuple[int, dict[str, Any]]] = {}
            if self.resumed_from is not None:
                prev = {r.step: r for r in s.scalars(select(m.PipelineStepRun)
                                                     .where(m.PipelineStepRun.run_id == self.resumed_from))}
                again = self.pipeline.downstream(n for n in self.pipeline.names
                                                 if n not in prev or prev[n].status not in STEP_DONE)
                self.reuse = {n: (prev[n].id, dict(prev[n].outputs or {})) for n in self.pipeline.names
                              if n not in again}
        self.status: dict[str, str] = {n: "pending" for n in self.pipeline.names}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.contexts: dict[str, StepContext] = {}
        self.cancelling = False
        self._flushed: dict[str, tuple[int, int | None]] = {}  # per running step: log lines and job written

    # -- recording
    def _start(self) -> None:
        now = m.utcnow()
        with self.store.write() as s:
            moved = s.execute(update(m.PipelineRun)
                              .where(m.PipelineRun.id == self.run_id, m.PipelineRun.status == "queued")
                              .values(status="running", started_at=now, heartbeat_at=now, host=hostname(),
                                      pid=os.getpid()))
            if moved.rowcount != 1:  # another process started it between our read and this write
                raise ModelyardError(f"Pipeline run {self.run_id} was started by another process.",
                                     hint="'modelyard pipeline show' follows it there.")
            records.audit(s, "pipeline_run", self.run_id, "start", to_value=self.pipeline.name,
                          details={"pipeline": self.pipeline.name, "jobs": self.jobs, "force": self.force,
                                   "resumed_from": self.resumed_from})

    def _write_step(self, name: str, made: list[dict[str, Any]] | None = None, **values: Any) -> None:
        with self.store.write() as s:
            s.execute(update(m.PipelineStepRun).where(m.PipelineStepRun.id == self.step_ids[name]).values(**values))
            for rec in made or []:
                records.link(s, "pipeline_run", self.run_id, _LINK_TYPES.get(rec["type"], rec["type"]), rec["id"],
                             "produced", {"step": name, "pipeline": self.pipeline.name})

    def _heartbeat(self) -> None:
        changed: dict[str, dict[str, Any]] = {}
        for name, sc in list(self.contexts.items()):
            seen = (len(sc.lines), sc.job_id)
            if self.status[name] == "running" and seen != self._flushed.get(name):
                self._flushed[name] = seen
                changed[name] = {"log": "\n".join(sc.lines[: seen[0]]), "job_id": seen[1]}
        with self.store.write() as s:
            s.execute(update(m.PipelineRun).where(m.PipelineRun.id == self.run_id).values(heartbeat_at=m.utcnow()))
            for name, values in changed.items():
                s.execute(update(m.PipelineStepRun).where(m.PipelineStepRun.id == self.step_ids[name],
                                                          m.PipelineStepRun.status == "running").values(**values))

    def _set(self, name: str, status: str) -> None:
        self.status[name] = status
        self.reporter.step(name, status)

    # -- one step (on a worker thread)
    def _step(self, st: Step, upstream: dict[str, dict[str, Any]]) -> _Done:
        sc = self.contexts[st.name]
        now = m.utcnow()
        try:
            params = refs.resolve(st.params, self.params, upstream)
        except refs.UnresolvedReference as exc:
            return self._end(sc, _Done("failed", error=f"A reference in the params of step {st.name!r} cannot be "
                                                       f"resolved: {exc}"), now, None, None, [])
        if st.name in self.reuse:
            prev_id, outputs = self.reuse[st.name]
            self._write_step(st.name, status="cached", params=params, outputs=outputs, cached_from=prev_id,
                             started_at=now, ended_at=now, records=[])
            return _Done("cached", outputs)
        try:
            key = cache_key(st, params, self.pipeline.folder, self.store)
        except (ModelyardError, OSError) as exc:
            return self._end(sc, _Done("failed", error=_message(exc)), now, params, None, [])
        if st.cache and not self.force:
            hit = self._cached(st.name, key)
            if hit is not None and not still_there(st, hit[1]):
                sc.log(f"Inputs unchanged, but a file step run {hit[0]} wrote is gone: running it again.")
                hit = None
            if hit is not None:
                self._write_step(st.name, status="cached", params=params, cache_key=key, outputs=hit[1],
                                 cached_from=hit[0], started_at=now, ended_at=now, records=[],
                                 log=f"Inputs unchanged: reusing this step's outputs from pipeline run {hit[2]}.")
                return _Done("cached", hit[1])
        self._write_step(st.name, status="running", started_at=now, params=params, cache_key=key)
        self.reporter.step(st.name, "running")
        return self._end(sc, self._attempts(st, sc, params), now, params, key, None)

    def _attempts(self, st: Step, sc: StepContext, params: dict[str, Any]) -> _Done:
        handle = handler(st.kind)
        total = st.retries + 1
        error = None
        for i in range(total):
            sc.new_attempt(st.timeout)
            if sc.run_cancelled:
                return _Done("cancelled", error="Cancelled before it started.")
            try:
                result: StepResult = handle(sc, params)
                sc.made = result.records
                return _Done("succeeded", result.outputs)
            except JobCancelled:
                if not sc.timed_out:
                    return _Done("cancelled", error="Cancelled by the user.")
                error = f"Timed out after {st.timeout:g} s."
            except StepBlocked as exc:
                sc.made = exc.records
                sc.log(exc.message)
                return _Done("blocked", exc.outputs, _message(exc))
            except ModelyardError as exc:
                error = _message(exc)
            except Exception as exc:  # noqa: BLE001 - a step's bug fails the step, never the runner
                sc.log(traceback.format_exc().rstrip())
                error = f"Unexpected error: {type(exc).__name__}: {exc}"
            attempt = f"Attempt {i + 1} of {total}" if total > 1 else "The step"
            sc.log(f"{attempt} failed: {error}")
            if i + 1 < total:
                delay = st.retry_delay * 2 ** i
                sc.log(f"Retrying in {delay:g} s.")
                if sc.backoff(delay):
                    return _Done("cancelled", error="Cancelled by the user.")
        return _Done("failed", error=error)

    def _end(self, sc: StepContext, done: _Done, started: Any, params: dict[str, Any] | None, key: str | None,
             made: list[dict[str, Any]] | None) -> _Done:
        made = list(sc.made if made is None else made)
        values: dict[str, Any] = {"status": done.status, "ended_at": m.utcnow(), "outputs": done.outputs or None,
                                  "records": made, "error": done.error, "attempts": sc.attempt,
                                  "log": "\n".join(sc.lines), "job_id": sc.job_id}
        if params is not None and key is None:
            values["params"] = params
        if sc.attempt == 0:
            values["started_at"] = started
        self._write_step(sc.step.name, made, **values)
        return done

    def _cached(self, name: str, key: str) -> tuple[int, dict[str, Any], int] | None:
        """(step run id, its outputs, its pipeline run's id) of the newest identical step that succeeded."""
        with self.store.session() as s:
            row = s.execute(select(m.PipelineStepRun.id, m.PipelineStepRun.outputs, m.PipelineStepRun.run_id)
                            .join(m.PipelineRun, m.PipelineRun.id == m.PipelineStepRun.run_id)
                            .where(m.PipelineRun.pipeline_id == self.pipeline_id, m.PipelineStepRun.step == name,
                                   m.PipelineStepRun.cache_key == key, m.PipelineStepRun.status == "succeeded")
                            .order_by(m.PipelineStepRun.id.desc()).limit(1)).first()
        return (row[0], dict(row[1] or {}), row[2]) if row is not None else None

    # -- the scheduler (this thread)
    def run(self) -> PipelineOutcome:
        self._start()
        order = self.order
        running: dict[cf.Future[_Done], str] = {}
        pool = cf.ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix=f"modelyard-pipeline-{self.run_id}")
        try:
            try:
                self._loop(order, running, pool)
            except KeyboardInterrupt:  # Ctrl+C in a terminal: a cancel (the running steps' jobs stop)
                self.cancel.set()
                self._loop(order, running, pool)
        except BaseException as exc:
            # the runner itself broke (the store went away...): stop the steps, record the run failed
            for name in running.values():
                self.contexts[name].cancel_run()
            pool.shutdown(wait=True)
            self._fail(exc)
            raise
        finally:
            pool.shutdown(wait=True)
        return self._finish()

    def _fail(self, exc: BaseException) -> None:
        try:
            with self.store.write() as s:
                s.execute(update(m.PipelineRun).where(m.PipelineRun.id == self.run_id).values(
                    status="failed", ended_at=m.utcnow(), exit_code=1,
                    error=f"The runner stopped: {type(exc).__name__}: {exc}"))
                s.execute(update(m.PipelineStepRun).where(m.PipelineStepRun.run_id == self.run_id,
                                                          m.PipelineStepRun.status.in_(("pending", "running")))
                          .values(status="interrupted", ended_at=m.utcnow()))
        except Exception:  # noqa: BLE001 - the sweep marks it interrupted later
            pass

    def _loop(self, order: list[Step], running: dict[cf.Future[_Done], str], pool: cf.ThreadPoolExecutor) -> None:
        last_beat = time.monotonic()
        while True:
            if self.cancel.is_set() and not self.cancelling:
                self.cancelling = True
                for name in running.values():
                    self.contexts[name].cancel_run()
            if not self.cancelling:
                self._skip_or_submit(order, running, pool)
            if not running:
                break
            done, _ = cf.wait(list(running), timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                name = running.pop(fut)
                result = _result_of(fut)
                if result.status in STEP_DONE:
                    self.outputs[name] = result.outputs
                elif result.error:
                    self.errors[name] = result.error
                self._set(name, result.status)
            now = time.monotonic()
            for name in running.values():
                sc = self.contexts[name]
                if sc.deadline is not None and now > sc.deadline:
                    sc.log(f"Timed out after {sc.step.timeout:g} s: cancelling the attempt.")
                    sc.time_out()
            if now - last_beat >= HEARTBEAT_S:
                self._heartbeat()
                last_beat = now

    def _skip_or_submit(self, order: list[Step], running: dict[cf.Future[_Done], str],
                        pool: cf.ThreadPoolExecutor) -> None:
        for st in order:
            if self.status[st.name] != "pending":
                continue
            bad = [n for n in st.needs if self.status.get(n) in _BAD]
            if bad:
                self._write_step(st.name, status="skipped", ended_at=m.utcnow(),
                                 error=f"Not run: step {bad[0]!r} {self.status[bad[0]]}.")
                self._set(st.name, "skipped")
            elif all(self.status.get(n) in STEP_DONE for n in st.needs) and len(running) < self.jobs:
                self.contexts[st.name] = StepContext(
                    self.store, st, run_id=self.run_id, step_run_id=self.step_ids[st.name],
                    folder=self.pipeline.folder, on_log=self.reporter.log, on_progress=self.reporter.progress)
                self.status[st.name] = "running"  # in flight (its row says running once it starts)
                running[pool.submit(self._step, st, {n: self.outputs[n] for n in st.needs})] = st.name

    def _finish(self) -> PipelineOutcome:
        left = [n for n, st in self.status.items() if st == "pending"]
        statuses = set(self.status.values())
        if self.cancelling:
            status = "cancelled"
        elif statuses & {"failed", "interrupted"}:
            status = "failed"
        elif "blocked" in statuses:
            status = "blocked"
        else:
            status = "succeeded"
        error = None
        for name in self.pipeline.names:
            if self.status[name] in ("failed", "blocked", "cancelled") and name in self.errors:
                error = f"Step {name!r} {self.status[name]}: {self.errors[name]}"
                break
        if status == "cancelled" and error is None:
            error = "Cancelled by the user."
        now = m.utcnow()
        code = exit_code_of(status)
        with self.store.write() as s:
            if left:
                s.execute(update(m.PipelineStepRun).where(m.PipelineStepRun.run_id == self.run_id,
                                                          m.PipelineStepRun.step.in_(left))
                          .values(status="skipped", ended_at=now, error="Not run: the pipeline run was cancelled."))
            s.execute(update(m.PipelineRun).where(m.PipelineRun.id == self.run_id).values(
                status=status, ended_at=now, heartbeat_at=now, error=error, exit_code=code))
            records.audit(s, "pipeline_run", self.run_id, "end", from_value="running", to_value=status,
                          details={"pipeline": self.pipeline.name, "exit_code": code, "steps": dict(self.status)})
        for name in left:
            self._set(name, "skipped")
        try:
            from modelyard.core.pipelines import alerts
        except ImportError:
            alerts = None  # type: ignore[assignment]
        if alerts is not None:
            try:
                alerts.run_ended(self.store, self.run_id)
            except Exception:  # noqa: BLE001 - a notification never fails the pipeline
                pass
        return PipelineOutcome(self.run_id, status, code, error, dict(self.status))


def _result_of(fut: cf.Future[_Done]) -> _Done:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - recording the step failed (the store went away...)
        return _Done("failed", error=f"The step could not be recorded: {type(exc).__name__}: {exc}")


def _message(exc: BaseException) -> str:
    if isinstance(exc, ModelyardError):
        if not exc.hint:
            return exc.message
        text = exc.message.rstrip()
        return f"{text}{'' if text.endswith(('.', '!', '?', ':')) else '.'} {exc.hint}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return str(exc)


def execute_run(store: Store, run_id: int, *, reporter: PipelineReporter | None = None,
                cancel_event: threading.Event | None = None) -> PipelineOutcome:
    """Run the queued run ``run_id`` now, in this thread (its steps on up to ``jobs`` workers);
    see the module docstring. Never raises for a step's failure: the outcome says how it ended."""
    return _Execution(store, run_id, reporter or NullPipelineReporter(), cancel_event or threading.Event()).run()


# --------------------------------------------------------------------------- the job


class _JobReporter:
    """Step events and log lines into the pipeline job's own log (thread-safe)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()

    def step(self, name: str, status: str) -> None:
        with self.lock:
            self.ctx.log(f"{name}: {status}")

    def log(self, name: str, line: str) -> None:
        with self.lock:
            self.ctx.log(f"{name}: {line}")

    def progress(self, name: str, fraction: float | None, message: str) -> None:
        with self.lock:
            try:
                self.ctx.progress(None, f"{name}: {message}")
            except JobCancelled:
                pass  # the scheduler sees the cancel through the event


def pipeline_job_spec(run_id: int, *, title: str | None = None) -> JobSpec:
    """The job that executes the queued run ``run_id`` (:func:`pipeline_job`), on a thread."""
    return JobSpec.for_kind("pipeline.run", title or f"Pipeline run {int(run_id)}", {"run_id": int(run_id)})


def pipeline_job(ctx: Any, *, run_id: int) -> dict[str, Any]:
    """Job ``pipeline.run``: execute the queued run ``run_id`` (the window and the agent start runs
    so). Cancelling the job cancels the run's steps. A run that did not succeed fails the job with
    its error (a blocked one with exit code 3)."""
    with ctx.store.write() as s:
        s.execute(update(m.PipelineRun).where(m.PipelineRun.id == int(run_id)).values(job_id=ctx.job_id))
    outcome = execute_run(ctx.store, int(run_id), reporter=_JobReporter(ctx), cancel_event=ctx.cancel_event)
    if outcome.status == "cancelled":
        raise JobCancelled()
    if outcome.status == "blocked":
        raise GateFailed(outcome.error or f"Pipeline run {run_id} was blocked.")
    if not outcome.ok:
        raise ModelyardError(outcome.error or f"Pipeline run {run_id} {outcome.status}.")
    return outcome.to_json()
