"""PostgreSQL: a run's start and a flush (or end) as one statement each, sent in one round trip.

A small write on a server is bound by its messages, not by its rows: each statement psycopg sends
(in pipeline mode too) wakes the server apart, and psycopg waits for the answer to a ``BEGIN`` of
its own. So the parts of a write — the points, the latest values, params, tags, the run's row,
the change_log row and its ``NOTIFY`` (core/store/live.py) — are the data-modifying CTEs of one
statement, sent on a connection of ``Store.direct()`` in autocommit mode: one statement is one
transaction (all or nothing). The
statement's shape depends on which parts a write has (psycopg prepares each shape once used a
few times). tests/benchmarks/team_store.py measures it; test_tracking.py runs the tracking API on
both backends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from modelyard.core.common.errors import NotFoundError
from modelyard.core.store import live
from modelyard.core.store import models as m

_LATEST_SET = ('ON CONFLICT (run_id, "key") DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, '
               "value = excluded.value WHERE excluded.step > latest_metrics.step OR "
               "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)")
# Every data-modifying part reads g (the run's row, u, reads it first), so the setting is on
# before any of their triggers is queued: the cache's marking triggers and the run checks of
# points, latest values, params and tags do not fire for this statement (models.PG_MARKED_SETTING),
# which writes its mark itself (k), and whose values are inserted from u, the run's row it
# updates (and so locks until the commit): a run deleted meanwhile gets none of them, and the
# statement answers how many rows u updated (flush raises when that is none and values were due).
_MARKED = (f"g AS (SELECT set_config('{m.PG_MARKED_SETTING}', 'on', true) AS marked)")
_MARK = ("k AS (INSERT INTO runs_table_cache_marks (block, xid) SELECT {run} >> " + str(m.RUNS_TABLE_CACHE_BLOCK_BITS)
         + ", pg_current_xact_id()::text::bigint FROM {source} ON CONFLICT DO NOTHING)")
_RUN = {
    # the end; or a heartbeat, which takes back a run another process marked interrupted
    "end": "u AS (UPDATE runs SET heartbeat_at = %(now)s::timestamp, end_time = %(now)s::timestamp, "
           "status = %(status)s::varchar, error = %(error)s::varchar FROM g WHERE id = %(pk)s::integer RETURNING runs.id)",
    "heartbeat": "u AS (UPDATE runs SET heartbeat_at = %(now)s::timestamp, "
                 "status = CASE WHEN status = 'interrupted' THEN 'running' ELSE status END, "
                 "end_time = CASE WHEN status = 'interrupted' THEN NULL ELSE end_time END, "
                 "error = CASE WHEN status = 'interrupted' THEN NULL ELSE error END FROM g WHERE id = %(pk)s::integer "
                 "RETURNING runs.id)",
}
_PARTS = {
    "metrics": 'm AS (INSERT INTO metrics (run_id, "key", step, timestamp, value) SELECT u.id, x.* FROM u, '
               "unnest(%(m_keys)b::varchar[], %(m_steps)b::bigint[], %(m_times)b::bigint[], %(m_values)b::float8[]) x)",
    "latest": 'l AS (INSERT INTO latest_metrics (run_id, "key", step, timestamp, value) SELECT u.id, x.* FROM u, '
              "unnest(%(l_keys)s::varchar[], %(l_steps)s::bigint[], %(l_times)s::bigint[], %(l_values)s::float8[]) x "
              + _LATEST_SET + ")",
    # params and tags (text) as one JSON object each: a fifth of the client's time of two arrays
    "params": 'p AS (INSERT INTO params (run_id, "key", value) SELECT u.id, x.key, x.value FROM u, '
              'json_each_text(%(p_json)s::json) x ON CONFLICT (run_id, "key") DO NOTHING)',
    "tags": 't AS (INSERT INTO tags (run_id, "key", value) SELECT u.id, x.key, x.value FROM u, '
            'json_each_text(%(t_json)s::json) x ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value)',
}
_STATEMENTS: dict[tuple[str, ...], str] = {}


def _statement(run: str, parts: tuple[str, ...], logged: bool) -> str:
    key = (run, *parts, str(logged))
    sql = _STATEMENTS.get(key)
    if sql is None:
        ctes = [_MARKED, _RUN[run], *(_PARTS[p] for p in parts), _MARK.format(run="%(pk)s::integer", source="g")]
        ctes += [live.PG_LOG_CTE] if logged else []
        found = "(SELECT count(*) FROM u)"
        sql = _STATEMENTS[key] = ("WITH " + ",\n".join(ctes) + "\nSELECT "
                                  + (f"{found}, {live.PG_LOG_SELECT} FROM c" if logged else found))
    return sql


def _object(rows: dict[str, str]) -> str:
    """Keys and text values as a JSON object (the keys and values were checked when logged; a
    value the database refuses, say with a NUL, is a DataError as from the general way)."""
    return json.dumps(rows, ensure_ascii=False)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@contextlib.contextmanager
def _autocommitted(conn: Any) -> Iterator[Any | None]:
    """The DBAPI (psycopg) connection of ``conn`` (a SQLAlchemy Connection of
    ``Store.direct()``) in autocommit mode for the block; None if it is in a transaction
    already (then the caller writes the general way)."""
    from psycopg.pq import PipelineStatus, TransactionStatus

    raw = conn.connection.driver_connection
    if raw.pgconn.transaction_status != TransactionStatus.IDLE or raw.pgconn.pipeline_status != PipelineStatus.OFF:
        yield None
        return
    raw.autocommit = True
    try:
        yield raw
    finally:
        if raw.pgconn.transaction_status == TransactionStatus.IDLE:
            raw.autocommit = False
        else:  # pragma: no cover - a statement in autocommit mode leaves no transaction open
            conn.invalidate()


def _execute(raw: Any, sql: str, values: dict[str, Any]) -> Any:
    """Run ``sql``; a failure is raised as SQLAlchemy's error for it (a refused value is a
    ``DataError``, a missing row an ``IntegrityError``...), as from the general way."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    try:
        return raw.execute(sql, values).fetchone()
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, values, exc, psycopg.Error) from exc


def flush(conn: Any, pk: int, uuid: str, flat: list[Any], latest: dict[str, tuple[int, int, float]],
          params: dict[str, str], tags: dict[str, str], end: dict[str, Any] | None, now: dt.datetime) -> bool:
    """Write a flush of run ``pk`` (points as ``flat``: run_id, key, step, timestamp, value, ...)
    as one statement on ``conn`` (see :func:`_autocommitted`); False when the connection could not
    take it that way (nothing written)."""
    with _autocommitted(conn) as raw:
        if raw is None:
            return False
        values: dict[str, Any] = {"pk": pk, "now": _naive_utc(now)}
        parts: list[str] = []
        if flat:
            parts.append("metrics")
            values.update(m_keys=flat[1::5], m_steps=flat[2::5], m_times=flat[3::5], m_values=flat[4::5])
        if latest:
            parts.append("latest")
            values.update(l_keys=list(latest), l_steps=[v[0] for v in latest.values()],
                          l_times=[v[1] for v in latest.values()], l_values=[v[2] for v in latest.values()])
        if params:
            parts.append("params")
            values["p_json"] = _object(params)
        if tags:
            parts.append("tags")
            values["t_json"] = _object(tags)
        if end is not None:
            values.update(status=end["status"], error=end["error"])
        log = live.direct_row(conn, {"runs": [uuid]})
        if log is not None:
            values.update(log)
        found = _execute(raw, _statement("heartbeat" if end is None else "end", tuple(parts), log is not None),
                         values)[0]
    if not found and parts:
        raise NotFoundError(f"Run {uuid[:12]} is no longer in this store (deleted meanwhile): its values were not "
                            "written.", hint="Start a new run with modelyard.start_run().")
    return True


# a new run of an experiment (created when new: its id is drawn only when it is inserted), its
# tags and params. A concurrent first run of the same new experiment makes the run's experiment
# NULL here (the statement's snapshot predates the other's insert): refused, and start_run then
# takes the general way
_START = _MARKED + """,
e AS (INSERT INTO experiments (name, created_at) SELECT %(experiment)s::varchar, %(now)s::timestamp
  WHERE NOT EXISTS (SELECT 1 FROM experiments WHERE name = %(experiment)s::varchar)
  ON CONFLICT (name) DO NOTHING RETURNING id),
r AS (INSERT INTO runs (experiment_id, uuid, parent_run_id, name, status, start_time, source_type, source_name, "user",
    host, pid, heartbeat_at, dataset_version_id, split_id, job_id, spec, error, end_time, deleted_at)
  SELECT coalesce((SELECT id FROM e), (SELECT id FROM experiments WHERE name = %(experiment)s::varchar)),
    %(uuid)s::varchar, NULL, %(name)s::varchar, 'running', %(now)s::timestamp, %(source_type)s::varchar,
    %(source_name)s::varchar, %(user)s::varchar, %(host)s::varchar, %(pid)s::integer, %(now)s::timestamp,
    %(dataset_version_id)s::integer, %(split_id)s::integer, %(job_id)s::integer, CAST(%(spec)s AS json), NULL, NULL,
    NULL
  FROM g
  RETURNING id),
""" + _MARK.format(run="id", source="r")
_START_KEYS = ('{alias} AS (INSERT INTO {table} (run_id, "key", value) SELECT r.id, x.key, x.value FROM r, '
               "json_each_text(%({alias}_json)s::json) AS x)")


def start(conn: Any, row: dict[str, Any], experiment: str, tags: dict[str, str], params: dict[str, str]) -> int | None:
    """Insert a new run (``row``: the runs columns but experiment_id and parent_run_id), its
    experiment when new, its tags and params as one statement; the run's id, or None when the
    connection could not take it that way (nothing written)."""
    from modelyard.core.store.server import dumps

    with _autocommitted(conn) as raw:
        if raw is None:
            return None
        values = {**row, "experiment": experiment, "now": _naive_utc(row["start_time"]), "spec": dumps(row["spec"])}
        ctes = [_START]
        for alias, table, rows in (("t", "tags", tags), ("p", "params", params)):
            if rows:
                ctes.append(_START_KEYS.format(alias=alias, table=table))
                values[f"{alias}_json"] = _object(rows)
        log = live.direct_row(conn, {"runs": [row["uuid"]]})
        if log is not None:
            ctes.append(live.PG_LOG_CTE)
            values.update(log)
        sql = "WITH " + ",\n".join(ctes) + "\nSELECT (SELECT id FROM r)" + (
            f", {live.PG_LOG_SELECT} FROM c" if log is not None else "")
        return _execute(raw, sql, values)[0]
