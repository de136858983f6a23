"""Two main windows in two processes on one store (issue 15's acceptance, on SQLite and on
PostgreSQL: tests/backends.py): a run a script logs shows in both windows' runs tables, and an
alias moved in one window shows in the other, each within two seconds of being committed.

Window A is this process's; window B is tests/live_window_child.py, which says what it shows on
stdout; the script is tests/live_writer.py (the tracking API in a process of its own).
"""

from __future__ import annotations

import time
from pathlib import Path

from child_lines import Child
from factories import open_window, settle
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store

LIVE_S = 2.0


def _two_versions(store: Store) -> None:
    """The model ``live`` with v1 (champion) and v2, registered from runs that logged a model file."""
    for _ in range(2):
        with tracking.start_run("models", store=store) as run:
            run.log_bytes(b"a model", "model/model.joblib")
        info = registry.register(store, run.id, "live")
    registry.set_alias(store, "live@v1", "champion", comment="first")
    assert info.ref == "live@v2"


def _champion(window) -> str | None:  # type: ignore[no-untyped-def]
    models = window.panel_of("registry").models_model
    row = models.row_of("live")
    return models.index(row, 2).data() if row >= 0 else None


def test_a_scripts_run_and_alias_moves_show_in_the_other_window_within_two_seconds(qtbot, store: Store) -> None:
    _two_versions(store)
    window = open_window(qtbot, store, (1280, 800))
    experiments = window.panel_of("experiments")
    window.show_panel(window.panels.index(experiments))
    heard: list[tuple[float, frozenset[str]]] = []
    window.client.changed.connect(lambda topics: heard.append((time.monotonic(), topics)))
    qtbot.waitUntil(lambda: experiments.full is not None and _champion(window) == "v1", timeout=60_000)
    settle(qtbot, window)
    assert window.client.live is not None and window.client.live.running

    b = Child("live_window_child.py", store.root)
    script = Child("live_writer.py", store.root)
    try:
        b.wait_for(qtbot, "ready")
        assert b.said("champion live v1") is not None
        script.wait_for(qtbot, "ok ready")

        # a run logged by a script appears in both runs tables
        sent, run_id = script.answer(qtbot, "run live-script from-a-script")  # committed after this
        qtbot.waitUntil(lambda: experiments.runs_model.row_of(run_id) >= 0, timeout=int(LIVE_S * 1000) + 3000)
        in_a = time.monotonic() - sent
        in_b = b.wait_for(qtbot, f"run {run_id}", timeout_ms=int(LIVE_S * 1000) + 3000) - sent
        assert in_a < LIVE_S and in_b < LIVE_S, (in_a, in_b)
        delays = {"script's run in A": in_a, "script's run in B": in_b}
        # ... and window A heard of it from the store, not from a timer
        assert any(at >= sent and "runs" in topics for at, topics in heard), heard

        # an alias moved in window A (the Registry panel's own action) shows in window B
        moved = time.monotonic()
        assert window.panel_of("registry").set_alias("champion", "moved in window A", ref="live@v2")
        in_b = b.wait_for(qtbot, "champion live v2", timeout_ms=int(LIVE_S * 1000) + 3000) - moved
        assert in_b < LIVE_S, in_b
        delays["A's alias move in B"] = in_b
        qtbot.waitUntil(lambda: _champion(window) == "v2", timeout=5000)  # A's own refresh

        # ... and one moved in window B shows in window A
        moved = time.monotonic()
        b.send("alias live@v1 champion")
        qtbot.waitUntil(lambda: _champion(window) == "v1", timeout=int(LIVE_S * 1000) + 3000)
        in_a = time.monotonic() - moved
        assert in_a < LIVE_S, in_a
        delays["B's alias move in A"] = in_a
        assert registry.get_model(store, "live").aliases == {"champion": 1}
        print("live delays (s):", {k: round(v, 2) for k, v in delays.items()})
    finally:
        b.stop()
        script.stop()
    live = window.client.live
    window.close()
    assert not live.running  # the feed's thread ended with the window


def test_a_burst_of_changes_is_one_refresh_at_a_time_and_the_feed_follows_a_store_switch(qtbot, store: Store,
                                                                                           tmp_path: Path) -> None:
    with tracking.start_run("burst", store=store):
        pass
    window = open_window(qtbot, store, (1280, 800))
    experiments = window.panel_of("experiments")
    window.show_panel(window.panels.index(experiments))
    qtbot.waitUntil(lambda: experiments.full is not None, timeout=60_000)
    settle(qtbot, window)
    feed = window.client.live
    reads: list[str] = []
    read = window.client.read

    def counting(key, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(key)
        return read(key, *args, **kwargs)

    window.client.read = counting  # type: ignore[method-assign]
    script = Child("live_writer.py", store.root)
    try:
        script.wait_for(qtbot, "ok ready")
        _, run_id = script.answer(qtbot, "run burst from-a-script")
        for _ in range(15):  # fifteen commits in quick succession
            script.answer(qtbot, f"metrics {run_id}")
        qtbot.waitUntil(lambda: experiments.runs_model.row_of(run_id) >= 0, timeout=5000)
        settle(qtbot, window)
    finally:
        script.stop()
    runs_reads = reads.count("experiments.runs")
    print("burst: reads", runs_reads, "notifications", feed.notified)
    assert 1 <= runs_reads <= 10, reads  # coalesced, and never a read started over one in flight
    assert feed.notified <= 10

    # another store: the old feed stops, the new client follows the new store
    other = Store.open(tmp_path / "other")
    assert window.switch_store(other)
    assert not feed.running and window.client.live is not None and window.client.live.running
    live = window.client.live
    window.close()
    assert not live.running
