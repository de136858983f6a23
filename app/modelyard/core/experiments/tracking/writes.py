"""SQL the tracking writes share: upserts, the run-row statements, metric point inserts, and a full
disk turned into a ModelyardError."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import bindparam, case, or_, select, update

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.outputs import disk_full
from modelyard.core.store import Store
from modelyard.core.store import models as m

# metric rows per multi-row INSERT statement (5 values each; SQLite before 3.32 allows 999 values)
_ROWS_PER_INSERT = 400 if sqlite3.sqlite_version_info >= (3, 32) else 199


# =========================================================================== writing helpers


def _dialect_insert(store: Store) -> Any:
    name = store.engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert


_UPSERTS: dict[tuple[Any, ...], Any] = {}


def _upsert(store: Store, s: Any, table: Any, rows: list[dict[str, Any]], keys: list[str],
            update_cols: list[str] | None, where: Any = None) -> None:
    """INSERT rows; on a key conflict update ``update_cols`` (None: keep the existing row)."""
    if not rows:
        return
    dialect = store.engine.dialect.name
    # PostgreSQL: several rows as one statement, each column one array (unnest): one statement
    # for the server (and one firing of its statement triggers) instead of one a row
    arrays = dialect == "postgresql" and len(rows) > 1
    cache_key = (dialect, table.name, tuple(keys), None if update_cols is None else tuple(update_cols), where,
                 tuple(rows[0]) if arrays else None)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        insert = _dialect_insert(store)
        if insert is not None:
            stmt = insert(table)
            if arrays:
                from sqlalchemy import func
                from sqlalchemy.dialects.postgresql import ARRAY

                cols = list(rows[0])
                stmt = stmt.from_select(cols, select(*(
                    func.unnest(bindparam(f"{c}_array", type_=ARRAY(table.c[c].type))) for c in cols)))
            if update_cols is None:
                stmt = stmt.on_conflict_do_nothing(index_elements=keys)
            else:
                stmt = stmt.on_conflict_do_update(
                    index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update_cols},
                    where=where(stmt.excluded) if where is not None else None)
            _UPSERTS[cache_key] = stmt  # built once: constructing it costs more than running it
    if stmt is not None:
        if arrays:
            s.connection().execute(stmt, {f"{c}_array": [row[c] for row in rows] for c in rows[0]})
            return
        s.connection().execute(stmt, rows)  # Core, not the ORM session: a third of the cost
        return
    # another backend: read, then insert or update (the write transaction holds the lock)
    cols = [table.c[k] for k in keys]
    for row in rows:
        cond = [c == row[c.key] for c in cols]
        existing = s.execute(select(table).where(*cond)).mappings().first()
        if existing is None:
            s.execute(table.insert().values(**row))
        elif update_cols is not None and (where is None or _newer(row, existing)):
            s.execute(table.update().where(*cond).values(**{c: row[c] for c in update_cols}))


def _newer(row: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    return (row["step"], row["timestamp"]) >= (existing["step"], existing["timestamp"])


def _latest_where(excluded: Any) -> Any:
    lm = m.LatestMetric.__table__.c
    return or_(excluded.step > lm.step, (excluded.step == lm.step) & (excluded.timestamp >= lm.timestamp))


_RUNS = m.Run.__table__
_END_RUN = (update(_RUNS).where(_RUNS.c.id == bindparam("pk"))
            .values(heartbeat_at=bindparam("now"), end_time=bindparam("now"), status=bindparam("status"),
                    error=bindparam("error")))
_HEARTBEAT = (update(_RUNS).where(_RUNS.c.id == bindparam("pk"))
              .values(heartbeat_at=bindparam("now"),
                      status=case((_RUNS.c.status == "interrupted", "running"), else_=_RUNS.c.status),
                      end_time=case((_RUNS.c.status == "interrupted", None), else_=_RUNS.c.end_time),
                      error=case((_RUNS.c.status == "interrupted", None), else_=_RUNS.c.error)))


def _insert_metric_points(store: Store, s: Any, flat: list[Any]) -> None:
    """Insert metric rows given flat as [run_id, key, step, timestamp, value, run_id, ...]."""
    if not flat:
        return
    table = m.Metric.__table__
    cols = 'run_id, "key", step, timestamp, value'
    if store.is_sqlite:
        # Multi-row VALUES statements: ~3x the rows/s of executemany on SQLite (the per-row
        # cost of executemany is Python's, not SQLite's).
        conn = s.connection()
        per = _ROWS_PER_INSERT * 5
        full_sql = f"INSERT INTO {table.name} ({cols}) VALUES " + ",".join(["(?,?,?,?,?)"] * _ROWS_PER_INSERT)
        for i in range(0, len(flat), per):
            chunk = flat[i:i + per]
            if len(chunk) == per:
                conn.exec_driver_sql(full_sql, tuple(chunk))
            else:
                rows = len(chunk) // 5
                conn.exec_driver_sql(f"INSERT INTO {table.name} ({cols}) VALUES " + ",".join(["(?,?,?,?,?)"] * rows),
                                     tuple(chunk))
        return
    if store.engine.dialect.name == "postgresql":
        if len(flat) >= _COPY_MIN_POINTS * 5:
            _copy_metric_points(s, flat)
            return
        # a few points: one statement, its columns as five arrays in binary (%b). psycopg's
        # executemany sends one INSERT a row (~15,000 rows/s), and a long multi-row VALUES is
        # parsed again by psycopg on every call (tests/benchmarks/team_store.py)
        s.connection().exec_driver_sql(
            f"INSERT INTO {table.name} ({cols}) SELECT * FROM "
            "unnest(%b::bigint[], %b::varchar[], %b::bigint[], %b::bigint[], %b::float8[])",
            (flat[0::5], flat[1::5], flat[2::5], flat[3::5], flat[4::5]))
        return
    rows = [{"run_id": flat[i], "key": flat[i + 1], "step": flat[i + 2], "timestamp": flat[i + 3],
             "value": flat[i + 4]} for i in range(0, len(flat), 5)]
    s.execute(table.insert(), rows)


@contextlib.contextmanager
def _pipelined(store: Store, s: Any) -> Iterator[None]:
    """PostgreSQL (psycopg): the statements of the block that need no answer (inserts, updates)
    travel to the server together, in one round trip at the block's end (psycopg's pipeline
    mode), instead of one each: a small write is bound by round trips on a server. A failure of
    any is raised at the end as SQLAlchemy's error for it (so a refused value is still a
    ``DataError``). Elsewhere: nothing."""
    if store.engine.dialect.name != "postgresql":
        yield
        return
    import psycopg
    from sqlalchemy.exc import DBAPIError

    raw = s.connection().connection.driver_connection
    try:
        with raw.pipeline():
            yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc


_COPY_MIN_POINTS = 1000  # from this many points a batch, PostgreSQL's COPY beats INSERT ... SELECT FROM unnest
_COPY_METRICS = 'COPY metrics (run_id, "key", step, timestamp, value) FROM STDIN (FORMAT BINARY)'


def _copy_metric_points(s: Any, flat: list[Any]) -> None:
    """PostgreSQL: the points with ``COPY ... FROM STDIN`` in binary, the server's bulk path (a
    quarter less server time than ``INSERT ... SELECT FROM unnest`` for 50,000 rows). On the
    DBAPI connection, so no SQLAlchemy event sees it: the run's own row, updated in every flush,
    names the change (core/store/live.py). A refused value is raised as SQLAlchemy's error for it."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    raw = s.connection().connection.driver_connection
    data = _copy_binary(flat)
    try:
        with raw.cursor() as cur, cur.copy(_COPY_METRICS) as copy:
            copy.write(data)
    except psycopg.Error as exc:
        raise DBAPIError.instance(_COPY_METRICS, None, exc, psycopg.Error) from exc


_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_PGCOPY_TRAILER = b"\xff\xff"


def _copy_binary(flat: list[Any]) -> bytes:
    """The points as PostgreSQL's binary COPY data, built with numpy (psycopg's ``write_row``
    costs ~5 microseconds a row in Python): per row the field count, then each field's length
    and big-endian value (run_id int4, key text, step int8, timestamp int8, value float8). Rows
    whose keys have the same length in bytes are one packed numpy record array; points of one
    key keep their order."""
    import numpy as np

    keys = flat[1::5]
    n = len(keys)
    encoded = {k: k.encode() for k in set(keys)}
    by_len: dict[int, Any] = {}
    if len({len(b) for b in encoded.values()}) == 1:
        by_len[len(next(iter(encoded.values())))] = range(n)
    else:
        for i, k in enumerate(keys):
            by_len.setdefault(len(encoded[k]), []).append(i)
    run_ids, steps, times, values = (np.fromiter(flat[c::5], dtype=t, count=n)
                                     for c, t in ((0, np.int64), (2, np.int64), (3, np.int64), (4, np.float64)))
    parts = [_PGCOPY_HEADER]
    for size, rows in by_len.items():
        rec = np.empty(len(rows), dtype=np.dtype([
            ("count", ">i2"), ("l_run", ">i4"), ("run", ">i4"), ("l_key", ">i4"), ("key", f"S{size}"),
            ("l_step", ">i4"), ("step", ">i8"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_value", ">i4"), ("value", ">f8")]))
        pick = slice(None) if isinstance(rows, range) else np.asarray(rows)
        rec["count"], rec["l_run"], rec["l_key"] = 5, 4, size
        rec["l_step"] = rec["l_ts"] = rec["l_value"] = 8
        rec["run"], rec["step"], rec["ts"], rec["value"] = run_ids[pick], steps[pick], times[pick], values[pick]
        if len(encoded) == 1:
            rec["key"] = next(iter(encoded.values()))
        elif size:
            rec["key"] = np.array([encoded[keys[i]] for i in rows], dtype=f"S{size}")
        parts.append(rec.tobytes())
    parts.append(_PGCOPY_TRAILER)
    return b"".join(parts)


def _disk_full_error(what: str, *, kept: bool) -> ModelyardError:
    return ModelyardError(
        f"Could not save {what}: the disk holding the store is full.",
        hint="Free some disk space and try again; what was saved before is intact"
             + ("; the values not saved are kept in memory and the next flush() or end() writes them." if kept
                else "."))


@contextlib.contextmanager
def _full_disk_is_an_error(what: str) -> Iterator[None]:
    """Turn a full disk while storing ``what`` into a ModelyardError (the write was rolled back)."""
    try:
        yield
    except ModelyardError:
        raise
    except Exception as exc:
        if disk_full(exc):
            raise _disk_full_error(what, kept=False) from exc
        raise
