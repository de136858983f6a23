"""The Experiments panel driven as a user drives it: live runs, filter, sort, columns, detail."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from factories import open_window
from factories import settle_panel as settle
from modelyard.core.experiments import tracking
from modelyard.ui.experiments.panel import ExperimentsPanel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[3]


def log_runs(store, n=12, experiment="churn"):
    for i in range(n):
        with tracking.start_run(experiment, store=store, name=f"run-{i:02d}",
                                tags={"team": "risk" if i % 2 else "growth"}) as run:
            run.log_params({"model": "random_forest" if i % 3 else "logistic", "depth": i})
            for step in range(5):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metrics({"f1": i / n, "auc": 0.5 + i / (2 * n)})


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store)
    yield w
    w.close()


def panel_of(window) -> ExperimentsPanel:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def shown_names(panel) -> list[str]:
    col = panel.runs_model.columns.index("name")
    return [panel.runs_model.data(panel.runs_model.index(r, col)) for r in range(panel.runs_model.rowCount())]


def loaded(qtbot, panel, n):
    qtbot.waitUntil(lambda: panel.full is not None and len(panel.full) == n, timeout=5000)


def test_a_run_logged_by_a_script_appears_live_in_the_open_window(qtbot, window, store, tmp_path):
    log_runs(store, 2)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 2)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import modelyard
        with modelyard.start_run(experiment="churn", name="from-a-script", store={str(store.root)!r}) as run:
            run.log_param("model", "gbm")
            run.log_metric("f1", 0.93)
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "app")}
    subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=60)
    qtbot.waitUntil(lambda: "from-a-script" in shown_names(panel), timeout=8000)
    assert panel.count_label.text().startswith("3 runs")


def test_filter_expression_narrows_the_table_and_a_bad_one_points_at_the_error(qtbot, window, store):
    log_runs(store, 12)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 12)
    qtbot.keyClicks(panel.filter_edit, 'metrics.f1 >= 0.5 and (params.model = "random_forest" or tags.team = "risk")')
    qtbot.waitUntil(lambda: panel.runs_model.rowCount() < 12, timeout=3000)
    expected = sorted(f"run-{i:02d}" for i in range(12) if i / 12 >= 0.5 and (i % 3 or i % 2))
    assert sorted(shown_names(panel)) == expected
    assert panel.count_label.text() == f"{len(expected)} of 12 runs"
    panel.filter_edit.clear()
    qtbot.keyClicks(panel.filter_edit, "metrics.f1 > and params.model = 'x'")
    qtbot.waitUntil(panel.filter_error.isVisible, timeout=3000)
    assert "^" in panel.filter_error.text() and "metrics.f1 >" in panel.filter_error.text()
    assert panel.runs_model.rowCount() == len(expected)  # the last good filter still applies
    panel.filter_edit.clear()
    qtbot.waitUntil(lambda: not panel.filter_error.isVisible(), timeout=3000)


def test_a_filter_beyond_the_limits_shows_its_error_and_keeps_the_table(qtbot, window, store):
    log_runs(store, 3)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 3)
    panel.filter_edit.setText("(" * 300 + "metrics.f1 > 0" + ")" * 300)
    qtbot.waitUntil(panel.filter_error.isVisible, timeout=3000)
    assert "20 levels" in panel.filter_error.text()
    assert panel.runs_model.rowCount() == 3
    panel.filter_edit.setText(" or ".join(f"metrics.f1 > {i}" for i in range(1001)))
    qtbot.waitUntil(lambda: "200 comparisons" in panel.filter_error.text(), timeout=3000)
    assert panel.runs_model.rowCount() == 3


def test_clicking_a_metric_header_sorts_and_the_column_chooser_adds_columns(qtbot, window, store):
    log_runs(store, 8)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 8)
    header = panel.runs_view.horizontalHeader()
    f1 = panel.runs_model.columns.index("metrics.f1")
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + qtbot_point(header.sectionViewportPosition(f1) + 10, 8))
    settle(panel)
    assert shown_names(panel) == [f"run-{i:02d}" for i in range(8)]  # ascending f1
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + qtbot_point(header.sectionViewportPosition(f1) + 10, 8))
    settle(panel)
    assert shown_names(panel)[0] == "run-07"
    assert "tags.team" not in panel.runs_model.columns
    panel.set_column_visible("tags.team", True)
    assert "tags.team" in panel.runs_model.columns
    panel.set_column_visible("metrics.auc", False)
    assert "metrics.auc" not in panel.runs_model.columns


def qtbot_point(x, y):
    from PySide6.QtCore import QPoint

    return QPoint(int(x), int(y))


def test_selecting_a_run_shows_its_detail_and_metric_curve(qtbot, window, store):
    log_runs(store, 3)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 3)
    panel.runs_view.selectRow(0)
    settle(panel)
    assert "run-02" in panel.detail_title.text()
    params = {panel.params_model.rows[i][0]: panel.params_model.rows[i][1] for i in range(panel.params_model.rowCount())}
    assert params == {"depth": "2", "model": "random_forest"}
    panel.detail_tabs.setCurrentIndex(1)
    panel.metric_combo.setCurrentText("loss")
    settle(panel)
    assert panel.plot is not None
    [curve] = panel.plot.listDataItems()
    xs, ys = curve.getOriginalDataset()
    assert list(xs) == [0, 1, 2, 3, 4]
    assert ys[0] == pytest.approx(1 / 3)


def test_export_writes_the_filtered_rows_and_trash_hides_runs(qtbot, window, store, tmp_path):
    log_runs(store, 6)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 6)
    panel.filter_edit.setText('tags.team = "risk"')
    qtbot.waitUntil(lambda: panel.runs_model.rowCount() == 3, timeout=3000)
    path = panel.export_csv(str(tmp_path / "runs.csv"))
    settle(panel)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["name"] for r in rows) == ["run-01", "run-03", "run-05"]
    assert {r["tags.team"] for r in rows} == {"risk"}
    panel.runs_view.selectRow(0)
    doomed = panel.selected_run_ids()
    panel.delete_runs(doomed)
    loaded(qtbot, panel, 5)
    assert doomed[0] not in list(panel.full.run_ids)
    QApplication.processEvents()


def test_the_selected_run_and_experiment_survive_a_refresh(qtbot, window, store):
    log_runs(store, 4)
    panel = panel_of(window)
    panel.refresh()
    loaded(qtbot, panel, 4)
    panel.experiments_view.selectRow(1)  # "churn"
    loaded(qtbot, panel, 4)
    row = panel.runs_model.row_of(panel.full.run_ids[2])
    panel.runs_view.selectRow(row)
    chosen = panel.selected_run_ids()
    resets: list[bool] = []
    panel.experiments_model.modelReset.connect(lambda: resets.append(True))
    log_runs(store, 2, experiment="another")  # a new experiment: the list grows by key
    log_runs(store, 1)  # a new run in "churn": the runs table is read again
    panel.client.notify("runs")
    loaded(qtbot, panel, 5)
    settle(panel)
    assert [r[0] for r in panel.experiments_model.rows][1:] == ["another", "churn"]
    assert not resets and panel._selected_experiment() == "churn"
    assert panel.selected_run_ids() == chosen  # the same run, wherever its row is now
