"""The Datasets panel: datasets and their immutable versions, profile, preview, schema and splits."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.datasets import catalog, specs
from modelyard.core.datasets.schema import ALLOWED_TYPES, ROLES
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import theme
from modelyard.ui.common.delegates import ComboDelegate, SparklineDelegate
from modelyard.ui.common.dnd import FileDropTarget
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.paged_table import PagedTableModel
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import (
    ActionBar,
    ElidedLabel,
    master_detail,
    show_error,
)
from modelyard.ui.datasets.list_model import LIST_COLUMNS, DatasetsModel, SplitsModel
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

DATASET_JOB_KINDS = ("dataset.import", "dataset.sample")
MAX_WARNINGS_SHOWN = 2  # above the columns table; the rest are counted


def _service():  # type: ignore[no-untyped-def]
    """The import/profile/split service, loaded on first use: it brings pandas and pyarrow,
    which the window must not pay for at start-up (listing datasets needs only the catalog)."""
    from modelyard.core.datasets import service

    return service
PROFILE_WIDTHS = {COL_TYPE: 92, COL_ROLE: 78, COL_MISSING: 86, COL_DISTINCT: 64, COL_MEAN: 64, COL_MIN: 58,
                  COL_MAX: 58, COL_DIST: 96}  # with a readable Column, fits the 1024-wide window
NAME_MIN_WIDTH = 120  # the Column column; narrower tables hide these first (the detail shows them):
OPTIONAL_COLUMNS = (COL_MAX, COL_MIN, COL_MEAN)
LIST_MIN_WIDTH = 200
DETAIL_MIN_HEIGHT = 140  # less than this for the column detail and it collapses (the table keeps its rows)
PROFILE_MIN_ROWS = 5  # the columns table keeps at least this many rows; the column detail gives way


class DatasetsPanel(FileDropTarget, Panel):
    title = "Datasets"
    icon_name = "datasets"
    empty_headline = "No datasets yet"
    empty_body = (
        "Every model starts from an immutable dataset version. Drop a CSV, Parquet or Excel file here, "
        "or use <b>File › Import Dataset</b>, to create version v1 with its schema and profile."
    )

    version_shown = Signal(object)  # DatasetVersionInfo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.version: catalog.DatasetVersionInfo | None = None
        self._want_dataset: str | None = None  # what the next list read selects
        self._selecting = False  # the panel itself moves the list's selection
        self.detail: Any = None  # ColumnDetail, built on first use (it imports pyqtgraph)
        self._plot_loader: Any = None  # the thread importing pyqtgraph for it
        self._plot_poll = QTimer(self)
        self._plot_poll.setSingleShot(True)
        self._plot_poll.setInterval(50)
        self._plot_poll.timeout.connect(lambda: self._column_selected(self.profile_view.currentIndex()))
        self._import_queue: list[Path] = []  # dropped files waiting for their Import dialog
        self.import_dialog: Any = None  # the Import dialog open for a dropped file
        self.target_dialog: Any = None
        self._sharing = False  # the panel itself moves the profile splitter
        self.empty.add_action("Import a file…", self.import_with_dialog, icon_name="import")
        self.empty.add_action("Try a sample dataset", lambda: self.import_sample("iris"), icon_name="datasets")

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.datasets_model = DatasetsModel(self)
        self.datasets_view = QTableView(self)
        self.datasets_view.setObjectName("datasetsTable")
        self.datasets_view.setModel(self.datasets_model)
        self.datasets_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.datasets_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.datasets_view.verticalHeader().hide()
        self.datasets_view.setShowGrid(False)
        self.datasets_view.setWordWrap(False)
        self.datasets_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "peng…ecies", never two alike
        self.datasets_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(LIST_COLUMNS)):
            self.datasets_view.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.datasets_view.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: None if self._selecting else self._dataset_selected(cur.row()))
        self.datasets_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.datasets_view.customContextMenuRequested.connect(self._list_menu)
        self.import_button = QPushButton(theme.icon("import"), "Import…", self)
        self.import_button.setObjectName("importButton")
        self.import_button.setToolTip("Import a CSV, Parquet, Excel or JSON file as a new dataset (or its next version)")
        self.import_button.clicked.connect(self.import_with_dialog)
        self.sample_button = QPushButton("Sample…", self)
        self.sample_button.setObjectName("sampleButton")
        self.sample_button.setToolTip("Import one of scikit-learn's bundled datasets")
        self.sample_button.clicked.connect(self._choose_sample)
        self.list_bar = ActionBar(self)
        self.list_bar.add(self.import_button, priority=2)
        self.list_bar.add(self.sample_button, priority=1)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        left.setMinimumWidth(LIST_MIN_WIDTH)
        ll.addWidget(self.list_bar)
        ll.addWidget(self.datasets_view, 1)

        # header of the selected version: its name, which version, the next step and the rest
        self.version_title = ElidedLabel("", self)
        self.version_title.setObjectName("versionTitle")
        theme.make_heading(self.version_title, 1.3)
        self.version_combo = QComboBox(self)
        self.version_combo.setObjectName("versionCombo")
        self.version_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.version_combo.setMinimumContentsLength(14)
        self.version_combo.activated.connect(self._version_chosen)
        self.train_button = QPushButton(theme.icon("play"), "Train on this dataset…", self)
        self.train_button.setObjectName("trainOnDatasetButton")
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self.train_on_shown)
        self.delete_button = QPushButton(theme.icon("trash"), "Delete…", self)
        self.delete_button.setObjectName("deleteDatasetButton")
        self.delete_button.setToolTip("Delete this dataset and hide all its versions")
        self.delete_button.clicked.connect(self.delete_current)
        self.header_bar = ActionBar(self)
        self.header_bar.add(self.train_button, priority=10)
        self.header_bar.add(self.delete_button, priority=0)
        self.version_facts = ElidedLabel("", self, Qt.TextElideMode.ElideRight)
        self.version_facts.setObjectName("versionFacts")
        head = QHBoxLayout()  # the name and the next step; under it, which version and its facts
        head.addWidget(self.version_title, 1)
        head.addWidget(self.header_bar)
        facts = QHBoxLayout()
        facts.addWidget(self.version_combo)
        facts.addWidget(self.version_facts, 1)
        from modelyard.ui.datasets.target import TargetBanner

        self.target_banner = TargetBanner(self)
        self.target_banner.set_target.connect(self.set_target)
        self.target_banner.hide()

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("datasetTabs")
        self.tabs.addTab(self._build_profile_tab(), "Profile")
        self.tabs.addTab(self._build_preview_tab(), "Preview")
        self.splits_tab = self._build_splits_tab()
        self.tabs.addTab(self.splits_tab, "Splits")
        self.explore_tab = QWidget(self)  # the Explore view is built on first show (pyqtgraph)
        self.explore_tab.setObjectName("exploreTab")
        QVBoxLayout(self.explore_tab).setContentsMargins(0, 0, 0, 0)
        self.explore: Any = None
        self.tabs.addTab(self.explore_tab, "Explore")
        self.tabs.currentChanged.connect(self._tab_changed)

        return master_detail(self, left, [head, facts, self.target_banner, self.tabs], 240)

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
        self.save_schema_button = QPushButton("Save as new version", self)
        self.save_schema_button.setObjectName("saveSchemaButton")
        self.save_schema_button.setToolTip("Types and roles are part of a version: changing them creates the next version.")
        self.save_schema_button.setEnabled(False)
        self.save_schema_button.clicked.connect(self.save_schema)
        self.profile_model.changes_pending.connect(self.save_schema_button.setEnabled)
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

    def _build_preview_tab(self) -> QWidget:
        self.preview_view = QTableView(self)
        self.preview_view.setObjectName("previewTable")
        self.preview_view.verticalHeader().setDefaultSectionSize(22)
        self.preview_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.preview_view.horizontalHeader().setDefaultSectionSize(110)
        self.preview_view.setAlternatingRowColors(True)
        self.preview_model: PagedTableModel | None = None
        return self.preview_view

    def _build_splits_tab(self) -> QWidget:
        self.splits_table = QTableView(self)
        self.splits_table.setObjectName("splitsTable")
        self.splits_table.verticalHeader().hide()
        self.splits_table.setShowGrid(False)
        self.splits_model = SplitsModel(self)
        self.splits_table.setModel(self.splits_model)
        self.splits_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.splits_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.splits_table.setWordWrap(False)
        self.split_method = QComboBox(self)
        self.split_method.setObjectName("splitMethod")
        self.split_method.addItems(["random", "stratified", "time"])
        self.split_column = QComboBox(self)
        self.split_column.setObjectName("splitColumn")
        self.split_column.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.split_column.setMinimumContentsLength(12)  # a long column name must not widen the form past the tab
        self.split_test = QDoubleSpinBox(self)
        self.split_test.setObjectName("splitTest")
        self.split_test.setRange(0.01, 0.9)
        self.split_test.setSingleStep(0.05)
        self.split_test.setValue(0.2)
        self.split_validation = QDoubleSpinBox(self)
        self.split_validation.setObjectName("splitValidation")
        self.split_validation.setRange(0.0, 0.5)
        self.split_validation.setSingleStep(0.05)
        self.split_seed = QSpinBox(self)
        self.split_seed.setObjectName("splitSeed")
        self.split_seed.setRange(0, 2**31 - 1)
        self.split_button = QPushButton("Create split", self)
        self.split_button.setObjectName("createSplitButton")
        self.split_button.clicked.connect(self.create_split)
        form = QFormLayout()
        form.addRow("Method:", self.split_method)
        form.addRow("By column:", self.split_column)
        form.addRow("Test share:", self.split_test)
        form.addRow("Validation share:", self.split_validation)
        form.addRow("Seed:", self.split_seed)
        form.addRow("", self.split_button)
        box = QWidget(self)
        layout = QHBoxLayout(box)
        layout.addWidget(self.splits_table, 2)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addStretch(1)
        layout.addLayout(side, 1)
        return box

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.datasets_model.rowCount() > 0

    def refresh(self, select: str | None = None) -> None:
        """Re-read the datasets off the main thread; then show ``select`` (default: the one shown)."""
        if self.client is None:
            return
        if select:
            self._want_dataset = select
        self.client.read("datasets.list", catalog.list_datasets, self._listed, self._read_failed)

    def on_changed(self, topics: frozenset[str]) -> None:
        if "datasets" in topics:
            self.refresh()

    def _read_failed(self, exc: Exception) -> None:
        show_error(self, "Cannot read the datasets", exc)

    def _listed(self, datasets: list[catalog.DatasetInfo]) -> None:
        current = self._want_dataset or (self.version.name if self.version else None)
        self._want_dataset = None
        self._selecting = True
        try:
            self.datasets_model.set_datasets(datasets)
            self.datasets_view.clearSpans()
            for row in self.datasets_model.group_rows():  # the "Generated by models" divider spans the row
                self.datasets_view.setSpan(row, 0, 1, len(LIST_COLUMNS))
        finally:
            self._selecting = False
        if self.datasets_model.rowCount():  # the content shows once its version is read
            row = self.datasets_model.row_of(current) if current else -1
            row = row if row >= 0 else next(i for i in range(self.datasets_model.rowCount())
                                            if self.datasets_model.dataset_at(i) is not None)
            self._select_row(row)
            self._dataset_selected(row)
        else:
            super().refresh()
            self._show_version(None)

    def _select_row(self, row: int) -> None:
        self._selecting = True
        try:
            self.datasets_view.selectRow(row)
        finally:
            self._selecting = False

    def _dataset_selected(self, row: int) -> None:
        d = self.datasets_model.dataset_at(row)
        if d is None or self.client is None:
            return
        self._load_version(d.name, None)

    def _version_chosen(self, index: int) -> None:
        version_id = self.version_combo.itemData(index)
        if version_id is not None:
            self.show_version(int(version_id))

    def show_version(self, ref: int | str) -> None:
        """Show a dataset version (an id or a reference such as ``churn@v2``)."""
        assert self.client is not None
        self._load_version(None, ref)

    def _load_version(self, name: str | None, ref: int | str | None) -> None:
        """Read a version (``ref``, or the latest of dataset ``name``) and its siblings off the main thread."""
        def read(store: Any) -> tuple[list[catalog.DatasetVersionInfo], catalog.DatasetVersionInfo | None]:
            v = catalog.get_version(store, ref) if ref is not None else None
            versions = catalog.list_versions(store, v.name if v is not None else name)
            if v is None and versions:
                v = catalog.get_version(store, versions[-1].id)
            return versions, v

        assert self.client is not None
        self.client.read("datasets.version", read, self._version_loaded, self._read_failed)

    def _version_loaded(self, answer: tuple[list[catalog.DatasetVersionInfo], catalog.DatasetVersionInfo | None]) -> None:
        versions, v = answer
        if v is None:
            return
        row = self.datasets_model.row_of(v.name)
        if row >= 0 and self.datasets_view.currentIndex().row() != row:
            self._select_row(row)
        self.version_combo.clear()
        for each in reversed(versions):
            self.version_combo.addItem(f"v{each.version} · {each.created_at.astimezone():%Y-%m-%d}", each.id)
            self.version_combo.setItemData(self.version_combo.count() - 1,
                                           f"{each.ref}, made {each.created_at.astimezone():%Y-%m-%d %H:%M}",
                                           Qt.ItemDataRole.ToolTipRole)
        self._show_version(v)
        super().refresh()

    def _show_version(self, v: catalog.DatasetVersionInfo | None) -> None:
        self.version = v
        if self.client is not None:
            self.client.select("dataset_version", v.id if v is not None else None)
        if v is None:
            self.profile_model.set_version(None, None)
            self.preview_view.setModel(None)
            self.target_banner.hide()
            return
        i = self.version_combo.findData(v.id)
        if i >= 0:
            self.version_combo.setCurrentIndex(i)
        self.version_title.setText(v.ref)
        source = Path(v.source_path).name if v.source_path else "—"
        parent = f" · from v{v.parent_version}" if v.parent_version else ""
        self.version_facts.setText(
            f"{plural(v.n_rows, 'row')} × {plural(v.n_cols, 'column')} · "
            + (f"{v.task} on {v.target} · " if v.target else "no target · ")
            + f"source {source}{parent} · imported by {v.created_by or '?'} on {v.created_at.astimezone():%Y-%m-%d %H:%M}"
            + f" · content {v.content_hash[:12]}"
        )
        self.target_banner.setVisible(not v.target)
        self.train_button.setEnabled(bool(v.target))
        self.train_button.setToolTip(f"Open the Train dialog on {v.ref}" if v.target else
                                     f"{v.ref} has no target: set one first (Set target… above the tabs).")
        self.profile_model.set_version(v.profile, v.schema)
        warnings = v.warnings
        colour = theme.status_colour("warning").name()
        # Two in full at most, so the columns table keeps its rows; every warned column has the ⚠
        # in its row with the message as its tooltip.
        shown = [f"<span style='color:{colour}'>⚠</span> {html.escape(w['message'])}" for w in warnings[:MAX_WARNINGS_SHOWN]]
        if len(warnings) > MAX_WARNINGS_SHOWN:
            more = len(warnings) - MAX_WARNINGS_SHOWN
            shown.append(f"<span style='color:{colour}'>⚠</span> and {plural(more, 'more warning')}: "
                         "point at a row marked ⚠ below to read it.")
        self.warnings_label.setText("<br>".join(shown))
        self.warnings_label.setVisible(bool(warnings))
        store, version_id = self.store, v.id
        self.preview_model = PagedTableModel(v.n_rows, [c["name"] for c in v.columns],
                                             lambda start, count: _service().read_rows(store, version_id, start, count),
                                             parent=self)
        self.preview_view.setModel(self.preview_model)
        names = [c["name"] for c in v.columns]
        self.split_column.clear()
        self.split_column.addItems(["(target / automatic)", *names])
        self._refresh_splits()
        if self.explore is not None:
            self.explore.set_version(v)
        self.version_shown.emit(v)
        # the first column's chart is built in the next event-loop turn, not in this one: a new
        # version's table and its chart together held the main thread ~50 ms after an import
        QTimer.singleShot(0, self, self._select_first_column)

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

    # ------------------------------------------------------------------ actions
    def import_files(self, paths: list[Path]) -> None:
        """Dropped data files: the Import dialog for each, one after the other (as the docs say:
        a drop is checked, named and given its target before anything is stored)."""
        self._import_queue.extend(Path(p) for p in paths)
        if self.import_dialog is None:
            self._import_next()

    def _import_next(self) -> None:
        from modelyard.ui.datasets.import_dialog import ImportDialog

        self.import_dialog = None
        if not self._import_queue:
            return
        path = self._import_queue.pop(0)
        dialog = ImportDialog(path, self, self.client)
        waiting = len(self._import_queue)
        if waiting:
            dialog.setWindowTitle(f"{dialog.windowTitle()} (then {plural(waiting, 'more file')})")
        self.import_dialog = dialog

        def finished(code: int) -> None:
            if code == ImportDialog.DialogCode.Accepted:
                self.start_job(specs.import_spec(path, dialog.options()))
            dialog.deleteLater()
            QTimer.singleShot(0, self, self._import_next)

        dialog.finished.connect(finished)
        dialog.open()

    def import_with_dialog(self, path: str | Path | None = None) -> JobHandle | None:
        """File › Import Dataset: choose a file, check it in the Import dialog, import it as a job."""
        from PySide6.QtWidgets import QFileDialog

        from modelyard.ui.datasets.import_dialog import ImportDialog

        if not path:
            path, _ = QFileDialog.getOpenFileName(
                self, "Import a dataset", "",
                "Data files (*.csv *.tsv *.txt *.parquet *.pq *.xlsx *.json *.jsonl *.ndjson);;All files (*)")
            if not path:
                return None
        dialog = ImportDialog(path, self, self.client)
        if dialog.exec() != ImportDialog.DialogCode.Accepted:
            return None
        return self.start_job(specs.import_spec(path, dialog.options()))

    def train_on_shown(self) -> None:
        """The next step: the Experiments panel's Train dialog on the version shown."""
        if self.version is not None and self.client is not None:
            self.client.navigate.emit("experiments", ("train_on", self.version.id))

    def _list_menu(self, pos: Any) -> None:
        d = self.datasets_model.dataset_at(self.datasets_view.indexAt(pos).row())
        if d is None or d.latest_version_id is None or self.client is None:
            return
        shown = self.version is not None and self.version.name == d.name
        version_id = self.version.id if shown and self.version is not None else d.latest_version_id
        target = (self.version.target if shown and self.version is not None else d.target)
        menu = QMenu(self)
        train = menu.addAction(theme.icon("play"), "Train on this dataset…",
                               lambda: self.client.navigate.emit("experiments", ("train_on", version_id)))
        train.setEnabled(bool(target))
        menu.addSeparator()
        menu.addAction(theme.icon("trash"), "Delete…", lambda: self.delete_dataset(d.name))
        self._list_menu_shown = menu
        menu.popup(self.datasets_view.viewport().mapToGlobal(pos))

    def set_target(self) -> None:
        """The banner's "Set target…": choose the column, save it as the next version."""
        if self.version is None:
            return
        from modelyard.ui.datasets.target import SetTargetDialog

        dialog = SetTargetDialog(self.version, self)
        self.target_dialog = dialog

        def finished(code: int) -> None:
            self.target_dialog = None
            if code == SetTargetDialog.DialogCode.Accepted and self.version is not None:
                self._save_schema_changes(self.version.id, dialog.changes(), "target set in the Datasets panel")
            dialog.deleteLater()

        dialog.finished.connect(finished)
        dialog.open()

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is not self.explore_tab or self.explore is not None:
            return
        if self._plot_loader is None:
            from modelyard.ui.common import warmup

            self._plot_loader = warmup.start(("numpy", "pyqtgraph"))
        if self._plot_loader.is_alive():
            QTimer.singleShot(50, self, lambda: self._tab_changed(self.tabs.currentIndex()))
            return
        from modelyard.ui.datasets.explore import ExploreView

        self.explore = ExploreView(self.client, self.explore_tab)
        self.explore_tab.layout().addWidget(self.explore)
        if self.version is not None:
            self.explore.set_version(self.version)

    def import_sample(self, name: str = "iris") -> JobHandle:
        return self.start_job(specs.sample_spec(name))

    def _choose_sample(self) -> None:
        labels = [f"{key} — {desc}" for key, (_l, _t, desc) in catalog.SAMPLES.items()]
        choice, ok = QInputDialog.getItem(self, "Try a sample dataset", "scikit-learn's bundled datasets (no download):",
                                          labels, 0, False)
        if ok and choice:
            self.import_sample(choice.split(" — ", 1)[0])

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        if handle is None or handle.spec.kind not in DATASET_JOB_KINDS:
            return
        if outcome.ok:  # the client's change signal re-reads the list; this import is shown then
            self._want_dataset = (outcome.result or {}).get("dataset") or self._want_dataset
            self.refresh()
            self.show_panel()
        elif outcome.status == "failed":
            show_error(self, "The import failed", ModelyardError(outcome.error or "The import failed.",
                                                                  hint=None))

    def save_schema(self) -> None:
        if self.version is None or self.store is None:
            return
        changes = self.profile_model.pending_changes()
        target_changes = [name for name, c in changes.items() if c.get("role") == "target"]
        payload: dict[str, Any] = {"columns": changes}
        if target_changes:
            payload["target"] = target_changes[0]
        self.save_schema_button.setEnabled(False)  # until the write lands (or fails)
        self._save_schema_changes(self.version.id, payload, "edited in the Datasets panel")

    def _save_schema_changes(self, version_id: int, payload: dict[str, Any], comment: str) -> None:
        """Save a schema change (types, roles, target) as the next version, then show it."""
        def saved(new: catalog.DatasetVersionInfo) -> None:
            self._want_dataset = new.name
            self.show_version(new.id)

        def failed(exc: Exception) -> None:
            self.save_schema_button.setEnabled(bool(self.profile_model.pending_changes()))
            show_error(self, "Cannot change the schema", exc)

        assert self.client is not None
        self.client.write(lambda store: _service().update_schema(store, version_id, payload, comment=comment),
                          saved, failed, changes="datasets")

    def create_split(self) -> None:
        if self.version is None or self.store is None:
            return
        column = self.split_column.currentText() if self.split_column.currentIndex() > 0 else None
        version_id, test, validation = self.version.id, self.split_test.value(), self.split_validation.value()
        method, seed = self.split_method.currentText(), self.split_seed.value()
        assert self.client is not None
        self.client.write(lambda store: _service().create_split(store, version_id, test=test, validation=validation,
                                                                method=method, column=column, seed=seed),
                          lambda _split: self._refresh_splits(),
                          lambda exc: show_error(self, "Cannot create the split", exc), changes="datasets")

    def _refresh_splits(self) -> None:
        if self.version is None or self.client is None:
            return
        version_id = self.version.id

        def shown(splits: list[catalog.SplitInfo]) -> None:
            if self.version is not None and self.version.id == version_id:
                self.splits_model.set_rows(splits)

        self.client.read("datasets.splits", lambda store: catalog.list_splits(store, version_id), shown,
                         self._read_failed)

    def delete_current(self) -> None:
        if self.version is not None:
            self.delete_dataset(self.version.name)

    def delete_dataset(self, name: str) -> None:
        if self.store is None:
            return
        answer = QMessageBox.question(self, "Delete dataset", f"Delete the dataset '{name}' and hide all its versions?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        assert self.client is not None

        def deleted(_result: Any) -> None:
            if self.version is not None and self.version.name == name:
                self.version = None

        def refused(exc: Exception) -> None:
            if not isinstance(exc, ModelyardError):
                show_error(self, "Cannot delete the dataset", exc)
                return
            force = QMessageBox.question(self, "Dataset in use", f"{exc.message}\n\nDelete it anyway?")
            if force != QMessageBox.StandardButton.Yes:
                return
            self.client.write(lambda store: _service().delete_dataset(
                store, name, force=True, comment="deleted in the Datasets panel (forced)"),
                deleted, lambda again: show_error(self, "Cannot delete the dataset", again), changes="datasets")

        self.client.write(lambda store: _service().delete_dataset(store, name, comment="deleted in the Datasets panel"),
                          deleted, refused, changes="datasets")

    def files_dropped(self, files: list[Path]) -> None:
        others = [f for f in files if f.suffix.lower() == ".mybundle"]  # bundles belong to the Registry
        if others and self.client is not None:
            self.client.navigate.emit("registry", ("take_drop", [], others))
        data = [f for f in files if f not in others]
        if data:  # after the drop event returns: the dialog opens from the event loop
            QTimer.singleShot(0, self, lambda: self.import_files(data))
