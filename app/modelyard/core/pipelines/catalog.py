"""The pipelines the store lists, and their runs and steps, as plain data.

:func:`save_pipeline` records (or updates) a validated pipeline under its name and
:func:`add_pipeline_file` validates a file first (writing nothing when it has a problem). The
queries return frozen dataclasses with ``to_json()`` (ISO times) that are safe to hand to another
thread: :class:`PipelineInfo` (a listed pipeline and its newest run), :class:`RunSummary` (a run
as lists show it), :class:`RunInfo` (a run with its params and :class:`StepInfo` steps).
:func:`list_runs` costs two queries whatever the number of runs: the Pipelines panel polls it.
Writes (schedules on/off, removal) are audited under entity ``pipeline``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.common.procs import current_user
from modelyard.core.pipelines.spec import RUN_ENDS, Pipeline
from modelyard.core.store import Store, records
from modelyard.core.store import models as m

ENTITY = "pipeline"  # audit entries about a listed pipeline


def save_pipeline(store: Store, pipeline: Pipeline) -> int:
    """List ``pipeline`` in the store under its name (updating its file, spec and hash when it is
    listed already) and return its id. Audited when it is added or its file changed."""
    with store.write() as s:
        row = s.scalar(select(m.Pipeline).where(m.Pipeline.name == pipeline.name))
        spec = pipeline.to_json()
        if row is None:
            row = m.Pipeline(name=pipeline.name, path=pipeline.path, description=pipeline.description, spec=spec,
                             spec_sha256=pipeline.sha256, created_by=current_user())
            s.add(row)
            s.flush()
            records.audit(s, ENTITY, row.id, "add_pipeline", to_value=pipeline.path,
                          details={"sha256": pipeline.sha256})
        elif row.spec_sha256 != pipeline.sha256 or row.path != pipeline.path or row.spec != spec:
            records.audit(s, ENTITY, row.id, "update_pipeline", from_value=row.spec_sha256,
                          to_value=pipeline.sha256, details={"path": pipeline.path})
            row.path, row.description, row.spec, row.spec_sha256 = (pipeline.path, pipeline.description, spec,
                                                                     pipeline.sha256)
            row.updated_at = m.utcnow()
        return row.id


# --------------------------------------------------------------------------- plain data


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _duration(started: dt.datetime | None, ended: dt.datetime | None) -> float | None:
    """Seconds from start to end; for a run or step still going, to now."""
    if started is None:
        return None
    return max(0.0, ((ended or m.utcnow()) - started).total_seconds())


@dataclass(frozen=True)
class RunSummary:
    """One pipeline run as lists show it. ``counts``: how many of its steps are in each status;
    ``duration_s`` runs to now while the run is going."""

    id: int
    pipeline: str
    status: str
    trigger: dict[str, Any] | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    exit_code: int | None
    error: str | None
    counts: dict[str, int]
    resumed_from: int | None
    created_at: dt.datetime | None = None
    pipeline_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in RUN_ENDS

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("started_at", "ended_at", "created_at"):
            d[k] = _iso(d[k])
        return d


@dataclass(frozen=True)
class StepInfo:
    """One step of a run: its status, attempts, times, outputs, the records it created and its error.
    ``cached_from``: the step run whose outputs a cached step reused."""

    name: str
    kind: str
    status: str
    attempts: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    outputs: dict[str, Any] | None
    records: list[Any]
    error: str | None
    job_id: int | None
    cached_from: int | None
    needs: list[str]
    position: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("started_at", "ended_at"):
            d[k] = _iso(d[k])
        return d


@dataclass(frozen=True)
class RunInfo(RunSummary):
    """A run with its parameters and every step (in file order)."""

    params: dict[str, Any] = field(default_factory=dict)
    steps: list[StepInfo] = field(default_factory=list)

    def step(self, name: str) -> StepInfo:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["steps"] = [s.to_json() for s in self.steps]
        return d


@dataclass(frozen=True)
class PipelineInfo:
    """A listed pipeline: its file, graph (``steps``: name, kind, needs), triggers and defaults as last
    validated; ``file_changed`` when the file's bytes differ from then (or the file is gone)."""

    id: int
    name: str
    path: str
    description: str | None
    steps: list[dict[str, Any]]
    triggers: list[dict[str, Any]]
    params: dict[str, Any]
    schedules_enabled: bool
    file_changed: bool
    last_run: RunSummary | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["last_run"] = self.last_run.to_json() if self.last_run else None
        for k in ("created_at", "updated_at"):
            d[k] = _iso(d[k])
        return d


# --------------------------------------------------------------------------- look-ups


_LIST_HINT = "'modelyard pipeline list' shows the pipelines the store lists."
_RUNS_HINT = "'modelyard pipeline runs' lists the recent runs."


def _pipeline_row(s: Session, name_or_id: str | int) -> m.Pipeline:
    """The listed pipeline called ``name_or_id`` (or with that id); NotFoundError naming it."""
    text = str(name_or_id).strip()
    row = s.scalar(select(m.Pipeline).where(m.Pipeline.name == text))
    if row is None and text.isdigit():
        row = s.get(m.Pipeline, int(text))
    if row is None:
        raise NotFoundError(f"There is no pipeline {text!r} in this store.",
                            hint=f"{_LIST_HINT} Add a file with 'modelyard pipeline validate FILE' or run it.")
    return row


def _run_row(s: Session, run_id: int | str) -> m.PipelineRun:
    text = str(run_id).strip()
    row = s.get(m.PipelineRun, int(text)) if text.isdigit() else None
    if row is None:
        raise NotFoundError(f"There is no pipeline run {text}.", hint=_RUNS_HINT)
    return row


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: the panel polls the list


def _file_changed(path: str, sha256: str) -> bool:
    """Whether the file's bytes differ from ``sha256`` (or it is gone); hashed again only when its
    size or modification time moved (always while it is younger than the file system's clock tick
    could hide a second write in)."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        digest = _HASHES.get(key)
        if digest is None:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            if time.time_ns() - st.st_mtime_ns > 2_000_000_000:
                if len(_HASHES) > 1000:
                    _HASHES.clear()
                _HASHES[key] = digest
    except OSError:
        return True
    return digest != sha256


def _summaries(s: Session, runs: list[tuple[m.PipelineRun, str]]) -> list[RunSummary]:
    """Summaries of ``runs`` (each with its pipeline's name): one query for every run's step counts."""
    counts: dict[int, dict[str, int]] = {run.id: {} for run, _ in runs}
    if counts:
        rows = s.execute(select(m.PipelineStepRun.run_id, m.PipelineStepRun.status, func.count())
                         .where(m.PipelineStepRun.run_id.in_(list(counts)))
                         .group_by(m.PipelineStepRun.run_id, m.PipelineStepRun.status))
        for run_id, status, n in rows:
            counts[run_id][status] = n
    return [RunSummary(**_summary_fields(run, name, counts[run.id])) for run, name in runs]


def _summary_fields(run: m.PipelineRun, name: str, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": run.id, "pipeline": name, "status": run.status, "trigger": run.trigger,
            "started_at": run.started_at, "ended_at": run.ended_at,
            "duration_s": _duration(run.started_at, run.ended_at), "exit_code": run.exit_code, "error": run.error,
            "counts": counts, "resumed_from": run.resumed_from, "created_at": run.created_at,
            "pipeline_id": run.pipeline_id}


_NEWEST = (m.PipelineRun.created_at.desc(), m.PipelineRun.id.desc())


def _info(row: m.Pipeline, last_run: RunSummary | None) -> PipelineInfo:
    spec = row.spec or {}
    steps = [{"name": st["name"], "kind": st["kind"], "needs": list(st.get("needs") or ())}
             for st in spec.get("steps") or ()]
    return PipelineInfo(id=row.id, name=row.name, path=row.path, description=row.description, steps=steps,
                        triggers=list(spec.get("triggers") or ()), params=dict(spec.get("params") or {}),
                        schedules_enabled=row.schedules_enabled, file_changed=_file_changed(row.path, row.spec_sha256),
                        last_run=last_run, created_at=row.created_at, updated_at=row.updated_at)


def _last_runs(s: Session, pipeline_ids: list[int]) -> dict[int, RunSummary]:
    """Each pipeline's newest run (two queries whatever the number of pipelines)."""
    if not pipeline_ids:
        return {}
    newest = (select(m.PipelineRun.pipeline_id, func.max(m.PipelineRun.id).label("run_id"))
              .where(m.PipelineRun.pipeline_id.in_(pipeline_ids)).group_by(m.PipelineRun.pipeline_id).subquery())
    runs = s.execute(select(m.PipelineRun, m.Pipeline.name)
                     .join(newest, newest.c.run_id == m.PipelineRun.id)
                     .join(m.Pipeline, m.Pipeline.id == m.PipelineRun.pipeline_id)).all()
    return {summary.pipeline_id: summary for summary in _summaries(s, [(r, n) for r, n in runs])}


# --------------------------------------------------------------------------- queries


def list_pipelines(store: Store) -> list[PipelineInfo]:
    """Every listed pipeline, by name, each with its newest run."""
    with store.session() as s:
        rows = list(s.scalars(select(m.Pipeline).order_by(m.Pipeline.name)))
        last = _last_runs(s, [r.id for r in rows])
        return [_info(r, last.get(r.id)) for r in rows]


def get_pipeline(store: Store, name_or_id: str | int) -> PipelineInfo:
    """The listed pipeline called ``name_or_id`` (or with that id); NotFoundError when there is none."""
    with store.session() as s:
        row = _pipeline_row(s, name_or_id)
        return _info(row, _last_runs(s, [row.id]).get(row.id))


def pipeline_spec(store: Store, name_or_id: str | int) -> Pipeline:
    """The pipeline as it was last validated and listed (not re-read from its file)."""
    with store.session() as s:
        return Pipeline.from_json(_pipeline_row(s, name_or_id).spec)


def set_schedules_enabled(store: Store, name: str | int, on: bool) -> PipelineInfo:
    """Switch the pipeline's triggers (schedules, new files, drift) on or off; audited when it changes."""
    with store.write() as s:
        row = _pipeline_row(s, name)
        if row.schedules_enabled != bool(on):
            records.audit(s, ENTITY, row.id, "enable_schedules" if on else "disable_schedules",
                          from_value="on" if row.schedules_enabled else "off", to_value="on" if on else "off")
            row.schedules_enabled = bool(on)
            row.updated_at = m.utcnow()
    return get_pipeline(store, name)


def remove_pipeline(store: Store, name: str | int) -> None:
    """Stop listing the pipeline (its file is left alone) and delete its run history; audited.
    Refused while one of its runs is queued or running."""
    with store.write() as s:
        row = _pipeline_row(s, name)
        busy = s.scalar(select(m.PipelineRun.id).where(m.PipelineRun.pipeline_id == row.id,
                                                       m.PipelineRun.status.in_(("queued", "running"))).limit(1))
        if busy is not None:
            raise ModelyardError(f"Pipeline {row.name!r} has run {busy} queued or running; it was not removed.",
                                 hint=f"Cancel run {busy} (or wait for it to end), then remove the pipeline.")
        runs = s.scalar(select(func.count()).select_from(m.PipelineRun).where(m.PipelineRun.pipeline_id == row.id))
        records.audit(s, ENTITY, row.id, "remove_pipeline", from_value=row.name,
                      details={"path": row.path, "runs": runs or 0})
        s.delete(row)


def list_runs(store: Store, pipeline: str | int | None = None, limit: int = 50) -> list[RunSummary]:
    """The newest ``limit`` runs (of one pipeline when ``pipeline`` is given), newest first: two
    queries whatever the number of runs (the panel polls this)."""
    with store.session() as s:
        query = select(m.PipelineRun, m.Pipeline.name).join(m.Pipeline, m.Pipeline.id == m.PipelineRun.pipeline_id)
        if pipeline is not None:  # the pipeline by name (else by id) inside the same query
            text = str(pipeline).strip()
            by_name = select(m.Pipeline.id).where(m.Pipeline.name == text).scalar_subquery()
            query = query.where(m.PipelineRun.pipeline_id == (func.coalesce(by_name, int(text)) if text.isdigit()
                                                              else by_name))
        runs = s.execute(query.order_by(*_NEWEST).limit(max(1, int(limit)))).all()
        if not runs and pipeline is not None:
            _pipeline_row(s, pipeline)  # an unknown pipeline is an error, not "no runs"
        return _summaries(s, [(r, n) for r, n in runs])


def get_run(store: Store, run_id: int | str) -> RunInfo:
    """The run ``run_id`` with its parameters and every step (file order); NotFoundError when there is none."""
    with store.session() as s:
        run = _run_row(s, run_id)
        name = s.scalar(select(m.Pipeline.name).where(m.Pipeline.id == run.pipeline_id)) or ""
        needs = {st["name"]: list(st.get("needs") or ()) for st in (run.spec or {}).get("steps") or ()}
        step_rows = list(s.scalars(select(m.PipelineStepRun).where(m.PipelineStepRun.run_id == run.id)
                                   .order_by(m.PipelineStepRun.position, m.PipelineStepRun.id)))
        counts: dict[str, int] = {}
        steps = []
        for st in step_rows:
            counts[st.status] = counts.get(st.status, 0) + 1
            steps.append(StepInfo(name=st.step, kind=st.kind, status=st.status, attempts=st.attempts,
                                  started_at=st.started_at, ended_at=st.ended_at,
                                  duration_s=_duration(st.started_at, st.ended_at) if st.status != "cached" else 0.0,
                                  outputs=st.outputs, records=list(st.records or ()), error=st.error,
                                  job_id=st.job_id, cached_from=st.cached_from, needs=needs.get(st.step, []),
                                  position=st.position))
        return RunInfo(**_summary_fields(run, name, counts), params=dict(run.params or {}), steps=steps)


def step_log(store: Store, run_id: int | str, step: str) -> str:
    """The log of step ``step`` of run ``run_id`` (its jobs' lines); NotFoundError naming the run's steps."""
    with store.session() as s:
        run = _run_row(s, run_id)
        log = s.scalar(select(m.PipelineStepRun.log).where(m.PipelineStepRun.run_id == run.id,
                                                           m.PipelineStepRun.step == step))
        if log is None:
            names = list(s.scalars(select(m.PipelineStepRun.step).where(m.PipelineStepRun.run_id == run.id)
                                   .order_by(m.PipelineStepRun.position)))
            raise NotFoundError(f"Run {run.id} has no step {step!r}.",
                                hint=f"Its steps: {', '.join(names)}." if names else "It has no steps.")
        return log


def add_pipeline_file(store: Store, path: str | os.PathLike[str]) -> PipelineInfo:
    """Validate the pipeline file at ``path`` and list it (or update it) under its name. Raises
    :class:`~.spec.PipelineInvalid` with every problem, having written nothing."""
    from modelyard.core.pipelines.loading import load_pipeline

    pipeline = load_pipeline(path)
    return get_pipeline(store, save_pipeline(store, pipeline))
