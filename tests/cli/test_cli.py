"""The ``modelyard`` command line: global options, store and jobs commands, errors, Ctrl+C."""

from __future__ import annotations

import _thread
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, cli_json, run_modelyard, subprocess_env
from modelyard._version import __version__
from modelyard.cli import _common
from modelyard.cli.main import GUI_OPTIONS, wants_gui

# --------------------------------------------------------------------------- entry point


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"modelyard {__version__}"


def test_version_in_a_real_process_is_fast_and_light(tmp_path: Path) -> None:
    start = time.monotonic()
    proc = run_modelyard("--version")
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"modelyard {__version__}"
    assert elapsed < 3.0  # well under 0.5 s on a developer machine; generous for loaded CI


def test_importing_the_cli_pulls_in_no_heavy_or_gui_modules() -> None:
    code = (
        "import sys, modelyard.cli.main\n"
        "heavy = ('sqlalchemy', 'alembic', 'pandas', 'sklearn', 'PySide6', 'pyqtgraph', 'modelyard.ui',"
        " 'modelyard.core.store', 'modelyard.core.jobs.runner')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_store_commands_in_a_real_process(tmp_path: Path) -> None:
    root = tmp_path / "s"
    proc = run_modelyard("store", "init", "--store", str(root))
    assert proc.returncode == 0, proc.stderr
    assert str(root) in proc.stdout
    proc = run_modelyard("--store", str(root), "--json", "store", "info")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["location"] == str(root.resolve())
    proc = run_modelyard("jobs", "nonsense")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], True),
        (["--store", "/x"], True),
        (["--store=/x"], True),
        (["--db-url", "sqlite:///x.db", "--store", "/x"], True),
        (["--db-url=postgresql://h/db"], True),
        (["store", "info"], False),
        (["--store", "/x", "jobs", "list"], False),
        (["--version"], False),
        (["-h"], False),
        (["--help"], False),
        (["--store", "/x", "--help"], False),
        (["--store"], False),  # missing value: the CLI reports the usage error
        (["--json"], False),  # a CLI-only option: the CLI says a command is required
    ],
)
def test_wants_gui(args: list[str], expected: bool) -> None:
    assert wants_gui(args) is expected


def test_gui_options() -> None:
    assert set(GUI_OPTIONS) == {"--store", "--db-url"}


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--json"],
        ["frobnicate"],
        ["store"],
        ["store", "explode"],
        ["jobs", "list", "--limit", "0"],
        ["jobs", "list", "--status", "sleeping"],
        ["jobs", "show", "abc"],
        ["jobs", "show"],
        ["store", "info", "--store"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert "usage: modelyard" in err
    assert out == ""


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for word in ("store", "jobs", "exit codes", "usage error", "gate"):
        assert word in out


# --------------------------------------------------------------------------- store


@pytest.mark.sqlite_only("asserts the SQLite backend and its file")
def test_store_info_json(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    from modelyard.core.store import HEAD_REVISION

    code, info, _ = cli_json(capsys, "--store", str(store_dir), "store", "info")
    assert code == 0
    assert info["schema_revision"] == HEAD_REVISION
    assert info["location"] == str(store_dir.resolve())
    assert info["backend"] == "sqlite"
    assert info["counts"]["jobs"] == 0
    assert info["counts"]["artifacts"] == 0
    assert {"datasets", "runs", "model_versions"} <= set(info["counts"])
    assert info["store_id"]


def test_global_options_after_the_command(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    code, out, _ = cli(capsys, "store", "info", "--store", str(store_dir), "--json")
    assert code == 0
    assert json.loads(out)["location"] == str(store_dir.resolve())


def test_store_env_variable_is_used(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_STORE", str(store_dir))
    code, info, _ = cli_json(capsys, "store", "info")
    assert code == 0
    assert info["location"] == str(store_dir.resolve())


def test_store_info_for_people(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    from modelyard.core.store import HEAD_REVISION

    code, out, _ = cli(capsys, "--store", str(store_dir), "store", "info")
    assert code == 0
    lines = out.splitlines()
    assert f"location: {store_dir.resolve()}" in " ".join(out.split())
    revision_line = next(ln for ln in lines if ln.startswith("schema revision:"))
    assert revision_line.split()[-1] == HEAD_REVISION
    assert any(ln.startswith("  jobs:") and ln.split()[-1] == "0" for ln in lines)
    # values line up in one column
    value_columns = {len(ln) - len(ln.split(":", 1)[1].lstrip()) for ln in lines if ln.split(":", 1)[1].strip()}
    assert len(value_columns) == 1


@pytest.mark.sqlite_only("'Created' a new database file")
def test_store_init_reports_where_and_is_idempotent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "new"
    code, out, _ = cli(capsys, "store", "init", str(root))
    assert code == 0
    assert "Created" in out and str(root) in out
    assert (root / "modelyard.db").is_file()
    code, data, _ = cli_json(capsys, "store", "init", "--store", str(root))
    assert code == 0
    assert data["created"] is False
    assert data["location"] == str(root.resolve())


@pytest.mark.sqlite_only("with a server database the folder holds only artifacts")
def test_store_init_refuses_a_folder_with_other_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"not a store")
    code, out, err = cli(capsys, "store", "init", str(folder))
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert str(folder) in err
    assert "hint: " in err
    assert "Traceback" not in err
    assert not (folder / "modelyard.db").exists()


@pytest.mark.sqlite_only("a store named by its folder; with MODELYARD_DB_URL the database decides")
def test_a_missing_store_is_an_error_not_a_new_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    typo = tmp_path / "stroe"
    code, _, err = cli(capsys, "--store", str(typo), "jobs", "list")
    assert code == 1
    assert str(typo) in err
    assert "modelyard store init" in err
    assert not typo.exists()


def test_verify_and_compact_record_succeeded_jobs(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    code, out, err = cli(capsys, "--store", str(store_dir), "store", "verify")
    assert code == 0, err
    assert "intact" in out
    assert "[100%] Done" in err  # stderr is not a terminal: plain progress lines
    code, data, _ = cli_json(capsys, "--store", str(store_dir), "store", "compact")
    assert code == 0
    assert data["status"] == "succeeded"
    assert set(data["result"]) == {"bytes_before", "bytes_after"}

    code, jobs, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "list")
    assert code == 0
    assert [(j["kind"], j["status"]) for j in jobs] == [("store.compact", "succeeded"), ("store.verify", "succeeded")]
    assert jobs[1]["progress"] == 1.0
    assert jobs[1]["started_at"] and jobs[1]["duration_s"] is not None

    code, only, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "list", "--status", "failed")
    assert code == 0 and only == []
    code, one, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "list", "--limit", "1")
    assert [j["kind"] for j in one] == ["store.compact"]

    code, out, _ = cli(capsys, "--store", str(store_dir), "jobs", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "STATUS", "KIND", "TITLE", "PROGRESS", "STARTED", "DURATION"]
    assert len(rows) == 2
    assert "store.verify" in rows[1] and "succeeded" in rows[1] and "100%" in rows[1]
    assert header.index("STATUS") == rows[0].index("succeeded") == rows[1].index("succeeded")


def test_verbose_forwards_the_job_log(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    code, _, err = cli(capsys, "--store", str(store_dir), "store", "verify", "-v")
    assert code == 0
    assert "Checking 0 artifacts" in err
    code, _, err = cli(capsys, "--store", str(store_dir), "store", "verify")
    assert "Checking 0 artifacts" not in err


def _corrupt_one_artifact(root: Path) -> str:
    from modelyard.core.store import Store

    with Store.open(root) as store:
        with store.write() as s:
            ref = store.artifacts.put_bytes(b"the original model weights", session=s)
        with store.write() as s:
            store.artifacts.put_bytes(b"an intact neighbour", session=s)
        path = store.artifacts.path(ref.sha256)
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    return ref.sha256


def test_verify_reports_a_damaged_artifact(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    sha = _corrupt_one_artifact(store_dir)
    code, out, err = cli(capsys, "--store", str(store_dir), "store", "verify")
    assert code == 1
    assert out == ""
    assert "error: 1 damaged" in err
    assert sha[:12] in err
    assert "hint: Restore the store folder" in err
    assert "Traceback" not in err

    code, jobs, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "list")
    job_id = jobs[0]["id"]
    assert jobs[0]["status"] == "failed"

    code, job, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "show", str(job_id))
    assert code == 0
    assert job["id"] == job_id
    assert job["kind"] == "store.verify"
    assert job["status"] == "failed"
    assert "1 damaged" in job["error"] and sha[:12] in job["error"]
    assert f"corrupt: {store_dir.resolve() / 'artifacts' / sha[:2] / sha[2:]}" in job["log"]

    code, out, _ = cli(capsys, "--store", str(store_dir), "jobs", "show", str(job_id))
    assert code == 0
    assert "status:" in out and "failed" in out
    assert "error:\n  1 damaged" in out
    assert "log:\n  Checking the database" in out  # the database first, then its artifacts
    assert "\n  Checking 2 artifacts" in out


def test_verify_damage_with_json(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    _corrupt_one_artifact(store_dir)
    code, data, err = cli_json(capsys, "--store", str(store_dir), "store", "verify")
    assert code == 1
    assert set(data) == {"error"}
    assert data["error"]["message"].startswith("1 damaged")
    assert data["error"]["hint"].startswith("Restore the store folder")
    assert data["error"]["exit_code"] == 1
    assert isinstance(data["error"]["job_id"], int)
    assert "error: 1 damaged" in err


# --------------------------------------------------------------------------- errors


def test_json_error_shape(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    code, out, err = cli(capsys, "--json", "--store", str(store_dir), "jobs", "show", "999")
    assert code == 1
    assert json.loads(out) == {"error": {"message": "There is no job 999 in this store.",
                                         "hint": "'modelyard jobs list' shows the jobs.", "exit_code": 1}}
    assert err == "error: There is no job 999 in this store.\nhint: 'modelyard jobs list' shows the jobs.\n"


def test_error_exit_code_comes_from_the_error(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.core.common.errors import GateFailed
    from modelyard.core.jobs import runner as jobs

    def gate(*_a: Any, **_k: Any) -> Any:
        raise GateFailed("accuracy 0.71 is below the gate of 0.80.")

    monkeypatch.setattr(jobs, "list_jobs", gate)
    code, out, err = cli(capsys, "--store", str(store_dir), "jobs", "list", "--json")
    assert code == 3
    assert json.loads(out)["error"] == {"message": "accuracy 0.71 is below the gate of 0.80.", "hint": None,
                                        "exit_code": 3}
    assert err == "error: accuracy 0.71 is below the gate of 0.80.\n"


def test_unexpected_errors_show_a_traceback(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.core.jobs import runner as jobs

    def broken(*_a: Any, **_k: Any) -> Any:
        raise ValueError("something is off")

    monkeypatch.setattr(jobs, "list_jobs", broken)
    code, out, err = cli(capsys, "--store", str(store_dir), "jobs", "list", bug_expected=True)
    assert code == 1
    assert out == ""
    assert err.startswith("error: unexpected ValueError: something is off\n")
    assert "Traceback (most recent call last)" in err and "in broken" in err


# --------------------------------------------------------------------------- foreground jobs


def _slow_spec(seconds: float = 30.0) -> Any:
    import jobfns  # tests/ is on sys.path (conftest.py)
    from modelyard.core.jobs.runner import JobSpec

    return JobSpec(func=f"{jobfns.__name__}:slow", title="A slow test job", params={"seconds": seconds},
                   kind="test.slow")


def test_ctrl_c_cancels_the_foreground_job(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.core.jobs import housekeeping as maintenance

    monkeypatch.setattr(maintenance, "verify_spec", lambda: _slow_spec(30.0))
    # Press Ctrl+C once the job is running: the first progress report interrupts the main thread.
    real_progress = _common.TextProgress.progress
    pressed: list[float] = []

    def progress_then_ctrl_c(self: _common.TextProgress, fraction: float | None, message: str) -> None:
        real_progress(self, fraction, message)
        if not pressed:
            pressed.append(time.monotonic())
            _thread.interrupt_main()

    monkeypatch.setattr(_common.TextProgress, "progress", progress_then_ctrl_c)
    start = time.monotonic()
    code, out, err = cli(capsys, "--store", str(store_dir), "store", "verify")
    assert time.monotonic() - start < 10
    assert pressed
    assert code == 1
    assert out == ""
    assert err.rstrip().endswith("error: cancelled")
    assert "Cancelling" in err

    monkeypatch.setattr(_common.TextProgress, "progress", real_progress)
    code, jobs, _ = cli_json(capsys, "--store", str(store_dir), "jobs", "list")
    assert [(j["kind"], j["status"]) for j in jobs] == [("test.slow", "cancelled")]
    assert jobs[0]["progress"] < 0.5


def test_ctrl_c_from_a_timer_thread_with_run_foreground(store_dir: Path) -> None:
    import threading

    from modelyard.core.jobs.runner import get_job
    from modelyard.core.store import Store

    stream = io.StringIO()
    timer = threading.Timer(0.4, _thread.interrupt_main)
    with Store.open(store_dir) as store:
        timer.start()
        try:
            outcome = _common.run_foreground(store, _slow_spec(30.0), False, stream=stream)
        finally:
            timer.cancel()
            timer.join()
        record, _ = get_job(store, outcome.job_id)
    assert outcome.status == "cancelled"
    assert record.status == "cancelled"
    with pytest.raises(_common.JobFailedError, match="^cancelled$"):
        _common.raise_for_outcome(outcome)


def test_progress_bar_on_a_terminal_is_throttled() -> None:
    stream = io.StringIO()
    bar = _common.TextProgress(stream, tty=True)
    for i in range(2000):
        bar.progress(i / 2000, "working")
    bar.progress(0.42, "almost there")
    time.sleep(0.11)
    bar.progress(0.42, "almost there")
    bar.finish()
    text = stream.getvalue()
    assert text.count("\r[") <= 4  # first draw, the one after the pause, the final one
    assert text.endswith("[##########..............]  42%  almost there\n")


def test_plain_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = _common.TextProgress(stream, tty=False)
    for i in range(1001):
        bar.progress(i / 1000, "working")
    bar.progress(1.0, "Done")
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[  0%] working"
    assert lines[-1] == "[100%] Done"
    assert len(lines) == 12  # each 10 % step once, plus the new message


# --------------------------------------------------------------------------- damaged, foreign, read-only stores


def _one_line_error(code: int, out: str, err: str) -> str:
    """An error the CLI reports as ``error: ...`` plus at most a hint line, never a traceback."""
    assert code == 1, (out, err)
    assert "Traceback" not in err and "unexpected" not in err
    lines = [line for line in err.splitlines() if not line.startswith("[")]  # progress lines of a job
    assert lines[0].startswith("error: ") and len(lines) <= 2, err
    assert all(line.startswith("hint: ") for line in lines[1:]), err
    return lines[0]


@pytest.mark.sqlite_only("an SQLite file")
def test_a_zero_byte_database_is_refused_by_every_command(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    db = store_dir / "modelyard.db"
    db.write_bytes(b"")
    for command in (["store", "info"], ["store", "verify"], ["store", "init", str(store_dir)], ["run", "list"]):
        code, out, err = cli(capsys, "--store", str(store_dir), *command)
        line = _one_line_error(code, out, err)
        assert str(db) in line and "empty" in line, command
        assert db.read_bytes() == b""


def test_db_url_at_another_programs_database_changes_nothing(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "inventory.sqlite"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE parts (sku TEXT)")
    raw.close()
    before = other.read_bytes()
    for command in (["store", "info"], ["store", "init", str(tmp_path / "s")]):
        code, out, err = cli(capsys, "--db-url", f"sqlite:///{other}", "--store", str(tmp_path / "s"), *command)
        line = _one_line_error(code, out, err)
        assert str(other) in line and "not a Modelyard store" in line
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.sqlite", "s"]


def test_a_mistyped_db_url_is_not_created_by_a_command(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelyard.core.common import paths

    monkeypatch.delenv("MODELYARD_STORE")  # the default store folder: created on first use ...
    monkeypatch.setattr(paths, "default_store_dir", lambda: tmp_path / "default-store")
    typo = tmp_path / "tema.db"
    code, out, err = cli(capsys, "--db-url", f"sqlite:///{typo}", "store", "info")
    assert str(typo) in _one_line_error(code, out, err)  # ... but not a database named by --db-url
    assert not typo.exists()
    code, out, err = cli(capsys, "--db-url", f"sqlite:///{typo}", "store", "init")
    assert code == 0, err
    assert typo.is_file()


@pytest.mark.parametrize("url, words", [("foo://x", "unknown kind of database"),
                                        ("postgresql+psycopg://ana@db.example/ml", "modelyard[postgres]")])
def test_bad_database_urls_are_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path, url: str, words: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    code, out, err = cli(capsys, "--db-url", url, "--store", str(tmp_path), "store", "info")
    _one_line_error(code, out, err)
    assert words in err


@pytest.mark.sqlite_only("damages the SQLite file")
def test_random_bytes_in_the_database_are_reported_by_verify_and_never_a_traceback(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from store_helpers import corrupt_middle, store_with_runs

    root = tmp_path / "store"
    store_with_runs(root)
    corrupt_middle(root / "modelyard.db")
    code, out, err = cli(capsys, "--store", str(root), "store", "verify")
    line = _one_line_error(code, out, err)
    assert "modelyard.db is damaged" in line
    for command in (["store", "info"], ["run", "list"], ["experiment", "list"], ["jobs", "list"], ["model", "list"]):
        code, out, err = cli(capsys, "--store", str(root), *command)
        if code != 0:
            assert "is damaged" in _one_line_error(code, out, err), command


@pytest.mark.sqlite_only("file permissions on the SQLite file (roles on a server: issue 15, Roles)")
def test_a_read_only_store_can_be_read_but_not_changed(tmp_path: Path) -> None:
    from store_helpers import (
        make_read_only,
        make_writable,
        run_without_write_permission,
        store_with_runs,
    )

    root = tmp_path / "store"
    store_with_runs(root, runs=1)
    make_read_only(root)
    try:
        def my(*args: str) -> subprocess.CompletedProcess[str]:
            return run_without_write_permission(["-m", "modelyard", "--store", str(root), *args])

        assert my("store", "init", str(root / "probe")).returncode == 1  # really no write permission
        for command in (["store", "info"], ["run", "list"], ["experiment", "list"], ["model", "list"],
                        ["jobs", "list"]):
            proc = my(*command)
            assert proc.returncode == 0, (command, proc.stderr)
        run_id = json.loads(my("run", "list", "--json").stdout)[0]["run_id"]
        for command in (["run", "delete", run_id], ["store", "gc"], ["store", "verify"]):
            proc = my(*command)
            line = _one_line_error(proc.returncode, proc.stdout, proc.stderr)
            assert "read-only" in line and str(root) in line, command
    finally:
        make_writable(root)


@pytest.mark.sqlite_only("damages the SQLite file")
def test_verify_names_the_damage_even_when_the_jobs_table_is_damaged(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    from modelyard.core.common.procs import hostname
    from modelyard.core.store import Store
    from modelyard.core.store import models as m
    from store_helpers import corrupt_table, store_with_runs

    root = tmp_path / "store"
    store_with_runs(root)
    with Store.open(root) as store, store.write() as s:  # a job its killed process left 'running'
        s.add(m.Job(kind="test", title="left running", status="running", host=hostname(), pid=2**22 + 17))
    corrupt_table(root / "modelyard.db", "jobs", "runs")  # verify can neither sweep nor record its job
    code, out, err = cli(capsys, "--store", str(root), "store", "verify")
    line = _one_line_error(code, out, err)
    assert "modelyard.db is damaged: SQLite's integrity check found" in line
