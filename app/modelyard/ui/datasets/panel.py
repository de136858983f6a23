"""The Datasets panel: datasets and their immutable versions, profile, preview, schema and splits."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.datasets import catalog, specs
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import rights, theme
from modelyard.ui.common.dnd import FileDropTarget
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.paged_table import PagedTableModel
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import (
    ActionBar,
    ElidedLabel,
    master_detail,
    push_button,
    show_error,
)
from modelyard.ui.datasets.list_model import LIST_COLUMNS, DatasetsModel, SplitsModel
from modelyard.ui.datasets.profile_tab import ProfileTab

DATASET_JOB_KINDS = ("dataset.import", "dataset.sample")
MAX_WARNINGS_SHOWN = 2  # above the columns table; the rest are counted
LIST_MIN_WIDTH = 200


def _service():  # type: ignore[no-untyped-def]
    """The import/profile/split service, loaded on first use: it brings pandas and pyarrow,
    which the window must not pay for at start-up (listing datasets needs only the catalog)."""
    from modelyard.core.datasets import service

    return service


class DatasetsPanel(FileDropTarget, ProfileTab, Panel):
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
        self.import_button = push_button(self, "Import…", self.import_with_dialog, name="importButton", icon="import",
                                         tip="Import a CSV, Parquet, Excel or JSON file as a new dataset (or its next "
                                             "version)")
        self.sample_button = push_button(self, "Sample…", self._choose_sample, name="sampleButton",
                                         tip="Import one of scikit-learn's bundled datasets")
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
        self.delete_button = push_button(self, "Delete…", self.delete_current, name="deleteDatasetButton", icon="trash",
                                         tip="Delete this dataset and hide all its versions")
        rights.guard("write", self.import_button, self.sample_button, self.train_button, self.delete_button)
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
        self.split_button = push_button(self, "Create split", self.create_split, name="createSplitButton")
        rights.guard("write", self.split_button)
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
        # built in a later event-loop turn than the tab switch (its repaint is a turn of its own)
        QTimer.singleShot(50 if self._plot_loader.is_alive() else 0, self, self._build_explore)

    def _build_explore(self) -> None:
        if self.explore is not None or self.tabs.currentWidget() is not self.explore_tab:
            return
        if self._plot_loader.is_alive():  # pyqtgraph is still loading on its thread
            QTimer.singleShot(50, self, self._build_explore)
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
            show_error(self, "The import failed", ModelyardError(outcome.message, hint=outcome.hint))

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
