"""The Experiments panel: experiments, a live runs table with filter and columns, and run detail."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobOutcome
from modelyard.core.registry.versions import MODEL_PATH
from modelyard.ui.common import theme
from modelyard.ui.common.background import BackgroundReader
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import show_error
from modelyard.ui.experiments.curves import CurveControls
from modelyard.ui.experiments.runs_table import (
    BASE_COLUMNS,
    RUN_ID_ROLE,
    RunsModel,
    fmt_metric,
)

ALL = "All experiments"
FIRST_PAGE = 200
REFRESH_MS = 1500
DEFAULT_METRICS = 6  # metric columns shown before the user picks
COLUMN_WIDTHS = {"status": 104, "name": 200, "run_id": 80, "start_time": 146, "duration": 72}
TRAIN_JOB_KINDS = ("train", "train.reproduce")  # their runs are this panel's
TAB_OVERVIEW, TAB_CHARTS, TAB_EVALUATION, TAB_REPRODUCIBILITY, TAB_ARTIFACTS = range(5)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class _ExperimentsModel(RowsTableModel[Any]):
    headers = ("Experiment", "Runs")

    def cell(self, e: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (e[0], "" if e[1] is None else str(e[1]))[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return theme.icon("experiments")
        return None


class _KeyValueModel(RowsTableModel[tuple[str, str]]):
    headers = ("Key", "Value")

    def cell(self, kv: tuple[str, str], column: int, role: int) -> Any:
        return kv[column] if role == Qt.ItemDataRole.DisplayRole else None


class _ArtifactsModel(RowsTableModel[Any]):
    headers = ("Path", "Kind", "Size", "sha256")

    def cell(self, a: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (a.path, a.kind or "", _size(a.size or 0), a.sha256[:12])[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 3:
            return a.sha256
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ExperimentsPanel(Panel):
    title = "Experiments"
    icon_name = "experiments"
    empty_headline = "No experiments yet"
    empty_body = (
        "Runs you train here, and runs logged from scripts and notebooks with "
        "<code>modelyard.start_run()</code>, appear in this panel live, ready to compare and reproduce."
    )

    register_requested = Signal(str)  # a run id: "Register model…" (the window hands it to the Registry)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full: Any = None  # RunsTable of the selected experiments, every run
        self.view_table: Any = None  # after filter and sort
        self.sort_by: tuple[str, bool] | None = None
        self.filter_text = ""
        self.extra_columns: list[str] | None = None  # None: the defaults
        self.reader = BackgroundReader(self)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._live_refresh)
        self._filter_debounce = QTimer(self)
        self._filter_debounce.setSingleShot(True)
        self._filter_debounce.setInterval(200)
        self._filter_debounce.timeout.connect(self._apply_filter_text)
        self.plot: Any = None
        self.run: Any = None  # RunInfo of the run in the detail
        self.evaluation: Any = None  # EvaluationView, built on first show
        self.reproducibility: Any = None  # ReproducibilityView, built on first show
        self.train_dialog: Any = None
        self.form_reader: BackgroundReader | None = None  # loads model forms for the Train dialog
        self.compare_dialog: Any = None
        self.reproduction_dialog: Any = None
        self.reproductions: dict[int, str] = {}  # reproduce job id -> the run it reproduces
        self._select_when_shown: str | None = None
        self._relisting = False  # the experiments list is being replaced: a re-selection is not a choice
        self._reselecting = False  # the runs table was replaced: re-selecting the same run is not a choice
        self._detail_later = False  # a run selected for the user: load its detail in a later event
        self.empty_train_button = self.empty.add_action("Train a model…", lambda: self.open_train_dialog(),
                                                        icon_name="play")

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.experiments_model = _ExperimentsModel(self)
        self.experiments_view = QTableView(self)
        self.experiments_view.setObjectName("experimentsTable")
        self.experiments_view.setModel(self.experiments_model)
        self.experiments_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.experiments_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.experiments_view.verticalHeader().hide()
        self.experiments_view.setShowGrid(False)
        self.experiments_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.experiments_view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.experiments_view.selectionModel().currentRowChanged.connect(lambda *_: self._experiment_selected())

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("runFilter")
        self.filter_edit.setPlaceholderText('Filter runs: metrics.f1 > 0.8 and params.model = "random_forest" or tags.team in ("risk")')
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(lambda _t: self._filter_debounce.start())
        self.filter_error = QLabel(self)
        self.filter_error.setObjectName("filterError")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.filter_error.setFont(mono)
        self.filter_error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.filter_error.hide()
        self.columns_button = QToolButton(self)
        self.columns_button.setObjectName("columnsButton")
        self.columns_button.setText("Columns")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.columns_menu = QMenu(self)
        self.columns_button.setMenu(self.columns_menu)
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.clicked.connect(self.export_csv)
        self.train_button = QPushButton(theme.icon("play"), "Train…", self)
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train a model on a dataset version as a new run")
        self.train_button.clicked.connect(lambda: self.open_train_dialog())
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setObjectName("compareButton")
        self.compare_button.setToolTip("Select two or more runs to compare their parameters, metrics and curves")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(lambda: self.compare_runs())
        self.count_label = QLabel(self)
        self.count_label.setObjectName("runsCount")
        bar = QHBoxLayout()
        bar.addWidget(self.train_button)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.columns_button)
        bar.addWidget(self.export_button)

        self.runs_model = RunsModel(self)
        self.runs_view = QTableView(self)
        self.runs_view.setObjectName("runsTable")
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_view.setSortingEnabled(False)
        self.runs_view.horizontalHeader().setSectionsClickable(True)
        self.runs_view.horizontalHeader().setSortIndicatorShown(True)
        self.runs_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.runs_view.horizontalHeader().sectionClicked.connect(self._header_clicked)
        self.runs_view.verticalHeader().hide()
        self.runs_view.verticalHeader().setDefaultSectionSize(24)
        self.runs_view.setShowGrid(False)
        self.runs_view.setAlternatingRowColors(True)
        self.runs_view.setWordWrap(False)
        self.runs_view.horizontalHeader().setDefaultSectionSize(96)
        self.runs_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._run_selected(cur))
        self.runs_view.setDragEnabled(True)  # runs dropped on the Registry are registered there
        self.runs_view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.runs_view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.runs_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.runs_view.customContextMenuRequested.connect(self._context_menu)
        self.runs_view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

        # detail
        self.detail_title = QLabel("Select a run to see its parameters, metrics and curves.", self)
        self.detail_title.setObjectName("runDetailTitle")
        self.reproduce_button = QPushButton(theme.icon("refresh"), "Reproduce", self)
        self.reproduce_button.setObjectName("reproduceButton")
        self.reproduce_button.setEnabled(False)
        self.reproduce_button.setToolTip("Retrain this run from its recorded spec and data, and compare the metrics")
        self.reproduce_button.clicked.connect(lambda: self.reproduce_run())
        self.detail_tabs = QTabWidget(self)
        self.params_model = _KeyValueModel(self)
        self.metrics_model = _KeyValueModel(self)
        self.tags_model = _KeyValueModel(self)
        overview = QWidget(self)
        ol = QHBoxLayout(overview)
        ol.setContentsMargins(0, 0, 0, 0)
        for title, model in (("Parameters", self.params_model), ("Metrics", self.metrics_model), ("Tags", self.tags_model)):
            box = QVBoxLayout()
            label = QLabel(title, self)
            theme.make_heading(label, 1.0)
            view = QTableView(self)
            view.setObjectName(f"{title.lower()}Table")
            view.setModel(model)
            view.verticalHeader().hide()
            view.setShowGrid(False)
            view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            box.addWidget(label)
            box.addWidget(view)
            ol.addLayout(box)
        self.detail_tabs.addTab(overview, "Overview")
        self.chart_holder = QWidget(self)
        cl = QVBoxLayout(self.chart_holder)
        cl.setContentsMargins(0, 0, 0, 0)
        self.chart_controls = CurveControls(self, name_prefix="chart",
                                            smoothing_tip="Exponential moving average (0: the raw values; "
                                                          "the raw curve stays faint)")
        self.metric_combo = self.chart_controls.metric
        self.metric_combo.setObjectName("metricCombo")
        self.chart_x = self.chart_controls.x_axis
        self.chart_smoothing = self.chart_controls.smoothing
        self.chart_controls.changed.connect(self._draw_chart)
        cl.addWidget(self.chart_controls)
        self.detail_tabs.addTab(self.chart_holder, "Charts")
        self.evaluation_holder = QWidget(self)
        QVBoxLayout(self.evaluation_holder).setContentsMargins(0, 0, 0, 0)
        self.detail_tabs.addTab(self.evaluation_holder, "Evaluation")
        self.reproducibility_holder = QWidget(self)
        QVBoxLayout(self.reproducibility_holder).setContentsMargins(0, 0, 0, 0)
        self.detail_tabs.addTab(self.reproducibility_holder, "Reproducibility")
        self.artifacts_model = _ArtifactsModel(self)
        self.artifacts_view = QTableView(self)
        self.artifacts_view.setObjectName("artifactsTable")
        self.artifacts_view.setModel(self.artifacts_model)
        self.artifacts_view.verticalHeader().hide()
        self.artifacts_view.setShowGrid(False)
        self.artifacts_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            self.artifacts_view.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.detail_tabs.addTab(self.artifacts_view, "Artifacts")
        self.detail_tabs.currentChanged.connect(lambda _i: self._show_detail_tab())
        detail = QWidget(self)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, theme.SPACE_S, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.detail_title, 1)
        head.addWidget(self.reproduce_button)
        dl.addLayout(head)
        dl.addWidget(self.detail_tabs, 1)

        right_top = QWidget(self)
        rl = QVBoxLayout(right_top)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(theme.SPACE_S)
        rl.addLayout(bar)
        rl.addWidget(self.filter_error)
        rl.addWidget(self.runs_view, 1)
        rl.addWidget(self.count_label)
        vsplit = QSplitter(Qt.Orientation.Vertical, self)
        vsplit.addWidget(right_top)
        vsplit.addWidget(detail)
        vsplit.setSizes([320, 200])
        right = QWidget(self)
        rlay = QVBoxLayout(right)
        rlay.setContentsMargins(theme.SPACE_M, theme.SPACE_M, theme.SPACE_M, theme.SPACE_M)
        rlay.addWidget(vsplit)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        ll.addWidget(self.experiments_view)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([220, 980])
        return split

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.experiments_model.rowCount() > 1

    def refresh(self) -> None:
        if self.store is None:
            return
        from modelyard.core.experiments.tracking import list_experiments

        self._set_experiments([(e.name, e.runs) for e in list_experiments(store=self.store)])
        super().refresh()
        self.reload()
        self._timer.start()

    def _set_experiments(self, experiments: list[tuple[str, int]]) -> None:
        """Replace the experiments list (name, runs), keeping the selected one without reloading."""
        current = self._selected_experiment()
        rows = [(ALL, sum(n for _name, n in experiments))] + list(experiments)
        self._relisting = True
        try:
            self.experiments_model.set_rows(rows)
            names = [r[0] for r in rows]
            self.experiments_view.selectRow(names.index(current) if current in names else 0)
        finally:
            self._relisting = False
        if self._selected_experiment() != current and current is not None:
            self.reload()  # the selected experiment is gone: show all

    def _experiment_selected(self) -> None:
        if not self._relisting:
            self.reload()

    def _selected_experiment(self) -> str | None:
        idx = self.experiments_view.currentIndex() if hasattr(self, "experiments_view") else QModelIndex()
        return self.experiments_model.rows[idx.row()][0] if idx.isValid() else None

    def _experiment_ids(self) -> list[str] | None:
        name = self._selected_experiment()
        return None if name in (None, ALL) else [name]

    def reload(self) -> None:
        """The selected experiments' runs: the newest page first, then everything, both read on
        the reader's thread (with the filter and sort applied there too).

        Only while the panel is visible: reading runs loads pandas, which start-up must not pay
        for when the window opens on another panel (showEvent catches up).
        """
        if self.store is None:
            return
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        from modelyard.core.experiments.runquery import query_runs

        store, ids = self.store, self._experiment_ids()
        self.full = None
        self.reader.submit(self._in_background(lambda: query_runs(store, ids, limit=FIRST_PAGE)),
                           lambda result: self._page_loaded(result, store, ids), self._read_failed)

    def _page_loaded(self, result: tuple[Any, Any, Any], store: Any, ids: list[str] | None) -> None:
        from modelyard.core.experiments.runquery import query_runs

        self._show(*result)
        self.reader.submit(self._in_background(lambda: query_runs(store, ids)), self._full_loaded, self._read_failed)

    def _in_background(self, read: Any) -> Any:
        """``read`` (returning a RunsTable) wrapped to also filter, sort and prepare the visible
        columns on the reader's thread, as they are now; :meth:`_show` redoes it on the main
        thread only if the user changed them meanwhile."""
        key = (self.filter_text, self.sort_by, self.extra_columns)
        selected = self._current_run_id()

        def work() -> tuple[Any, Any, Any]:
            table = read()
            if isinstance(table, tuple):  # (table, extra) from the live refresh
                table, extra = table
            else:
                extra = None
            view = self._view_of(table, key[0], key[1])
            if view is not None:
                view.prepare(self._visible_columns(table, key[2]))
                if selected:
                    view.row_of(selected)
            return (table, (view, key), extra) if extra is not None else (table, (view, key))

        return work

    @staticmethod
    def _view_of(table: Any, filter_text: str, sort_by: tuple[str, bool] | None) -> Any:
        """``table`` filtered and sorted; None when the filter is not valid."""
        from modelyard.core.experiments.runquery import FilterError

        view = table
        try:
            if filter_text:
                view = view.filter(filter_text)
        except FilterError:
            return None
        if sort_by is not None and sort_by[0] in table.columns:
            view = view.sort(sort_by[0], ascending=sort_by[1])
        return view

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if getattr(self, "_stale", False):
            QTimer.singleShot(0, self, self.reload)  # with a context: dropped if the panel goes first

    def _full_loaded(self, result: tuple[Any, Any]) -> None:
        table, view = result
        self.full = table
        self._show(table, view)
        if not self.has_content() and len(table):
            self.refresh()

    def _read_failed(self, error: Exception) -> None:
        self.count_label.setText(f"Could not read the runs: {error}")

    def _live_refresh(self, *, force: bool = False) -> None:
        """Re-read what changed (and the experiments list) on the reader's thread. ``force``:
        even if a refresh is in flight (its answer is dropped: it may predate what we wait for)."""
        if self.store is None or self.full is None or (self.reader.busy and not force) or not self.isVisible():
            return
        from modelyard.core.experiments.tracking import list_experiments

        full, store = self.full, self.store

        def read() -> tuple[Any, list[tuple[str, int]]]:  # on the reader's thread: nothing here touches widgets
            return full.refresh(), [(e.name, e.runs) for e in list_experiments(store=store)]

        self.reader.submit(self._in_background(read), self._refreshed)

    def _refreshed(self, result: tuple[Any, Any, list[tuple[str, int]]]) -> None:
        table, view, experiments = result
        if experiments != self.experiments_model.rows[1:]:
            # a new experiment, or new runs: relist from what the reader read (no query here)
            shown = self._selected_experiment()
            self._set_experiments(experiments)
            super().refresh()  # the content instead of the empty state, once there is an experiment
            if self._selected_experiment() != shown:
                return  # the selected experiment went away: _set_experiments reloaded
        unchanged = table.shares_data_with(self.full)
        self.full = table
        if not unchanged:  # nothing written since the last look: keep the view as it is
            self._show(table, view)

    def _visible_columns(self, table: Any, extra_columns: Any = False) -> list[str]:
        chosen = self.extra_columns if extra_columns is False else extra_columns
        if chosen is not None:
            extra = [c for c in chosen if c in table.columns]
        else:
            extra = [c for c in table.columns if c.startswith("metrics.")][:DEFAULT_METRICS]
            extra += [c for c in table.columns if c.startswith("params.")][:6]
        return list(BASE_COLUMNS) + extra

    def _show(self, table: Any, prepared: tuple[Any, Any] | None = None) -> None:
        """Apply the filter and sort to ``table`` and show it, keeping the selected run.

        ``prepared``: (view, (filter, sort, columns)) computed on the reader's thread; used when
        the filter and sort are still those.
        """
        from modelyard.core.experiments.runquery import FilterError

        selected = self._current_run_id()
        view = None
        if prepared is not None and prepared[0] is not None and \
                prepared[1][:2] == (self.filter_text, self.sort_by):
            view = prepared[0]
        if view is None:
            view = table
            try:
                if self.filter_text:
                    view = view.filter(self.filter_text)
            except FilterError as exc:
                self._filter_failed(exc)
            if self.sort_by is not None and self.sort_by[0] in table.columns:
                view = view.sort(self.sort_by[0], ascending=self.sort_by[1])
        self.view_table = view
        columns = self._visible_columns(table)
        changed = columns != self.runs_model.columns
        self.runs_model.set_table(view, columns)
        if changed:
            header = self.runs_view.horizontalHeader()
            for i, name in enumerate(columns):
                header.resizeSection(i, COLUMN_WIDTHS.get(name, 96))
        total = len(table)
        shown = len(view)
        loading = "" if self.full is not None else " (loading the rest…)"
        self.count_label.setText(f"{shown:,} of {total:,} runs{loading}" if shown != total else f"{total:,} runs{loading}")
        if self._select_when_shown is not None:
            row = self.runs_model.row_of(self._select_when_shown)
            if row >= 0:
                self._select_when_shown = None
                self._detail_later = True  # the table first; the run's detail and chart in the next event
                try:
                    self.runs_view.selectRow(row)
                finally:
                    self._detail_later = False
                return
        if selected:
            row = self.runs_model.row_of(selected)
            if row >= 0:
                self._reselecting = True
                try:
                    self.runs_view.selectRow(row)
                finally:
                    self._reselecting = False
                return
        self._draw_chart()

    # ------------------------------------------------------------------ filter, sort, columns
    def _apply_filter_text(self) -> None:
        from modelyard.core.experiments.runquery import FilterError, parse_filter

        text = self.filter_edit.text().strip()
        try:
            parse_filter(text)
        except FilterError as exc:
            self._filter_failed(exc)
            return
        self.filter_error.hide()
        self.filter_edit.setStyleSheet("")
        self.filter_text = text
        table = self.full if self.full is not None else self.runs_model.table
        if table is not None:
            self._show(table)

    def _filter_failed(self, exc: ModelyardError) -> None:
        self.filter_error.setText(str(exc.message))
        self.filter_error.show()
        self.filter_edit.setStyleSheet(f"border: 1px solid {theme.status_colour('failed').name()}")

    def _header_clicked(self, section: int) -> None:
        name = self.runs_model.columns[section]
        ascending = not (self.sort_by == (name, True))
        self.sort_by = (name, ascending)
        self.runs_view.horizontalHeader().setSortIndicator(
            section, Qt.SortOrder.AscendingOrder if ascending else Qt.SortOrder.DescendingOrder)
        table = self.full if self.full is not None else self.runs_model.table
        if table is not None:
            self._show(table)

    def _fill_columns_menu(self) -> None:
        self.columns_menu.clear()
        table = self.full if self.full is not None else self.runs_model.table
        if table is None:
            return
        shown = set(self.runs_model.columns)
        for kind in ("metrics", "params", "tags"):
            keys = [c for c in table.columns if c.startswith(kind + ".")]
            if not keys:
                continue
            self.columns_menu.addSection(kind.capitalize())
            for key in keys:
                action = QAction(key.split(".", 1)[1], self.columns_menu)
                action.setCheckable(True)
                action.setChecked(key in shown)
                action.toggled.connect(lambda on, k=key: self.set_column_visible(k, on))
                self.columns_menu.addAction(action)

    def set_column_visible(self, column: str, visible: bool) -> None:
        current = [c for c in self.runs_model.columns if c not in BASE_COLUMNS]
        if visible and column not in current:
            current.append(column)
        if not visible and column in current:
            current.remove(column)
        self.extra_columns = current
        table = self.full if self.full is not None else self.runs_model.table
        if table is not None:
            self._show(table)

    # ------------------------------------------------------------------ detail
    def _current_run_id(self) -> str | None:
        if not hasattr(self, "runs_view"):
            return None
        idx = self.runs_view.currentIndex()
        return idx.data(RUN_ID_ROLE) if idx.isValid() else None

    def selected_run_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.runs_view.selectionModel().selectedRows()})
        return [self.runs_model.run_id(r) for r in rows]

    def _run_selected(self, index: QModelIndex) -> None:
        if not index.isValid() or self.store is None:
            return
        if self._reselecting and self.run is not None and self.run.id == index.data(RUN_ID_ROLE) \
                and self.run.status != "running" and self.run.status == str(self.runs_model.table.cell(
                    "status", index.row())):
            return  # the same finished run after a live refresh: its detail (and chart) still hold
        if self._detail_later:
            run_id = index.data(RUN_ID_ROLE)
            QTimer.singleShot(0, self, lambda: self._detail_of(run_id))
            return
        from modelyard.core.experiments.tracking import get_run

        try:
            run = get_run(index.data(RUN_ID_ROLE), store=self.store)
        except ModelyardError:
            return
        self.run = run
        colour = theme.status_colour(run.status).name()
        self.detail_title.setText(f"<b>{run.name or run.id[:8]}</b> · {run.experiment} · "
                                  f"<span style='color:{colour}'>{run.status}</span> · {run.id}")
        ok, why = self.can_reproduce(run)
        self.reproduce_button.setEnabled(ok)
        self.reproduce_button.setToolTip(why)
        self.artifacts_model.set_rows(list(run.artifacts))
        self.params_model.set_rows(sorted((k, str(v)) for k, v in run.params.items()))
        self.metrics_model.set_rows(sorted((k, fmt_metric(v)) for k, v in run.metrics.items()))
        self.tags_model.set_rows(sorted((k, str(v)) for k, v in run.tags.items()))
        current = self.metric_combo.currentText()
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(sorted(run.metrics))
        if current in run.metrics:
            self.metric_combo.setCurrentText(current)
        self.metric_combo.blockSignals(False)
        self._show_detail_tab()

    def _detail_of(self, run_id: str) -> None:
        row = self.runs_model.row_of(run_id)
        if row >= 0 and self._current_run_id() == run_id:
            self._run_selected(self.runs_model.index(row, 0))

    def _show_detail_tab(self) -> None:
        """Draw the current detail tab for the current run (the heavier tabs only when shown)."""
        if not hasattr(self, "detail_tabs"):
            return
        tab = self.detail_tabs.currentIndex()
        if tab == TAB_CHARTS:
            self._draw_chart()
        elif tab == TAB_EVALUATION and self.run is not None and self.store is not None:
            if self.evaluation is None:
                from modelyard.ui.experiments.evaluation import EvaluationView

                self.evaluation = EvaluationView(self.evaluation_holder)
                self.evaluation_holder.layout().addWidget(self.evaluation)
                self.evaluation.show()
            self.evaluation.show_run(self.store, self.run)
        elif tab == TAB_REPRODUCIBILITY and self.run is not None and self.store is not None:
            if self.reproducibility is None:
                from modelyard.ui.experiments.evaluation import ReproducibilityView

                self.reproducibility = ReproducibilityView(self.reproducibility_holder)
                self.reproducibility_holder.layout().addWidget(self.reproducibility)
                self.reproducibility.show()
            self.reproducibility.show_run(self.store, self.run)

    def _draw_chart(self) -> None:
        if self.store is None or not hasattr(self, "detail_tabs") or self.detail_tabs.currentIndex() != TAB_CHARTS:
            return
        run_id, key = self._current_run_id(), self.metric_combo.currentText()
        if not run_id or not key:
            return
        if self.plot is None:
            import pyqtgraph as pg

            self.plot = pg.PlotWidget(self.chart_holder)
            self.plot.setObjectName("metricPlot")
            self.plot.setBackground(self.palette().color(self.palette().ColorRole.Base))
            self.plot.showGrid(x=True, y=True, alpha=0.25)
            self.plot.setMenuEnabled(False)
            for side in ("left", "bottom"):
                self.plot.getAxis(side).enableAutoSIPrefix(False)  # 0.95, not "950 (x0.001)"
            self.chart_holder.layout().addWidget(self.plot, 1)
        from modelyard.core.experiments.tracking import metric_history

        steps, times, values = metric_history(run_id, key, store=self.store, as_numpy=True)
        self.plot.clear()
        import pyqtgraph as pg

        by_time = self.chart_x.currentIndex() == 1
        xs = (times - times[0]) / 1000.0 if by_time and len(times) else steps
        colour = self.palette().color(self.palette().ColorRole.Highlight)
        weight = self.chart_smoothing.value()
        if weight > 0 and len(values) > 1:
            from modelyard.ui.experiments.compare import smooth

            faint = QColor(colour)
            faint.setAlpha(70)
            raw = self.plot.plot(xs, values, pen=pg.mkPen(faint, width=1))
            raw.setDownsampling(auto=True, method="peak")
            raw.setClipToView(True)
            values = smooth(values, weight)
        item = self.plot.plot(xs, values, pen=pg.mkPen(colour, width=2),
                              symbol="o" if len(values) < 60 else None, symbolSize=5)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        self.plot.setLabel("bottom", "time (s)" if by_time else "step")
        self.plot.setLabel("left", key)

    # ------------------------------------------------------------------ actions
    def _context_menu(self, pos: Any) -> None:
        ids = self.selected_run_ids()
        if not ids:
            return
        menu = self.context_menu(ids)
        menu.exec(self.runs_view.viewport().mapToGlobal(pos))

    def context_menu(self, ids: list[str]) -> QMenu:
        """The runs' actions: reproduce (one run), compare (two or more), move to the trash."""
        menu = QMenu(self)
        menu.setObjectName("runsContextMenu")
        if len(ids) == 1:
            reproduce = menu.addAction(theme.icon("refresh"), "Reproduce")
            reproduce.setObjectName("reproduceAction")
            run = self.run if self.run is not None and self.run.id == ids[0] else None
            if run is None and self.store is not None:
                from modelyard.core.experiments.tracking import get_run

                run = get_run(ids[0], store=self.store)
            ok, why = self.can_reproduce(run)
            reproduce.setEnabled(ok)
            reproduce.setToolTip(why)
            reproduce.triggered.connect(lambda: self.reproduce_run(ids[0]))
            register = menu.addAction(theme.icon("registry"), "Register model…")
            register.setObjectName("registerAction")
            has_model = run is not None and any(a.path == MODEL_PATH for a in run.artifacts)
            register.setEnabled(has_model)
            register.setToolTip("Register this run's model as a new version in the Registry" if has_model
                                else "This run logged no model (run.log_model), so there is nothing to register.")
            register.triggered.connect(lambda: self.register_requested.emit(ids[0]))
        if len(ids) >= 2:
            compare = menu.addAction(f"Compare {len(ids)} runs")
            compare.setObjectName("compareAction")
            compare.triggered.connect(lambda: self.compare_runs(ids))
        menu.addSeparator()
        delete = menu.addAction(theme.icon("trash"), f"Move {len(ids)} run{'s' if len(ids) > 1 else ''} to the trash")
        delete.triggered.connect(lambda: self.delete_runs(ids))
        menu.setToolTipsVisible(True)
        return menu

    def _selection_changed(self) -> None:
        n = len(self.runs_view.selectionModel().selectedRows())
        self.compare_button.setEnabled(n >= 2)
        self.compare_button.setText(f"Compare {n}" if n >= 2 else "Compare")

    # ------------------------------------------------------------------ training, reproducing, comparing
    def open_train_dialog(self, dataset_ref: str | int | None = None) -> Any:
        """Open the Train dialog (window-modal, not blocking); its Train button starts the job."""
        if self.store is None:
            return None
        from modelyard.core.datasets import catalog
        from modelyard.ui.experiments.train_dialog import TrainDialog

        if not catalog.list_datasets(self.store):
            show_error(self, "Nothing to train on", ModelyardError(
                "There are no datasets in this store yet.",
                hint="Import a file (File › Import Dataset) or a sample in the Datasets panel, then train on it."))
            return None
        if dataset_ref is None:
            experiment = self._selected_experiment()
            names = {d.name for d in catalog.list_datasets(self.store)}
            dataset_ref = experiment if experiment in names else None
        if self.form_reader is None:
            self.form_reader = BackgroundReader(self)  # outlives the dialogs: closing one never waits
        dialog = TrainDialog(self.store, self, dataset_ref=dataset_ref, reader=self.form_reader)
        dialog.accepted.connect(self._train_accepted)
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.train_dialog = dialog
        dialog.open()
        return dialog

    def _train_accepted(self) -> None:
        from modelyard.core.experiments.training.spec import train_spec_job

        dialog = self.train_dialog
        if dialog is None:
            return
        try:
            spec = dialog.spec()
        except ModelyardError as exc:
            show_error(self, "Cannot train", exc)
            return
        self.start_job(train_spec_job(spec))

    @staticmethod
    def can_reproduce(run: Any) -> tuple[bool, str]:
        """Whether a run can be retrained from its record, and why not."""
        if run is None:
            return False, "Select a run."
        if run.status == "running":
            return False, "The run is still running; reproduce it once it has finished."
        if not run.spec or "model" not in run.spec:
            if run.parent_id and "search_trial" in run.tags:
                return False, "A search trial is reproduced through its search: select the search's run."
            return False, "This run was not trained by Modelyard (perhaps logged from a script): there is no spec to retrain."
        return True, "Retrain this run from its recorded spec and data, and compare the metrics"

    def reproduce_run(self, run_id: str | None = None) -> JobHandle | None:
        from modelyard.core.experiments.training.reproduce import reproduce_spec

        run_id = run_id or (self.run.id if self.run is not None else None)
        if run_id is None or self.store is None:
            return None
        handle = self.start_job(reproduce_spec(run_id, source="gui"))
        self.reproductions[handle.job_id] = run_id
        return handle

    def compare_runs(self, run_ids: list[str] | None = None) -> Any:
        from modelyard.ui.experiments.compare import CompareDialog

        ids = run_ids or self.selected_run_ids()
        if len(ids) < 2 or self.store is None:
            return None
        try:
            dialog = CompareDialog(self.store, ids, self)
        except ModelyardError as exc:
            show_error(self, "Cannot compare", exc)
            return None
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.compare_dialog = dialog
        dialog.show()
        return dialog

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        """A training or reproduce job ended (the runner has ended the runs a killed job left): show its runs."""
        if handle is None or handle.spec.kind not in TRAIN_JOB_KINDS or self.store is None:
            return
        reproduced = self.reproductions.pop(outcome.job_id, None)
        result = outcome.result or {}
        if outcome.ok and handle.spec.kind == "train" and result.get("run_id"):
            self._select_when_shown = str(result["run_id"])
        if self.full is not None and self.isVisible():
            self._live_refresh(force=True)  # relist and re-read what changed, on the reader's thread
        else:
            self.refresh()
        if self.run is not None and self._select_when_shown is None:
            self._run_selected(self.runs_view.currentIndex())  # its status may have changed
        if outcome.ok and handle.spec.kind == "train.reproduce":
            self.show_reproduction(result)
        elif outcome.status == "failed":
            what = "reproduce the run" if reproduced or handle.spec.kind == "train.reproduce" else "train"
            show_error(self, f"Could not {what}", ModelyardError(outcome.error or "The job failed.", hint=None))

    def show_reproduction(self, result: dict[str, Any]) -> Any:
        from modelyard.ui.experiments.evaluation import ReproductionDialog

        dialog = ReproductionDialog(result, self)
        dialog.show_run_requested.connect(self.select_run)
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.reproduction_dialog = dialog
        dialog.show()
        return dialog

    def select_run(self, run_id: str) -> None:
        """Select ``run_id`` in the table (once it is loaded)."""
        row = self.runs_model.row_of(run_id)
        if row >= 0:
            self.runs_view.selectRow(row)
        else:
            self._select_when_shown = run_id

    def delete_runs(self, run_ids: list[str]) -> None:
        from modelyard.core.experiments.tracking import delete_run

        for run_id in run_ids:
            delete_run(run_id, store=self.store)
        self.reload()

    def export_csv(self, path: str | None = None) -> str | None:
        if self.view_table is None:
            return None
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export runs", "runs.csv", "CSV files (*.csv)")
            if not path:
                return None
        try:
            self.view_table.frame.to_csv(path, index=False)
        except OSError as exc:
            show_error(self, "Cannot export", ModelyardError(f"Cannot write {path}: {exc.strerror}."))
            return None
        return path

    def shutdown(self) -> None:
        self._timer.stop()
        self.reader.close()
        if self.form_reader is not None:
            self.form_reader.close()
