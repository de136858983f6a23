"""``modelyard store init --db-url URL --artifacts DIR``: a team store on the PostgreSQL server, its
artifacts in a shared folder recorded in the store, opened by its URL alone (issue 15).

PostgreSQL only (tests/backends.py): a team store's database is on a server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.store import Store
from modelyard.core.store.teamstore import ARTIFACTS_DIR_KEY
from store_helpers import make_read_only, make_writable, run_without_write_permission


def _one_line(code: int, err: str) -> str:
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and len(lines) <= 2, err
    return lines[0]


def test_init_creates_the_store_on_the_server_and_records_the_artifacts_folder(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> None:
    share = tmp_path / "share" / "modelyard"
    code, data, err = cli_json(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(share))
    assert code == 0, err
    assert data["created"] is True and data["artifacts_dir"] == str(share) and data["schema_revision"]
    assert (share / "artifacts").is_dir()
    with Store.open(share, db_url=db_url, create=False) as store:
        assert store.meta()[ARTIFACTS_DIR_KEY] == str(share)
    # again: nothing to do, said so
    code, out, err = cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(share))
    assert code == 0 and "ready" in out, err

    # a member opens it by its URL alone: the artifacts folder comes from the store
    monkeypatch.delenv("MODELYARD_STORE")
    monkeypatch.delenv("MODELYARD_DB_URL")
    code, info, err = cli_json(capsys, "--db-url", db_url, "store", "info")
    assert code == 0, err
    assert info["location"] == str(share) and info["backend"] == "postgresql"
    with Store.open(db_url=db_url, create=False) as store:
        assert store.root == share
        ref = store.artifacts.put_bytes(b"shared bytes")
    assert (share / "artifacts" / ref.sha256[:2] / ref.sha256[2:]).read_bytes() == b"shared bytes"
    # a member whose share is mounted elsewhere names it: --store wins over the record
    elsewhere = tmp_path / "mounted-here"
    elsewhere.symlink_to(share)
    code, info, err = cli_json(capsys, "--db-url", db_url, "--store", str(elsewhere), "store", "info")
    assert code == 0 and info["location"] == str(share.resolve()), err


def test_a_share_that_is_not_mounted_is_named_not_recreated(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> None:
    share = tmp_path / "share"
    assert cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(share))[0] == 0
    share.rename(tmp_path / "unmounted")
    monkeypatch.delenv("MODELYARD_STORE")
    code, out, err = cli(capsys, "--db-url", db_url, "store", "info")
    line = _one_line(code, err)
    assert str(share) in line and "not reachable" in line and "--store DIR" in err
    assert not share.exists()


def test_init_refuses_another_artifacts_folder_for_an_existing_team_store(
        capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path) -> None:
    assert cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(tmp_path / "a"))[0] == 0
    code, out, err = cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(tmp_path / "b"))
    line = _one_line(code, err)
    assert "--artifacts" in line and str(tmp_path / "a") in line
    assert not (tmp_path / "b").exists()


def test_bad_server_input_is_one_line_naming_the_option(
        capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path, pg_server_session) -> None:
    share = tmp_path / "share"
    server = pg_server_session
    unreachable = f"postgresql+psycopg://modelyard@127.0.0.1:1/{db_url.rsplit('/', 1)[1]}"
    cases = [
        (unreachable, "Cannot reach the database server at 127.0.0.1:1"),
        (server.url(db_url.rsplit("/", 1)[1], user="nobody_here"), "refused the login 'nobody_here'"),
        (server.url("no_such_database"), "There is no database 'no_such_database'"),
    ]
    for url, words in cases:
        code, out, err = cli(capsys, "store", "init", "--db-url", url, "--artifacts", str(share))
        line = _one_line(code, err)
        assert words in line and "--db-url" in line, line
        assert not share.exists()  # nothing made for a store that could not be made

    # a database that holds someone else's tables is left alone
    foreign = server.create_database()
    try:
        with server.connect(foreign) as conn:
            conn.execute("CREATE TABLE parts (sku text)")
        code, out, err = cli(capsys, "store", "init", "--db-url", server.url(foreign), "--artifacts", str(share))
        line = _one_line(code, err)
        assert "not a Modelyard store" in line and "--db-url" in line and "parts" in line
        with server.connect(foreign) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert tables == ["parts"]
    finally:
        server.drop_database(foreign)

    # a login that may not create tables: refused before anything is made
    empty = server.create_database()
    login = f"nocreate_{empty}"
    try:
        with server.connect(empty) as conn:
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            conn.execute(f'CREATE ROLE "{login}" LOGIN')
        code, out, err = cli(capsys, "store", "init", "--db-url", server.url(empty, user=login), "--artifacts", str(share))
        line = _one_line(code, err)
        assert f"The login '{login}' given in --db-url may not create tables" in line, line
        assert not share.exists()
    finally:
        server.drop_database(empty)

    # a SQLite URL is not a team store
    code, out, err = cli(capsys, "store", "init", "--db-url", f"sqlite:///{tmp_path / 'x.db'}",
                         "--artifacts", str(share))
    assert "--artifacts" in _one_line(code, err)


def test_an_artifacts_folder_that_cannot_take_files_is_named(
        capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, out, err = cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(a_file))
    assert "--artifacts" in _one_line(code, err) and "is a file" in err
    sqlite_store = tmp_path / "sqlite-store"
    assert cli(capsys, "store", "init", str(sqlite_store))[0] == 0  # env's URL: make this one SQLite
    (sqlite_store / "modelyard.db").touch()
    code, out, err = cli(capsys, "store", "init", "--db-url", db_url, "--artifacts", str(sqlite_store))
    assert "SQLite store" in _one_line(code, err)
    locked = tmp_path / "locked"
    locked.mkdir()
    make_read_only(locked)
    try:
        proc = run_without_write_permission(["-m", "modelyard", "store", "init", "--db-url", db_url,
                                             "--artifacts", str(locked / "modelyard")])
    finally:
        make_writable(locked)
    line = _one_line(proc.returncode, proc.stderr)
    assert "Cannot write in" in line and "--artifacts" in line, proc.stderr
    with Store.open(tmp_path / "probe", db_url=db_url, create=True) as store:  # the database stayed empty
        assert ARTIFACTS_DIR_KEY not in store.meta()


def test_usage_errors(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str,
                      tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_STORE")
    code, out, err = cli(capsys, "store", "init", "--db-url", db_url)
    assert code == 2 and "--artifacts DIR" in err
    monkeypatch.delenv("MODELYARD_DB_URL")
    code, out, err = cli(capsys, "store", "init", "--artifacts", str(tmp_path / "a"))
    assert code == 2 and "--db-url" in err
    code, out, err = cli(capsys, "store", "init", str(tmp_path / "b"), "--db-url", db_url,
                         "--artifacts", str(tmp_path / "a"))
    assert code == 2 and "differ" in err
    assert not json.dumps(out).count("Traceback")


def test_a_remembered_password_goes_to_pgpass_readable_only_by_its_owner(tmp_path: Path) -> None:
    from modelyard.core.store.teamstore import write_pgpass

    pgpass = tmp_path / ".pgpass"
    pgpass.write_text("other.host:5432:db:ana:keep\n")
    write_pgpass("db.example", 5432, "modelyard", "ben", "old", path=pgpass)
    write_pgpass("db.example", 5432, "modelyard", "ben", "new:pw\\x", path=pgpass)  # replaces ben's line
    assert pgpass.read_text().splitlines() == ["other.host:5432:db:ana:keep",
                                               "db.example:5432:modelyard:ben:new\\:pw\\\\x"]
    assert pgpass.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".pgpass"]  # no temp file left
