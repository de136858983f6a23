"""The store: creating, upgrading and refusing databases, concurrency, crash recovery, artifacts."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jobfns
import pytest
from modelyard.core.common.errors import StoreError, StoreVersionError
from modelyard.core.store import (
    DB_FILENAME,
    HEAD_REVISION,
    KNOWN_REVISIONS,
    Store,
    migrate,
)
from modelyard.core.store import models as m
from sqlalchemy import create_engine, func, select, text
from store_helpers import collect_reports

ROOT = Path(__file__).resolve().parents[3]


def child_env() -> dict[str, str]:
    """Environment for a plain ``python -c`` child that imports modelyard and tests/jobfns.py."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")])
    return env


def count(store: Store, model: type, *where: object) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --------------------------------------------------------------------------- creating and opening


@pytest.mark.sqlite_only("the database file and SQLite's pragmas")
def test_new_store_has_layout_head_revision_and_pragmas(store_dir: Path) -> None:
    with Store.open(store_dir) as store:
        assert (store_dir / DB_FILENAME).is_file()
        assert (store_dir / "artifacts").is_dir()
        assert (store_dir / "tmp").is_dir()
        assert store.current_revision() == HEAD_REVISION
        info = store.info()
        assert info["schema_revision"] == HEAD_REVISION
        assert info["store_id"] and len(info["store_id"]) == 32
        assert info["counts"]["jobs"] == 0

        for session_factory in (store.session, store.write):
            with session_factory() as s:
                assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert s.execute(text("PRAGMA busy_timeout")).scalar() > 0


def test_foreign_keys_are_enforced(store: Store) -> None:
    """foreign_keys=ON is not just reported: a run of a missing experiment is rejected."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.write() as s:
        s.add(m.Run(experiment_id=12345, name="orphan"))
    assert count(store, m.Run) == 0


@pytest.mark.parametrize("table", ["metrics", "params", "tags", "latest_metrics"])
def test_a_runs_points_params_tags_and_latest_values_need_their_run_and_go_with_it(store: Store, table: str) -> None:
    """Their run_id: a foreign key on SQLite, a statement trigger on PostgreSQL (one check per
    statement, not per row: migrations 0008 and 0011); both refuse a row of a missing run with
    the foreign key's error naming the run, and delete a deleted run's rows."""
    from sqlalchemy.exc import IntegrityError

    model = {"metrics": m.Metric, "params": m.Param, "tags": m.Tag, "latest_metrics": m.LatestMetric}[table]

    def row(run_id: int, key: str) -> dict[str, object]:
        numbers = table in ("metrics", "latest_metrics")
        return {"run_id": run_id, "key": key, **({"step": 0, "timestamp": 0, "value": 1.0} if numbers else {"value": "v"})}

    with store.write() as s:
        exp = m.Experiment(name="fk")
        s.add(exp)
        s.flush()
        runs = [m.Run(experiment_id=exp.id, name=f"r{i}") for i in range(2)]
        s.add_all(runs)
        s.flush()
        ids = [r.id for r in runs]
        s.execute(model.__table__.insert(), [row(rid, k) for rid in ids for k in ("a", "b")])
    with pytest.raises(IntegrityError, match=f"fk_{table}_run_id_runs|FOREIGN KEY") as caught, store.write() as s:
        s.execute(model.__table__.insert(), [row(ids[0], "c"), row(987654, "c")])
    assert store.is_sqlite or "Key (run_id)=(987654) is not present" in str(caught.value)
    with pytest.raises(IntegrityError, match=f"fk_{table}_run_id_runs|FOREIGN KEY"), store.write() as s:
        s.execute(model.__table__.update().where(model.__table__.c.run_id == ids[0]).values(run_id=987654))
    with store.write() as s:
        s.execute(m.Run.__table__.delete().where(m.Run.id == ids[0]))
    with store.session() as s:
        left = s.execute(select(model.__table__.c.run_id, func.count()).group_by(model.__table__.c.run_id)).all()
    assert left == [(ids[1], 2)]


def test_known_revisions_match_the_migration_scripts() -> None:
    # Store.open decides "up to date / too new" from KNOWN_REVISIONS without importing Alembic,
    # so the list must name exactly the scripts in migrations/versions, in order.
    assert list(KNOWN_REVISIONS) == migrate.script_revisions()
    assert HEAD_REVISION == KNOWN_REVISIONS[-1]


def _migrated_engine(url: str):
    """A database built the way existing stores get their schema: by replaying every migration."""
    engine = create_engine(url)
    migrate.upgrade(engine, "head")
    return engine


def test_models_and_migrations_agree(new_database) -> None:
    """A database built by the migrations has exactly the tables, columns and indexes of models.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = _migrated_engine(new_database())
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), m.Base.metadata)
            dialect = conn.dialect.name
    finally:
        engine.dispose()
    if dialect == "postgresql":  # the one known difference: a trigger checks these (models.METRICS_RUN_CHECK_PG_DDL)
        diffs = [d for d in diffs if not (d[0] in ("add_fk", "remove_fk") and (d[1].table.name, d[1].name) in
                                          m.PG_TRIGGER_CHECKED_FKS)]
    # No filtering is needed: Alembic compares a TypeDecorator by its impl, so UTCDateTime
    # (impl DateTime) matches the DATETIME columns the migrations create, and JSON, Double and
    # BigInteger-with-an-SQLite-variant reflect back as the same SQLite types. Anything reported
    # here is a genuine disagreement: write a migration (or fix the model).
    assert diffs == [], "models.py and the migrations disagree; write an Alembic revision:\n" + "\n".join(
        map(repr, diffs))


def _schema(engine) -> dict[str, dict[str, object]]:
    from sqlalchemy import inspect

    out: dict[str, dict[str, object]] = {}
    with engine.connect() as conn:
        insp = inspect(conn)
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in insp.get_columns(table)],
                "pk": insp.get_pk_constraint(table),
                "fks": sorted(repr(sorted(fk.items())) for fk in insp.get_foreign_keys(table)),
                "indexes": sorted(repr(sorted(ix.items())) for ix in insp.get_indexes(table)),
                "uniques": sorted(repr(sorted(uq.items())) for uq in insp.get_unique_constraints(table)),
            }
        out["alembic_version"]["rows"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        if conn.dialect.name == "postgresql":  # the schema's triggers (runs-table cache, metrics' run check; not the roles' guards)
            out["triggers"] = {"rows": sorted(conn.execute(text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'trg\\_%'")).all())}
    return out


def test_new_stores_get_exactly_the_schema_the_migrations_build(store: Store, new_database) -> None:
    """A new store is created from models.py directly (fast path); an upgraded one by migrations.

    Both must end up identical, down to constraint and index names, which later batch
    migrations refer to.
    """
    engine = _migrated_engine(new_database())
    try:
        migrated = _schema(engine)
    finally:
        engine.dispose()
    fresh = _schema(store.engine)
    assert sorted(fresh) == sorted(migrated)
    for table in migrated:
        assert fresh[table] == migrated[table], table


@pytest.mark.sqlite_only("the .bak copy before an upgrade is SQLite's (PostgreSQL: tests/core/store/test_postgres.py)")
def test_older_store_is_upgraded_keeping_data_and_a_backup(tmp_path: Path) -> None:
    root = tmp_path / "old-store"
    root.mkdir()
    db = root / DB_FILENAME
    # A store as Modelyard at revision 0001 left it (before store_meta existed).
    engine = create_engine(f"sqlite:///{db}")
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO datasets (name, description, created_at) "
                              "VALUES ('churn', 'from 0001', '2024-03-01 12:00:00')"))
    finally:
        engine.dispose()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]

    with Store.open(root) as store:
        assert store.current_revision() == HEAD_REVISION
        with store.session() as s:
            ds = s.scalars(select(m.Dataset)).one()
        assert (ds.name, ds.description) == ("churn", "from 0001")
        assert ds.created_at.tzinfo is not None and ds.created_at.year == 2024
        meta = store.meta()
        assert meta.get("store_id") and len(meta["store_id"]) == 32

    backup = root / f"{DB_FILENAME}.before-{HEAD_REVISION}.bak"
    assert backup.is_file()
    with sqlite3.connect(backup) as raw:  # a real copy of the store as it was before the upgrade
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert raw.execute("SELECT name FROM datasets").fetchall() == [("churn",)]

    with Store.open(root) as again:  # opening an up-to-date store does not upgrade or back up again
        assert again.current_revision() == HEAD_REVISION
    assert sorted(p.name for p in root.glob("*.bak")) == [backup.name]


@pytest.mark.sqlite_only("compares the database file's bytes")
def test_store_from_a_newer_modelyard_is_refused_and_left_untouched(store_dir: Path) -> None:
    Store.open(store_dir).close()
    db = store_dir / DB_FILENAME
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '9999'")
    raw.close()
    before = db.read_bytes()
    files_before = sorted(p.name for p in store_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))

    with pytest.raises(StoreVersionError) as err:
        Store.open(store_dir)
    message = str(err.value)
    assert "newer Modelyard" in message
    assert "9999" in message
    assert db.read_bytes() == before
    assert sorted(p.name for p in store_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == files_before


@pytest.mark.sqlite_only("with a server database the folder holds only artifacts (issue 15's team store set-up)")
def test_folder_with_other_files_is_not_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "my documents"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(StoreError) as err:
        Store.open(folder)
    assert str(folder) in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]


def test_missing_store_is_not_created_when_create_is_false(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path / "nowhere", create=False)
    assert "nowhere" in str(err.value)
    assert not (tmp_path / "nowhere" / DB_FILENAME).exists()


@pytest.mark.sqlite_only("a damaged database file")
def test_damaged_database_file_gives_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "damaged"
    root.mkdir()
    (root / DB_FILENAME).write_bytes(b"not a database, just noise " * 200)
    with pytest.raises(StoreError) as err:
        Store.open(root)
    assert str(root) in str(err.value)


def test_a_file_is_not_a_store_folder(tmp_path: Path) -> None:
    f = tmp_path / "store.txt"
    f.write_text("hi")
    with pytest.raises(StoreError, match="not a store folder"):
        Store.open(f)


# --------------------------------------------------------------------------- many processes


def _run_workers(target, args_for, n_procs: int, timeout: float) -> list[tuple]:
    mpctx = multiprocessing.get_context("spawn")
    queue = mpctx.Queue()
    procs = [mpctx.Process(target=target, args=(*args_for(w), queue), name=f"store-test-{w}") for w in range(n_procs)]
    for p in procs:
        p.start()
    reports = collect_reports(procs, queue, timeout)
    assert len(reports) == n_procs
    return reports


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(store_dir: Path) -> None:
    Store.open(store_dir).close()
    n_procs, n_iter = 8, 150
    t0 = time.monotonic()
    reports = _run_workers(jobfns.concurrent_writer, lambda w: (str(store_dir), w, n_iter), n_procs, timeout=90)
    elapsed = time.monotonic() - t0

    per_kind = n_iter // 5  # each worker rotates through 5 kinds of write
    for _, worker, counts in reports:
        assert counts["jobs"] == per_kind and counts["artifacts_shared"] == per_kind, (worker, counts)

    with Store.open(store_dir) as store:
        assert count(store, m.Job) == n_procs * per_kind
        assert count(store, m.Experiment) == n_procs * per_kind
        assert count(store, m.Run) == n_procs * per_kind
        assert count(store, m.Param) == n_procs * per_kind * 3
        assert count(store, m.Metric) == n_procs * per_kind * 4
        assert count(store, m.LatestMetric) == n_procs * per_kind
        assert count(store, m.AuditEvent) == n_procs * per_kind
        # own bytes per worker, plus the shared bytes stored once however many workers saved them
        assert count(store, m.Artifact) == n_procs * per_kind + per_kind
        for w in range(n_procs):
            assert count(store, m.Job, m.Job.title.like(f"w{w} job %")) == per_kind
            assert count(store, m.Experiment, m.Experiment.name.like(f"w{w}-exp-%")) == per_kind
            assert count(store, m.AuditEvent, m.AuditEvent.actor == f"worker{w}") == per_kind
        # every Artifact row has its file, with the right bytes, and there are no extra files
        with store.session() as s:
            shas = set(s.scalars(select(m.Artifact.sha256)))
        files = dict(store.artifacts.iter_files())
        assert set(files) == shas
        for sha in list(shas)[:50]:
            assert hashlib.sha256(files[sha].read_bytes()).hexdigest() == sha
        assert list(store.artifacts.tmp.iterdir()) == []
    assert elapsed < 60, f"8 concurrent writers took {elapsed:.1f} s"


@pytest.mark.slow
def test_processes_creating_the_same_new_store_at_once_agree(store_dir: Path) -> None:
    reports = _run_workers(jobfns.open_store_and_report, lambda w: (str(store_dir),), 4, timeout=60)
    ids = {r[2]["store_id"] for r in reports}
    assert len(ids) == 1, f"each process made its own store: {ids}"
    assert {r[2]["revision"] for r in reports} == {HEAD_REVISION}


# --------------------------------------------------------------------------- crash recovery

KILLABLE_JOB = textwrap.dedent("""
    import sys
    from modelyard.core.jobs.runner import JobSpec, run_job
    from modelyard.core.store import Store

    store = Store.open(sys.argv[1])
    run_job(store, JobSpec(func="jobfns:slow_with_run", title="Slow training", params={"seconds": 60}))
""")


@pytest.mark.slow
def test_job_and_run_of_a_killed_process_are_marked_interrupted(store_dir: Path) -> None:
    Store.open(store_dir).close()
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE_JOB, str(store_dir)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with Store.open(store_dir, sweep=False) as watcher:
            deadline = time.monotonic() + 30
            while True:
                with watcher.session() as s:
                    job = s.scalars(select(m.Job)).first()
                    run = s.scalars(select(m.Run)).first()
                if job is not None and job.status == "running" and run is not None:
                    break
                if proc.poll() is not None:
                    pytest.fail(f"the job process ended early ({proc.returncode}): {proc.stderr.read().decode()}")
                if time.monotonic() > deadline:
                    pytest.fail("the job never started running")
                time.sleep(0.05)
        assert job.pid == proc.pid and run.pid == proc.pid

        # While its process lives, opening the store elsewhere must not touch the job.
        with Store.open(store_dir) as other:
            with other.session() as s:
                assert s.get(m.Job, job.id).status == "running"
                assert s.get(m.Run, run.id).status == "running"

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL

        with Store.open(store_dir) as reopened:
            with reopened.session() as s:
                j = s.get(m.Job, job.id)
                r = s.get(m.Run, run.id)
        assert j.status == "interrupted"
        assert j.error and "ended before the job finished" in j.error
        assert j.ended_at is not None
        assert r.status == "interrupted"
        assert r.error and "ended before the run finished" in r.error
        assert r.end_time is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_job_running_on_a_thread_of_this_process_is_not_interrupted_by_reopening(store: Store) -> None:
    """The GUI may open the same store again (File > Open) while one of its own jobs runs."""
    import threading

    from modelyard.core.jobs.runner import JobSpec, run_job

    cancel = threading.Event()
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(run_job(
        store, JobSpec("jobfns:slow_with_run", "Train here", {"seconds": 30}), cancel_event=cancel)))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while count(store, m.Run) == 0:
            assert time.monotonic() < deadline, "the job never recorded its run"
            time.sleep(0.02)
        with Store.open(store.root) as again:
            assert again.sweep_interrupted() == 0
        with store.session() as s:
            assert s.scalars(select(m.Job.status)).all() == ["running"]
            assert s.scalars(select(m.Run.status)).all() == ["running"]
    finally:
        cancel.set()
        worker.join(10)
    assert outcome and outcome[0].status == "cancelled"


def test_rows_of_an_earlier_process_with_our_pid_are_interrupted(store: Store) -> None:
    """Containers restart with the same small pids: 'running' rows older than us are stale."""
    from modelyard.core.common.procs import hostname

    long_ago = m.utcnow() - dt.timedelta(days=1)
    with store.write() as s:
        exp = m.Experiment(name="before the restart")
        s.add(exp)
        s.flush()
        s.add(m.Job(kind="x", title="old", status="running", host=hostname(), pid=os.getpid(),
                    started_at=long_ago, heartbeat_at=long_ago))
        s.add(m.Run(experiment_id=exp.id, status="running", host=hostname(), pid=os.getpid(),
                    start_time=long_ago, heartbeat_at=long_ago))
    assert store.sweep_interrupted() == 2
    with store.session() as s:
        assert s.scalars(select(m.Job.status)).all() == ["interrupted"]
        assert s.scalars(select(m.Run.status)).all() == ["interrupted"]


def test_finished_jobs_are_left_alone_by_the_sweep(store: Store) -> None:
    with store.write() as s:
        s.add(m.Job(kind="x", title="done", status="succeeded", pid=1, host="elsewhere"))
    assert store.sweep_interrupted() == 0
    with store.session() as s:
        assert s.scalars(select(m.Job.status)).all() == ["succeeded"]


# --------------------------------------------------------------------------- artifacts


def test_artifacts_are_content_addressed_and_stored_once(store: Store, tmp_path: Path) -> None:
    data = b"model weights \x00\x01\x02" * 1000
    sha = hashlib.sha256(data).hexdigest()
    with store.write() as s:
        first = store.artifacts.put_bytes(data, session=s, media_type="application/octet-stream")
    assert first.sha256 == sha and first.size == len(data) and first.created
    path = store.root / "artifacts" / sha[:2] / sha[2:]
    assert store.artifacts.path(sha) == path
    assert path.read_bytes() == data

    with store.write() as s:
        again = store.artifacts.put_bytes(data, session=s)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    with store.write() as s:
        from_file = store.artifacts.put_file(src, session=s)
    assert (again.sha256, again.created) == (sha, False)
    assert (from_file.sha256, from_file.size, from_file.created) == (sha, len(data), False)

    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with store.write() as s:
        ref = store.artifacts.put_file(other, session=s)
    assert ref.created and store.artifacts.read_bytes(ref.sha256) == other.read_bytes()

    assert sorted(sha for sha, _ in store.artifacts.iter_files()) == sorted([sha, ref.sha256])
    assert count(store, m.Artifact) == 2
    with store.session() as s:
        assert s.get(m.Artifact, sha).size == len(data)
    assert list(store.artifacts.tmp.iterdir()) == []  # temp files are gone


def test_failed_write_leaves_no_artifact_file_or_row(store: Store) -> None:
    data = b"half-finished model"
    with pytest.raises(RuntimeError, match="training blew up"), store.write() as s:
        ref = store.artifacts.put_bytes(data, session=s)
        assert store.artifacts.exists(ref.sha256)  # there while the transaction is open
        raise RuntimeError("training blew up")
    assert not store.artifacts.exists(ref.sha256)
    assert count(store, m.Artifact) == 0
    assert list(store.artifacts.iter_files()) == []
    assert list(store.artifacts.tmp.iterdir()) == []


def test_failed_write_keeps_a_file_a_committed_row_uses(store: Store) -> None:
    data = b"the production model"
    with store.write() as s:
        kept = store.artifacts.put_bytes(data, session=s)

    # Another transaction saves the same bytes and fails: the committed artifact survives.
    with pytest.raises(RuntimeError), store.write() as s:
        store.artifacts.put_bytes(data, session=s)
        raise RuntimeError("second save failed")
    assert store.artifacts.read_bytes(kept.sha256) == data
    assert count(store, m.Artifact) == 1

    # Even when the failing transaction re-created the file (it had gone missing), the
    # committed row still refers to it, so it is kept rather than "cleaned up".
    store.artifacts.path(kept.sha256).unlink()
    with pytest.raises(RuntimeError), store.write() as s:
        ref = store.artifacts.put_bytes(data, session=s)
        assert ref.created
        raise RuntimeError("third save failed")
    assert store.artifacts.read_bytes(kept.sha256) == data
    assert count(store, m.Artifact) == 1


def test_sweep_tmp_removes_only_temp_files_of_dead_processes(store: Store) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert live.pid != dead.pid
        tmp = store.artifacts.tmp
        (tmp / f"{dead.pid}-abc123.part").write_bytes(b"x" * 100)
        (tmp / f"{dead.pid}-unpacked").mkdir()
        (tmp / f"{dead.pid}-unpacked" / "model.pkl").write_bytes(b"y")
        mine = tmp / f"{os.getpid()}-inprogress"
        mine.write_bytes(b"z")
        theirs = tmp / f"{live.pid}-theirs"
        theirs.write_bytes(b"w")
        unrelated = tmp / "README"
        unrelated.write_text("not ours")

        assert store.artifacts.sweep_tmp() == 2
        assert sorted(p.name for p in tmp.iterdir()) == sorted([mine.name, theirs.name, unrelated.name])

        # Store.open sweeps too.
        (tmp / f"{dead.pid}-later.part").write_bytes(b"x")
        Store.open(store.root).close()
        assert sorted(p.name for p in tmp.iterdir()) == sorted([mine.name, theirs.name, unrelated.name])
    finally:
        live.kill()
        live.wait()
