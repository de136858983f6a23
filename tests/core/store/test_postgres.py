"""A store on a real PostgreSQL server (tests/pg_server.py): what only a server does.

Migrations under an advisory lock, many processes writing at once, and values SQLite and
PostgreSQL store differently. (Every other store test also runs on PostgreSQL: tests/backends.py.)
"""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import pg_workers
import pytest
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import HEAD_REVISION, KNOWN_REVISIONS, Store, migrate
from modelyard.core.store import models as m
from sqlalchemy import create_engine, func, select, text
from store_helpers import run_together


def test_the_store_is_on_the_server(store: Store, db_url: str) -> None:
    assert store.engine.dialect.name == "postgresql" and not store.is_sqlite
    assert store.info()["backend"] == "postgresql"
    with store.session() as s:
        assert s.execute(text("SELECT current_database()")).scalar() == db_url.rsplit("/", 1)[1]


@pytest.mark.slow
def test_two_processes_opening_an_older_store_at_once_migrate_it_once(tmp_path: Path, db_url: str) -> None:
    assert KNOWN_REVISIONS.index("0003") < KNOWN_REVISIONS.index(HEAD_REVISION)  # there is something to do
    engine = create_engine(db_url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO store_meta (key, value) VALUES ('store_id', 'abc')"))
            conn.execute(text("INSERT INTO datasets (name, created_at) VALUES ('churn', now())"))
    finally:
        engine.dispose()

    ctx = multiprocessing.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    readies = [ctx.Event() for _ in range(2)]
    procs = [ctx.Process(target=pg_workers.open_old_store, args=(str(tmp_path / "store"), db_url, w, readies[w], go,
                                                                   queue), name=f"pg-open-{w}") for w in range(2)]
    reports = run_together(procs, queue, go, timeout=90, readies=readies)
    details = [r[2] for r in reports]
    assert {d["revision"] for d in details} == {HEAD_REVISION}
    ran = [step for d in details for step in d["steps"]]
    assert len(ran) == len(KNOWN_REVISIONS) - 1 - KNOWN_REVISIONS.index("0003"), ran  # each step once
    assert sorted(len(d["steps"]) for d in details)[0] == 0  # the other process found it done
    first, second = sorted(details, key=lambda d: d["started"])
    assert second["started"] < first["ended"], "the two opens did not overlap: the test proved nothing"
    with Store.open(tmp_path / "store", db_url=db_url) as store:
        assert store.current_revision() == HEAD_REVISION
        assert store.meta()["store_id"] == "abc"
        with store.session() as s:
            assert s.scalars(select(m.Dataset.name)).all() == ["churn"]


@pytest.mark.slow
def test_eight_processes_logging_and_registering_at_once_lose_nothing(tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "store"
    Store.open(root, db_url=db_url).close()
    n_procs, points = 8, 50
    ctx = multiprocessing.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=pg_workers.log_and_register, args=(str(root), db_url, w, points, go, queue),
                         name=f"pg-writer-{w}") for w in range(n_procs)]
    reports = run_together(procs, queue, go, timeout=120)
    assert sorted(r[2]["version"] for r in reports) == list(range(1, n_procs + 1))
    with Store.open(root, db_url=db_url) as store:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(m.Run)) == n_procs
            assert s.scalar(select(func.count()).select_from(m.Metric)) == n_procs * points
            assert s.scalar(select(func.count()).select_from(m.Experiment)) == 1
            assert s.scalar(select(func.count()).select_from(m.RegisteredModel)) == 1
        for _, worker, detail in reports:
            run = tracking.get_run(detail["run"], store=store)
            assert run.status == "succeeded" and run.params == {"worker": str(worker)}
            assert run.metrics == {"loss": 1.0 / points}
            assert registry.get_version(store, f"churn@v{detail['version']}").run_id == detail["run"]


def test_nan_and_infinite_metric_points_are_kept(store: Store) -> None:
    """PostgreSQL's double precision holds NaN, so unlike on SQLite a NaN point is kept, not skipped."""
    with tracking.start_run("nan", store=store) as run:
        run.log_metrics({"loss": float("nan"), "acc": 0.5})
        run.log_metric("gain", float("-inf"))
    metrics = tracking.get_run(run.id, store=store).metrics
    assert math.isnan(metrics["loss"]) and metrics["acc"] == 0.5 and metrics["gain"] == float("-inf")


def test_non_finite_numbers_in_json_columns_round_trip(store: Store) -> None:
    """PostgreSQL's json type refuses NaN and Infinity; the store writes them in a form it accepts."""
    values = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "nested": [1.5, {"x": float("nan")}],
              "text": "NaN", "look-alike": {"$float": "pi"}}
    with store.write() as s:
        s.add(m.Job(kind="test.json", title="json", status="succeeded", params=values, log=""))
    with store.session() as s:
        back = s.scalars(select(m.Job.params).where(m.Job.kind == "test.json")).one()
        raw = s.execute(text("SELECT params::text FROM jobs WHERE kind = 'test.json'")).scalar()
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["ninf"] == -math.inf
    assert back["nested"][0] == 1.5 and math.isnan(back["nested"][1]["x"])
    assert back["text"] == "NaN" and back["look-alike"] == {"$float": "pi"}
    assert "NaN" in raw and "Infinity" in raw  # readable for a person with psql


@pytest.mark.slow
def test_six_processes_importing_into_one_dataset_at_once_number_the_versions_once(tmp_path: Path,
                                                                                    db_url: str) -> None:
    """Four different tables and the same table twice: four versions, v1 to v4, and the repeated
    table stored once (the second import finds it)."""
    root = tmp_path / "store"
    Store.open(root, db_url=db_url).close()
    contents = [0, 1, 2, 3, 3, 3]
    ctx = multiprocessing.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=pg_workers.import_rows, args=(str(root), db_url, w, c, go, queue),
                         name=f"pg-import-{w}") for w, c in enumerate(contents)]
    reports = run_together(procs, queue, go, timeout=120)
    created = sorted(r[2]["version"] for r in reports if r[2]["created"])
    assert created == [1, 2, 3, 4]
    assert len({r[2]["version"] for r in reports}) == 4
    with Store.open(root, db_url=db_url) as store, store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Dataset)) == 1
        assert s.scalar(select(func.count()).select_from(m.DatasetVersion)) == 4


def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced(tmp_path: Path, db_url: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine pings a connection only after it sat idle (core/store/server.py), not at every
    checkout; one the server ended meanwhile (a restart, a dropped link) is replaced, no error."""
    import time

    from modelyard.core.store import server

    monkeypatch.setattr(server, "PING_AFTER_IDLE_S", 0.05)
    with Store.open(tmp_path / "s", db_url=db_url) as store:
        tracking.start_run("idle", store=store).end()
        with create_engine(db_url).connect() as admin:
            ended = admin.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert ended >= 1
        time.sleep(0.1)
        tracking.start_run("idle", store=store).end()
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(m.Run)) == 2
