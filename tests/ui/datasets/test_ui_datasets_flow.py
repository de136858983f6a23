"""The Datasets panel guides the next step: a target for every version, Train on it, the user's data
apart from what models generated, a window that fits 1024x640, and no action that blocks the window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import check_file, churn_frame, settle, train_churn_model, write_batch
from modelyard.core.datasets import service as ds
from modelyard.ui.common.settings import open_settings
from modelyard.ui.datasets.list_model import GENERATED_TITLE
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox

MAX_GAP_S = 0.100


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    monkeypatch.setattr("modelyard.ui.datasets.panel.show_error", lambda parent, title, exc: errors.append(str(exc)))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.resize(1024, 640)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.settings.setValue("confirm/quit_with_jobs", "false")
    w.close()


def show(qtbot, window, ref: str) -> None:
    panel = window.datasets_panel
    panel.refresh()
    settle(qtbot, window)
    panel.show_version(ref)
    qtbot.waitUntil(lambda: panel.version is not None and panel.version.ref == ref
                    and panel.stack.currentWidget() is panel.content, timeout=5000)
    settle(qtbot, window)


def test_a_version_without_a_target_shows_the_banner_and_set_target_saves_the_next_version(qtbot, window, store):
    rng = np.random.default_rng(0)
    ds.import_frame(store, pd.DataFrame({"size": rng.normal(size=80), "colour": rng.choice(["red", "blue"], 80),
                                         "outcome": rng.choice(["won", "lost"], 80)}), "deals")
    show(qtbot, window, "deals@v1")
    panel = window.datasets_panel
    assert panel.target_banner.isVisible()
    assert "no target" in panel.target_banner.label.text()
    assert not panel.train_button.isEnabled()
    qtbot.mouseClick(panel.target_banner.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.target_dialog is not None and panel.target_dialog.isVisible(), timeout=3000)
    dialog = panel.target_dialog
    assert dialog.column.currentText() == "outcome"  # named like a target: pre-selected
    assert dialog.task.currentText() == "classification"
    dialog.column.setCurrentText("size")  # the user changes it: the task follows the column
    assert dialog.task.currentText() == "regression"
    dialog.column.setCurrentText("outcome")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.version is not None and panel.version.ref == "deals@v2", timeout=5000)
    settle(qtbot, window)
    assert panel.version.target == "outcome" and panel.version.task == "classification"
    assert panel.version.parent_version == 1 and ds.get_version(store, "deals@v1").target is None
    assert not panel.target_banner.isVisible() and panel.train_button.isEnabled()


def test_train_on_this_dataset_asks_the_experiments_room_for_the_version_shown(qtbot, window, store):
    train_churn_model(store)  # churn@v1 with its target
    ds.import_frame(store, churn_frame(100, seed=5), "churn", target="churned")  # churn@v2
    show(qtbot, window, "churn@v1")
    panel = window.datasets_panel
    v1 = ds.get_version(store, "churn@v1").id
    assert window.client.selected.get("dataset_version") == v1  # published: Train… defaults to it
    assert panel.train_button in panel.header_bar.buttons() and panel.train_button.isVisible()
    with qtbot.waitSignal(window.client.navigate, timeout=2000) as blocker:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["experiments", ("train_on", v1)]

    # the list's context menu offers it too
    panel.show_panel()
    row = panel.datasets_model.row_of("churn")
    rect = panel.datasets_view.visualRect(panel.datasets_model.index(row, 0))
    panel._list_menu(rect.center())
    qtbot.waitUntil(lambda: panel._list_menu_shown.isVisible(), timeout=2000)
    train = next(a for a in panel._list_menu_shown.actions() if a.text().startswith("Train on this dataset"))
    with qtbot.waitSignal(window.client.navigate, timeout=2000) as blocker:
        train.trigger()
    assert blocker.args == ["experiments", ("train_on", v1)]
    panel._list_menu_shown.close()


def test_datasets_generated_by_models_are_listed_after_the_users_under_their_own_divider(qtbot, window, store,
                                                                                        tmp_path):
    train_churn_model(store)
    check_file(store, write_batch(tmp_path, churn_frame(200, seed=3), "march.csv"))  # a monitoring batch
    ds.import_frame(store, churn_frame(50, seed=9), "zebra-survey", target="churned")
    show(qtbot, window, "churn@v1")
    model = window.datasets_panel.datasets_model
    shown = [model.index(r, 0).data() for r in range(model.rowCount())]
    [batches] = [d.name for d in ds.list_datasets(store) if d.origin == "generated"]
    assert shown == ["churn", "zebra-survey", f"{GENERATED_TITLE} (1)", batches]
    divider = model.index(2, 0)
    assert not (model.flags(divider) & Qt.ItemFlag.ItemIsSelectable)
    assert window.datasets_panel.datasets_view.columnSpan(2, 0) == model.columnCount()
    assert model.index(3, 0).data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    # a long name is elided in the middle in the list and whole in its tooltip
    assert window.datasets_panel.datasets_view.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole).startswith("churn (v1 of 1 version)")


def test_the_profile_table_shows_five_rows_at_1024x640(qtbot, window, store):
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({f"measurement_{i:02d}": rng.normal(size=60) for i in range(30)})
    wide["label"] = rng.choice(["a", "b"], 60)
    ds.import_frame(store, wide, "wide-table-with-a-long-name-for-the-title", target="label")
    show(qtbot, window, "wide-table-with-a-long-name-for-the-title@v1")
    panel = window.datasets_panel
    panel.profile_view.selectRow(3)
    qtbot.waitUntil(lambda: panel.detail is not None, timeout=10000)
    QApplication.processEvents()
    view = panel.profile_view
    rows = view.viewport().height() // view.verticalHeader().defaultSectionSize()
    assert rows >= 5, rows
    name_width = view.horizontalHeader().sectionSize(0)
    assert name_width >= 100  # the Column column stays readable (Min/Max give way first)
    assert panel.version_title.is_elided() and "wide-table-with-a-long-name" in panel.version_title.toolTip()
    assert panel.version_facts.toolTip() or not panel.version_facts.is_elided()


def test_a_column_with_many_categories_draws_the_most_common_and_one_other_bar(qtbot, store):
    from modelyard.ui.datasets.column_detail import TOP_BARS, ColumnDetail

    rng = np.random.default_rng(1)
    shops = rng.choice([f"shop number {i:02d} on the high street" for i in range(40)], 600)
    ds.import_frame(store, pd.DataFrame({"shop": shops, "n": rng.integers(0, 9, 600)}), "shops")
    profile = next(c for c in ds.get_version(store, "shops").profile["columns"] if c["name"] == "shop")
    detail = ColumnDetail()
    qtbot.addWidget(detail)
    detail.resize(640, 420)  # the room the detail has in a 1024x640 window with the Jobs strip collapsed
    detail.show()
    qtbot.waitExposed(detail)
    detail.show_column(profile, "categorical")
    QApplication.processEvents()
    from test_ui_datasets import assert_category_labels_readable

    assert_category_labels_readable(detail, profile)
    assert len(detail.bars.opts["width"]) == TOP_BARS + 1  # there is room for all twelve here


def test_explore_colours_the_scatter_by_class_with_the_legend_beside_it(qtbot, window, store):
    rng = np.random.default_rng(2)
    n = 7000
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "island": rng.choice(list("ABCD"), n),
                          "species": rng.choice(["Adelie", "Gentoo", "Chinstrap"], n)})
    ds.import_frame(store, frame, "penguins", target="species")
    show(qtbot, window, "penguins@v1")
    panel = window.datasets_panel
    panel.tabs.setCurrentWidget(panel.explore_tab)
    # the plots are built and drawn one per event-loop turn once the rows are read: wait for both
    qtbot.waitUntil(lambda: panel.explore is not None and bool(panel.explore.dist_items), timeout=15000)
    explore = panel.explore
    assert explore.sample.sampled == 5000 and "5,000 rows, a random sample of 7,000" in explore.status.text()
    assert len(explore.scatter) == 3  # one colour per species
    assert sum(len(item.data) for item in explore.scatter) == 5000
    legend = explore.legend.geometry()
    for plot in (explore.scatter_plot, explore.dist_plot):
        assert not legend.intersects(plot.geometry().translated(explore.plots.pos()))
    assert all(name in explore.legend.text() for name in ("Adelie", "Gentoo", "Chinstrap"))
    import pyqtgraph as pg

    explore.dist.setCurrentText("island")  # bars per class
    qtbot.waitUntil(lambda: len(explore.dist_items) == 3
                    and all(isinstance(i, pg.BarGraphItem) for i in explore.dist_items), timeout=3000)
    explore.dist.setCurrentText("x")  # an outline histogram per class
    qtbot.waitUntil(lambda: len(explore.dist_items) == 3
                    and all(isinstance(i, pg.PlotCurveItem) for i in explore.dist_items), timeout=3000)


def test_no_datasets_action_stalls_the_window_first_stratified_split_included(tmp_path):
    """In a fresh process (scikit-learn not yet imported), with the app's idle warm-up: the longest
    main-thread gap while the column detail, the Explore tab, the first stratified split and the
    Import dialog's preview load. Best of up to three runs per action: a real stall (an import holding
    the GIL, work on the main thread) happens in every fresh run; a busy machine's hiccup does not."""
    best: dict[str, float] = {}
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        out = subprocess.run([sys.executable, str(Path(__file__).with_name("split_gap_probe.py")), str(folder)],
                             capture_output=True, text=True, timeout=180,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                  "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[3] / "app"),
                                                                 str(Path(__file__).resolve().parents[2]),
                                                                 os.environ.get("PYTHONPATH", "")])})
        assert out.returncode == 0, out.stderr[-2000:]
        for line in out.stdout.split():
            name, _, value = line.partition("=")
            best[name] = min(best.get(name, 1e9), float(value))
        if all(gap <= MAX_GAP_S for gap in best.values()):
            break
    assert set(best) == {"column_detail", "explore", "stratified_split", "import_preview"}
    assert all(gap <= MAX_GAP_S for gap in best.values()), best


def test_explore_computes_its_histograms_off_the_main_thread_and_reuses_its_plot_items(qtbot, window, store,
                                                                                       monkeypatch):
    """Switching a column shows the same plot items with new data: the histograms are counted on a
    worker thread, the main thread only hands arrays to the items it already has."""
    import threading

    import pyqtgraph as pg

    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "z": rng.exponential(size=n),
                          "island": rng.choice(list("ABCD"), n), "species": rng.choice(["a", "b", "c"], n)})
    ds.import_frame(store, frame, "penguins", target="species")
    show(qtbot, window, "penguins@v1")
    counted_on: list[bool] = []  # True: on the main thread
    for name in ("histogram", "bincount"):
        original = getattr(np, name)

        def counting(*a, _original=original, **k):
            counted_on.append(threading.current_thread() is threading.main_thread())
            return _original(*a, **k)

        monkeypatch.setattr(np, name, counting)
    panel = window.datasets_panel
    panel.tabs.setCurrentWidget(panel.explore_tab)
    qtbot.waitUntil(lambda: panel.explore is not None and len(panel.explore.dist_items) == 3, timeout=15000)
    explore = panel.explore
    scatter, curves = list(explore.scatter), list(explore.dist_items)
    first = [item.getData()[1].copy() for item in curves]
    explore.dist.setCurrentText("z")
    qtbot.waitUntil(lambda: any(not np.array_equal(item.getData()[1], old) for item, old in zip(curves, first)),
                    timeout=5000)
    assert explore.dist_items == curves  # the same three outlines, new counts
    assert sorted(int(np.asarray(item.getData()[1]).sum()) for item in curves) == sorted(
        frame["species"].value_counts().tolist())  # every row of each class counted
    explore.x.setCurrentText("z")

    def scatter_x() -> np.ndarray:
        return np.sort(np.concatenate([item.data["x"] for item in explore.scatter]))

    qtbot.waitUntil(lambda: np.allclose(scatter_x(), np.sort(frame["z"].to_numpy())), timeout=5000)
    assert explore.scatter == scatter  # the same three point sets, new positions
    explore.dist.setCurrentText("island")
    qtbot.waitUntil(lambda: len(explore.dist_items) == 3
                    and all(isinstance(i, pg.BarGraphItem) for i in explore.dist_items), timeout=5000)
    assert counted_on, "no histogram was counted: the test proves nothing"
    assert not any(counted_on), f"{counted_on.count(True)} of {len(counted_on)} histograms counted on the main thread"


def test_the_explore_view_reads_its_rows_off_the_main_thread(qtbot, window, store):
    ds.import_frame(store, churn_frame(300), "churn", target="churned")
    show(qtbot, window, "churn@v1")
    panel = window.datasets_panel
    seen = []
    original = window.client.read
    window.client.read = lambda key, fn, *a, **k: (seen.append(key), original(key, fn, *a, **k))[1]
    panel.tabs.setCurrentWidget(panel.explore_tab)
    qtbot.waitUntil(lambda: panel.explore is not None and bool(panel.explore.scatter), timeout=15000)
    assert "datasets.explore" in seen


def test_explore_colours_a_regression_target_by_a_ramp_and_says_so(qtbot, window, store):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    frame["price"] = frame["a"] * 3 + rng.normal(size=400)
    ds.import_frame(store, frame, "houses", target="price")
    show(qtbot, window, "houses@v1")
    panel = window.datasets_panel
    assert panel.version.task == "regression"
    panel.tabs.setCurrentWidget(panel.explore_tab)
    qtbot.waitUntil(lambda: panel.explore is not None and bool(panel.explore.dist_items), timeout=15000)
    explore = panel.explore
    assert len(explore.scatter) > 4  # steps of the ramp, not one colour
    assert sum(len(item.data) for item in explore.scatter) == 400
    assert explore.legend.text().startswith("Scatter: price") and "Distributions:" in explore.legend.text()
    assert len(explore.dist_items) == 4  # the target's quartiles
