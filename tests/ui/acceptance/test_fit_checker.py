"""The fit checker itself, on tiny widgets: it reports what is cut off and nothing else."""

from __future__ import annotations

import time

import pytest
from fit import GapWatch, clipped_texts, elided_cells, push_button_need, short_tables
from modelyard.ui.common.widgets import ElidedLabel
from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)


def host(qtbot, *children: QWidget, size=(600, 400)) -> QWidget:
    root = QWidget()
    root.setObjectName("host")
    qtbot.addWidget(root)
    for c in children:
        c.setParent(root)
    root.resize(*size)
    root.show()
    qtbot.waitExposed(root)
    return root


def test_a_button_narrower_than_its_text_is_reported_with_its_name_text_and_widths(qtbot):
    button = QPushButton("Export bundle…")
    button.setObjectName("exportBundleButton")
    root = host(qtbot, button)
    button.setGeometry(0, 0, 40, 30)
    found = clipped_texts(root)
    assert len(found) == 1, found
    assert "QPushButton#exportBundleButton 'Export bundle…' needs" in found[0] and "has 40" in found[0]


def test_a_button_as_wide_as_its_text_needs_is_fine_and_the_need_is_its_size_hint(qtbot):
    button = QPushButton("A long enough label for a button")
    root = host(qtbot, button)
    assert abs(push_button_need(button) - button.sizeHint().width()) <= 1, "the need is Qt's own size hint"
    button.setGeometry(0, 0, button.sizeHint().width(), 30)
    assert clipped_texts(root) == []
    short = QPushButton("OK", root)  # narrower than the style's 80 px minimum, but the text fits
    short.setGeometry(0, 40, push_button_need(short) + 2, 30)
    short.show()
    assert clipped_texts(root) == []


def test_a_button_whose_tooltip_carries_its_text_is_fine(qtbot):
    button = QPushButton("Export bundle…")
    button.setToolTip("Export bundle… (a file for another machine)")
    root = host(qtbot, button)
    button.setGeometry(0, 0, 40, 30)
    assert clipped_texts(root) == []


def test_hidden_and_zero_sized_widgets_are_skipped(qtbot):
    hidden, flat = QPushButton("Stop serving"), QPushButton("Stop serving")
    root = host(qtbot, hidden, flat)
    hidden.setGeometry(0, 0, 20, 30)
    hidden.hide()
    flat.setGeometry(0, 40, 0, 0)
    assert clipped_texts(root) == []


def test_a_clipped_label_and_check_box_are_reported_an_elided_label_is_not(qtbot):
    label, box = QLabel("penguins-species-from-the-palmer-station-2026"), QCheckBox("Stratify by the target")
    elided = ElidedLabel("penguins-species-from-the-palmer-station-2026")
    label.setObjectName("title")
    root = host(qtbot, label, box, elided)
    label.setGeometry(0, 0, 60, 20)
    box.setGeometry(0, 30, 50, 20)
    elided.setGeometry(0, 60, 60, 20)
    found = clipped_texts(root)
    assert len(found) == 2, found
    assert any("QLabel#title 'penguins-species" in f for f in found)
    assert any("QCheckBox 'Stratify by the target'" in f for f in found)


def test_rich_text_and_wrapped_labels_are_measured(qtbot):
    rich = QLabel("<b>Drift</b> in <i>age</i>, <i>plan</i> and <i>visits</i>")
    wrapped = QLabel("A long explanation that wraps over several lines when the label is narrow enough")
    wrapped.setWordWrap(True)
    root = host(qtbot, rich, wrapped)
    rich.setGeometry(0, 0, 50, 20)
    wrapped.setGeometry(0, 30, 150, 16)
    found = clipped_texts(root)
    assert len(found) == 2, found
    assert "'Drift in age, plan and visits' needs" in found[0]
    assert "(wrapped) needs" in found[1]
    rich.setGeometry(0, 0, rich.sizeHint().width(), rich.sizeHint().height())
    wrapped.setGeometry(0, 30, 150, wrapped.heightForWidth(150))
    assert clipped_texts(root) == []


def test_a_header_section_narrower_than_its_text_is_reported_unless_its_tooltip_carries_it(qtbot):
    model = QStandardItemModel(3, 2)
    model.setHorizontalHeaderLabels(["cv_accuracy_mean", "r2"])
    view = QTableView()
    view.setObjectName("runsTable")
    view.setModel(model)
    root = host(qtbot, view)
    view.setGeometry(0, 0, 500, 300)
    view.horizontalHeader().resizeSection(0, 30)
    found = clipped_texts(root)
    assert len(found) == 1 and "QTableView#runsTable header 'cv_accuracy_mean' needs" in found[0], found
    model.setHeaderData(0, Qt.Orientation.Horizontal, "cv_accuracy_mean (the mean over folds)",
                        Qt.ItemDataRole.ToolTipRole)
    assert clipped_texts(root) == []


def test_a_clipped_tab_combo_and_group_title_are_reported(qtbot):
    tabs = QTabWidget()
    tabs.setObjectName("detailTabs")
    for name in ("Overview", "Parameters and metrics", "Evaluation", "Reproducibility", "Artifacts"):
        tabs.addTab(QWidget(), name)
    combo = QComboBox()
    combo.addItems(["penguins-species-from-the-palmer-station-2026@v1"])
    group = QGroupBox("Hyper-parameter search over the model's parameters")
    root = host(qtbot, tabs, combo, group)
    tabs.setGeometry(0, 0, 200, 100)
    combo.setGeometry(0, 110, 90, 26)
    group.setGeometry(0, 150, 90, 60)
    found = clipped_texts(root)
    assert any("QTabWidget#detailTabs" in f and "tab '" in f for f in found), found
    assert any("QComboBox 'penguins-species-from-the-palmer-station-2026@v1' needs" in f for f in found), found
    assert any("QGroupBox title 'Hyper-parameter search" in f for f in found), found
    tabs.setGeometry(0, 0, 900, 100)
    combo.setGeometry(0, 110, 600, 26)
    group.setGeometry(0, 150, 600, 60)
    root.resize(1000, 400)
    assert clipped_texts(root) == []


def test_a_table_three_rows_high_is_reported_and_a_tall_one_is_not(qtbot):
    model = QStandardItemModel(20, 2)
    for r in range(20):
        model.setItem(r, 0, QStandardItem(f"row {r}"))
    view = QTableView()
    view.setObjectName("profileTable")
    view.setModel(model)
    tabs = QTabWidget()
    page = QWidget()
    QVBoxLayout(page).addWidget(view)
    tabs.addTab(page, "Profile")
    root = host(qtbot, tabs)
    tabs.setGeometry(0, 0, 400, 400)
    qtbot.waitUntil(lambda: view.viewport().height() > 100)
    assert short_tables(root) == []
    row = view.verticalHeader().sectionSize(0)
    view.setMinimumHeight(0)
    page.layout().setContentsMargins(0, 0, 0, 0)
    tabs.setGeometry(0, 0, 400, tabs.tabBar().sizeHint().height() + view.horizontalHeader().height() + 3 * row + 12)
    qtbot.waitUntil(lambda: view.viewport().height() < 5 * row)
    found = short_tables(root)
    assert len(found) == 1, found
    assert found[0].startswith("QWidget > Profile tab > QTableView#profileTable shows 3 rows"), found
    model.setRowCount(3)  # a table of three rows showing them all is fine
    assert short_tables(root) == []


def test_a_list_is_checked_too(qtbot):
    from PySide6.QtWidgets import QListView

    view = QListView()
    view.setModel(QStringListModel([f"item {i}" for i in range(10)]))
    root = host(qtbot, view)
    view.setGeometry(0, 0, 200, 40)
    assert len(short_tables(root)) == 1


def test_the_gap_watch_sees_the_main_thread_held_and_names_the_step(qtbot):
    with GapWatch() as gaps:
        qtbot.wait(30)
        gaps.mark("hold the main thread")
        time.sleep(0.15)
        qtbot.wait(30)
    assert gaps.largest >= 140 and gaps.largest_step == "hold the main thread"
    with pytest.raises(AssertionError, match="held 1[0-9]{2} ms .* during 'hold the main thread'"):
        gaps.assert_under(100, "a test")
    with GapWatch() as calm:
        qtbot.wait(200)
    calm.assert_under(100, "an idle loop")
    assert calm.largest > 0


def test_a_cell_its_column_cuts_is_reported_unless_its_tooltip_carries_it(qtbot):
    model = QStandardItemModel(3, 2)
    model.setHorizontalHeaderLabels(["Dataset", "Rows"])
    for r, name in enumerate(["churn", "penguins-species-from-the-palmer-station-2026", "diabetes"]):
        model.setItem(r, 0, QStandardItem(name))
        model.setItem(r, 1, QStandardItem(str(r)))
    view = QTableView()
    view.setObjectName("datasetsTable")
    view.setModel(model)
    root = host(qtbot, view)
    view.setGeometry(0, 0, 500, 300)
    view.setColumnWidth(0, 120)
    found = elided_cells(root)
    assert len(found) == 1 and "row 2, column 'Dataset': 'penguins-species-from-the-palmer-station-2026' needs" \
        in found[0], found
    model.item(1, 0).setToolTip("penguins-species-from-the-palmer-station-2026")
    assert elided_cells(root) == []


def test_two_names_cut_to_the_same_text_are_reported_even_with_tooltips(qtbot):
    model = QStandardItemModel(2, 1)
    model.setHorizontalHeaderLabels(["Dataset"])
    for r, name in enumerate(["penguins-species-from-the-palmer-station-2026", "penguins-species-from-the-lab-2025"]):
        item = QStandardItem(name)
        item.setToolTip(name)
        model.setItem(r, 0, item)
    view = QTableView()
    view.setModel(model)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    root = host(qtbot, view)
    view.setGeometry(0, 0, 400, 300)
    view.setColumnWidth(0, 90)
    found = elided_cells(root)
    assert len(found) == 1 and "both read 'penguins" in found[0] and "indistinguishable" in found[0], found
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    view.setColumnWidth(0, 200)
    assert elided_cells(root) == []
