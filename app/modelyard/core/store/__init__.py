"""The local store: one database plus a content-addressed artifact folder.

>>> store = Store.open("/path/to/store")          # creates (when asked) or upgrades it
>>> with store.session() as s: ...                 # read
>>> with store.write() as s: ...                   # one write transaction, committed on exit

SQLite (the default) runs in WAL mode with a busy timeout and foreign keys on; write
transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead of
failing with "database is locked" when a read transaction tries to upgrade. Any SQLAlchemy URL
in ``MODELYARD_DB_URL`` (PostgreSQL for a team) replaces the SQLite file; artifacts stay in
the store folder.

Opening never turns something that is not a Modelyard store into one: a new database is made
only when the caller asks (``create=True``: ``store init``, or the default store on first use),
and an empty, foreign, damaged or unreadable database is refused with one message naming it,
before anything is written to it (see :func:`read_sqlite_schema`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, inspect, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from modelyard._version import __version__
from modelyard.core.common.errors import (
    ModelyardError,
    StoreDamagedError,
    StoreError,
    StoreReadOnlyError,
    StoreVersionError,
)
from modelyard.core.common.paths import DB_URL_ENV, STORE_ENV, resolve_store_dir
from modelyard.core.common.procs import hostname, pid_alive
from modelyard.core.store import live
from modelyard.core.store import models as m
from modelyard.core.store.artifacts import NEW_FILES_KEY, ArtifactRef, ArtifactStore
from modelyard.core.store.records import ACTOR_KEY, STORE_KEY
from modelyard.core.store.schema import (
    HEAD_REVISION,
    KNOWN_REVISIONS,
    create_schema,
    not_a_store,
    schema_kind,
)
from modelyard.core.store.sqlite import (
    BUSY_TIMEOUT_S,
    SQLITE_CORRUPT,
    SQLITE_NOTADB,
    SQLITE_READONLY,
    create_sqlite_file,
    is_read_only,
    read_sqlite_schema,
    sqlite_engine,
)
from modelyard.core.store.team import Member, session_actor

DB_FILENAME = "modelyard.db"
STALE_HEARTBEAT = dt.timedelta(minutes=10)
# No job or run of this process was started or heartbeat before this module was imported, so a
# 'running' row carrying our own pid but older than this was left by an earlier process that had
# the same pid (containers restart with the same small pids).
_PROCESS_SEEN_AT = dt.datetime.now(dt.UTC)
SUPPORTED_URLS = ("sqlite:///PATH/TO/FILE.db (the default, inside the store folder) or "
                  "postgresql+psycopg://USER@HOST/DATABASE (install the 'postgres' extra)")

__all__ = ["ArtifactRef", "ArtifactStore", "BUSY_TIMEOUT_S", "DB_FILENAME", "HEAD_REVISION", "KNOWN_REVISIONS", "Store"]


def _check_url(url: str) -> URL:
    """Parse a database URL and make sure its dialect and driver can be loaded (one-line errors)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"{url!r} is not a database URL.", hint=f"Use {SUPPORTED_URLS}.") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise StoreError(f"The database URL {shown} names an unknown kind of database "
                         f"({parsed.drivername!r}).", hint=f"Use {SUPPORTED_URLS}.") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        missing = exc.name or str(exc)
        if parsed.get_backend_name() == "postgresql":
            hint = ("Install the 'postgres' extra (pip install 'modelyard[postgres]'), which provides psycopg "
                    "for postgresql+psycopg:// URLs.")
        else:
            hint = f"Install the Python package {missing!r}, or use {SUPPORTED_URLS}."
        raise StoreError(f"The database URL {shown} needs the Python package {missing!r}, which is not installed.",
                         hint=hint) from None
    return parsed


def _sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL (None for another database, in-memory SQLite or a URI form)."""
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:") or url.query:
        return None
    return Path(db)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "host"


class Store:
    """An opened Modelyard store. Thread-safe: open one session per thread, never share ORM objects."""

    def __init__(self, root: Path, engine: Engine, db_url: str, *, sqlite_path: Path | None = None,
                 read_only: bool = False) -> None:
        self.root = root
        self.db_url = db_url
        self.engine = engine
        self.read_only = read_only
        self._sqlite_path = sqlite_path
        self._write_engine = engine.execution_options(modelyard_write=True)
        # One temp folder per machine: a team sharing the store folder must never sweep another
        # machine's in-progress files (pids only mean something on their own host).
        self.artifacts = ArtifactStore(root / "artifacts", root / "tmp" / _safe_name(hostname()))
        self._local = threading.local()  # .writes: open write() blocks in this thread
        self._member: Member | None = None  # who uses the store, read on first use (see member)
        event.listen(engine, "handle_error", self._translate_error)
        self._live = live.install(engine)  # every committed write adds a change_log row (once migrated)

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
        """Open (upgrading as needed, creating only with ``create``) the store at ``location``.

        ``location`` defaults to ``MODELYARD_STORE``, else, for a team store on a server, the
        artifacts folder recorded in it by ``store init`` (core/store/teamstore.py), else the
        platform's data folder; ``db_url`` to ``MODELYARD_DB_URL`` or ``sqlite:///<location>/modelyard.db``. A database is created
        only when ``create`` is true and there is none (no file, or a database without any
        table); anything that is not a Modelyard store is refused, untouched. A store this
        process may not write is opened read-only (:attr:`read_only`; :meth:`write` refuses).
        With ``sweep``, jobs and runs left 'running' by a process that no longer exists are
        marked interrupted.
        """
        db_url = db_url or os.environ.get(DB_URL_ENV) or None
        recorded = None
        if location is None and not os.environ.get(STORE_ENV) and db_url and not db_url.startswith("sqlite"):
            # a team store: its artifacts folder is recorded in it
            from modelyard.core.store import teamstore

            recorded = location = teamstore.recorded_artifacts_dir(db_url)
        root = resolve_store_dir(location)
        if recorded and not root.is_dir():
            raise teamstore.missing_artifacts_dir(recorded)
        db_file = root / DB_FILENAME
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a store folder.", hint="Choose a folder for the store.")
        url = db_url or f"sqlite:///{db_file}"
        sqlite_path = _sqlite_path(_check_url(url))
        new_file = sqlite_path is not None and not sqlite_path.exists()
        if new_file and not create:
            if db_url is None:
                raise StoreError(f"No Modelyard store at {root} (there is no {DB_FILENAME}).",
                                 hint="Create one with 'modelyard store init' or pick another folder.")
            raise StoreError(f"There is no database file at {sqlite_path}.",
                             hint="Check the database URL, or create a store there with 'modelyard store init'.")
        if new_file and db_url is None:
            others = root.is_dir() and any(p.name not in {"artifacts", "tmp", ".DS_Store"} for p in root.iterdir())
            # Re-check the database: another process creating this store at the same moment
            # may have made it between the two looks (it is then a store, not foreign files).
            if others and not db_file.exists():
                raise StoreError(
                    f"{root} already holds other files and is not a Modelyard store.",
                    hint="Choose an empty folder for a new store, or the folder of an existing one.",
                )
        read_only = sqlite_path is not None and not new_file and is_read_only(sqlite_path)
        if not read_only:
            try:
                (root / "artifacts").mkdir(parents=True, exist_ok=True)
                (root / "tmp" / _safe_name(hostname())).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"Cannot create the store folder {root}: {exc.strerror}.",
                                 hint="Check that the location exists and that you may write there.") from exc
        if sqlite_path is not None:
            if new_file:
                create_sqlite_file(sqlite_path, root / "tmp" / _safe_name(hostname()) if db_url is None
                                    else sqlite_path.parent)
            tables, revision = read_sqlite_schema(sqlite_path, read_only)
            kind = schema_kind(tables, revision)
            if kind == "foreign":
                raise not_a_store(str(sqlite_path), tables)
            if kind == "empty":
                cls._check_may_create(str(sqlite_path), create, read_only)
            engine = sqlite_engine(url, sqlite_path, read_only=read_only)
        elif url.startswith("sqlite"):
            engine = sqlite_engine(url)
        else:
            from modelyard.core.store.server import server_engine

            engine = server_engine(url)
        store = cls(root, engine, url, sqlite_path=sqlite_path, read_only=read_only)
        try:
            store._migrate(create)
            store._live.active = True
            if sweep and not read_only and store.member.may("write"):  # a viewer writes nothing on open
                store.sweep_interrupted()
                store.artifacts.sweep_tmp()
        except BaseException:
            engine.dispose()
            raise
        return store

    @staticmethod
    def _check_may_create(where: str, create: bool, read_only: bool) -> None:
        """An empty database becomes a store only when creating was asked for (and allowed)."""
        if not create:
            raise StoreError(f"{where} holds no Modelyard store (the database is empty).",
                             hint="Create a store in it with 'modelyard store init' (with the same --store / "
                                  "--db-url), or check the location.")
        if read_only:
            raise StoreReadOnlyError(f"Cannot create a store in {where}: it is read-only.",
                                     hint="Choose a location you may write to.")

    def _translate_error(self, ctx: Any) -> None:
        """``handle_error`` hook: SQLite's "malformed" and "read-only" failures, and a team store's
        refusals (PostgreSQL's SQLSTATE 42501: a missing grant, a row guard), become one-line errors."""
        orig = ctx.original_exception
        if getattr(orig, "sqlstate", None) == "42501" or (
                ctx.connection is None and "permission denied for database" in str(orig)):  # CONNECT refused
            from modelyard.core.store.team import translate_denied

            raise translate_denied(self, orig, ctx.statement) from orig
        if not isinstance(orig, sqlite3.Error):
            return
        code = (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            raise StoreDamagedError(
                f"The store database {self.sqlite_file or self.display_location} is damaged: {orig}.",
                hint="'modelyard store verify' checks it; restore the store folder from a backup "
                     f"(a {DB_FILENAME}.before-*.bak file is a copy made before the last upgrade).") from orig
        if code == SQLITE_READONLY:
            raise self._read_only_error() from orig

    def _read_only_error(self) -> StoreReadOnlyError:
        return StoreReadOnlyError(
            f"The store at {self.display_location} is read-only: this process may not write "
            f"{self.sqlite_file or 'its database'}.",
            hint="Reading works. To change the store, get write permission on its folder and database file, "
                 "or work on a copy.")

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
        if self._sqlite_path is not None:
            return self._sqlite_path
        if not self.is_sqlite or not self.engine.url.database or self.engine.url.database == ":memory:":
            return None
        return Path(self.engine.url.database)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def member(self) -> Member:
        """Who uses the store and their role (core/store/team.py; read once, then kept)."""
        if self._member is None:
            from modelyard.core.store.team import read_member

            self._member = read_member(self)
        return self._member

    def forget_member(self) -> None:
        """Read the member again on next use (after their role changed)."""
        self._member = None

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

    def _migrate(self, create: bool = True) -> None:
        try:
            with self.engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
                rev = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                       if "alembic_version" in tables else None)
        except DBAPIError as exc:  # the server is unreachable, the login is wrong...
            if self.is_sqlite:
                raise StoreError(f"Cannot read the store database at {self.display_location}: {exc.orig}.",
                                 hint="Check the database URL and that you may read it.") from exc
            from modelyard.core.store.teamstore import connection_problem

            raise connection_problem(exc, self.engine.url) from exc
        where = str(self.sqlite_file or self.display_location)
        kind = schema_kind(tables, rev)
        if kind == "foreign":
            raise not_a_store(where, tables)
        if kind == "empty":
            self._check_may_create(where, create, self.read_only)
            self._create_fresh()
            self._install_roles()
            return
        if rev == HEAD_REVISION:
            return
        if rev not in KNOWN_REVISIONS:
            raise StoreVersionError(
                f"The store at {self.display_location} was written by a newer Modelyard "
                f"(schema revision {rev}); Modelyard {__version__} understands revisions up to {HEAD_REVISION}.",
                hint="Upgrade Modelyard to open this store. It has not been changed.",
            )
        if self.read_only:
            raise StoreReadOnlyError(
                f"The store at {self.display_location} needs upgrading (schema revision {rev} to {HEAD_REVISION}) "
                "but is read-only.", hint="Open it once with write permission to upgrade it.")
        backup = self._backup_before_upgrade() if self.is_sqlite else None
        from modelyard.core.store.migrate import upgrade

        try:
            upgrade(self._write_engine)
        except ModelyardError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in one line; the transaction rolled back
            try:
                now = self.current_revision()
            except Exception:  # noqa: BLE001
                now = None
            state = (f"it was left at revision {rev}" if now == rev
                     else f"it is now at revision {now}" if now else "its revision could not be read")
            copy = f"A copy of the database from before the upgrade is {backup}. " if backup else ""
            raise StoreError(
                f"Upgrading the store database at {self.display_location} from schema revision {rev} to "
                f"{HEAD_REVISION} failed ({type(exc).__name__}: {exc}); {state}.",
                hint=f"{copy}Fix the cause (disk space, permissions) and open the store again to retry.",
            ) from exc
        self._ensure_meta()
        self._install_roles()  # new tables get their grants

    def _install_roles(self) -> None:
        """A team store's roles and grants (core/store/team.py), after its schema was made or upgraded."""
        if not self.is_sqlite:
            from modelyard.core.store.team import install_roles

            install_roles(self, required=False)  # a login that may not create roles still opens it

    def _backup_before_upgrade(self) -> Path:
        """Copy the database to ``modelyard.db.before-<head>.bak`` before migrating it (returns the copy).

        ``VACUUM INTO`` makes a consistent copy even under WAL, but SQLite refuses it inside a
        transaction, and an SQLAlchemy connection always begins one (our ``begin`` hook issues
        ``BEGIN``). So it runs on the raw DBAPI connection, which is in autocommit mode
        (``isolation_level = None`` in ``_on_connect``). The path is a bound parameter so a
        folder name with a quote in it cannot break the statement.
        """
        backup = self.root / f"{DB_FILENAME}.before-{HEAD_REVISION}.bak"
        if backup.exists():
            return backup
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM INTO ?", (str(backup),))
        except Exception as exc:
            if backup.exists():  # another process opening the same store made it first
                return backup
            raise StoreError(
                f"Cannot back up the store database to {backup} before upgrading it: {exc}.",
                hint="Check the free disk space and that you may write in the store folder. "
                     "The store has not been changed.",
            ) from exc
        finally:
            raw.close()
        return backup

    def _create_fresh(self) -> None:
        """A new, empty database: create the head schema directly and stamp it (Alembic's own
        recipe), which is several times faster than replaying every migration. An existing store
        is always upgraded through the migrations; tests/core/store/test_store.py proves the two agree.
        A new SQLite file is built the same way by :func:`create_sqlite_file`.
        """
        from modelyard.core.store.migrate import lock_schema

        with self._write_engine.begin() as conn:  # BEGIN IMMEDIATE: racing creators queue here
            lock_schema(conn)  # ... and on PostgreSQL, here
            if inspect(conn).has_table("alembic_version"):
                return  # another process created it while we waited for the lock
            create_schema(conn)

    def check_integrity(self) -> list[str]:
        """What SQLite's ``PRAGMA integrity_check`` finds wrong with the database (empty: sound).

        Always empty for a server database, which checks itself.
        """
        if not self.is_sqlite:
            return []
        try:
            raw = self.engine.raw_connection()
        except (StoreDamagedError, sqlite3.DatabaseError) as exc:
            return [getattr(exc, "message", str(exc))]
        try:
            rows = raw.driver_connection.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        finally:
            raw.close()
        problems = [str(r[0]) for r in rows]
        return [] if problems == ["ok"] else problems

    def _ensure_meta(self) -> None:
        from modelyard.core.store.migrate import lock_schema

        with self.write() as s:
            lock_schema(s.connection())  # processes upgrading from 0001 at once make one store id
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
        with Session(self.engine, expire_on_commit=False, info={STORE_KEY: self}) as s:
            yield s

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write of this thread: refused on a read-only store, counted by :meth:`in_write` while
        it lasts (:meth:`write` and :meth:`direct` both)."""
        if self.read_only:
            raise self._read_only_error()
        self._local.writes = getattr(self._local, "writes", 0) + 1
        try:
            yield
        finally:
            self._local.writes -= 1

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception.

        Artifact files created through ``store.artifacts.put_*(..., session=s)`` inside a
        block that fails are removed again.
        """
        with self._writing():
            s = Session(self._write_engine, expire_on_commit=False, info={STORE_KEY: self})
            if not self.is_sqlite:  # audit entries name the database login (records.audit)
                s.info[ACTOR_KEY] = session_actor(self.member)
            try:
                with s.begin():
                    yield s
            except BaseException:
                new_files = s.info.pop(NEW_FILES_KEY, [])
                if new_files:
                    self._discard_artifacts(new_files)
                raise
            finally:
                s.close()

    @contextmanager
    def direct(self) -> Iterator[Any]:
        """A connection of the writing engine (SQLAlchemy's Connection, no transaction begun) for
        a writer that sends each statement as its own transaction (PostgreSQL's one-statement
        tracking writes, core/experiments/tracking/pgwrites.py): what :meth:`write` checks and
        counts, without a Session's set-up (a tenth of a small write's time on a server)."""
        with self._writing(), self._write_engine.connect() as conn:
            yield conn

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
                                               (m.Run, m.Run.status, m.Run.start_time),
                                               (m.PipelineRun, m.PipelineRun.status, m.PipelineRun.started_at)):
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
            elif model is m.PipelineRun:
                values.update(ended_at=now, error="The process running this pipeline ended before the pipeline "
                                                  "finished; resume it to run the steps that did not finish.")
            else:
                values.update(end_time=now, error="The process running this run ended before the run finished.")
            with self.write() as s:
                res = s.execute(
                    update(model).where(model.id.in_(dead), status_col == "running").values(**values)
                )
                if model is m.PipelineRun:  # its steps that were running (or waiting) did not finish either
                    s.execute(update(m.PipelineStepRun)
                              .where(m.PipelineStepRun.run_id.in_(dead),
                                     m.PipelineStepRun.status.in_(("running", "pending")))
                              .values(status="interrupted", ended_at=now))
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
