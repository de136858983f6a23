"""The Datasets panel driven as a user drives it: drops, the import dialog, versions, profile, preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import drop_files, settle
from modelyard.core.datasets import service as ds
from modelyard.core.store import models as m
from modelyard.ui.common.settings import open_settings
from modelyard.ui.datasets.import_dialog import ImportDialog
from modelyard.ui.datasets.profile_table import COL_NAME, COL_ROLE, COL_TYPE
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QComboBox, QDialogButtonBox, QMessageBox


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    monkeypatch.setattr("modelyard.ui.datasets.panel.show_error", lambda parent, title, exc: errors.append(str(exc)))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.settings.setValue("confirm/quit_with_jobs", "false")
    w.close()


@pytest.fixture
def churn_csv(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "monthly_fee": rng.normal(30, 8, n).round(2),
        "churned": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
    })
    df.loc[::17, "monthly_fee"] = np.nan
    path = tmp_path / "churn.csv"
    df.to_csv(path, index=False)
    return path


def wait_for_jobs(qtbot, window, n: int = 1) -> list:
    outcomes = []
    def done() -> bool:
        outcomes[:] = [h.outcome for h in window.runner.handles() if h.outcome is not None]
        return len(outcomes) >= n and not window.runner.running()
    qtbot.waitUntil(done, timeout=20000)
    QApplication.processEvents()
    return outcomes


def wait_for_version(qtbot, panel, ref: str) -> None:
    """Until the panel shows ``ref`` (its content replaced the empty state)."""
    qtbot.waitUntil(lambda: panel.version is not None and panel.version.ref == ref
                    and panel.stack.currentWidget() is panel.content, timeout=5000)


def drop_and_import(qtbot, window, paths: list[Path], *, on=None, pos=None, target: str | None = None) -> list[str]:
    """Drop ``paths`` (on ``on``, default the Datasets panel) as a user does, then accept the Import
    dialog each file gets (after choosing ``target`` when given); returns each dialog's target."""
    panel = window.datasets_panel
    drop_files(on if on is not None else panel, paths, pos)
    pre_selected = []
    for path in paths:
        qtbot.waitUntil(lambda p=path: panel.import_dialog is not None and panel.import_dialog.path.name == p.name
                        and panel.import_dialog.isVisible() and panel.import_dialog.preview.model() is not None,
                        timeout=10000)
        dialog = panel.import_dialog
        pre_selected.append(dialog.target.currentText())
        if target is not None:
            dialog.target.setCurrentText(target)
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda d=dialog: panel.import_dialog is not d, timeout=5000)
    return pre_selected


def count(store, model) -> int:
    with store.session() as s:
        return s.query(model).count()


def test_dropping_a_csv_opens_the_import_dialog_with_the_target_pre_selected(qtbot, window, store, churn_csv):
    panel = window.datasets_panel
    assert panel.stack.currentWidget() is panel.empty
    drop_files(panel, [churn_csv])
    qtbot.waitUntil(lambda: panel.import_dialog is not None and panel.import_dialog.isVisible()
                    and panel.import_dialog.preview.model() is not None, timeout=10000)
    assert count(store, m.DatasetVersion) == 0  # nothing is imported before the dialog is accepted
    dialog = panel.import_dialog
    assert dialog.target.currentText() == "churned"
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    [outcome] = wait_for_jobs(qtbot, window)
    assert outcome.ok, outcome.error
    qtbot.waitUntil(lambda: panel.stack.currentWidget() is panel.content, timeout=3000)
    assert panel.version.ref == "churn@v1"
    assert panel.version.n_rows == 300 and panel.version.n_cols == 5
    assert panel.version.target == "churned" and panel.version.task == "classification"
    assert not panel.target_banner.isVisible()
    assert panel.datasets_model.rowCount() == 1
    names = [panel.profile_model.data(panel.profile_model.index(r, COL_NAME)) for r in range(5)]
    assert names == ["customer_id", "age", "plan", "monthly_fee", "churned"]
    types = {n: panel.profile_model.current(n, "type") for n in names}
    assert types["customer_id"] == "id" and types["age"] == "numeric" and types["plan"] == "categorical"
    assert "Missing" in [panel.profile_model.headerData(c, Qt.Orientation.Horizontal) for c in range(9)]


def test_dropping_on_the_main_window_imports_too_and_the_same_file_twice_gives_one_version(
        qtbot, window, store, churn_csv, tmp_path):
    window.show_panel(2)
    drop_and_import(qtbot, window, [churn_csv], on=window, pos=window.sidebar.geometry().center())
    wait_for_jobs(qtbot, window, 1)
    assert window.stack.currentWidget() is window.datasets_panel
    drop_and_import(qtbot, window, [churn_csv], on=window, pos=window.sidebar.geometry().center())
    outcomes = wait_for_jobs(qtbot, window, 2)
    assert all(o.ok for o in outcomes)
    assert outcomes[1].result["created"] is False
    assert count(store, m.DatasetVersion) == 1
    # changed content -> v2 whose parent is v1
    changed = pd.read_csv(churn_csv)
    changed.loc[0, "age"] = 99
    changed.to_csv(churn_csv, index=False)
    drop_and_import(qtbot, window, [churn_csv])
    outcomes = wait_for_jobs(qtbot, window, 3)
    assert outcomes[-1].result["created"] is True
    v2 = ds.get_version(store, "churn@v2")
    assert v2.parent_version == 1
    qtbot.waitUntil(lambda: window.datasets_panel.version is not None and window.datasets_panel.version.version == 2,
                    timeout=3000)
    assert window.datasets_panel.version_combo.count() == 2


def test_dropping_several_files_at_once_imports_each_after_its_own_dialog(qtbot, window, store, churn_csv, tmp_path):
    other = tmp_path / "regions.tsv"
    other.write_text("region\tpopulation\nnorth\t120\nsouth\t340\neast\t90\n")
    assert drop_and_import(qtbot, window, [churn_csv, other]) == ["churned", "(none)"]
    outcomes = wait_for_jobs(qtbot, window, 2)
    assert sorted(o.result["dataset"] for o in outcomes) == ["churn", "regions"]
    settle(qtbot, window)
    assert window.datasets_panel.datasets_model.rowCount() == 2


def test_import_through_the_dialog_with_a_name_and_target(qtbot, window, store, tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("size;colour;label\n1,5;red;a\n2,5;blue;b\n3,0;red;a\n4,5;green;b\n")
    seen = {}

    def drive_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ImportDialog)
        qtbot.waitUntil(lambda: dialog.preview.model() is not None, timeout=5000)
        seen["columns"] = [dialog.target.itemText(i) for i in range(dialog.target.count())]
        seen["preview_cols"] = dialog.preview.model().columnCount()
        dialog.name.clear()
        qtbot.keyClicks(dialog.name, "paint")
        dialog.target.setCurrentText("label")
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)

    QTimer.singleShot(200, drive_dialog)
    handle = window.datasets_panel.import_with_dialog(path)
    assert handle is not None
    [outcome] = wait_for_jobs(qtbot, window)
    assert outcome.ok, outcome.error
    assert seen["columns"] == ["(none)", "size", "colour", "label"] and seen["preview_cols"] == 3
    v = ds.get_version(store, "paint")
    assert v.target == "label" and v.task == "classification"


def test_bad_file_dropped_gives_a_clear_message_and_writes_nothing(qtbot, window, store, tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    panel = window.datasets_panel
    drop_files(panel, [bad])  # the Import dialog says what is wrong and cannot import it
    qtbot.waitUntil(lambda: panel.import_dialog is not None and panel.import_dialog.error.isVisible()
                    and bool(panel.import_dialog.error.text()), timeout=10000)
    dialog = panel.import_dialog
    assert "empty.csv is empty" in dialog.error.text() and "Traceback" not in dialog.error.text()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.reject()
    qtbot.waitUntil(lambda: panel.import_dialog is None, timeout=2000)
    assert not window.runner.handles()
    assert count(store, m.DatasetVersion) == 0 and count(store, m.Artifact) == 0
    assert not any(store.artifacts.iter_files())


def test_changing_a_role_saves_a_new_version_pointing_to_its_parent(qtbot, window, store, churn_csv):
    drop_and_import(qtbot, window, [churn_csv], target="(none)")
    wait_for_jobs(qtbot, window)
    panel = window.datasets_panel
    wait_for_version(qtbot, panel, "churn@v1")
    row = next(r for r in range(panel.profile_model.rowCount())
               if panel.profile_model.data(panel.profile_model.index(r, COL_NAME)) == "churned")
    assert not panel.save_schema_button.isEnabled()
    assert panel.profile_model.setData(panel.profile_model.index(row, COL_ROLE), "target")
    assert panel.save_schema_button.isEnabled()
    qtbot.mouseClick(panel.save_schema_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert panel.version.ref == "churn@v2"
    assert panel.version.target == "churned" and panel.version.task == "classification"
    assert panel.version.parent_version == 1
    assert ds.get_version(store, "churn@v1").target is None  # v1 is never modified
    assert panel.profile_model.data(panel.profile_model.index(row, COL_TYPE)) == "categorical"


def test_a_split_is_created_and_listed(qtbot, window, store, churn_csv):
    drop_and_import(qtbot, window, [churn_csv])
    wait_for_jobs(qtbot, window)
    panel = window.datasets_panel
    wait_for_version(qtbot, panel, "churn@v1")
    panel.tabs.setCurrentIndex(2)
    qtbot.waitUntil(panel.split_button.isVisible, timeout=2000)
    panel.split_test.setValue(0.25)
    panel.split_seed.setValue(7)
    qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert panel.splits_model.rowCount() == 1
    split = panel.splits_model.rows[0]
    assert split.counts["test"] == 75 and split.counts["train"] == 225
    assert split.seed == 7


def test_help_menu_sample_dataset_gives_a_full_panel(qtbot, window, store):
    window.sample_actions["iris"].trigger()
    [outcome] = wait_for_jobs(qtbot, window)
    assert outcome.ok, outcome.error
    panel = window.datasets_panel
    qtbot.waitUntil(lambda: panel.version is not None, timeout=3000)
    assert panel.version.n_rows == 150 and panel.version.target == "species"
    assert panel.profile_model.rowCount() == 5
    panel.profile_view.selectRow(0)
    qtbot.waitUntil(lambda: panel.detail is not None and panel.detail.bars is not None, timeout=10000)


def test_preview_pages_through_a_million_rows_reading_only_what_is_shown(qtbot, window, store, tmp_path):
    n = 1_000_000
    frame = pd.DataFrame({"i": np.arange(n), "x": np.arange(n) * 0.5,
                          "cat": np.array(["a", "b", "c", "d"])[np.arange(n) % 4]})
    info = ds.import_frame(store, frame, "big")
    window.datasets_panel.refresh(select="big")
    settle(qtbot, window)
    panel = window.datasets_panel
    panel.tabs.setCurrentIndex(1)
    view, model = panel.preview_view, panel.preview_model
    assert model.rowCount() == n
    qtbot.waitUntil(lambda: model.pages_read >= 1, timeout=3000)
    view.scrollToBottom()
    QApplication.processEvents()
    last = model.index(n - 1, 0)
    assert model.data(last) == str(n - 1)
    view.scrollTo(model.index(n // 2, 0))
    QApplication.processEvents()
    assert model.data(model.index(n // 2, 1)) == f"{(n // 2) * 0.5:.6g}"
    assert model.pages_read <= 8, f"read {model.pages_read} pages to show three screens"
    assert info["n_rows"] == n


def test_deleting_a_dataset_used_by_a_model_asks_before_forcing(qtbot, window, store, churn_csv, monkeypatch):
    drop_and_import(qtbot, window, [churn_csv])
    wait_for_jobs(qtbot, window)
    settle(qtbot, window)
    v = ds.get_version(store, "churn")
    with store.write() as s:
        rm = m.RegisteredModel(name="churn-model")
        s.add(rm)
        s.flush()
        s.add(m.ModelVersion(model_id=rm.id, version=1, dataset_version_id=v.id))
    answers = iter([QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No])
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or next(answers))
    window.datasets_panel.delete_current()
    settle(qtbot, window)
    assert "churn-model" in asked[1]
    assert [d.name for d in ds.list_datasets(store)] == ["churn"]


def test_listing_datasets_and_starting_an_import_load_no_pandas_or_pyarrow_on_the_main_thread(tmp_path):
    """The window lists datasets through the catalog and builds import jobs from plain specs;
    pandas and pyarrow load on the worker thread that runs the job (a main-thread import of them
    stalled the event loop for over 100 ms on the first drop)."""
    import subprocess
    import sys

    code = (
        "import sys; from modelyard.core.store import Store; from modelyard.core.datasets import catalog, specs; "
        f"s = Store.open({str(tmp_path / 's')!r}); catalog.list_datasets(s); specs.import_spec('x.csv'); "
        "import modelyard.ui.main_window; "
        "print(sorted(k for k in ('pandas', 'pyarrow', 'numpy', 'sklearn', 'pyqtgraph') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "app")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_import_dialog_reparses_the_preview_when_an_override_changes(qtbot, tmp_path):
    path = tmp_path / "european.csv"
    path.write_text("city;temperature;rain\nOslo;-3,5;yes\nRome;14,0;no\nLima;19,5;no\n", encoding="cp1252")
    dialog = ImportDialog(path)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.preview.model() is not None, timeout=5000)
    assert dialog.preview.model().columnCount() == 3
    assert dialog.delimiter.itemText(0).startswith("Detect")
    dialog.delimiter.setCurrentIndex(dialog.delimiter.findData(","))
    qtbot.waitUntil(lambda: dialog.preview.model() is not None and dialog.preview.model().columnCount() != 3,
                    timeout=2000)
    assert dialog.options().delimiter == ","
    dialog.delimiter.setCurrentIndex(0)
    qtbot.waitUntil(lambda: dialog.preview.model().columnCount() == 3, timeout=2000)
    assert dialog.options().delimiter is None
    assert [dialog.target.itemText(i) for i in range(dialog.target.count())] == ["(none)", "city", "temperature", "rain"]
    dialog.header.setChecked(False)
    qtbot.waitUntil(lambda: dialog.preview.model().rowCount() == 4, timeout=2000)  # the header row is data now
    assert dialog.options().header is False


def test_import_dialog_names_the_problem_when_a_file_cannot_be_read(qtbot, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    dialog = ImportDialog(path)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: bool(dialog.error.text()), timeout=5000)
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "photo.csv" in dialog.error.text()


def test_import_dialog_shows_each_date_columns_format_and_imports_the_one_chosen(qtbot, window, store, tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("visit day,checked at,weight\n01/02/2012,05.03.2012 10:30,71.5\n03/04/2012,06.03.2012 11:00,70.1\n"
                    "05/06/2012,07.03.2012 09:15,69.8\n")
    seen: dict[str, object] = {}

    def cell(dialog: ImportDialog, row: int, column: str) -> str:
        model = dialog.preview.model()
        col = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(model.columnCount())].index(column)
        return model.data(model.index(row, col))

    def drive_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        try:
            assert isinstance(dialog, ImportDialog)
            qtbot.waitUntil(lambda: dialog.preview.model() is not None, timeout=5000)
            day = dialog.findChild(QComboBox, "dateFormat:visit day")
            checked = dialog.findChild(QComboBox, "dateFormat:checked at")
            seen["day_items"] = [day.itemText(i) for i in range(day.count())]
            seen["checked_items"] = [checked.itemText(i) for i in range(checked.count())]
            seen["note"] = dialog.notes.text()
            seen["first"] = cell(dialog, 0, "visit day")
            seen["first_checked"] = cell(dialog, 0, "checked at")
            seen["dates_visible"] = dialog.dates_box.isVisible()
            day.setCurrentIndex(day.findData("text"))  # kept as text: the preview shows what is in the file
            qtbot.waitUntil(lambda: cell(dialog, 0, "visit day") == "01/02/2012", timeout=3000)
            day = dialog.findChild(QComboBox, "dateFormat:visit day")  # the row was rebuilt
            day.setCurrentIndex(day.findData("DD/MM/YYYY"))
            qtbot.waitUntil(lambda: cell(dialog, 0, "visit day") == "2012-02-01", timeout=3000)
            seen["note_after"] = dialog.notes.text()
            seen["options"] = dialog.options().date_formats
        except BaseException as exc:  # noqa: BLE001 - reported below; a stuck modal dialog would hang the test
            seen["error"] = exc
            dialog.reject()
            return
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)

    QTimer.singleShot(200, drive_dialog)
    handle = window.datasets_panel.import_with_dialog(path)
    assert "error" not in seen, repr(seen.get("error"))
    assert handle is not None
    [outcome] = wait_for_jobs(qtbot, window)
    assert outcome.ok, outcome.error
    assert seen["dates_visible"]
    assert seen["day_items"] == ["Detect (MM/DD/YYYY, a guess)", "DD/MM/YYYY", "MM/DD/YYYY", "Keep as text"]
    assert seen["checked_items"] == ["Detect (DD.MM.YYYY)", "DD.MM.YYYY", "Keep as text"]
    assert "'visit day'" in seen["note"] and "MM/DD/YYYY" in seen["note"]
    assert seen["first"] == "2012-01-02"  # month-first until the user says otherwise; a date has no 00:00:00
    assert seen["first_checked"] == "2012-03-05 10:30:00"
    assert "'visit day'" not in seen["note_after"]
    assert seen["options"] == {"visit day": "DD/MM/YYYY"}
    v = ds.get_version(store, "visits")
    frame = ds.read_rows(store, v.id, 0, 3)
    assert [str(d.date()) for d in frame["visit day"]] == ["2012-02-01", "2012-04-03", "2012-06-05"]
    assert str(frame["checked at"][0]) == "2012-03-05 10:30:00"
    assert not [w for w in v.warnings if w["code"] == "ambiguous_dates"]


def test_column_detail_draws_a_date_columns_histogram_with_date_ticks(qtbot, store, tmp_path):
    from modelyard.core.jobs.runner import run_job
    from modelyard.ui.datasets.column_detail import ColumnDetail

    path = tmp_path / "days.csv"
    path.write_text("day,x\n" + "".join(f"2012-{m:02d}-{d:02d},{m * d}\n" for m in range(1, 13) for d in (1, 15)))
    outcome = run_job(store, ds.import_spec(path))
    assert outcome.ok, outcome.error
    profile = next(c for c in ds.get_version(store, "days").profile["columns"] if c["name"] == "day")
    assert isinstance(profile["histogram"]["edges"][0], str)  # dates are ISO text in the profile
    detail = ColumnDetail()
    qtbot.addWidget(detail)
    detail.show_column(profile, "datetime")
    ticks = detail.plot.getAxis("bottom")._tickLevels[0]
    labels = [label for _x, label in ticks]
    assert len(labels) == 3 and all(label.startswith("2012-") for label in labels), labels
    assert sum(detail.bars.opts["height"]) == 24


def test_column_detail_of_free_text_says_so_and_category_labels_fit(qtbot, store, tmp_path):
    """A free-text column has no distribution worth a bar chart (every value differs): the detail
    says so instead of twenty overlapping labels; a category chart's labels fit their bars."""
    from modelyard.core.jobs.runner import run_job
    from modelyard.ui.datasets.column_detail import ColumnDetail

    path = tmp_path / "notes.csv"
    path.write_text("comment,colour\n" + "".join(
        f"\"The parcel number {i} arrived {'late' if i % 2 else 'on time'} and the customer wrote a long note\","
        f"{['a fairly long colour name', 'another long colour name', 'short'][i % 3]}{i % 20}\n" for i in range(200)))
    outcome = run_job(store, ds.import_spec(path))
    assert outcome.ok, outcome.error
    columns = {c["name"]: c for c in ds.get_version(store, "notes").profile["columns"]}
    detail = ColumnDetail()
    qtbot.addWidget(detail)
    detail.resize(700, 260)
    detail.show()
    detail.show_column(columns["comment"], "text")
    assert detail.note is not None and "every value differs" in detail.note.toPlainText()
    assert detail.bars is None
    assert not detail.plot.getAxis("bottom")._tickLevels or not detail.plot.getAxis("bottom")._tickLevels[0]

    detail.show_column(columns["colour"], "categorical")
    assert detail.note is None and detail.bars is not None
    assert_category_labels_readable(detail, columns["colour"])


def assert_category_labels_readable(detail, profile) -> None:
    """At most TOP_BARS bars plus one "other" bar, one label per bar on the left axis, each within
    its width and no taller than its bar's slot (labels cannot overlap); stats without lengths."""
    from modelyard.ui.datasets.column_detail import LABEL_MAX_WIDTH, TOP_BARS

    QApplication.processEvents()
    heights = detail.bars.opts["width"]
    labels = [label for _y, label in detail.plot.getAxis("left")._tickLevels[0]]
    assert len(heights) == len(labels) <= TOP_BARS + 1
    distinct = profile["distinct"]
    if distinct > TOP_BARS:
        assert labels[-1] == f"other ({distinct - (len(labels) - 1)} categories)"
        assert sum(heights) == profile["count"] - profile["missing"]
    metrics = detail.fontMetrics()
    assert max(metrics.horizontalAdvance(label) for label in labels) <= min(LABEL_MAX_WIDTH, detail.plot.width() * 0.4)
    slot = detail.plot.getPlotItem().vb.height() / len(labels)
    assert metrics.height() <= slot, (metrics.height(), slot)
    text = detail.stats.text()
    assert "most common" in text and "length" not in text


def test_many_warnings_leave_the_columns_table_its_rows(qtbot, window, store):
    """Two warnings are shown in full above the table, the rest counted; each warned row keeps its ⚠ and tooltip."""
    n = 200
    frame = pd.DataFrame({"order_id": np.arange(n), "sample_no": np.arange(1000, 1000 + n),
                          "ticket <b>number</b>": [f"T{i:05d}" for i in range(n)],
                          "note": [f"customer {i} wrote a long remark about the delivery and the box" for i in range(n)],
                          "x": np.random.default_rng(0).normal(size=n)})
    ds.import_frame(store, frame, "noisy")
    panel = window.datasets_panel
    panel.refresh(select="noisy")
    qtbot.waitUntil(lambda: panel.version is not None and panel.version.name == "noisy", timeout=3000)
    warnings = panel.version.warnings
    assert len(warnings) >= 4
    text = panel.warnings_label.text()
    lines = text.split("<br>")
    assert len(lines) == 3 and f"and {len(warnings) - 2} more warnings" in lines[2]
    assert "<b>number</b>" not in text  # a column name is text, not markup
    window.resize(1024, 640)
    qtbot.wait(50)
    assert panel.profile_view.height() >= panel.profile_view.verticalHeader().defaultSectionSize() * 2 + 30


def test_the_sparkline_draws_no_bars_for_free_text_or_all_different_values():
    from modelyard.ui.common.delegates import distribution_values

    top = [{"value": f"note {i}", "count": 1} for i in range(20)]
    assert distribution_values({"type": "text", "top": top}) == ([], True)
    assert distribution_values({"type": "categorical", "top": top}) == ([], True)
    assert distribution_values({"type": "categorical", "top": [{"value": "a", "count": 3}, {"value": "b", "count": 1}]}) \
        == ([3.0, 1.0], True)


def test_warm_up_imports_pyqtgraph_only_once_the_main_thread_has_made_qts_classes(qtbot, monkeypatch):
    """PySide6 makes its classes lazily, unsafely against the main thread using Qt meanwhile;
    pyqtgraph's import touches all of them, so the warm-up thread waits for the main thread."""
    import importlib
    import threading
    import types

    import modelyard.ui.common.warmup as warmup

    monkeypatch.setattr(warmup, "qt_primed", threading.Event())
    monkeypatch.setattr(warmup, "_priming", False)
    seen: list[tuple[str, bool]] = []

    def import_module(name: str):
        seen.append((name, warmup.qt_primed.is_set()))
        return importlib.import_module(name)

    monkeypatch.setattr(warmup, "importlib", types.SimpleNamespace(import_module=import_module))
    thread = warmup.start(("numpy", "pyqtgraph"))
    assert not warmup.qt_primed.is_set()  # the main thread primes a slice per event-loop turn
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=15000)
    assert seen == [("numpy", False), ("pyqtgraph", True)] or seen == [("numpy", True), ("pyqtgraph", True)]
