"""Watch folders (``modelyard.core.monitoring.watch``): files that appear in a model's folder are checked for
drift once (not twice), files still being written or temporary are left alone, and the folder
setting is audited."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from factories import churn_frame, drifted_batch, write_batch
from factories import train_churn_model as train_model
from modelyard.core.common.errors import ModelyardError
from modelyard.core.monitoring import drift, watch
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select


def later(seconds: float = 10.0) -> float:
    """A moment when files written now have settled (``now`` for pending_files and process_pending)."""
    return time.time() + seconds


def age(path: Path, seconds: float = 3600.0) -> Path:
    """Give a file an old modification time (as ``cp -p`` or an unzipped archive would)."""
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


@pytest.fixture
def watched(store: Store, tmp_path: Path) -> Path:
    train_model(store)
    folder = tmp_path / "drops"
    folder.mkdir()
    watch.set_watch_folder(store, "churn", folder, comment="nightly export")
    return folder


def test_a_file_written_into_the_folder_is_checked_once(store: Store, watched: Path) -> None:
    assert watch.pending_files(store, "churn", now=later()) == []
    path = write_batch(watched, drifted_batch(), "march.csv")
    assert watch.pending_files(store, "churn", now=later()) == [path]

    done = watch.process_pending(store, now=later())  # every watched model
    assert len(done) == 1
    row = done[0]
    assert row["model"] == "churn" and row["path"] == str(path) and row["status"] == "succeeded"
    assert row["verdict"] == "drift" and row["notification"]["title"] == "Drift in churn"
    assert row["notification"]["message"] == "march.csv: 2 of 3 features drift (age, plan)."  # no internal id
    # the check is recorded, against the champion, with the file as its batch
    checks = drift.list_checks(store, "churn")
    assert [c["id"] for c in checks] == [row["check_id"]] and checks[0]["ref"] == "churn@v1"
    with store.session() as s:
        source = s.scalar(select(m.DatasetVersion.source_path).where(
            m.DatasetVersion.id == checks[0]["batch_dataset_version_id"]))
    assert source == str(path)

    # not twice
    assert watch.pending_files(store, "churn", now=later()) == []
    assert watch.process_pending(store, "churn", now=later()) == []
    assert len(drift.list_checks(store, "churn")) == 1

    # the same content copied in under another name, keeping its old modification time, is checked
    # too (the import reuses the stored version), and then left alone as well
    archived = age(Path(shutil.copy(path, watched.parent / "archived.csv")))
    copy = Path(shutil.copy2(archived, watched / "march-again.csv"))
    assert watch.pending_files(store, "churn", now=later()) == [copy]
    assert [r["status"] for r in watch.process_pending(store, "churn", now=later())] == ["succeeded"]
    assert watch.pending_files(store, "churn", now=later()) == []
    assert len(drift.list_checks(store, "churn")) == 2

    # a file written again is new data, even with an old modification time: checked again
    write_batch(watched, churn_frame(200, seed=5), "march.csv")
    age(path)
    assert watch.pending_files(store, "churn", now=later()) == [path]


def test_files_being_written_temporary_or_of_other_kinds_are_left_alone(store: Store, watched: Path) -> None:
    partial = watched / "april.csv"
    partial.write_text("age,plan,visits,churned\n41.0,basic,2,no\n38.5,pr")  # the copy is still running
    now = time.time()
    (watched / "april.csv.part").write_text("age\n1\n")
    (watched / ".~lock.april.csv#").write_text("x")
    (watched / ".hidden.csv").write_text("age\n1\n")
    (watched / "notes.docx").write_text("not data")
    (watched / "empty.csv").write_text("")
    (watched / "sub").mkdir()
    write_batch(watched / "sub", churn_frame(50), "nested.csv")
    assert watch.pending_files(store, "churn", now=now) == []  # changed just now: still being written
    # once it has not changed for a while it is settled and picked up (only it)
    assert watch.pending_files(store, "churn", now=now + watch.SETTLE_S + 1) == [partial]
    assert watch.is_candidate(Path("x.parquet")) and not watch.is_candidate(Path("x.csv~"))
    assert not watch.is_candidate(Path("~$book.xlsx")) and not watch.is_candidate(Path("x.tmp"))


def test_a_failed_check_waits_for_the_file_to_change_and_a_cancelled_one_is_retried(
        store: Store, watched: Path) -> None:
    bad = watched / "broken.parquet"
    bad.write_bytes(b"this is not parquet")
    rows = watch.process_pending(store, "churn", now=later())
    assert [r["status"] for r in rows] == ["failed"] and rows[0]["error"]
    assert rows[0]["notification"] is None
    assert watch.pending_files(store, "churn", now=later()) == []  # not retried over and over
    # a cancelled (or interrupted) attempt does not count
    with store.write() as s:
        s.execute(m.Job.__table__.update().where(m.Job.id == rows[0]["job_id"]).values(status="cancelled"))
    assert watch.pending_files(store, "churn", now=later()) == [bad]


def test_the_watch_folder_setting_is_validated_audited_and_survives_drift_settings(
        store: Store, tmp_path: Path) -> None:
    train_model(store, champion=False)
    with pytest.raises(ModelyardError, match="no folder"):
        watch.set_watch_folder(store, "churn", tmp_path / "missing")
    a_file = tmp_path / "f.csv"
    a_file.write_text("x\n1\n")
    with pytest.raises(ModelyardError, match="is a file, not a folder"):
        watch.set_watch_folder(store, "churn", a_file)
    with pytest.raises(ModelyardError, match="no registered model"):
        watch.set_watch_folder(store, "nope", tmp_path)
    assert watch.watched_models(store) == []

    folder = tmp_path / "in"
    folder.mkdir()
    assert watch.set_watch_folder(store, "churn", folder, comment="drops") == folder.resolve()
    assert watch.watched_models(store) == [("churn", folder.resolve())]
    assert watch.checked_ref(store, "churn") == "churn"  # no champion: the latest version
    drift.set_config(store, "churn", {"critical": ["age"]}, comment="age matters")
    assert watch.get_watch_folder(store, "churn") == folder.resolve()
    assert watch.set_watch_folder(store, "churn", None, comment="no more drops") is None
    assert watch.watched_models(store) == [] and watch.pending_files(store, "churn") == []
    assert drift.get_config(store, "churn")["critical"] == ["age"]

    events = [e for e in registry.timeline(store, "churn") if e["action"] == "set_watch_folder"]
    assert [(e["from_value"], e["to_value"], e["comment"]) for e in reversed(events)] == [
        (None, str(folder.resolve()), "drops"), (str(folder.resolve()), None, "no more drops")]


def test_cli_watch_sets_lists_and_processes_once(store: Store, store_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import cli, cli_json

    train_model(store)
    folder = tmp_path / "drops"
    folder.mkdir()
    at = ("--store", str(store_dir))
    code, out, err = cli(capsys, "monitor", "watch", "churn", "--folder", str(folder), "--comment", "cron", *at)
    assert code == 0 and f"churn watches {folder.resolve()}" in out
    write_batch(folder, drifted_batch(), "may.csv")
    time.sleep(0.05)
    at = (*at, "--settle", "0")
    code, out, _ = cli_json(capsys, "monitor", "watch", *at)
    assert out == [{"model": "churn", "folder": str(folder.resolve()), "pending": 1}]
    code, out, _ = cli_json(capsys, "monitor", "watch", "churn", "--once", *at)
    assert code == 3 and out["exit_code"] == 3  # a check found drift
    assert [(r["path"], r["verdict"]) for r in out["checked"]] == [(str(folder.resolve() / "may.csv"), "drift")]
    code, out, _ = cli(capsys, "monitor", "watch", "--once", *at)
    assert code == 0 and "No new files to check." in out
    code, out, err = cli(capsys, "monitor", "watch", "--folder", str(folder), *at)
    assert code == 2 and "Name the model" in err
    code, out, _ = cli(capsys, "monitor", "watch", "churn", "--clear", *at)
    assert code == 0 and "watches no folder" in out and watch.watched_models(store) == []


def test_scan_folders_reports_each_watched_model_and_never_raises_for_one(store: Store, watched: Path) -> None:
    path = write_batch(watched, drifted_batch(), "march.csv")
    scans = list(watch.scan_folders(store, now=later()))
    assert [(s.model, s.folder, s.pending, s.error) for s in scans] == [("churn", watched.resolve(), [path], None)]
    shutil.rmtree(watched)
    (scan,) = watch.scan_folders(store, "churn", now=later())
    assert scan.model == "churn" and scan.pending == [] and "does not exist any more" in scan.error.message
    (unknown,) = watch.scan_folders(store, ["nope"])
    assert unknown.folder is None and "no registered model" in unknown.error.message
    with pytest.raises(ModelyardError, match="does not exist any more"):
        watch.process_pending(store, now=later())
