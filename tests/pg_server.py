"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temp folder, ``postgres`` on a free
127.0.0.1 port (and a unix socket in the same folder), databases made per test, everything removed
at the end.

The server binaries come from the machine: ``initdb`` and ``postgres`` on PATH, or the newest
``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu's ``postgresql`` package) or ``/usr/pgsql-*/bin``
(RHEL). Nothing downloads. :func:`find_binaries` answers None when there are none, and
:func:`missing_reason` says what to install. Run as root (a container), the server runs as an
unprivileged user (``postgres``, else ``nobody``), because PostgreSQL refuses to run as root.

A session killed before it could stop its server leaves it running; the next session's start
stops and removes it (:func:`sweep_stale`). Durability is switched off (``fsync``, ``full_page_writes``, ``synchronous_commit``): the data
lives for one test session. ``python tests/pg_server.py`` starts one and prints its URL until
Ctrl-C (to look at a test database with psql).
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql@*/bin")
SUPERUSER = "modelyard"
INSTALL_HINT = ("install PostgreSQL's server (initdb, postgres): 'apt-get install postgresql' on Debian/Ubuntu, "
                "'brew install postgresql' on macOS, or put its bin folder on PATH")


def find_binaries() -> Path | None:
    """The folder holding ``initdb``, ``postgres`` and ``pg_ctl`` (PATH first, then the usual places)."""
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres:
        real = Path(os.path.realpath(initdb)).parent  # /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin
        return real if (real / "postgres").exists() else Path(initdb).parent
    candidates = sorted((Path(p) for pattern in _SEARCH for p in glob.glob(pattern)),
                        key=lambda p: [int(x) if x.isdigit() else x for x in p.parent.name.replace("@", "-").split("-")],
                        reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return _wheel_binaries()


def _wheel_binaries() -> Path | None:
    """The server binaries shipped in the ``pgserver`` wheel (the test extra), found without
    importing it: a machine with no PostgreSQL install still starts a real server."""
    spec = importlib.util.find_spec("pgserver")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(root) / "pginstall" / "bin"
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def missing_reason() -> str | None:
    """Why the PostgreSQL half of the tests cannot run here (None: it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the Python package psycopg is not installed: pip install -e '.[test]' (it brings psycopg[binary])"
    if find_binaries() is None:
        return (f"no PostgreSQL server binaries were found on PATH, in /usr/lib/postgresql/*/bin or in the pgserver "
                f"wheel: pip install -e '.[test]' brings that wheel, or {INSTALL_HINT}")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> dict[str, object]:
    """Popen arguments that drop root (PostgreSQL will not run as root); nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def sweep_stale(tmp: Path) -> None:
    """Stop and remove the servers of earlier test sessions that ended without stopping theirs
    (killed): a ``modelyard-pg-*`` folder whose ``owner`` process is gone."""
    for base in tmp.glob("modelyard-pg-*"):
        try:
            owner = int((base / "owner").read_text())
            os.kill(owner, 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file yet, or another user's)
        try:
            pid = int((base / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(base, ignore_errors=True)


class PgServer:
    """One running server. ``url(db)`` is a SQLAlchemy URL for a database on it."""

    def __init__(self, bindir: Path, base: Path | None = None) -> None:
        self.bindir = bindir
        self.base = Path(base or tempfile.mkdtemp(prefix="modelyard-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        import psycopg  # now: a test may hide it from imports later (sys.modules["psycopg"] = None)

        self._psycopg = psycopg

    # ------------------------------------------------------------------ life
    def start(self, timeout: float = 60.0) -> PgServer:
        sweep_stale(self.base.parent)
        run_as = _run_as()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        (self.base / "owner").write_text(str(os.getpid()))
        if run_as:
            for p in (self.base, self.socket_dir):
                os.chown(p, run_as["user"], run_as["group"])  # type: ignore[arg-type]
        subprocess.run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                        "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True, timeout=timeout, **run_as)  # type: ignore[call-overload]
        self.port = _free_port()
        with open(self.log, "wb") as log:
            if run_as:
                os.chown(self.log, run_as["user"], run_as["group"])  # type: ignore[arg-type]
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
                 "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
                 "-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "logging_collector=off"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **run_as)  # type: ignore[call-overload]
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect():
                    return self
            except Exception:  # noqa: BLE001 - not accepting connections yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start (see {self.log}):\n{tail}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (fast shutdown, then kill) and remove its folder."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, no checkpoint wait
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------ databases
    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # -> psycopg.Connection (autocommit)
        return self._psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=database,
                               autocommit=True, connect_timeout=5)

    def create_database(self, template: str = "template0") -> str:
        """A new empty database (its name)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":  # pragma: no cover - a developer's tool
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit(f"No PostgreSQL found: {INSTALL_HINT}.")
    server = PgServer(bindir).start()
    db = server.create_database()
    print(server.url(db), flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
