"""Live updates (core/store/live.py): every committed write names its topics in change_log, and a
Watcher in another process sees them within two seconds — on SQLite (PRAGMA data_version) and on
PostgreSQL (LISTEN/NOTIFY), both backends (tests/backends.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from modelyard.core.experiments import tracking
from modelyard.core.experiments.runquery import query_runs
from modelyard.core.jobs import kinds
from modelyard.core.store import Store, live
from modelyard.core.store import models as m
from sqlalchemy import func, select, text
from store_helpers import child_env

ROOT = Path(__file__).resolve().parents[3]
LIVE_S = 2.0


class Writer:
    """tests/live_writer.py in a child process: one command, one answer once committed."""

    def __init__(self, location: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "live_writer.py"), str(location)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
        assert self._answer(60) == "ready"

    def _answer(self, timeout: float) -> str:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            assert sel.select(timeout), "the writer did not answer"
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line.startswith("ok "), line
        return line[3:]

    def do(self, *command: str) -> tuple[str, float]:
        """The answer, and when the write was committed (just before the answer)."""
        self.proc.stdin.write(" ".join(command) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        answer = self._answer(60)
        return answer, time.monotonic()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")  # type: ignore[union-attr]
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()  # type: ignore[union-attr]


def seen(watcher: live.Watcher, topics: set[str], within: float = LIVE_S) -> tuple[live.Changes, float]:
    """Poll until every one of ``topics`` was seen (the merged changes) or ``within`` passed."""
    start = time.monotonic()
    got: set[str] = set()
    ids: dict[str, set[str]] = {}
    everything = False
    while not topics <= got:
        left = within - (time.monotonic() - start)
        if left <= 0:
            break
        changes = watcher.poll(left)
        if changes is not None:
            got |= changes.topics
            everything |= changes.everything
            for topic, values in changes.ids.items():
                ids.setdefault(topic, set()).update(values)
    merged = live.Changes(frozenset(got), {t: frozenset(v) for t, v in ids.items()}, everything)
    return merged, time.monotonic() - start


def log_rows(store: Store) -> list[tuple]:
    """The change_log rows (id, topics, ids, actor, origin), oldest first."""
    with store.session() as s:
        return [tuple(r) for r in s.execute(select(m.ChangeEvent.id, m.ChangeEvent.topics, m.ChangeEvent.ids,
                                                   m.ChangeEvent.actor, m.ChangeEvent.origin)
                                            .order_by(m.ChangeEvent.id))]


def test_every_table_names_its_topic_or_none_on_purpose() -> None:
    assert set(live.TABLE_TOPICS.values()) <= kinds.TOPICS and live.ALL_TOPICS == kinds.TOPICS
    untracked = {"audit_log", "lineage_edges", "artifacts", "runs_table_cache", "runs_table_cache_marks", "change_log"}
    assert set(m.Base.metadata.tables) == set(live.TABLE_TOPICS) | untracked, \
        "a new table: say in core/store/live.py TABLE_TOPICS which change topic it belongs to"


def test_another_process_s_runs_metrics_versions_aliases_and_checks_are_seen_within_two_seconds(
        store: Store, tmp_path: Path) -> None:
    watcher = live.Watcher(store)
    writer = Writer(store.root)
    try:
        assert watcher.poll(0.3) is None  # nothing happened yet (opening the store wrote nothing new)
        run_id, done = writer.do("run", "live", "first")
        changes, waited = seen(watcher, {"runs"})
        assert "runs" in changes.topics and run_id in changes.ids["runs"], changes
        assert waited < LIVE_S and not changes.everything

        _, done = writer.do("metrics", run_id)
        changes, waited = seen(watcher, {"runs"})
        assert changes.topics == {"runs"} and waited < LIVE_S, changes

        ref, done = writer.do("register", "x", "churn")
        changes, waited = seen(watcher, {"runs", "models"})
        assert {"runs", "models"} <= changes.topics and waited < LIVE_S, changes
        assert "churn" in changes.ids["models"]

        writer.do("alias", ref, "champion")
        changes, waited = seen(watcher, {"models"})
        assert changes.topics == {"models"} and waited < LIVE_S, changes

        writer.do("check", ref)
        changes, waited = seen(watcher, {"checks"})
        assert changes.topics == {"checks"} and waited < LIVE_S, changes

        writer.do("end", run_id)
        changes, waited = seen(watcher, {"runs"})
        assert changes.topics == {"runs"} and waited < LIVE_S, changes
        assert watcher.poll(0.3) is None  # each change was seen once
    finally:
        writer.close()
        watcher.close()
    rows = log_rows(store)
    assert {r[3] for r in rows} == {"tester"} and len({r[4] for r in rows}) == 1
    assert rows[-1][4] != live.ORIGIN and rows[-1][4].split(":")[1] == str(writer.proc.pid)


def test_this_process_s_own_writes_are_logged_but_not_reported(store: Store) -> None:
    watcher = live.Watcher(store)
    try:
        with tracking.start_run("mine", store=store) as run:
            run.log_metric("loss", 0.5)
        assert watcher.poll(0.5) is None
    finally:
        watcher.close()
    rows = log_rows(store)
    assert rows and {r[4] for r in rows} == {live.ORIGIN}
    assert {r[1] for r in rows} == {"runs"}
    assert run.id in rows[0][2]["runs"]


def test_reading_and_a_rolled_back_write_log_nothing(store: Store) -> None:
    with tracking.start_run("exp", store=store, params={"a": "1"}) as run:
        run.log_metric("loss", 0.1)
    before = log_rows(store)
    table = query_runs(store)  # a reader; on SQLite it also stores the runs table's cache blocks
    assert len(table) == 1 and len(query_runs(store)) == 1
    tracking.get_run(run.id, store=store)
    with store.session() as s:
        s.execute(select(m.Run)).all()
    with pytest.raises(RuntimeError), store.write() as s:
        s.execute(text("UPDATE runs SET name = 'changed'"))
        raise RuntimeError("rolled back")
    with store.write() as s:  # a write transaction that writes nothing
        s.execute(select(func.count()).select_from(m.Run)).scalar()
    assert log_rows(store) == before, log_rows(store)[len(before):]


def test_one_row_per_transaction_naming_every_topic_it_touched(store: Store) -> None:
    with store.write() as s:
        s.add(m.Dataset(name="one"))
        s.add(m.Job(kind="x", title="t", status="queued"))
        s.flush()
        s.execute(text("UPDATE store_meta SET value = value WHERE key = 'store_id'"))
    rows = log_rows(store)
    assert len(rows) == 1 and rows[0][1] == "datasets,jobs,store", rows
    assert rows[0][2] == {"datasets": ["one"]}


def test_the_log_is_pruned_as_it_grows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "PRUNE_EVERY", 10)
    monkeypatch.setattr(live, "KEEP_ROWS", 15)
    for i in range(60):
        with store.write() as s:
            s.add(m.Experiment(name=f"e{i}"))
    rows = log_rows(store)
    assert 15 <= len(rows) <= 25 and rows[-1][0] - rows[0][0] == len(rows) - 1


def test_a_watcher_that_lost_track_refreshes_everything(store: Store, backend: str) -> None:
    """PostgreSQL: the listening connection ends (a server restart, a network cut); SQLite: the
    rows after the last one read were pruned before the watcher read them. Either way, what
    changed is unknown: everything."""
    watcher = live.Watcher(store)
    writer = Writer(store.root)
    try:
        if backend == "postgresql":
            pid = watcher.backend_pid
            with store.session() as s:
                assert s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            writer.do("run", "while-away", "r")
            changes, waited = seen(watcher, {"runs"})
            assert changes.everything and changes.topics == kinds.TOPICS and waited < LIVE_S
            assert watcher.backend_pid != pid  # listening again, on a new connection
            writer.do("run", "after", "r")  # and hearing what comes next as before
        else:
            first, _ = writer.do("run", "seen", "r")
            assert seen(watcher, {"runs"})[0].ids["runs"] == {first}
            writer.do("run", "pruned", "r")
            writer.do("run", "kept", "r")
            with store.write() as s:  # the row after the watcher's last one goes, as pruning does
                last = s.scalar(select(func.max(m.ChangeEvent.id)))
                s.execute(text("DELETE FROM change_log WHERE id < :last"), {"last": last})
            changes, waited = seen(watcher, {"runs"})
            assert changes.everything and changes.topics == kinds.TOPICS and waited < LIVE_S
            writer.do("run", "after", "r")
        changes, waited = seen(watcher, {"runs"})
        assert not changes.everything and changes.topics == {"runs"} and waited < LIVE_S
    finally:
        writer.close()
        watcher.close()


def test_upgrading_an_older_store_logs_nothing_and_the_writes_after_it_are_logged(tmp_path: Path,
                                                                                    new_database) -> None:
    from modelyard.core.store import migrate
    from sqlalchemy import create_engine

    url = new_database()
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0003")  # before change_log existed: a hook writing to it would fail
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO datasets (name, created_at) VALUES ('churn', '2024-03-01 12:00:00')"))
    finally:
        engine.dispose()
    with Store.open(tmp_path / "store", db_url=url) as store:  # upgrades (store_meta written too)
        assert log_rows(store) == []
        with store.write() as s:
            s.add(m.Dataset(name="after"))
        assert [(r[1], r[2]) for r in log_rows(store)] == [("datasets", {"datasets": ["after"]})]
