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
    cache_key = (dialect, table.name, tuple(keys), None if update_cols is None else tuple(update_cols), where)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        insert = _dialect_insert(store)
        if insert is not None:
            stmt = insert(table)
            if update_cols is None:
                stmt = stmt.on_conflict_do_nothing(index_elements=keys)
            else:
                stmt = stmt.on_conflict_do_update(
                    index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update_cols},
                    where=where(stmt.excluded) if where is not None else None)
            _UPSERTS[cache_key] = stmt  # built once: constructing it costs more than running it
    if stmt is not None:
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
        # One statement for the whole batch, its columns as five arrays in binary (%b): psycopg's
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
