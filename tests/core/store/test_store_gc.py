"""`modelyard store gc`: artifact files no row references (a kill between the rename and the
commit) and stale temp files are removed, listed first with --dry-run, and never a file a
concurrent write is recording."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.jobs import housekeeping as maintenance
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select
from store_helpers import ROOT

KEEP = b"a model a run still uses"
ORPHAN = b"bytes whose row never committed" * 100


def _killed_between_rename_and_commit(root: Path, data: bytes) -> str:
    """A process that puts an artifact in a write transaction and dies before committing."""
    code = textwrap.dedent(f"""
        import os
        from modelyard.core.store import Store
        store = Store.open({str(root)!r}, create=False)
        with store.write() as s:
            ref = store.artifacts.put_bytes({data!r}, session=s)
            print(ref.sha256, flush=True)
            os._exit(9)  # killed: the file is in place, its row never commits
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 9, proc.stderr
    return proc.stdout.strip()


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _store_with_an_orphan(tmp_path: Path) -> tuple[Path, str, str]:
    root = tmp_path / "store"
    with Store.open(root) as store, store.write() as s:
        keep = store.artifacts.put_bytes(KEEP, session=s).sha256
    orphan = _killed_between_rename_and_commit(root, ORPHAN)
    return root, keep, orphan


def test_gc_removes_the_orphan_of_a_killed_write_after_a_dry_run(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    root, keep, orphan = _store_with_an_orphan(tmp_path)
    with Store.open(root) as store:
        orphan_path = store.artifacts.path(orphan)
        keep_path = store.artifacts.path(keep)
        other_host = store.artifacts.tmp.parent / "other-machine"
    assert orphan_path.is_file()
    other_host.mkdir()
    stale_temp = other_host / "4242-abandoned.part"
    stale_temp.write_bytes(b"t" * 300)
    _age(stale_temp, 3 * 24 * 3600)
    busy_temp = other_host / "4243-uploading.part"  # another machine is writing it right now
    busy_temp.write_bytes(b"u" * 10)

    code, out, err = cli(capsys, "--store", str(root), "store", "verify")
    assert code == 0, err
    assert "1 unreferenced file(s) can be removed with 'modelyard store gc'" in out

    # The orphan is seconds old: by default it might still be a write about to commit.
    code, out, err = cli(capsys, "--store", str(root), "store", "gc", "--dry-run")
    assert code == 0, err
    assert str(orphan_path) not in out and "younger than 60 minutes" in out

    code, data, _ = cli_json(capsys, "--store", str(root), "store", "gc", "--dry-run", "--grace", "0")
    assert code == 0 and data["status"] == "succeeded"
    listed = {f["path"]: f for f in data["result"]["files"]}
    assert set(listed) == {str(orphan_path), str(stale_temp)}
    assert listed[str(orphan_path)] == {"path": str(orphan_path), "kind": "artifact", "bytes": len(ORPHAN)}
    assert listed[str(stale_temp)]["kind"] == "temp" and listed[str(stale_temp)]["bytes"] == 300
    assert data["result"]["dry_run"] is True and data["result"]["bytes"] == len(ORPHAN) + 300
    assert orphan_path.is_file() and stale_temp.is_file()  # a dry run removes nothing

    code, out, _ = cli(capsys, "--store", str(root), "store", "gc", "--dry-run", "--grace", "0")
    assert str(orphan_path) in out and "3.1 kB" in out and "Would remove 2 file(s)" in out

    code, out, err = cli(capsys, "--store", str(root), "store", "gc", "--grace", "0")
    assert code == 0, err
    assert "Removed 2 file(s)" in out
    assert not orphan_path.exists() and not stale_temp.exists()
    assert keep_path.read_bytes() == KEEP and busy_temp.is_file()

    code, data, _ = cli_json(capsys, "--store", str(root), "store", "verify")
    assert code == 0 and data["result"]["unreferenced"] == 0 and data["result"]["checked"] == 1


def test_gc_grace_must_be_a_number_of_minutes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "--store", str(tmp_path), "store", "gc", "--grace", "-1")
    assert code == 2 and "--grace" in err and "Traceback" not in err


def test_gc_never_removes_a_file_a_concurrent_put_is_recording(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: gc decided the old orphan is unreferenced; meanwhile a put of the same bytes finds
    the file already stored and records a row for it. The file must survive (or be put back)."""
    root = tmp_path / "store"
    store = Store.open(root)
    try:
        with store.write() as s:
            sha = store.artifacts.put_bytes(ORPHAN, session=s).sha256
            s.delete(s.get(m.Artifact, sha))  # the row goes, the file stays: an orphan
        path = store.artifacts.path(sha)
        assert path.is_file()
        _age(path, 7200)

        gc_holds_lock = threading.Event()
        real_mtime = maintenance.newest_mtime

        def slow_mtime(p: Path) -> float:
            if store.in_write():  # gc re-checks under the write lock: let the put run into it
                gc_holds_lock.set()
                time.sleep(0.5)
            return real_mtime(p)

        monkeypatch.setattr(maintenance, "newest_mtime", slow_mtime)
        errors: list[BaseException] = []

        def put_same_bytes() -> None:
            try:
                assert gc_holds_lock.wait(10)
                with store.write() as s:
                    store.artifacts.put_bytes(ORPHAN, session=s)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        writer = threading.Thread(target=put_same_bytes)
        writer.start()
        ctx = types.SimpleNamespace(store=store, log=lambda *_: None, progress=lambda *_a, **_k: None,
                                    check_cancelled=lambda: None)
        result = maintenance.collect_garbage(ctx, dry_run=False, grace_seconds=60)
        writer.join(30)
        assert not errors, errors
        assert result["count"] == 1  # gc did remove the orphan it locked first ...
        with store.session() as s:
            assert s.scalars(select(m.Artifact.sha256)).all() == [sha]
        assert path.read_bytes() == ORPHAN  # ... and the put that followed stored its bytes again
    finally:
        store.close()


def test_a_put_that_finds_its_bytes_stored_makes_the_file_young_again(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as store:
        ref = store.artifacts.put_bytes(ORPHAN)
        path = store.artifacts.path(ref.sha256)
        _age(path, 7200)
        found, young = maintenance.find_garbage(store, grace_seconds=3600)
        assert [f["path"] for f in found] == [str(path)] and young == 0
        store.artifacts.put_bytes(ORPHAN)  # without a session: its row may come in a later transaction
        found, young = maintenance.find_garbage(store, grace_seconds=3600)
        assert found == [] and young == 1
