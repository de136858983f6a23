"""The embedded default store's database: an SQLite file in WAL mode, opened so that nothing that
is not a store is ever turned into one.

:func:`read_sqlite_schema` looks at an existing file before any engine connects (connecting
switches it to WAL); :func:`create_sqlite_file` builds a new database complete in a temp file
and links it in; :func:`sqlite_engine` makes the engine (busy timeout, foreign keys, ``BEGIN
IMMEDIATE`` for writes).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from modelyard.core.common.errors import StoreDamagedError, StoreError
from modelyard.core.store.schema import NOT_A_STORE_HINT, create_schema

BUSY_TIMEOUT_S = 60.0
# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``)
SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_NOTADB = 8, 11, 26


def sqlite_engine(url: str, path: Path | None = None, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for an SQLite database; ``path`` (its file) makes every connection open it
    through :func:`sqlite_uri`, so a file deleted under a running store is an error rather
    than silently re-created empty, and a read-only store is opened read-only."""
    if path is not None:
        # The URI is chosen per connection: a read-only store may gain a write-ahead log when
        # someone with write permission opens it, and must then be read through it (mode=ro).
        kwargs["creator"] = lambda: sqlite3.connect(sqlite_uri(path, read_only), uri=True, timeout=BUSY_TIMEOUT_S,
                                                    check_same_thread=False)
        if read_only:
            kwargs["poolclass"] = NullPool  # no long-lived connection keeps an outdated choice
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not read_only:
            enable_wal(cur)
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


def enable_wal(cur: Any) -> None:
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


def sqlite_uri(path: Path, read_only: bool = False) -> str:
    """The ``file:`` URI SQLite opens ``path`` with: read-write but never created (``mode=rw``).

    Read-only: ``mode=ro`` while a write-ahead log exists (another process has the store open
    and may be writing it); otherwise ``immutable=1``, because SQLite cannot open a WAL database
    read-only in a folder where it may not create the ``-shm`` file, and without a log nobody
    has the database open. (Read-only engines reconnect for every session, so a writer that
    opens the store later is noticed at the next session.)
    """
    quoted = urllib.parse.quote(str(path.absolute()).replace("\\", "/"), safe="/:")
    base = f"file://{quoted}" if quoted.startswith("/") else f"file:///{quoted}"
    if not read_only:
        return f"{base}?mode=rw"
    return f"{base}?mode=ro" if Path(f"{path}-wal").exists() else f"{base}?immutable=1"


def is_read_only(path: Path) -> bool:
    """True when this process may not write the SQLite file ``path`` (or its folder / log files)."""
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return True
    return any(side.exists() and not os.access(side, os.W_OK)
               for side in (Path(f"{path}-wal"), Path(f"{path}-shm")))


def read_sqlite_schema(path: Path, read_only: bool) -> tuple[set[str], str | None]:
    """The table names and Alembic revision of an existing SQLite file, read without writing to it.

    Runs before any engine connects, because connecting switches the file to WAL mode: a file
    that is empty (0 bytes), not SQLite, damaged or someone else's is refused untouched.
    """
    # Never open (and close) a plain file handle on the database: closing any descriptor of a
    # file drops every POSIX lock this process holds on it, including those of a store that is
    # already open here, and another process would then delete its log under it. The size comes
    # from stat; the header check is SQLite's own (SQLITE_NOTADB below).
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreError(f"Cannot read the store database {path}: {exc.strerror}.",
                         hint="Check that the file exists and that you may read it.") from exc
    if size == 0:
        raise StoreError(f"{path} is empty (0 bytes), so it is not a Modelyard store; it was not changed.",
                         hint="If this was a store, restore its modelyard.db from a backup; to start a new "
                              "store here, delete the empty file and run 'modelyard store init'.")
    try:
        conn = sqlite3.connect(sqlite_uri(path, read_only), uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = None if row is None else str(row[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == SQLITE_NOTADB:
            raise StoreError(f"{path} is not a Modelyard store: it is not an SQLite database; it was not changed.",
                             hint=NOT_A_STORE_HINT) from exc
        if code == SQLITE_CORRUPT:
            raise StoreDamagedError(f"The store database {path} is damaged: {exc}.",
                                    hint="Restore the store folder from a backup.") from exc
        raise StoreError(f"Cannot read the store database {path}: {exc}.",
                         hint="Check that the file and its folder may be read (and written, to change the store).") from exc
    return tables, revision


def create_sqlite_file(path: Path, tmp_dir: Path) -> None:
    """Create a new store database at ``path``: built complete in a temp file, then linked in.

    ``path`` therefore never exists half-made (an empty or schema-less ``modelyard.db`` is never
    ours, and is refused), and of several processes creating the same store at once the first
    link wins and the others open that one.
    """
    tmp = tmp_dir / f"{os.getpid()}-{secrets.token_hex(6)}.new-db"
    try:
        if not tmp_dir.is_dir():  # never make the folders of a mistyped --db-url path
            raise FileNotFoundError(2, f"the folder {tmp_dir} does not exist")
        engine = sqlite_engine(f"sqlite:///{tmp}", poolclass=NullPool)
        try:
            with engine.begin() as conn:
                create_schema(conn)
        finally:
            engine.dispose()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created this store at the same moment: everyone uses theirs
        except OSError:  # a file system without hard links: rename, unless one appeared meanwhile
            if not path.exists():
                os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"Cannot create the store database {path}: {exc.strerror or exc}.",
                         hint="Check that the folder exists, that you may write there and that the disk "
                              "has free space.") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)
