"""The local store: one database plus a content-addressed artifact folder.

>>> store = Store.open("/path/to/store")          # creates or upgrades it
>>> with store.session() as s: ...                 # read
>>> with store.write() as s: ...                   # one write transaction, committed on exit

SQLite (the default) runs in WAL mode with a busy timeout and foreign keys on; write
transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead of
failing with "database is locked" when a read transaction tries to upgrade. Any SQLAlchemy URL
in ``MODELYARD_DB_URL`` (PostgreSQL for a team) replaces the SQLite file; artifacts stay in
the store folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from modelyard._version import __version__
from modelyard.core.errors import StoreError, StoreVersionError
from modelyard.core.paths import DB_URL_ENV, resolve_store_dir
from modelyard.core.procs import hostname, pid_alive
from modelyard.core.store import models as m
from modelyard.core.store.artifacts import NEW_FILES_KEY, ArtifactRef, ArtifactStore

DB_FILENAME = "modelyard.db"
# Every Alembic revision this Modelyard knows, oldest first. tests/test_store.py checks this
# against migrations/versions so the fast path below (no Alembic import) cannot drift.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003")
HEAD_REVISION = KNOWN_REVISIONS[-1]
BUSY_TIMEOUT_S = 60.0
STALE_HEARTBEAT = dt.timedelta(minutes=10)
# No job or run of this process was started or heartbeat before this module was imported, so a
# 'running' row carrying our own pid but older than this was left by an earlier process that had
# the same pid (containers restart with the same small pids).
_PROCESS_SEEN_AT = dt.datetime.now(dt.UTC)

__all__ = ["ArtifactRef", "ArtifactStore", "Store", "HEAD_REVISION", "KNOWN_REVISIONS"]


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        # statement journals (every row written under the runs-table cache triggers needs one)
        # and temp sort tables in memory, not temp files: 5x faster bulk inserts
        cur.execute("PRAGMA temp_store = MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("modelyard_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _enable_wal(cur: Any) -> None:
    """Switch the database to WAL, tolerating other processes that are creating it at once.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is locked"
    at once, without calling the busy handler, while another connection is in the middle of the
    same switch or of creating the schema. Already-WAL databases (every open but the first) only
    read the mode; the first opens retry until ``BUSY_TIMEOUT_S``.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "host"


class Store:
    """An opened Modelyard store. Thread-safe: open one session per thread, never share ORM objects."""

    def __init__(self, root: Path, engine: Engine, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.engine = engine
        self._write_engine = engine.execution_options(modelyard_write=True)
        # One temp folder per machine: a team sharing the store folder must never sweep another
        # machine's in-progress files (pids only mean something on their own host).
        self.artifacts = ArtifactStore(root / "artifacts", root / "tmp" / _safe_name(hostname()))
        self._local = threading.local()  # .writes: open write() blocks in this thread

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        create: bool = True,
        sweep: bool = True,
    ) -> Store:
        """Open (creating or upgrading as needed) the store at ``location``.

        ``location`` defaults to ``MODELYARD_STORE`` or the platform's data folder; ``db_url``
        to ``MODELYARD_DB_URL`` or ``sqlite:///<location>/modelyard.db``. With ``sweep``,
        jobs and runs left 'running' by a process that no longer exists are marked interrupted.
        """
        root = resolve_store_dir(location)
        db_url = db_url or os.environ.get(DB_URL_ENV) or None
        db_file = root / DB_FILENAME
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a store folder.", hint="Choose a folder for the store.")
        if db_url is None and not db_file.exists():
            if not create:
                raise StoreError(f"No Modelyard store at {root} (there is no {DB_FILENAME}).",
                                 hint="Create one with 'modelyard store init' or pick another folder.")
            others = root.is_dir() and any(p.name not in {"artifacts", "tmp", ".DS_Store"} for p in root.iterdir())
            # Re-check the database: another process creating this store at the same moment
            # may have made it between the two looks (it is then a store, not foreign files).
            if others and not db_file.exists():
                raise StoreError(
                    f"{root} already holds other files and is not a Modelyard store.",
                    hint="Choose an empty folder for a new store, or the folder of an existing one.",
                )
        try:
            (root / "artifacts").mkdir(parents=True, exist_ok=True)
            (root / "tmp" / _safe_name(hostname())).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the store folder {root}: {exc.strerror}.",
                             hint="Check that the location exists and that you may write there.") from exc
        url = db_url or f"sqlite:///{db_file}"
        engine = _sqlite_engine(url) if url.startswith("sqlite") else create_engine(url, pool_pre_ping=True)
        store = cls(root, engine, url)
        try:
            store._migrate()
            if sweep:
                store.sweep_interrupted()
                store.artifacts.sweep_tmp()
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or None for another backend or an in-memory database."""
        if not self.is_sqlite or not self.engine.url.database or self.engine.url.database == ":memory:":
            return None
        return Path(self.engine.url.database)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_location(self) -> str:
        """The store folder, plus the database URL (password hidden) when it is not the embedded file."""
        if self.is_sqlite and self.db_url == f"sqlite:///{self.root / DB_FILENAME}":
            return str(self.root)
        return f"{self.root} ({self.engine.url.render_as_string(hide_password=True)})"

    # ------------------------------------------------------------------ schema
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def _migrate(self) -> None:
        try:
            rev = self.current_revision()
        except DBAPIError as exc:  # OperationalError, or DatabaseError "file is not a database"
            raise StoreError(f"Cannot read the store database at {self.display_location}: {exc.orig}.",
                             hint="The file may be damaged or not a Modelyard database.") from exc
        if rev == HEAD_REVISION:
            return
        if rev is not None and rev not in KNOWN_REVISIONS:
            raise StoreVersionError(
                f"The store at {self.display_location} was written by a newer Modelyard "
                f"(schema revision {rev}); Modelyard {__version__} understands revisions up to {HEAD_REVISION}.",
                hint="Upgrade Modelyard to open this store. It has not been changed.",
            )
        if rev is None:
            self._create_fresh()
            return
        if self.is_sqlite:
            self._backup_before_upgrade()
        from modelyard.core.store.migrate import upgrade

        upgrade(self._write_engine)
        self._ensure_meta()

    def _backup_before_upgrade(self) -> None:
        """Copy the database to ``modelyard.db.before-<head>.bak`` before migrating it.

        ``VACUUM INTO`` makes a consistent copy even under WAL, but SQLite refuses it inside a
        transaction, and an SQLAlchemy connection always begins one (our ``begin`` hook issues
        ``BEGIN``). So it runs on the raw DBAPI connection, which is in autocommit mode
        (``isolation_level = None`` in ``_on_connect``). The path is a bound parameter so a
        folder name with a quote in it cannot break the statement.
        """
        backup = self.root / f"{DB_FILENAME}.before-{HEAD_REVISION}.bak"
        if backup.exists():
            return
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM INTO ?", (str(backup),))
        except Exception as exc:
            if backup.exists():  # another process opening the same store made it first
                return
            raise StoreError(
                f"Cannot back up the store database to {backup} before upgrading it: {exc}.",
                hint="Check the free disk space and that you may write in the store folder. "
                     "The store has not been changed.",
            ) from exc
        finally:
            raw.close()

    def _create_fresh(self) -> None:
        """A new, empty database: create the head schema directly and stamp it (Alembic's own
        recipe), which is several times faster than replaying every migration. An existing store
        is always upgraded through the migrations; tests/test_store.py proves the two agree.
        """
        with self._write_engine.begin() as conn:  # BEGIN IMMEDIATE: racing creators queue here
            if inspect(conn).has_table("alembic_version"):
                return  # another process created it while we waited for the lock
            m.Base.metadata.create_all(conn)
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                              "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION})
            # in the same transaction: a process that sees the schema also sees the store's id
            conn.execute(m.StoreMeta.__table__.insert(), [{"key": "store_id", "value": m.new_uuid()},
                                                          {"key": "created_with", "value": __version__}])

    def _ensure_meta(self) -> None:
        with self.write() as s:
            if s.get(m.StoreMeta, "store_id") is None:
                s.add(m.StoreMeta(key="store_id", value=m.new_uuid()))
                s.add(m.StoreMeta(key="created_with", value=__version__))

    def meta(self) -> dict[str, str]:
        with self.session() as s:
            return {row.key: row.value for row in s.scalars(select(m.StoreMeta))}

    # ------------------------------------------------------------------ sessions
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (snapshot isolation under WAL). Commit yourself if you write in it."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception.

        Artifact files created through ``store.artifacts.put_*(..., session=s)`` inside a
        block that fails are removed again.
        """
        s = Session(self._write_engine, expire_on_commit=False)
        self._local.writes = getattr(self._local, "writes", 0) + 1
        try:
            with s.begin():
                yield s
        except BaseException:
            new_files = s.info.pop(NEW_FILES_KEY, [])
            if new_files:
                self._discard_artifacts(new_files)
            raise
        finally:
            self._local.writes -= 1
            s.close()

    def in_write(self) -> bool:
        """True while the calling thread is inside a :meth:`write` block of this store.

        Another write from the same thread would then wait for its own lock (SQLite allows
        one writer), so callers that write on the side, like job progress, postpone instead.
        """
        return getattr(self._local, "writes", 0) > 0

    def _discard_artifacts(self, shas: list[str]) -> None:
        try:
            with self.session() as s:
                still = set(s.scalars(select(m.Artifact.sha256).where(m.Artifact.sha256.in_(shas))))
        except Exception:  # noqa: BLE001 - if we cannot ask, keep the files (a later gc removes them)
            return
        self.artifacts.discard_new_files(shas, still)

    # ------------------------------------------------------------------ housekeeping
    def sweep_interrupted(self) -> int:
        """Mark jobs and runs left 'running' by a dead process as interrupted. Returns how many."""
        now = m.utcnow()
        host = hostname()
        me = os.getpid()
        count = 0

        def is_dead(r: Any) -> bool:
            if r.host != host:
                return r.heartbeat_at is None or now - r.heartbeat_at > STALE_HEARTBEAT
            if r.pid is None:
                return False
            if r.pid == me:  # ours (a job on another thread) unless it predates this process
                touched = [t for t in (r.started, r.heartbeat_at) if t is not None]
                return not touched or max(touched) < _PROCESS_SEEN_AT
            return not pid_alive(r.pid)

        for model, status_col, started_col in ((m.Job, m.Job.status, m.Job.started_at),
                                               (m.Run, m.Run.status, m.Run.start_time)):
            with self.session() as s:
                rows = s.execute(
                    select(model.id, model.host, model.pid, model.heartbeat_at, started_col.label("started"))
                    .where(status_col == "running")
                ).all()
            dead = [r.id for r in rows if is_dead(r)]
            if not dead:
                continue
            values: dict[str, Any] = {"status": "interrupted"}
            if model is m.Job:
                values.update(ended_at=now, error="The process running this job ended before the job finished.")
            else:
                values.update(end_time=now, error="The process running this run ended before the run finished.")
            with self.write() as s:
                res = s.execute(
                    update(model).where(model.id.in_(dead), status_col == "running").values(**values)
                )
                count += res.rowcount or 0
        return count

    def info(self) -> dict[str, Any]:
        """Location, schema revision and record counts (for ``modelyard store info``)."""
        counts: dict[str, int] = {}
        tables = {
            "datasets": m.Dataset, "dataset_versions": m.DatasetVersion, "experiments": m.Experiment,
            "runs": m.Run, "metric_points": m.Metric, "registered_models": m.RegisteredModel,
            "model_versions": m.ModelVersion, "monitoring_checks": m.MonitoringCheck, "jobs": m.Job,
            "artifacts": m.Artifact,
        }
        with self.session() as s:
            for key, model in tables.items():
                counts[key] = s.scalar(select(func.count()).select_from(model)) or 0
            artifact_bytes = s.scalar(select(func.coalesce(func.sum(m.Artifact.size), 0))) or 0
            running = s.scalar(select(func.count()).select_from(m.Job).where(m.Job.status == "running")) or 0
        meta = self.meta()
        return {
            "location": str(self.root),
            "database": self.engine.url.render_as_string(hide_password=True),
            "backend": self.engine.dialect.name,
            "schema_revision": self.current_revision(),
            "store_id": meta.get("store_id"),
            "created_with": meta.get("created_with"),
            "modelyard_version": __version__,
            "counts": counts,
            "artifact_bytes": int(artifact_bytes),
            "running_jobs": running,
            "free_disk_bytes": shutil.disk_usage(self.root).free,
        }
