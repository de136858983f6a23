"""Setting up and reaching a team store: the database on a PostgreSQL server, the artifacts in a
folder every member can reach (a network share).

``modelyard store init --db-url URL --artifacts DIR`` and the window's File › New team store… call
:func:`init_team_store`: it checks the folder can be written, the server answers and the database
is empty (or already this store), creates the schema, records the folder in ``store_meta``
(``artifacts_dir``) and installs the roles. A member then opens the store by its URL alone
(``Store.open(db_url=URL)``): the folder comes from ``store_meta``; a member whose share is mounted
elsewhere names it (``--store DIR``).

Every problem is one line naming the option or field (``labels``: the CLI's ``--db-url`` /
``--artifacts``, the dialog's field names) and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.common.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from modelyard.core.store import Store

ARTIFACTS_DIR_KEY = "artifacts_dir"
CLI_LABELS = {"db_url": "--db-url", "artifacts": "--artifacts"}
# What a store folder on the share may hold besides what a store put there (re-running init is fine).
_STORE_FOLDER_NAMES = {"artifacts", "tmp", "trusted-keys", "keys", ".DS_Store", "lost+found"}


@dataclass(frozen=True)
class TeamStoreInit:
    """What :func:`init_team_store` did."""

    created: bool  # False: the database already held this store
    artifacts_dir: Path
    database: str  # the URL without its password


def server_address(url: str | URL) -> str:
    """``database@host:port`` of a server URL (what the status bar shows)."""
    parsed = _parse(url)
    host = parsed.host or "localhost"
    port = parsed.port or 5432
    return f"{parsed.database}@{host}:{port}"


def url_without_password(url: str | URL) -> str:
    return _parse(url).render_as_string(hide_password=True).replace(":***@", "@")


def server_url(host: str, port: int | str, database: str, user: str, password: str | None = None) -> str:
    """A ``postgresql+psycopg://`` URL from the dialog's fields (each part escaped)."""
    from sqlalchemy.engine import URL

    return URL.create("postgresql+psycopg", username=user or None, password=password or None,
                      host=host or None, port=int(port) if str(port).strip() else None,
                      database=database or None).render_as_string(hide_password=False)


def url_parts(url: str) -> dict[str, str | int] | None:
    """host, port, database, user and password of a server URL (None: not a URL)."""
    try:
        parsed = _parse(url)
    except Exception:  # noqa: BLE001 - sqlalchemy's ArgumentError, or a ValueError from a bad port
        return None
    return {"host": parsed.host or "", "port": parsed.port or 5432, "database": parsed.database or "",
            "user": parsed.username or "", "password": str(parsed.password or "")}


def _parse(url: str | URL) -> URL:
    from sqlalchemy.engine import make_url

    return make_url(url) if isinstance(url, str) else url


# --------------------------------------------------------------------------- problems, in one line


def connection_problem(exc: BaseException, url: str | URL, label: str = "the database URL") -> StoreError:
    """A failed connection or statement on a server, as one line naming ``label`` (never a traceback)."""
    parsed = _parse(url)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())  # psycopg's messages run over several lines
    lower = text.lower()
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    user = parsed.username or "(your login name)"
    if "password authentication failed" in lower or "no password supplied" in lower \
            or ("role" in lower and "does not exist" in lower):
        return StoreError(f"The server at {where} refused the login {user!r} given in {label}: "
                          f"{_detail(text)}.",
                          hint="Check the user name and password (a password comes from the dialog, ~/.pgpass or "
                               "PGPASSWORD); an admin adds members with 'modelyard team add'.")
    if "database" in lower and "does not exist" in lower:
        return StoreError(f"There is no database {parsed.database!r} on the server at {where} ({label}).",
                          hint=f"Check the database name, or create it first: createdb -O {user} {parsed.database}.")
    if "permission denied" in lower:
        return StoreError(f"The login {user!r} given in {label} may not do this on {parsed.database!r}: "
                          f"{_detail(text)}.",
                          hint="Set up a team store as the database's owner (createdb -O OWNER DATABASE).")
    if any(w in lower for w in ("connection refused", "could not connect", "failed to resolve", "timeout",
                                "timed out", "no route", "connection failed", "could not translate")):
        return StoreError(f"Cannot reach the database server at {where} given in {label}: {_detail(text)}.",
                          hint="Check the host and port, that the server is running and that this machine may "
                               "connect to it.")
    return StoreError(f"The database server at {where} given in {label} refused the connection: {_detail(text)}.",
                      hint="Check the database URL, that the server is running and that you may log in.")


def _detail(text: str) -> str:
    """The part of a libpq message that says what happened ('Connection refused', 'password
    authentication failed for user "ana"'), without its prefixes and advice."""
    for marker in ("FATAL:", "failed:", "ERROR:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    text = text.split(" Is the server running", 1)[0]
    return text.strip().rstrip(".") or "no reason given"


def check_artifacts_dir(folder: str | os.PathLike[str], label: str = "the artifacts folder") -> Path:
    """Make sure ``folder`` exists (creating it) and can take an artifact: a file written and renamed
    there, as a put does. Returns it, resolved; refuses a SQLite store's folder."""
    path = Path(folder).expanduser()
    if not str(folder).strip():
        raise StoreError(f"No artifacts folder given ({label}).",
                         hint="Choose a folder every member can reach, e.g. a network share.")
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} ({label}) is a file, not a folder.", hint="Choose a folder for the artifacts.")
    if (path / "modelyard.db").exists():
        raise StoreError(f"{path} ({label}) holds a SQLite store (modelyard.db); a team store needs its own folder.",
                         hint="Choose an empty folder on the share; never put a SQLite store on a network share.")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if p.name not in _STORE_FOLDER_NAMES)
        if others:
            raise StoreError(f"{path} ({label}) already holds other files ({', '.join(others[:3])}"
                             f"{', ...' if len(others) > 3 else ''}) and is not a store's artifacts folder.",
                             hint="Choose an empty folder for the artifacts, or the folder of this store.")
    probe = path / "tmp" / f".probe-{os.getpid()}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        (path / "artifacts").mkdir(exist_ok=True)
        written = probe.with_suffix(".tmp")
        written.write_bytes(b"modelyard")
        os.replace(written, probe)  # a put renames into place: the share must allow it
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"Cannot write in {path} ({label}): {exc.strerror or exc}.",
                         hint="Choose a folder you (and every member) may write to.") from None
    return path


# --------------------------------------------------------------------------- the recorded folder


def recorded_artifacts_dir(url: str) -> str | None:
    """The artifacts folder ``store init`` recorded in the store at ``url`` (None: none recorded,
    or no store there yet). Connection problems are one line (:func:`connection_problem`)."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    from modelyard.core.store.server import server_engine

    engine = server_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("store_meta"):
                return None
            return conn.execute(text("SELECT value FROM store_meta WHERE key = :k"),
                                {"k": ARTIFACTS_DIR_KEY}).scalar()
    except DBAPIError as exc:
        raise connection_problem(exc, url) from exc
    finally:
        engine.dispose()


def open_team_store(db_url: str, artifacts: str | os.PathLike[str] | None = None, *,
                    labels: dict[str, str] | None = None) -> Store:
    """Open the team store at ``db_url`` (never creating one), its artifacts in ``artifacts`` or, when
    that is empty, in the folder recorded by ``store init``."""
    from modelyard.core.store import Store

    labels = {**CLI_LABELS, **(labels or {})}
    folder = str(artifacts or "").strip()
    if not folder:
        try:
            folder = recorded_artifacts_dir(db_url) or ""
        except StoreError as exc:
            raise connection_problem(exc.__cause__ or exc, db_url, labels["db_url"]) if exc.__cause__ else exc
        if not folder:
            raise StoreError(f"{server_address(db_url)} holds no team store: no artifacts folder was recorded there "
                             f"by 'store init' ({labels['artifacts']} is empty).",
                             hint="Create the team store first (File › New team store…), or give the folder where "
                                  "its artifacts are.")
        if not Path(folder).is_dir():
            raise missing_artifacts_dir(folder)
    elif not Path(folder).expanduser().is_dir():
        raise StoreError(f"The artifacts folder {folder} ({labels['artifacts']}) does not exist on this machine.",
                         hint="Give the folder where the team's share is mounted here.")
    return Store.open(Path(folder).expanduser(), db_url=db_url, create=False)


def missing_artifacts_dir(folder: str) -> StoreError:
    return StoreError(f"The store's artifacts folder {folder} (recorded by 'store init') is not reachable "
                      "from this machine.",
                      hint="Mount the share there, or name where it is mounted here with --store DIR "
                           "(the window: the Artifacts folder field).")


def record_artifacts_dir(store: Store, folder: Path) -> None:
    from modelyard.core.store import models as m

    with store.write() as s:
        row = s.get(m.StoreMeta, ARTIFACTS_DIR_KEY)
        if row is None:
            s.add(m.StoreMeta(key=ARTIFACTS_DIR_KEY, value=str(folder)))


# --------------------------------------------------------------------------- init


def init_team_store(db_url: str, artifacts: str | os.PathLike[str], *,
                    labels: dict[str, str] | None = None) -> tuple[Store, TeamStoreInit]:
    """Create (or confirm) the team store at ``db_url`` with its artifacts in ``artifacts``.

    The database must be empty or already this store; the caller closes the returned store.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    from modelyard.core.store import Store, _check_url
    from modelyard.core.store import team as team_mod
    from modelyard.core.store.schema import not_a_store, schema_kind
    from modelyard.core.store.server import server_engine

    labels = {**CLI_LABELS, **(labels or {})}
    url_label, dir_label = labels["db_url"], labels["artifacts"]
    if not str(db_url).strip():
        raise StoreError(f"No server given ({url_label}).",
                         hint="Give the store's database, e.g. postgresql+psycopg://alice@db.example/modelyard.")
    parsed = _check_url(db_url)
    if parsed.get_backend_name() == "sqlite":
        raise StoreError(f"A team store keeps its database on a PostgreSQL server, not in a SQLite file ({url_label}).",
                         hint="Give postgresql+psycopg://USER@HOST/DATABASE; a SQLite store on a network share "
                              "breaks (docs/team.md).")
    shown = url_without_password(parsed)
    if not str(artifacts).strip():
        check_artifacts_dir(artifacts, dir_label)  # refuses at once, before the server is asked
    engine = server_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            revision = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                        if "alembic_version" in tables else None)
            recorded = (conn.execute(text("SELECT value FROM store_meta WHERE key = :k"),
                                     {"k": ARTIFACTS_DIR_KEY}).scalar() if "store_meta" in tables else None)
            may_create = bool(conn.execute(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")).scalar())
    except DBAPIError as exc:
        raise connection_problem(exc, parsed, url_label) from None
    finally:
        engine.dispose()
    kind = schema_kind(tables, revision)
    if kind == "foreign":
        err = not_a_store(f"The database {parsed.database!r} ({url_label})", tables)
        raise StoreError(err.message, hint="Create an empty database for the store (createdb -O OWNER modelyard) "
                                           f"and name it in {url_label}.")
    if kind == "empty" and not may_create:  # before anything is made: the schema could not be
        raise StoreError(f"The login {parsed.username or '(your login name)'!r} given in {url_label} may not create "
                         f"tables in the database {parsed.database!r}.",
                         hint="Create the team store as the database's owner (createdb -O LOGIN DATABASE) or a "
                              "superuser; members join it later with 'modelyard team add'.")
    asked = Path(artifacts).expanduser().resolve()
    if recorded and Path(recorded) != asked:
        raise StoreError(f"The store at {shown} already keeps its artifacts in {recorded}, not {asked} ({dir_label}).",
                         hint="Members whose share is mounted elsewhere open it with --store DIR; 'store init' "
                              "does not move the artifacts.")
    folder = check_artifacts_dir(artifacts, dir_label)  # after the server answered: nothing made for nothing
    try:
        store = Store.open(folder, db_url=db_url, create=True, sweep=False)
    except DBAPIError as exc:
        raise connection_problem(exc, parsed, url_label) from None
    try:
        record_artifacts_dir(store, folder)
        team_mod.install_roles(store)  # again: after a restore, the server lacks the store's group roles
    except DBAPIError as exc:
        store.close()
        raise connection_problem(exc, parsed, url_label) from None
    except BaseException:
        store.close()
        raise
    return store, TeamStoreInit(created=kind == "empty", artifacts_dir=folder, database=shown)


# --------------------------------------------------------------------------- passwords


def write_pgpass(host: str, port: int | str, database: str, user: str, password: str,
                 path: Path | None = None) -> Path:
    """Remember ``password`` in ``~/.pgpass`` (mode 0600, what libpq reads), replacing the line for the
    same host, port, database and user. Written to a temp file and renamed into place."""
    path = path or Path.home() / ".pgpass"

    def esc(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    key = ":".join(esc(v) for v in (host or "localhost", port or 5432, database, user))
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if not line.startswith(key + ":")]
    kept.append(f"{key}:{esc(password)}")
    tmp = path.with_name(f".pgpass.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(kept) + "\n")
    os.replace(tmp, path)
    return path
