"""The Datasets panel's Profile tab: the columns table (type and role editable, saved as the next
version) over the selected column's detail, and how they share the height and the width.

A mixin of :class:`~modelyard.ui.datasets.panel.DatasetsPanel` (it uses the panel's client and
version); the column detail imports pyqtgraph, loaded on a thread first.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.datasets.schema import ALLOWED_TYPES, ROLES
from modelyard.ui.common import rights, theme
from modelyard.ui.common.delegates import ComboDelegate, SparklineDelegate
from modelyard.ui.common.widgets import push_button
from modelyard.ui.datasets.profile_table import (
    COL_DIST,
    COL_DISTINCT,
    COL_MAX,
    COL_MEAN,
    COL_MIN,
    COL_MISSING,
    COL_NAME,
    COL_ROLE,
    COL_TYPE,
    PROFILE_ROLE,
    SORT_ROLE,
    ProfileModel,
)

PROFILE_WIDTHS = {COL_TYPE: 92, COL_ROLE: 78, COL_MISSING: 86, COL_DISTINCT: 64, COL_MEAN: 64, COL_MIN: 58,
                  COL_MAX: 58, COL_DIST: 96}  # with a readable Column, fits the 1024-wide window
NAME_MIN_WIDTH = 120  # the Column column; narrower tables hide these first (the detail shows them):
OPTIONAL_COLUMNS = (COL_MAX, COL_MIN, COL_MEAN)
DETAIL_MIN_HEIGHT = 140  # less than this for the column detail and it collapses (the table keeps its rows)
PROFILE_MIN_ROWS = 5  # the columns table keeps at least this many rows; the column detail gives way


class ProfileTab:
    """Builds the Profile tab into the panel and keeps the table readable at any size."""

    def _build_profile_tab(self) -> QWidget:
        self.warnings_label = QLabel(self)
        self.warnings_label.setObjectName("profileWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        self.profile_model = ProfileModel(self)
        self.profile_proxy = QSortFilterProxyModel(self)
        self.profile_proxy.setSourceModel(self.profile_model)
        self.profile_proxy.setSortRole(SORT_ROLE)
        self.profile_view = QTableView(self)
        self.profile_view.setObjectName("profileTable")
        self.profile_view.setModel(self.profile_proxy)
        self.profile_view.setSortingEnabled(True)
        self.profile_view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.profile_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.profile_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.profile_view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                          | QAbstractItemView.EditTrigger.SelectedClicked
                                          | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.profile_view.verticalHeader().hide()
        self.profile_view.verticalHeader().setDefaultSectionSize(26)
        self.profile_view.setShowGrid(False)
        self.profile_view.setAlternatingRowColors(True)
        self.profile_view.setItemDelegateForColumn(COL_DIST, SparklineDelegate(PROFILE_ROLE, self.profile_view))
        self.profile_view.setItemDelegateForColumn(COL_TYPE, ComboDelegate(self._type_choices, self.profile_view))
        self.profile_view.setItemDelegateForColumn(COL_ROLE, ComboDelegate(lambda _i: ROLES, self.profile_view))
        header = self.profile_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in PROFILE_WIDTHS.items():
            header.resizeSection(col, width)
        self.profile_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._column_selected(cur))
        self.save_schema_button = push_button(self, "Save as new version", self.save_schema, name="saveSchemaButton",
                                              enabled=False,
                                              tip="Types and roles are part of a version: changing them creates the "
                                                  "next version.")
        self.profile_model.changes_pending.connect(self.save_schema_button.setEnabled)
        rights.guard("write", self.save_schema_button)
        self.detail_holder = QWidget(self)
        self.detail_layout = QVBoxLayout(self.detail_holder)
        self.detail_layout.setContentsMargins(0, 0, 0, 0)
        self.detail_hint = QLabel("Select a column to see its distribution.", self)
        self.detail_hint.setMinimumHeight(0)
        self.detail_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_layout.addWidget(self.detail_hint)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Double-click a type or role to change it.", self))
        bottom.addStretch(1)
        bottom.addWidget(self.save_schema_button)
        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, theme.SPACE_S, 0, 0)
        # the table keeps PROFILE_MIN_ROWS rows: the column detail below shrinks, then collapses, first
        row_height = self.profile_view.verticalHeader().defaultSectionSize()
        self.profile_view.setMinimumHeight(row_height * PROFILE_MIN_ROWS
                                           + self.profile_view.horizontalHeader().sizeHint().height() + 6)
        tl.addWidget(self.warnings_label)
        tl.addWidget(self.profile_view, 1)
        tl.addLayout(bottom)
        self.detail_holder.setMinimumHeight(0)
        self.profile_split = split = QSplitter(Qt.Orientation.Vertical, self)
        split.setObjectName("profileSplit")
        split.addWidget(top)
        split.addWidget(self.detail_holder)
        split.setCollapsible(0, False)
        split.setCollapsible(1, True)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([320, 200])
        split.installEventFilter(self)  # on a resize: the table first (see _share_profile_height)
        self.profile_view.installEventFilter(self)  # on a resize: which columns fit (see _fit_profile_columns)
        self._detail_share: float | None = None  # the user's own split, once they drag the handle
        split.splitterMoved.connect(lambda *_: self._remember_detail_share())
        return split

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if watched is getattr(self, "profile_split", None) and event.type() == event.Type.Resize:
            QTimer.singleShot(0, self, self._share_profile_height)
        elif watched is getattr(self, "profile_view", None) and event.type() == event.Type.Resize:
            self._fit_profile_columns()
        return super().eventFilter(watched, event)

    def _fit_profile_columns(self) -> None:
        """Hide Max, then Min, then Mean while the Column column would be under NAME_MIN_WIDTH."""
        header = self.profile_view.horizontalHeader()
        room = self.profile_view.viewport().width()
        fixed = [c for c in PROFILE_WIDTHS if c not in OPTIONAL_COLUMNS]
        need = NAME_MIN_WIDTH + sum(PROFILE_WIDTHS[c] for c in fixed)
        fits = True
        for col in reversed(OPTIONAL_COLUMNS):  # Mean is kept longest, Max hidden first
            fits = fits and need + PROFILE_WIDTHS[col] <= room
            header.setSectionHidden(col, not fits)
            need += PROFILE_WIDTHS[col] if fits else 0

    def _remember_detail_share(self) -> None:
        total = sum(self.profile_split.sizes())
        if total > 0 and not self._sharing:
            self._detail_share = self.profile_split.sizes()[1] / total

    def _share_profile_height(self) -> None:
        """The columns table keeps its PROFILE_MIN_ROWS rows; the column detail takes 40 % (or the
        user's share) of the rest, and collapses when it would be under DETAIL_MIN_HEIGHT."""
        total = self.profile_split.height() - self.profile_split.handleWidth()
        if total <= 0:
            return
        table_min = self.profile_split.widget(0).minimumSizeHint().height()
        detail = int(total * (self._detail_share if self._detail_share is not None else 0.4))
        detail = min(detail, total - table_min)
        if detail < DETAIL_MIN_HEIGHT:
            detail = 0
        self._sharing = True
        try:
            self.profile_split.setSizes([total - detail, detail])
        finally:
            self._sharing = False

    def _select_first_column(self) -> None:
        if self.profile_model.rowCount():
            self.profile_view.selectRow(0)

    def _type_choices(self, index: QModelIndex) -> tuple[str, ...]:
        profile = index.data(PROFILE_ROLE) or {}
        return ALLOWED_TYPES.get(profile.get("kind", ""), ("numeric", "categorical", "text"))

    def _column_selected(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        if self.detail is None:
            # pyqtgraph takes ~0.5 s to import: load it on a thread, never on the main one
            if self._plot_loader is None:
                from modelyard.ui.common import warmup

                self._plot_loader = warmup.start(("numpy", "pyqtgraph"))
            if self._plot_loader.is_alive():
                self.detail_hint.setText("Loading the chart…")
                self._plot_poll.start()  # owned by the panel: it dies with it, never fires after
                return
            from modelyard.ui.datasets.column_detail import ColumnDetail

            self.detail_hint.hide()
            self.detail = ColumnDetail(self.detail_holder)
            self.detail_layout.addWidget(self.detail)
            # its first chart in the next turn: building the plot and drawing it held the main thread ~100 ms
            QTimer.singleShot(0, self, lambda: self._column_selected(self.profile_view.currentIndex()))
            return
        profile = index.data(PROFILE_ROLE)
        name = profile["name"]
        self.detail.show_column(profile, self.profile_model.current(name, "type"))
