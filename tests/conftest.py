"""Shared fixtures. Every test runs headless, with its own config folder and store location."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:  # works from a plain checkout too
    sys.path.insert(0, str(ROOT / "app"))
if str(ROOT / "tests") not in sys.path:  # child processes import tests/jobfns.py by name
    sys.path.insert(0, str(ROOT / "tests"))

import backends  # noqa: E402 - after the path set-up above
import pg_server  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                          db_url: str | None) -> None:
    """No test reads or writes the user's real settings or default store.

    On the PostgreSQL backend, ``MODELYARD_DB_URL`` names the test's own new database, so every
    store the test opens (in-process, through the CLI or in a child process) is on the server."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("MODELYARD_STORE", str(home / "default-store"))
    if db_url is None:
        monkeypatch.delenv("MODELYARD_DB_URL", raising=False)
    else:
        monkeypatch.setenv("MODELYARD_DB_URL", db_url)
    monkeypatch.setenv("MODELYARD_USER", "tester")


# --------------------------------------------------------------------------- the two backends


def _module_of(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


_SHARED_FIXTURE_TESTS: dict[str, set[str]] = {}


def _module_scoped_fixtures(metafunc: pytest.Metafunc) -> set[str]:
    """The module- or class-scoped fixtures the test uses (shared by its two backend runs)."""
    defs = metafunc.definition._fixtureinfo.name2fixturedefs  # noqa: SLF001 - no public way to ask
    return {name for name, fixturedefs in defs.items()
            if fixturedefs and fixturedefs[-1].scope in ("module", "class", "package")}


def _backend_fixtures(item: Any) -> set[str]:
    """The fixtures of a test (its item or definition) parametrized over the two backends
    (``params=backends.backend_params()``: a module's own store on each backend)."""
    defs = item._fixtureinfo.name2fixturedefs  # noqa: SLF001 - no public way to ask
    return {name for name, fixturedefs in defs.items() if fixturedefs and backends.follows_backend(fixturedefs[-1])}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHARED_FIXTURE_TESTS:
        shown = "; ".join(f"{m} ({', '.join(sorted(f))})" for m, f in sorted(_SHARED_FIXTURE_TESTS.items()))
        terminalreporter.write_line(f"SQLite only, sharing a module-scoped fixture (tests/backends.py): {shown}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of the modules in tests/backends.py's BOTH on SQLite and on PostgreSQL."""
    module = _module_of(metafunc.definition.path)
    if "backend" not in metafunc.fixturenames or module not in backends.BOTH | backends.POSTGRESQL_ONLY:
        return
    if metafunc.definition.get_closest_marker("sqlite_only"):
        return
    shared = _module_scoped_fixtures(metafunc) - backends.STORE_FREE_FIXTURES.get(module, frozenset())
    if _backend_fixtures(metafunc.definition):
        return  # its module's store follows the backend by its own parameter, and ``backend`` follows it
    if shared and module in backends.BOTH:
        # a store made once per module is on SQLite, and running the test twice on it would see
        # the first run's rows: the test stays SQLite-only, counted in the summary
        _SHARED_FIXTURE_TESTS.setdefault(module, set()).update(shared)
        return
    postgresql = backends.postgresql_param()
    metafunc.parametrize("backend", [postgresql] if module in backends.POSTGRESQL_ONLY else ["sqlite", postgresql],
                         indirect=True)


# Modules that measure the window's responsiveness or start-up time: marked ``serial``, so README's
# test command runs them alone after the rest ran on every core. (A stall meter leaves out the time
# the main thread waited for a CPU — tests/held_clock.py — but a busy sibling core still slows the
# main thread's own work.)
SERIAL_MODULES = frozenset({
    "tests/ui/acceptance/test_no_block.py",
    "tests/ui/experiments/test_ui_train_no_block.py",
    "tests/ui/datasets/test_ui_datasets_flow.py",
    "tests/ui/test_ui_write_lock.py",
    "tests/ui/common/test_turns.py",
    "tests/ui/common/test_client_turns.py",
    "tests/test_startup_cost.py",
    "tests/test_held_clock.py",  # it loads every core on purpose
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every module of the store-touching folders says where it runs (tests/backends.py); the
    modules of :data:`SERIAL_MODULES` are marked ``serial``."""
    for item in items:
        if _module_of(item.path) in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
    unlisted = sorted({m for m in (_module_of(item.path) for item in items)
                       if m.startswith(backends.STORE_TEST_FOLDERS) and not m.endswith("conftest.py")
                       and m not in backends.BOTH | backends.POSTGRESQL_ONLY | backends.SQLITE_ONLY.keys()
                       and m not in backends.OWN_PARAMS})
    if unlisted:
        raise pytest.UsageError("Say in tests/backends.py whether these modules run on PostgreSQL too "
                                f"(BOTH, POSTGRESQL_ONLY, or SQLITE_ONLY with the reason): {', '.join(unlisted)}")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """'sqlite', or 'postgresql' for the second run of a module listed in tests/backends.py's BOTH,
    or the backend of the module-scoped store the test uses (its parameter: tests/backends.py)."""
    if hasattr(request, "param"):
        return request.param
    callspec = getattr(request.node, "callspec", None)
    for name in sorted(_backend_fixtures(request.node)) if callspec is not None else ():
        if name in callspec.params:
            return callspec.params[name]
    return "sqlite"


@pytest.fixture(scope="session")
def pg_server_session():
    """The session's throwaway PostgreSQL server (tests/pg_server.py), started on first use.

    Without a server or psycopg the PostgreSQL half fails, naming what to install: it is never
    skipped (``pip install -e '.[test]'`` brings both)."""
    reason = pg_server.missing_reason()
    if reason is not None:
        pytest.fail(f"The [postgresql] tests need a PostgreSQL server, but {reason}.", pytrace=False)
    server = pg_server.PgServer(pg_server.find_binaries())  # type: ignore[arg-type]
    atexit.register(server.stop)  # also when the session ends without tearing down fixtures
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest):
    """None on SQLite (each store's own file); on PostgreSQL, the URL of a new, empty database that is
    dropped after the test (with any connection still open to it)."""
    if backend != "postgresql":
        yield None
        return
    server = request.getfixturevalue("pg_server_session")
    name = server.create_database("template1")
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture(autouse=True)
def _no_leaked_workers(request: pytest.FixtureRequest):
    """Fail any test that leaves a Python thread, a Qt pool worker or a child process running.

    A worker left behind outlives its widgets and can crash a later test (napari learnt this the
    hard way); so do leaked job processes.
    """
    before = {t.ident for t in threading.enumerate()}
    yield
    problems: list[str] = []
    if "PySide6.QtCore" in sys.modules:
        from modelyard.ui.common.jobrunner import JobRunner
        from PySide6.QtCore import QThreadPool

        for runner in list(JobRunner.instances()):
            if runner.active_thread_count():
                problems.append(f"{runner!r} still has {runner.active_thread_count()} worker(s) running")
        if "modelyard.ui.common.background" in sys.modules:
            from modelyard.ui.common.background import BackgroundReader

            for reader in BackgroundReader.instances():
                if reader.active_thread_count():
                    problems.append("a BackgroundReader still has a read running")
        if QThreadPool.globalInstance().activeThreadCount():
            problems.append("the global QThreadPool still has runnables")
    leaked = [
        t for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)  # type: ignore[attr-defined]
        and not t.daemon
    ]
    if leaked:
        problems.append(f"threads left running: {[t.name for t in leaked]}")
    children = multiprocessing.active_children()
    if children:
        problems.append(f"child processes left running: {[p.name for p in children]}")
        for p in children:
            p.kill()
    if problems:
        pytest.fail("Leaked background work: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def new_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """A factory of further empty databases on the test's backend (their SQLAlchemy URLs): an
    SQLite file in the test's folder, or a new database on the server (dropped after the test)."""
    made: list[str] = []
    server = request.getfixturevalue("pg_server_session") if backend == "postgresql" else None

    def make() -> str:
        if server is None:
            return f"sqlite:///{tmp_path / f'db{len(made)}.db'}"
        made.append(server.create_database("template1"))
        return server.url(made[-1])

    yield make
    for name in made:
        server.drop_database(name)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- store fixtures


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Where the ``store`` fixture's store lives (not created until ``store`` is used)."""
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path, db_url: str | None):
    """A new, empty store in a temporary folder, closed after the test.

    Before closing, the datasets service forgets the snapshot files it holds open (if a test loaded
    it): they belong to this test's store, which no later test opens again. On the PostgreSQL
    backend the database is the test's own (``db_url``). tests/core/experiments/
    test_runquery.py has its own module-scoped ``store`` (its runs are only read)."""
    from modelyard.core.store import Store

    s = Store.open(store_dir, db_url=db_url)
    try:
        yield s
    finally:
        service = sys.modules.get("modelyard.core.datasets.service")
        if service is not None:
            service.clear_caches()
        s.close()
