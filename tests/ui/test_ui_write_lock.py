"""A write from each panel while another process holds the database's write lock: the window keeps
painting (its event loop never stalls over 50 ms), and the write lands once the lock is released.

The other process is a plain ``sqlite3`` connection in a child Python that runs ``BEGIN IMMEDIATE``
on ``<store>/modelyard.db`` and sleeps: what a CLI import or a script logging metrics does to the
window of a colleague sharing the store.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import settle
from factories import train_churn_model as train_model
from held_clock import held_clock
from modelyard.core.datasets import catalog
from modelyard.core.registry import versions as registry
from modelyard.core.store import DB_FILENAME, Store
from modelyard.core.store import models as m
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import QTimer

HOLD_S = 1.5
MAX_STALL_S = 0.050
_HOLDER = (
    "import sqlite3, sys, time\n"
    "c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)\n"
    "c.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "c.execute('COMMIT')\n"
    "c.close()\n"
)


class StallMeter:
    """A 10 ms timer on the main thread; the longest gap between its ticks is the longest stall
    (on tests/held_clock.py's clock: waiting for a CPU another process had is not the window's)."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.longest = 0.0

    def _tick(self) -> None:
        now = held_clock()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    for module in ("datasets.panel", "registry.panel", "registry.changes", "registry.version_actions"):
        monkeypatch.setattr(f"modelyard.ui.{module}.show_error",
                            lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    train_model(store)  # a dataset, a run, a registered model (churn@v1, champion)
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.settings.setValue("confirm/quit_with_jobs", "false")
    qtbot.addWidget(w)
    w.resize(1200, 780)
    w.show()
    qtbot.waitExposed(w)
    settle(qtbot, w)
    yield w
    w.close()


def write_under_lock(qtbot, window: MainWindow, store: Store, act: Callable[[], None],
                     landed: Callable[[], bool]) -> float:
    """Hold the write lock in another process, ``act`` (a panel's write), and return the event
    loop's longest stall while the lock was held; then wait for the write to land."""
    db = Path(store.root) / DB_FILENAME
    assert db.exists()
    # What is measured is the window, not this test process's heap: after hundreds of tests a full
    # garbage collection of it takes 100-300 ms on its own. Freeze what exists now (gc.freeze) so
    # only what the window allocates while the lock is held is collected.
    gc.collect()
    gc.freeze()  # (before the lock is taken: the collection must not eat into the time it is held)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), str(HOLD_S)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        meter = StallMeter()
        meter.start()
        act()
        qtbot.wait(400)
        assert not landed(), ("the write landed while another process held the write lock (or the panel's "
                              "call blocked the main thread until the lock was released)")
        qtbot.waitUntil(lambda: holder.poll() is not None, timeout=int(HOLD_S * 1000) + 10_000)
        meter.stop()
    finally:
        gc.unfreeze()
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert holder.returncode == 0
    qtbot.waitUntil(landed, timeout=10_000)
    settle(qtbot, window)
    assert not getattr(window, "shown_errors", [])
    return meter.longest


def test_datasets_panel_saves_a_schema_edit_while_another_process_writes(qtbot, window, store):
    from modelyard.ui.datasets.profile_table import COL_NAME, COL_ROLE

    panel = window.datasets_panel
    window.show_panel(window.panels.index(panel))
    settle(qtbot, window)
    assert panel.version is not None and panel.version.ref == "churn@v1"
    pm = panel.profile_model
    row = next(r for r in range(pm.rowCount()) if pm.data(pm.index(r, COL_NAME)) == "visits")
    assert pm.setData(pm.index(row, COL_ROLE), "ignored")
    longest = write_under_lock(qtbot, window, store, panel.save_schema,
                               lambda: len(catalog.list_versions(store, "churn")) == 2)
    assert longest < MAX_STALL_S, f"the event loop stalled {longest * 1000:.0f} ms"
    qtbot.waitUntil(lambda: panel.version is not None and panel.version.ref == "churn@v2", timeout=5000)


def test_registry_panel_moves_an_alias_while_another_process_writes(qtbot, window, store):
    panel = window.registry_panel
    window.show_panel(window.panels.index(panel))
    settle(qtbot, window)
    assert panel.version is not None and panel.version.ref == "churn@v1"
    longest = write_under_lock(
        qtbot, window, store, lambda: panel.set_alias("challenger", "second opinion"),
        lambda: registry.get_model(store, "churn").aliases.get("challenger") == 1)
    assert longest < MAX_STALL_S, f"the event loop stalled {longest * 1000:.0f} ms"
    qtbot.waitUntil(lambda: "challenger" in (panel.version.aliases if panel.version else ()), timeout=5000)


def test_experiments_panel_deletes_a_run_while_another_process_writes(qtbot, window, store):
    from modelyard.ui.experiments.panel import ExperimentsPanel

    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    with store.session() as s:
        run_id = s.query(m.Run).one().uuid

    def deleted() -> bool:
        with store.session() as s:
            return s.query(m.Run).filter_by(uuid=run_id).one().deleted_at is not None

    longest = write_under_lock(qtbot, window, store, lambda: panel.delete_runs([run_id]), deleted)
    assert longest < MAX_STALL_S, f"the event loop stalled {longest * 1000:.0f} ms"


def test_monitoring_panel_sets_a_watch_folder_while_another_process_writes(qtbot, window, store, tmp_path):
    from modelyard.ui.monitoring.panel import MonitoringPanel

    panel = next(p for p in window.panels if isinstance(p, MonitoringPanel))
    window.show_panel(window.panels.index(panel))
    settle(qtbot, window)
    qtbot.waitUntil(lambda: panel.model_name == "churn", timeout=5000)
    folder = tmp_path / "incoming"
    folder.mkdir()
    before = len(registry.timeline(store, "churn"))
    longest = write_under_lock(qtbot, window, store,
                               lambda: panel.choose_watch_folder(str(folder), "batches land here"),
                               lambda: len(registry.timeline(store, "churn")) > before)
    assert longest < MAX_STALL_S, f"the event loop stalled {longest * 1000:.0f} ms"
