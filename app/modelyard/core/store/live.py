"""Live updates: every committed write names what it changed, and other processes on the store see it.

Writing (:func:`install`, called once per :class:`~modelyard.core.store.Store`): a hook on the
store's engine notes, per transaction, which tables an ``INSERT``/``UPDATE``/``DELETE`` touched
(:data:`TABLE_TOPICS` maps them to the change topics of core/jobs/kinds.py, which this room may
not import). When the transaction commits, the hook adds one ``change_log`` row (topics, the ids
it could see, actor, :data:`ORIGIN`) in the same transaction, and on PostgreSQL
``pg_notify('modelyard_changes', '<row id>')`` too (ids only: listeners read the row). A
transaction that wrote nothing (a read) adds nothing. Old rows are pruned now and then, keeping
the newest :data:`KEEP_ROWS`. No service has to remember any of this.

Reading (:class:`Watcher`): ``poll(timeout_s)`` answers the :class:`Changes` other processes made
since the last poll, or None. PostgreSQL: ``LISTEN`` on a connection of its own; a lost
connection is re-made and answers ``everything=True`` (what happened meanwhile is unknown).
SQLite: ``PRAGMA data_version`` on a connection of its own every :data:`SQLITE_POLL_S` (it changes
only when another connection committed), then the ``change_log`` rows after the last one seen;
``everything=True`` when they were pruned before this reader saw them. Rows written by this
process (:data:`ORIGIN`) are skipped: the window refreshed for its own writes already.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import sqlite3
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from modelyard.core.common.procs import current_user, hostname

CHANNEL = "modelyard_changes"
KEEP_ROWS = 5000  # change_log rows kept (a reader further behind refreshes everything)
PRUNE_EVERY = 200  # a process prunes at every this-many-th row it adds
SQLITE_POLL_S = 0.2  # how often a watcher of an SQLite store asks whether anything was committed
MAX_IDS = 50  # ids kept per topic in one row (the first ones: ids are hints)
MAX_ROWS = 1000  # rows one poll reads; more: everything changed

# tables -> the change topics of core/jobs/kinds.py (tests/core/store/test_live.py keeps them equal).
# Unlisted tables (audit_log, lineage_edges, artifacts, runs_table_cache(_marks), change_log, alembic_version)
# change along with a listed one, or are caches: they name no topic.
TABLE_TOPICS: dict[str, str] = {
    **dict.fromkeys(("experiments", "runs", "params", "metrics", "latest_metrics", "tags", "run_artifacts"), "runs"),
    **dict.fromkeys(("registered_models", "model_versions", "model_aliases", "model_evidence", "promotion_requests"),
                    "models"),
    **dict.fromkeys(("monitoring_checks", "notifications", "prediction_log_files"), "checks"),
    **dict.fromkeys(("datasets", "dataset_versions", "dataset_splits"), "datasets"),
    "jobs": "jobs",
    **dict.fromkeys(("pipelines", "pipeline_runs", "pipeline_step_runs", "trigger_firings"), "pipelines"),
    "store_meta": "store",
}
# every topic (core/jobs/kinds.py TOPICS): what ``everything`` refreshes
ALL_TOPICS = frozenset({*TABLE_TOPICS.values(), "servers"})
# the bound column that names a changed thing, where a statement carries it: (table -> column)
_ID_COLUMNS = {"runs": "uuid", "registered_models": "name", "datasets": "name"}
_WRITE = re.compile(r'\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+["`]?(\w+)',
                    re.IGNORECASE)
_PG_LOG = ("WITH c AS (INSERT INTO change_log (at, topics, ids, actor, origin) "
           "VALUES (%s, %s, CAST(%s AS json), %s, %s) RETURNING id) "
           f"SELECT pg_notify('{CHANNEL}', id::text) FROM c")
_PENDING = "modelyard_live"  # key in the DBAPI connection's info: {topic: set of ids}


def _new_origin() -> str:
    return f"{hostname()[:50]}:{os.getpid()}:{secrets.token_hex(4)}"


ORIGIN = _new_origin()  # "host:pid:token" of this process; a forked child gets its own


def _after_fork() -> None:
    global ORIGIN
    ORIGIN = _new_origin()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# =========================================================================== writing


class _Recorder:
    """The hook on one store's engine (see the module docstring). ``active`` is False until the
    store's schema is current: writes made while migrating are not logged."""

    def __init__(self, engine: Any) -> None:
        self.active = False
        self.commits = 0  # logged by this process: every PRUNE_EVERY-th prunes
        self.postgresql = engine.dialect.name == "postgresql"
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "begin", self._forget)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._forget)

    def _executed(self, conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
                  executemany: bool) -> None:
        found = _WRITE.match(statement)
        if found is None or not self.active:
            return
        table = found.group(1).lower()
        topic = TABLE_TOPICS.get(table)
        if topic is None:
            return
        pending = conn.info.get(_PENDING)
        if pending is None:
            pending = conn.info[_PENDING] = {}
        ids = pending.get(topic)
        if ids is None:
            ids = pending[topic] = set()
        column = _ID_COLUMNS.get(table)
        if column is not None and len(ids) < MAX_IDS:
            for params in getattr(context, "compiled_parameters", None) or ():
                value = params.get(column)
                if value is None or len(ids) >= MAX_IDS:
                    break
                ids.add(str(value))

    def _forget(self, conn: Any) -> None:
        conn.info.pop(_PENDING, None)

    def _commit(self, conn: Any) -> None:
        pending = conn.info.pop(_PENDING, None)
        if not pending:
            return
        topics = ",".join(sorted(pending))
        ids = {t: sorted(v) for t, v in pending.items() if v}
        ids_json = json.dumps(ids) if ids else None
        actor = current_user()[:200]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.commits += 1
        prune = self.commits % PRUNE_EVERY == 0
        if self.postgresql:
            if prune:
                self._pg_prune(conn)
            self._pg_log(conn, (now, topics, ids_json, actor, ORIGIN))
        else:
            row_id = self._sqlite_insert(conn, (now.isoformat(sep=" "), topics, ids_json, actor, ORIGIN))
            if prune:
                conn.exec_driver_sql("DELETE FROM change_log WHERE id <= ?", (row_id - KEEP_ROWS,))

    @staticmethod
    def _pg_log(conn: Any, values: tuple[Any, ...]) -> None:
        """Add the row and NOTIFY its id: one statement, on the DBAPI connection (prepared by the
        driver after a few uses), sent with the transaction's ``COMMIT`` in one round trip
        (psycopg's pipeline mode; the driver's own commit that follows finds nothing to do). A
        failure, of either, is raised as SQLAlchemy's error for it; the transaction is then
        rolled back as for any failed write."""
        import psycopg
        from sqlalchemy.exc import DBAPIError

        raw = conn.connection.dbapi_connection
        try:
            if raw.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF:  # in a pipeline: its owner commits
                raw.execute(_PG_LOG, values)
                return
            with raw.pipeline():
                raw.execute(_PG_LOG, values)
                raw.execute("COMMIT")
        except psycopg.Error as exc:
            raise DBAPIError.instance(_PG_LOG, values, exc, psycopg.Error) from exc

    @staticmethod
    def _pg_prune(conn: Any) -> None:
        """Delete all but the newest rows, in a savepoint: a login that may add rows but not delete
        them (a team store's grants) leaves them for another writer, and its write still commits."""
        raw = conn.connection.dbapi_connection
        raw.execute("SAVEPOINT modelyard_prune")
        try:
            raw.execute("DELETE FROM change_log WHERE id <= (SELECT max(id) FROM change_log) - %s", (KEEP_ROWS,))
        except Exception:  # noqa: BLE001 - permission denied, a lock timeout...
            raw.execute("ROLLBACK TO SAVEPOINT modelyard_prune")
        else:
            raw.execute("RELEASE SAVEPOINT modelyard_prune")

    @staticmethod
    def _sqlite_insert(conn: Any, values: tuple[Any, ...]) -> int:
        """The row's id. On the DBAPI connection (a fifth of the cost of going through SQLAlchemy,
        which this hook must not add to every small write); a failure is tried again through
        SQLAlchemy, which turns it into the store's one-line errors (SQLite rolled back just the
        failed statement)."""
        sql = "INSERT INTO change_log (at, topics, ids, actor, origin) VALUES (?, ?, ?, ?, ?)"
        try:
            return conn.connection.dbapi_connection.execute(sql, values).lastrowid
        except sqlite3.Error:
            return conn.exec_driver_sql(sql, values).lastrowid


_RECORDERS: weakref.WeakKeyDictionary[Any, _Recorder] = weakref.WeakKeyDictionary()


def install(engine: Any) -> _Recorder:
    """Log the committed writes on ``engine`` (see the module docstring). Set the answer's
    ``active`` once the store's schema is current."""
    recorder = _RECORDERS[engine.pool] = _Recorder(engine)  # by pool: an engine with options shares it
    return recorder


# the change_log row and its NOTIFY as the last part of a statement of data-modifying CTEs (see direct_row)
PG_LOG_CTE = ("c AS (INSERT INTO change_log (at, topics, ids, actor, origin) VALUES (%(log_at)s, %(log_topics)s, "
              "CAST(%(log_ids)s AS json), %(log_actor)s, %(log_origin)s) RETURNING id)")
PG_LOG_SELECT = f"pg_notify('{CHANNEL}', c.id::text)"


def direct_row(conn: Any, changes: dict[str, Iterable[str]]) -> dict[str, Any] | None:
    """PostgreSQL: the change_log row of a write made past SQLAlchemy as one autocommitted
    statement that adds the row itself (:data:`PG_LOG_CTE` and :data:`PG_LOG_SELECT`; ``conn``
    the SQLAlchemy Connection, its DBAPI connection in autocommit mode): its parameters, for
    ``changes`` (table -> ids), or None when nothing is logged (a store being migrated). Counts
    as a commit of the hook's (every :data:`PRUNE_EVERY`-th prunes, here as a statement apart)."""
    recorder = _RECORDERS.get(conn.engine.pool)
    if recorder is None or not recorder.active:
        return None
    pending: dict[str, set[str]] = {}
    for table, values in changes.items():
        topic = TABLE_TOPICS.get(table)
        if topic is not None:
            found = pending.setdefault(topic, set())
            found.update(str(v) for v in values if len(found) < MAX_IDS)
    if not pending:
        return None
    recorder.commits += 1
    if recorder.commits % PRUNE_EVERY == 0:
        import psycopg

        with contextlib.suppress(psycopg.Error):  # a login that may not delete rows leaves them
            conn.connection.dbapi_connection.execute(
                "DELETE FROM change_log WHERE id <= (SELECT max(id) FROM change_log) - %s", (KEEP_ROWS,))
    ids = {t: sorted(v) for t, v in pending.items() if v}
    return {"log_at": dt.datetime.now(dt.UTC).replace(tzinfo=None), "log_topics": ",".join(sorted(pending)),
            "log_ids": json.dumps(ids) if ids else None, "log_actor": current_user()[:200], "log_origin": ORIGIN}


# =========================================================================== reading


@dataclass(frozen=True)
class Changes:
    """What other processes changed: the topics, the ids named where known (hints: a topic
    without ids, or with some, may have changed other things too), and ``everything`` when what
    changed is unknown (refresh all)."""

    topics: frozenset[str]
    ids: dict[str, frozenset[str]] = field(default_factory=dict)
    everything: bool = False

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, Any]], everything: bool = False) -> Changes:
        topics: set[str] = set()
        ids: dict[str, set[str]] = {}
        for names, row_ids in rows:
            topics.update(t for t in (names or "").split(",") if t)
            if isinstance(row_ids, str):
                row_ids = json.loads(row_ids)
            for topic, values in (row_ids or {}).items():
                ids.setdefault(topic, set()).update(map(str, values))
        if everything:
            topics |= ALL_TOPICS
        return cls(frozenset(topics), {t: frozenset(v) for t, v in ids.items()}, everything)


class Watcher:
    """Follows the changes other processes commit to ``store``; one thread uses it.

    ``poll(timeout_s)`` blocks up to ``timeout_s`` and answers :class:`Changes` or None;
    ``close()`` ends it. Opening connects (do it off the main thread)."""

    def __init__(self, store: Any) -> None:
        if not self.followable(store):
            raise ValueError("an in-memory SQLite store has no other processes to follow")
        self.store = store
        self._impl: _PgWatch | _SqliteWatch = (_SqliteWatch(store) if store.is_sqlite else _PgWatch(store))

    @staticmethod
    def followable(store: Any) -> bool:
        """False for a store no other process can open (an in-memory SQLite database)."""
        return not store.is_sqlite or store.sqlite_file is not None

    def poll(self, timeout_s: float) -> Changes | None:
        return self._impl.poll(max(0.0, timeout_s))

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL server process of the listening connection (None on SQLite)."""
        return getattr(self._impl, "backend_pid", None)

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _changes(rows: list[tuple[Any, ...]], everything: bool = False) -> Changes | None:
    """Changes of ``rows`` (id, topics, ids, origin), this process's own skipped."""
    mine = ORIGIN
    others = [(r[1], r[2]) for r in rows if r[3] != mine]
    if not others and not everything:
        return None
    return Changes.of_rows(others, everything)


class _SqliteWatch:
    def __init__(self, store: Any) -> None:
        self.path = store.sqlite_file
        self.read_only = store.read_only
        self.conn: sqlite3.Connection | None = None
        self.version: int | None = None
        self.last = 0
        self._open()
        self.last = self.conn.execute("SELECT coalesce(max(id), 0) FROM change_log").fetchone()[0]  # type: ignore[union-attr]
        self.version = self._data_version()

    def _open(self) -> None:
        from modelyard.core.store.sqlite import BUSY_TIMEOUT_S, sqlite_uri

        self.conn = sqlite3.connect(sqlite_uri(self.path, self.read_only), uri=True, timeout=BUSY_TIMEOUT_S,
                                    check_same_thread=False, isolation_level=None)

    def _data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]  # type: ignore[union-attr]

    def poll(self, timeout_s: float) -> Changes | None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.conn is None:
                    self._open()
                    self.version = None
                version = self._data_version()
                if version != self.version:
                    self.version = version
                    found = self._read()
                    if found is not None:
                        return found
            except sqlite3.Error:
                self.close()  # re-opened at the next try
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(SQLITE_POLL_S, left))

    def _read(self) -> Changes | None:
        conn = self.conn
        assert conn is not None
        rows = conn.execute("SELECT id, topics, ids, origin FROM change_log WHERE id > ? ORDER BY id LIMIT ?",
                            (self.last, MAX_ROWS + 1)).fetchall()
        if not rows:
            return None
        # SQLite numbers rows in commit order without gaps (the writer holds the lock): a gap
        # after the last row seen means those rows were pruned before this reader saw them
        behind = len(rows) > MAX_ROWS or (rows[0][0] != self.last + 1 and self.last > 0)
        self.last = rows[-1][0]
        return _changes(rows, everything=behind)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None


class _PgWatch:
    """LISTEN on its own autocommit connection; the notified ids are read (in commit order, which
    id order is not on a server)."""

    def __init__(self, store: Any) -> None:
        engine = store.engine
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self.conn: Any = None
        self.backend_pid: int | None = None
        self._connect()

    def _connect(self) -> None:
        import psycopg

        kwargs = {**self._kwargs, "autocommit": True}
        kwargs.setdefault("connect_timeout", 2)
        self.conn = psycopg.connect(*self._args, **kwargs)
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.backend_pid = self.conn.info.backend_pid

    def poll(self, timeout_s: float) -> Changes | None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        try:
            if self.conn is None:
                self._connect()
                return Changes.of_rows([], everything=True)  # what happened while away is unknown
            while True:
                left = deadline - time.monotonic()
                ids = [n.payload for n in self.conn.notifies(timeout=max(0.0, left), stop_after=1)]
                if ids:  # and whatever else has arrived
                    ids += [n.payload for n in self.conn.notifies(timeout=0)]
                    found = self._read([int(i) for i in ids if i.isdigit()])
                    if found is not None:
                        return found
                if time.monotonic() >= deadline:
                    return None
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self.close()  # the server went away or ended this connection: connect again
            with contextlib.suppress(psycopg.OperationalError):
                self._connect()
                return Changes.of_rows([], everything=True)
            time.sleep(max(0.0, min(0.2, deadline - time.monotonic())))
            return None

    def _read(self, ids: list[int]) -> Changes | None:
        rows = self.conn.execute("SELECT id, topics, ids, origin FROM change_log WHERE id = ANY(%s)",
                                 (ids,)).fetchall()
        return _changes(rows, everything=len(rows) < len(set(ids)))  # pruned before we read them

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None
