"""Opening a store: only `store init` (or the default store on first use) creates one; a damaged,
empty, foreign or read-only database, a failed upgrade and a bad database URL each give one
clear error, and nothing is written to a database that is not a Modelyard store."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from modelyard.core.common.errors import StoreError
from modelyard.core.store import DB_FILENAME, HEAD_REVISION, Store, migrate
from sqlalchemy import create_engine, text
from store_helpers import (
    corrupt_table,
    files,
    make_read_only,
    make_writable,
    run_without_write_permission,
    store_with_runs,
)

# --------------------------------------------------------------------------- empty / foreign files


@pytest.mark.parametrize("create", [False, True])
def test_zero_byte_database_is_refused_not_turned_into_a_new_store(tmp_path: Path, create: bool) -> None:
    root = tmp_path / "store"
    with Store.open(root) as store:
        store_id = store.meta()["store_id"]
        ref = store.artifacts.put_bytes(b"a real model", session=None)
    assert store_id
    db = root / DB_FILENAME
    db.write_bytes(b"")  # truncated by a crash or a bad copy
    before = sorted(p.name for p in root.iterdir())

    with pytest.raises(StoreError) as err:
        Store.open(root, create=create)
    message = str(err.value)
    assert str(db) in message and "empty" in message
    assert "damaged" not in err.value.message
    assert "\n" not in err.value.message and err.value.hint
    assert db.read_bytes() == b""  # not given a schema, a new id, or anything else
    assert sorted(p.name for p in root.iterdir()) == before
    assert store.artifacts.path(ref.sha256).is_file()


def _foreign_db(path: Path, *, alembic: bool = False) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        raw.execute("INSERT INTO notes (body) VALUES ('my thesis')")
        if alembic:  # another program that also uses Alembic
            raw.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            raw.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    raw.close()


@pytest.mark.parametrize("alembic", [False, True])
@pytest.mark.parametrize("create", [False, True])
def test_another_programs_sqlite_file_is_refused_and_not_written(tmp_path: Path, alembic: bool,
                                                                 create: bool) -> None:
    other = tmp_path / "notes.db"
    _foreign_db(other, alembic=alembic)
    before = files(tmp_path)

    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url=f"sqlite:///{other}", create=create)
    assert str(other) in err.value.message
    assert "not a Modelyard store" in err.value.message
    assert "notes" in err.value.message  # says what it found
    assert "newer Modelyard" not in str(err.value)
    assert err.value.hint
    assert files(tmp_path) == before  # byte for byte, and no -wal/-shm left behind


def test_a_file_that_is_not_sqlite_is_refused_without_blaming_damage(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    db = root / DB_FILENAME
    db.write_bytes(b"name,value\nalpha,1\n" * 500)
    before = db.read_bytes()
    with pytest.raises(StoreError) as err:
        Store.open(root, create=True)
    assert str(db) in err.value.message
    assert "not an SQLite database" in err.value.message
    assert "damaged" not in err.value.message
    assert db.read_bytes() == before


def test_an_empty_sqlite_database_becomes_a_store_only_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA user_version = 0")
        raw.execute("VACUUM")  # a valid, empty database file with its header
    raw.close()
    assert db.stat().st_size > 0
    before = db.read_bytes()
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url=f"sqlite:///{db}", create=False)
    assert str(db) in err.value.message and "store init" in (err.value.hint or "")
    assert db.read_bytes() == before

    with Store.open(tmp_path / "store", db_url=f"sqlite:///{db}", create=True) as store:
        assert store.current_revision() == HEAD_REVISION
        assert store.meta()["store_id"]


def test_a_missing_sqlite_file_named_by_url_is_not_created_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url=f"sqlite:///{db}", create=False)
    assert str(db) in err.value.message
    assert not db.exists()
    with Store.open(tmp_path / "store", db_url=f"sqlite:///{db}", create=True) as store:
        assert store.current_revision() == HEAD_REVISION
    typo = tmp_path / "no-such-folder" / "team.db"
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url=f"sqlite:///{typo}", create=True)
    assert str(typo.parent) in err.value.message and "does not exist" in err.value.message
    assert not typo.parent.exists()


def test_tracking_does_not_create_a_store_in_a_mistyped_folder(tmp_path: Path) -> None:
    from modelyard.core.experiments import tracking

    real = tmp_path / "store"
    Store.open(real).close()
    typo = tmp_path / "stroe"
    with pytest.raises(StoreError) as err:
        tracking.start_run("exp", store=typo)
    assert str(typo) in str(err.value) and "store init" in str(err.value)
    assert not typo.exists()


def test_tracking_does_not_create_the_database_a_url_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.core.experiments import tracking

    missing = tmp_path / "team" / "modelyard.db"
    missing.parent.mkdir()
    monkeypatch.setenv("MODELYARD_DB_URL", f"sqlite:///{missing}")
    with pytest.raises(StoreError) as err:
        tracking.start_run("exp")
    assert str(missing) in str(err.value) and "store init" in str(err.value)
    assert not missing.exists()


# --------------------------------------------------------------------------- damaged database


def test_damaged_database_is_found_by_the_integrity_check_and_reads_fail_in_one_line(tmp_path: Path) -> None:
    from modelyard.core.common.errors import StoreDamagedError
    from modelyard.core.experiments.tracking import search_runs

    root = tmp_path / "store"
    store_with_runs(root)
    with Store.open(root) as store:
        assert store.check_integrity() == []
    corrupt_table(root / DB_FILENAME, "runs", "runs_table_cache")

    with Store.open(root) as store:
        problems = store.check_integrity()
        assert problems and all(isinstance(p, str) and p for p in problems)
        with pytest.raises(StoreDamagedError) as err:
            search_runs(store=store)
    assert str(root / DB_FILENAME) in err.value.message
    assert "damaged" in err.value.message and "\n" not in err.value.message
    assert "store verify" in (err.value.hint or "")


# --------------------------------------------------------------------------- failed upgrade


def test_a_failed_upgrade_leaves_the_old_revision_and_names_the_backup(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command

    root = tmp_path / "old"
    root.mkdir()
    db = root / DB_FILENAME
    engine = create_engine(f"sqlite:///{db}")
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO datasets (name, description, created_at) "
                              "VALUES ('churn', 'kept', '2024-03-01 12:00:00')"))
    finally:
        engine.dispose()

    real_upgrade = command.upgrade

    def upgrade_then_fail(cfg, revision, **kw):  # the migration runs, then something breaks
        real_upgrade(cfg, revision, **kw)
        raise RuntimeError("disk I/O error in the middle of 0003")

    monkeypatch.setattr(command, "upgrade", upgrade_then_fail)
    with pytest.raises(StoreError) as err:
        Store.open(root)
    backup = root / f"{DB_FILENAME}.before-{HEAD_REVISION}.bak"
    assert backup.is_file()
    message = str(err.value)
    assert "0002" in err.value.message and "disk I/O error" in err.value.message
    assert str(backup) in message
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
        assert raw.execute("SELECT description FROM datasets").fetchall() == [("kept",)]
    raw.close()

    monkeypatch.setattr(command, "upgrade", real_upgrade)
    with Store.open(root) as store:  # the next try (the cause fixed) upgrades normally
        assert store.current_revision() == HEAD_REVISION


# --------------------------------------------------------------------------- database URLs


@pytest.mark.parametrize("url, expect", [
    ("foo://x", "foo"),
    ("not a url at all", "not a url at all"),
])
def test_unknown_database_urls_get_one_line_and_the_supported_kinds(tmp_path: Path, url: str, expect: str) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url=url)
    assert expect in err.value.message
    assert "sqlite:///" in (err.value.hint or "") and "postgresql+psycopg://" in (err.value.hint or "")


def test_postgresql_url_without_its_driver_names_the_postgres_extra(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "store", db_url="postgresql+psycopg://ana:secret@db.example/modelyard")
    assert "psycopg" in err.value.message
    assert "secret" not in str(err.value)
    assert "modelyard[postgres]" in (err.value.hint or "")


# --------------------------------------------------------------------------- read-only store


def test_read_only_store_reads_and_refuses_writes_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store_with_runs(root, runs=1)
    make_read_only(root)
    before = files(root)
    try:
        proc = run_without_write_permission(["-c", textwrap.dedent(f"""
            import sys
            from modelyard.core.common.errors import StoreError
            from modelyard.core.store import Store
            from modelyard.core.store import models as m
            from modelyard.core.experiments.tracking import search_runs
            from sqlalchemy import select
            try:
                open({str(root / 'probe')!r}, 'w')
                print('WRITABLE')
                sys.exit(0)
            except PermissionError:
                pass
            with Store.open({str(root)!r}) as store:
                print('counts', store.info()['counts']['runs'], len(search_runs(store=store)))
                try:
                    with store.write() as s:
                        s.add(m.StoreMeta(key='x', value='y'))
                except StoreError as exc:
                    print('refused', exc.message)
                try:
                    store.artifacts.put_bytes(b'no room here')
                except StoreError as exc:
                    print('artifact refused', exc.message)
        """)])
    finally:
        make_writable(root)
    assert "WRITABLE" not in proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "counts 1 1" in proc.stdout
    assert "refused" in proc.stdout and "read-only" in proc.stdout and str(root) in proc.stdout
    assert "artifact refused" in proc.stdout and f"{root / 'tmp'}" in proc.stdout
    assert files(root) == before


def test_a_read_only_reader_sees_what_a_writer_commits_later(tmp_path: Path) -> None:
    """A team store: this user may only read it; its owner opens it and writes while we read."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs two permission levels: the test (root) writes, its child (no CAP_DAC_OVERRIDE) reads")

    from modelyard.core.experiments import tracking
    from store_helpers import child_env, without_write_permission

    root = tmp_path / "store"
    store_with_runs(root, runs=1)
    make_read_only(root)
    code = textwrap.dedent(f"""
        import sys
        from modelyard.core.store import Store
        from modelyard.core.experiments.tracking import search_runs
        store = Store.open({str(root)!r})
        print(store.read_only, len(search_runs(store=store)), flush=True)
        sys.stdin.readline()
        print(store.read_only, len(search_runs(store=store)), flush=True)
    """)
    proc = None
    try:
        proc = subprocess.Popen([*without_write_permission(), sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        assert proc.stdout.readline().split() == ["True", "1"]
        with Store.open(root) as owner:  # the owner may write (the test runs as them)
            with tracking.start_run("exp", store=owner, name="later") as run:
                run.log_metric("loss", 0.5)
            assert Path(f"{root / DB_FILENAME}-wal").exists()  # the owner still has the store open
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().split() == ["True", "2"], proc.stderr.read()
        proc.wait(30)
        assert proc.returncode == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        make_writable(root)


# --------------------------------------------------------------------------- opening beside an open store


def test_opening_a_store_again_in_the_same_process_keeps_the_open_one_safe(tmp_path: Path) -> None:
    """POSIX drops every lock a process holds on a file when it closes *any* descriptor of it.

    Opening reads the database's schema before an engine connects; if that read closed a plain
    file handle on modelyard.db, the open store's locks would be gone and another process closing
    its connection would think it was the last one: it deletes the write-ahead log and shared
    memory under the open store (seen as 'disk I/O error' at its next read).
    """
    import subprocess

    root = tmp_path / "store"
    with Store.open(root) as first:
        first.meta()  # a pooled connection holds the database open, as the window does
        with Store.open(root):  # the tracking API or the CLI in the same process
            pass
        db = root / DB_FILENAME
        assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
        other = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                 "c.execute('select count(*) from store_meta').fetchone(); c.close()")
        subprocess.run([sys.executable, "-c", other, str(db)], check=True, timeout=60)
        assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists(), \
            "another process's close removed the log of a store that is still open"
        assert first.meta()["store_id"]
        with Store.open(root) as again:
            assert again.meta()["store_id"] == first.meta()["store_id"]
