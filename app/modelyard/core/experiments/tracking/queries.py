"""Reading runs: :func:`get_run`, :func:`metric_history`, :func:`search_runs`, :func:`query_runs`,
:func:`list_experiments`."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from modelyard.core.experiments.tracking.active import ActiveRun, _resolve_run
from modelyard.core.experiments.tracking.info import (
    ExperimentInfo,
    LoggedArtifact,
    RunInfo,
)
from modelyard.core.experiments.tracking.stores import _store
from modelyard.core.store import Store
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.core.experiments.runquery import RunsTable


# =========================================================================== reading


def get_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> RunInfo:
    """A run's params, latest metrics, tags, artifacts and status (also a deleted run's)."""
    if isinstance(run_id, ActiveRun):
        if store is None:
            store = run_id.store
        run_id.flush()
    st = _store(store)
    with st.session() as s:
        run = _resolve_run(s, run_id)
        exp_name = s.scalar(select(m.Experiment.name).where(m.Experiment.id == run.experiment_id))
        params = dict(s.execute(select(m.Param.key, m.Param.value).where(m.Param.run_id == run.id)).all())
        latest = s.execute(select(m.LatestMetric.key, m.LatestMetric.value, m.LatestMetric.step)
                           .where(m.LatestMetric.run_id == run.id)).all()
        tags = dict(s.execute(select(m.Tag.key, m.Tag.value).where(m.Tag.run_id == run.id)).all())
        arts = s.execute(select(m.RunArtifact.path, m.RunArtifact.sha256, m.Artifact.size, m.RunArtifact.kind)
                         .join(m.Artifact, m.Artifact.sha256 == m.RunArtifact.sha256)
                         .where(m.RunArtifact.run_id == run.id).order_by(m.RunArtifact.path)).all()
        parent = s.scalar(select(m.Run.uuid).where(m.Run.id == run.parent_run_id)) if run.parent_run_id else None
    end = run.end_time or (m.utcnow() if run.status == "running" else None)
    return RunInfo(
        id=run.uuid, experiment=exp_name or "", experiment_id=run.experiment_id, name=run.name, status=run.status,
        start_time=run.start_time, end_time=run.end_time,
        duration_s=(end - run.start_time).total_seconds() if end is not None else None,
        params=dict(sorted(params.items())), metrics={k: v for k, v, _ in sorted(latest)},
        tags=dict(sorted(tags.items())), parent_id=parent,
        artifacts=[LoggedArtifact(p, sha, size, kind) for p, sha, size, kind in arts], user=run.user,
        source_type=run.source_type, source=run.source_name, error=run.error, host=run.host, pid=run.pid,
        heartbeat_at=run.heartbeat_at, dataset_version_id=run.dataset_version_id, spec=run.spec,
        deleted_at=run.deleted_at, metric_steps={k: st_ for k, _, st_ in sorted(latest)},
    )


def metric_history(run_id: str | ActiveRun, key: str, *, store: Store | str | os.PathLike[str] | None = None,
                   as_numpy: bool = False) -> Any:
    """One metric's series ordered by step (then time, then logging order).

    A DataFrame with int64 ``step``, int64 ``timestamp`` (ms since the epoch) and float
    ``value`` columns, or with ``as_numpy`` a tuple of the three arrays.
    """
    import numpy as np

    if isinstance(run_id, ActiveRun):
        if store is None:
            store = run_id.store
        run_id.flush()
    st = _store(store)
    t = m.Metric.__table__
    arrays = None
    with st.session() as s:  # one read transaction: both reads below see the same rows
        pk = _resolve_run(s, run_id).id
        where = (t.c.run_id == pk, t.c.key == key)
        if st.is_sqlite:
            # Integers as three long strings parsed in C, floats as one column: about twice as
            # fast as one Python tuple per point. Both reads walk the (run_id, key, step) index.
            inner = select(t.c.step, t.c.timestamp, t.c.id).where(*where).order_by(t.c.step, t.c.id).subquery()
            n, steps, stamps, ids = s.execute(select(func.count(), func.group_concat(inner.c.step),
                                                     func.group_concat(inner.c.timestamp),
                                                     func.group_concat(inner.c.id))).one()
            result = s.connection().execute(select(t.c.value).where(*where).order_by(t.c.step, t.c.id))
            values = result.cursor.fetchall()
            result.close()
            if (n or 0) == len(values):
                import itertools

                from modelyard.core.experiments.runquery.loader import _ints

                if n:
                    step_a, stamp_a, id_a = _ints(steps, n), _ints(stamps, n), _ints(ids, n)
                    value_a = np.fromiter(itertools.chain.from_iterable(values), dtype=np.float64, count=n)
                    order = np.lexsort((id_a, stamp_a, step_a))
                    arrays = (step_a[order], stamp_a[order], value_a[order])
                else:
                    arrays = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
        if arrays is None:
            rows = s.connection().execute(select(t.c.step, t.c.timestamp, t.c.value).where(*where)
                                          .order_by(t.c.step, t.c.timestamp, t.c.id)).all()
            n = len(rows)
            if n:
                step_l, stamp_l, value_l = zip(*rows)
                arrays = (np.fromiter(step_l, dtype=np.int64, count=n), np.fromiter(stamp_l, dtype=np.int64, count=n),
                          np.fromiter((np.nan if v is None else v for v in value_l), dtype=np.float64, count=n))
            else:
                arrays = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if as_numpy:
        return arrays
    import pandas as pd

    return pd.DataFrame({"step": arrays[0], "timestamp": arrays[1], "value": arrays[2]})


def search_runs(experiment: str | Iterable[str] | None = None, filter: str | None = None,  # noqa: A002
                order_by: str | list[str] | None = None, max_results: int | None = None, *,
                include_deleted: bool | str = False, store: Store | str | os.PathLike[str] | None = None
                ) -> pd.DataFrame:
    """Runs as a pandas DataFrame, one row per run, like ``mlflow.search_runs``.

    Columns: ``run_id``, ``experiment``, ``name``, ``status``, ``start_time``, ``end_time``,
    ``duration`` (s), ``user``, ``source_type``, ``source``, ``parent_run_id``, then
    ``metrics.<key>``, ``params.<key>`` and ``tags.<key>``. ``filter`` uses the runs filter
    language (see :mod:`modelyard.core.experiments.runquery`); ``order_by`` items look like
    ``"metrics.f1 DESC"`` (default: newest first).
    """
    from modelyard.core.experiments.runquery import query_runs

    if isinstance(experiment, str):
        experiment = [experiment]
    exps = list(experiment) if experiment is not None else None
    table = query_runs(_store(store), exps, filter=filter, order_by=order_by, limit=max_results,
                       include_deleted=include_deleted)
    frame = table.frame
    metric_cols = sorted(c for c in frame.columns if c.startswith("metrics."))
    param_cols = sorted(c for c in frame.columns if c.startswith("params."))
    tag_cols = sorted(c for c in frame.columns if c.startswith("tags."))
    base = [c for c in frame.columns if not c.startswith(("metrics.", "params.", "tags."))]
    return frame[base + metric_cols + param_cols + tag_cols]


def query_runs(store: Store | str | os.PathLike[str] | None = None, experiment_ids: Any = None,
               filter: str | None = None, columns: list[str] | None = None,  # noqa: A002
               order_by: str | list[str] | None = None, limit: int | None = None, *,
               include_deleted: bool = False) -> RunsTable:
    """The runs table's fast query; see :func:`modelyard.core.experiments.runquery.query_runs`."""
    from modelyard.core.experiments.runquery import query_runs as _query

    return _query(_store(store), experiment_ids, filter=filter, columns=columns, order_by=order_by, limit=limit,
                  include_deleted=include_deleted)


def run_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a :func:`search_runs` frame as JSON-ready dicts with nested params/metrics/tags."""
    import math

    out: list[dict[str, Any]] = []
    cols = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        rec: dict[str, Any] = {"params": {}, "metrics": {}, "tags": {}}
        for c, v in zip(cols, row):
            if c.startswith(("metrics.", "params.", "tags.")):
                kind, _, key = c.partition(".")
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                rec[kind][key] = float(v) if kind == "metrics" else v
            elif c in ("start_time", "end_time"):
                rec[c] = None if v is None or v != v else v.to_pydatetime().isoformat()
            elif c == "duration":
                rec["duration_s"] = None if v != v else float(v)
            else:
                rec[c] = None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
        out.append({k: rec[k] for k in [c for c in rec if c not in ("params", "metrics", "tags")]
                    + ["params", "metrics", "tags"]})
    return out


def list_experiments(*, store: Store | str | os.PathLike[str] | None = None, include_deleted: bool = False
                     ) -> list[ExperimentInfo]:
    """Experiments by name, with how many (not deleted) runs each has and the latest start."""
    st = _store(store)
    with st.session() as s:
        counts = {eid: (n, last) for eid, n, last in s.execute(
            select(m.Run.experiment_id, func.count(), func.max(m.Run.start_time))
            .where(m.Run.deleted_at.is_(None)).group_by(m.Run.experiment_id)).all()}
        q = select(m.Experiment).order_by(m.Experiment.name)
        if not include_deleted:
            q = q.where(m.Experiment.deleted_at.is_(None))
        exps = s.scalars(q).all()
    out = []
    for e in exps:
        n, last = counts.get(e.id, (0, None))
        if last is not None and last.tzinfo is None:  # max() over the column loses the type's processing
            last = _parse_time(last)
        elif isinstance(last, str):
            last = _parse_time(last)
        out.append(ExperimentInfo(e.id, e.name, e.description, e.created_at, int(n), last, e.deleted_at))
    return out


def _parse_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def run_artifact_json(store: Store, info: RunInfo, path: str) -> dict[str, Any] | None:
    """The JSON object a run logged as artifact ``path`` (``evaluation/roc.json``...), or None when
    the run has no such artifact or its file is missing, unreadable or not a JSON object."""
    art = next((a for a in info.artifacts if a.path == path), None)
    data = None if art is None else store.artifacts.read_json(art.sha256, missing_ok=True)
    return data if isinstance(data, dict) else None
