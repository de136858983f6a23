"""The Experiments panel: experiments, a live runs table with filter and columns, and run detail."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import rights, theme
from modelyard.ui.common.background import BackgroundReader
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.keyed_rows import KeyedRowsModel
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import ActionBar, push_button, show_error
from modelyard.ui.experiments.run_actions import RunActions
from modelyard.ui.experiments.run_detail import (  # noqa: F401 - the tab numbers are part of the panel's API
    TAB_ARTIFACTS,
    TAB_CHARTS,
    TAB_EVALUATION,
    TAB_OVERVIEW,
    TAB_REPRODUCIBILITY,
    RunDetail,
)
from modelyard.ui.experiments.runs_table import BASE_COLUMNS, RunsModel, header_title

ALL = "All experiments"
FIRST_PAGE = 200
REFRESH_MS = 1500
DEFAULT_METRICS = 6  # metric columns shown before the user picks
COLUMN_WIDTHS = {"status": 104, "name": 240, "run_id": 80, "start_time": 160, "duration": 80}
TICK_MS = 1000  # a running run's duration counts up this often
TRAIN_JOB_KINDS = ("train", "train.reproduce")  # their runs are this panel's
REFRESH_ON = frozenset({"runs", "store"})  # change topics this panel shows


class _ExperimentsModel(KeyedRowsModel[Any]):
    headers = ("Experiment", "Runs")

    def key(self, row: Any) -> Any:
        return row[0]

    def cell(self, e: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (e[0], "" if e[1] is None else str(e[1]))[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            return e[0]
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return theme.icon("experiments")
        return None


class ExperimentsPanel(RunDetail, RunActions, Panel):
    title = "Experiments"
    icon_name = "experiments"
    empty_headline = "No experiments yet"
    empty_body = (
        "Runs you train here, and runs logged from scripts and notebooks with "
        "<code>modelyard.start_run()</code>, appear in this panel live, ready to compare and reproduce."
    )

    # kept for the window's connection; "Register model…" now asks the window through
    # client.navigate("registry", ("register_run", run_id))
    register_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full: Any = None  # RunsTable of the selected experiments, every run
        self.view_table: Any = None  # after filter and sort
        self.sort_by: tuple[str, bool] | None = None
        self.filter_text = ""
        self.extra_columns: list[str] | None = None  # None: the defaults
        self._reading = False  # a read of the runs is in flight
        self._again = False  # runs changed while it was: refresh once it has landed
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
        self._switched = False  # the user chose another experiment: the detail follows the new table
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._tick_running)
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
        self.experiments_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.experiments_view.setWordWrap(False)
        self.experiments_view.setMinimumWidth(150)
        self.experiments_view.selectionModel().currentRowChanged.connect(lambda *_: self._experiment_selected())

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("runFilter")
        self.filter_edit.setPlaceholderText('Filter runs: metrics.f1 > 0.8 and params.model = "random_forest" or tags.team in ("risk")')
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip('Filter runs, e.g. metrics.f1 > 0.8 and params.model = "random_forest" '
                                    'or tags.team in ("risk")')
        self.filter_edit.textChanged.connect(lambda _t: self._filter_debounce.start())
        self.filter_error = QLabel(self)
        self.filter_error.setObjectName("filterError")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.filter_error.setFont(mono)
        self.filter_error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.filter_error.hide()
        self.columns_button = QPushButton("Columns", self)
        self.columns_button.setObjectName("columnsButton")
        self.columns_button.setToolTip("Choose the metric, parameter and tag columns")
        self.columns_menu = QMenu(self)
        self.columns_button.setMenu(self.columns_menu)
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        self.export_button = push_button(self, "Export CSV…", lambda: self.export_csv(), name="exportRunsButton",
                                         tip="Write the shown runs (filtered and sorted) to a CSV file")
        self.train_button = push_button(self, "Train…", lambda: self.open_train_dialog(), name="trainButton",
                                        icon="play", tip="Train a model on a dataset version as a new run")
        self.compare_button = push_button(self, "Compare", lambda: self.compare_runs(), name="compareButton",
                                          enabled=False,
                                          tip="Select two or more runs to compare their parameters, metrics and curves")
        self.register_button = push_button(self, "Register model…", lambda: self.register_selected(),
                                           name="registerRunButton", icon="registry",
                                           tip="Register the selected run's model as a new version in the Registry")
        self.register_best_button = push_button(self, "Register best", lambda: self.register_best(),
                                                name="registerBestButton", icon="registry",
                                                tip="Register the model of the search's best trial (★) in the Registry")
        rights.guard("write", self.train_button, self.register_button, self.register_best_button)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("runsCount")
        self.filter_edit.setMinimumWidth(160)
        for button in (self.train_button, self.register_button, self.register_best_button, self.compare_button,
                       self.columns_button, self.export_button):  # as wide as their text: the filter takes the rest
            button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.actions_bar = ActionBar(self)
        self.actions_bar.add(self.train_button, priority=3)
        self.actions_bar.add(self.register_button, priority=2)
        self.actions_bar.add(self.register_best_button, priority=2)
        self.actions_bar.add(self.compare_button, priority=1)
        self.actions_bar.add(self.columns_button)
        self.actions_bar.add(self.export_button)
        self.actions_bar.layout().insertStretch(0, 1)  # the buttons keep right; the room left is the filter's
        self.actions_bar.set_button_hidden(self.register_button, True)
        self.actions_bar.set_button_hidden(self.register_best_button, True)
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.actions_bar)

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
        self.runs_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # names and ids keep both ends; tooltips the whole
        self.runs_view.viewport().installEventFilter(self)  # a click on a search's arrow shows or hides its trials
        self.runs_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._run_selected(cur))
        self.runs_view.setDragEnabled(True)  # runs dropped on the Registry are registered there
        self.runs_view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.runs_view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.runs_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.runs_view.customContextMenuRequested.connect(self._context_menu)
        self.runs_view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

        self.detail = self._build_detail()
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
        vsplit.addWidget(self.detail)
        vsplit.setSizes([280, 240])
        vsplit.setStretchFactor(0, 3)  # the table first when the window is short
        vsplit.setStretchFactor(1, 2)
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
        split.setStretchFactor(0, 1)  # the runs get most of the room a wider window adds
        split.setStretchFactor(1, 4)
        split.setCollapsible(0, False)
        return split

    def _run_loaded(self, run: Any) -> None:
        """The detail shows ``run``: say so to the other rooms (their next step defaults to it)."""
        super()._run_loaded(run)
        if self.client is not None:
            self.client.select("run", run.id)
        self._update_run_buttons()

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.experiments_model.rowCount() > 1

    def on_changed(self, topics: frozenset[str]) -> None:
        """Runs changed: re-read only what changed when the whole table is loaded (the live
        refresh), else everything; another store: everything."""
        if "store" in topics or (topics & REFRESH_ON and self.full is None):
            self.refresh()
        elif topics & REFRESH_ON and self._reading:
            # another process writing runs notifies several times a second (core/store/live.py):
            # one refresh after the read in flight, not a pile of overlapping ones
            self._again = True
        elif topics & REFRESH_ON:
            self._live_refresh(force=True)

    def refresh(self) -> None:
        """Re-read the experiments list, then the selected experiments' runs (all off the main thread)."""
        if self.store is None or self.client is None:
            return
        from modelyard.core.experiments.tracking import list_experiments

        self.client.read("experiments.list", lambda store: [(e.name, e.runs) for e in list_experiments(store=store)],
                         self._experiments_loaded, self._read_failed)

    def _experiments_loaded(self, experiments: list[tuple[str, int]]) -> None:
        self._set_experiments(experiments)
        super().refresh()
        self.reload()
        self._timer.start()

    def _set_experiments(self, experiments: list[tuple[str, int]]) -> None:
        """Replace the experiments list (name, runs), keeping the selected one without reloading."""
        current = self._selected_experiment()
        rows = [(ALL, sum(n for _name, n in experiments))] + list(experiments)
        self._relisting = True
        try:
            self.experiments_model.update_rows(rows)  # by name: the selection stays
            names = [r[0] for r in rows]
            self.experiments_view.selectRow(names.index(current) if current in names else 0)
        finally:
            self._relisting = False
        if self._selected_experiment() != current and current is not None:
            self.reload()  # the selected experiment is gone: show all

    def _experiment_selected(self) -> None:
        if not self._relisting:
            self._switched = True  # the run in the detail belongs to the experiment left behind
            self.reload()

    def _selected_experiment(self) -> str | None:
        idx = self.experiments_view.currentIndex() if hasattr(self, "experiments_view") else QModelIndex()
        return self.experiments_model.rows[idx.row()][0] if idx.isValid() else None

    def _experiment_ids(self) -> list[str] | None:
        name = self._selected_experiment()
        return None if name in (None, ALL) else [name]

    # ------------------------------------------------------------------ reading runs
    def _read_runs(self, read: Any, on_result: Any) -> None:
        """``read(store)`` (a RunsTable, or (table, experiments)) on a reading thread, filtered,
        sorted and prepared there too (:meth:`_in_background`); the newest read wins."""
        if self.client is None:
            return
        self._reading = True

        def done(result: Any) -> None:
            self._reading = False
            on_result(result)
            if self._again:
                self._again = False
                self._live_refresh()

        def failed(error: Exception) -> None:
            self._reading = False
            self._read_failed(error)

        self.client.read("experiments.runs", self._in_background(read), done, failed)

    def reload(self) -> None:
        """The selected experiments' runs: the newest page first, then everything, both read off
        the main thread (with the filter and sort applied there too).

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

        ids = self._experiment_ids()
        self.full = None
        self._read_runs(lambda store: query_runs(store, ids, limit=FIRST_PAGE),
                        lambda result: self._page_loaded(result, ids))

    def _page_loaded(self, result: tuple[Any, Any], ids: list[str] | None) -> None:
        from modelyard.core.experiments.runquery import query_runs

        self._show(*result)
        self._read_runs(lambda store: query_runs(store, ids), self._full_loaded)

    def _in_background(self, read: Any) -> Any:
        """``read`` (returning a RunsTable) wrapped to also filter, sort and prepare the visible
        columns on the reading thread, as they are now; :meth:`_show` asks again if the user
        changed them meanwhile."""
        key = (self.filter_text, self.sort_by, self.extra_columns)
        selected = self._current_run_id()

        def work(store: Any) -> tuple[Any, ...]:
            table = read(store)
            if isinstance(table, tuple):  # (table, experiments) from the live refresh
                table, extra = table
            else:
                extra = None
            prepared = self._prepare(table, key, selected)
            return (table, prepared, extra) if extra is not None else (table, prepared)

        return work

    @classmethod
    def _prepare(cls, table: Any, key: tuple[Any, Any, Any], selected: str | None) -> tuple[Any, Any, Any, Any]:
        """(view, key, filter error, nesting) of ``table`` for ``key`` = (filter, sort, columns):
        runs on a reading thread, never on the main one. A search's trials follow it (nest)."""
        from modelyard.core.experiments.runquery import FilterError, nest

        filter_text, sort_by, columns = key
        view = table
        try:
            if filter_text:
                view = view.filter(filter_text)
        except FilterError as exc:
            view, error = table, exc  # the table unfiltered, and the error to show
        else:
            error = None
        if sort_by is not None and sort_by[0] in table.columns:
            view = view.sort(sort_by[0], ascending=sort_by[1])
        view, nesting = nest(view)
        view.prepare([*cls._columns_of(table, columns), "parent_run_id", "tags.best_trial_run_id"])
        if selected:
            view.row_of(selected)
        return view, key, error, nesting

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if hasattr(self, "filter_edit"):  # the filter keeps room for an expression; buttons go to More first
            self.filter_edit.setMinimumWidth(max(160, min(420, int(self.width() * 0.3))))

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if getattr(self, "_stale", False):
            QTimer.singleShot(0, self, self.reload)  # with a context: dropped if the panel goes first

    def _full_loaded(self, result: tuple[Any, Any]) -> None:
        table, prepared = result
        self.full = table
        self._show(table, prepared)
        if not self.has_content() and len(table):
            self.refresh()

    def _read_failed(self, error: Exception) -> None:
        self.count_label.setText(f"Could not read the runs: {error}")

    def _live_refresh(self, *, force: bool = False) -> None:
        """Re-read what changed (and the experiments list) off the main thread. ``force``: even if
        a read is in flight (its answer is dropped: it may predate what we wait for)."""
        if self.store is None or self.full is None or (self._reading and not force) or not self.isVisible():
            return
        from modelyard.core.experiments.tracking import list_experiments

        full = self.full

        def read(store: Any) -> tuple[Any, list[tuple[str, int]]]:  # off the main thread: no widgets here
            return full.refresh(), [(e.name, e.runs) for e in list_experiments(store=store)]

        self._read_runs(read, self._refreshed)

    def _refreshed(self, result: tuple[Any, Any, list[tuple[str, int]]]) -> None:
        table, prepared, experiments = result
        if experiments != self.experiments_model.rows[1:]:
            # a new experiment, or new runs: relist from what was read (no query here)
            shown = self._selected_experiment()
            self._set_experiments(experiments)
            super().refresh()  # the content instead of the empty state, once there is an experiment
            if self._selected_experiment() != shown:
                return  # the selected experiment went away: _set_experiments reloaded
        unchanged = table.shares_data_with(self.full)
        self.full = table
        if not unchanged:  # nothing written since the last look: keep the view as it is
            self._show(table, prepared)

    @staticmethod
    def _columns_of(table: Any, chosen: list[str] | None) -> list[str]:
        """The shown columns: the chosen ones, else the runs' primary metrics first (a
        regression's r2 and rmse, a classification's accuracy and f1...) and a few params."""
        if chosen is not None:
            extra = [c for c in chosen if c in table.columns]
        else:
            from modelyard.core.experiments.runquery import metric_order

            extra = metric_order(table)[:DEFAULT_METRICS]
            extra += [c for c in table.columns if c.startswith("params.")][:6]
        # the metrics right after the run's name (on screen in a narrow window), then when, then the rest
        metrics = [c for c in extra if c.startswith("metrics.")]
        return ["status", "name", *metrics, "start_time", "duration", "run_id",
                *(c for c in extra if c not in metrics)]

    def _visible_columns(self, table: Any) -> list[str]:
        return self._columns_of(table, self.extra_columns)

    def _show(self, table: Any, prepared: tuple[Any, Any, Any, Any]) -> None:
        """Show ``prepared`` = (view, key, filter error, nesting), computed off the main thread
        from ``table``; if the filter or sort changed meanwhile, ask for them again instead."""
        view, key, error, nesting = prepared
        if key[:2] != (self.filter_text, self.sort_by):
            self._reshow(table)
            return
        if error is not None:
            self._filter_failed(error)
        self._display(table, view, nesting)

    def _reshow(self, table: Any = None) -> None:
        """Filter and sort the loaded runs again, off the main thread, then show them."""
        table = table if table is not None else (self.full if self.full is not None else self.runs_model.table)
        if table is None or self.client is None:
            return
        key = (self.filter_text, self.sort_by, self.extra_columns)
        selected = self._current_run_id()

        def shown(prepared: tuple[Any, Any, Any, Any]) -> None:
            if table is (self.full if self.full is not None else self.runs_model.table) or self.full is None:
                self._show(table, prepared)

        self.client.read("experiments.view", lambda _store: self._prepare(table, key, selected), shown,
                         self._read_failed)

    def _display(self, table: Any, view: Any, nesting: Any = None) -> None:
        """Put ``view`` (``table`` filtered and sorted) in the runs table, keeping the selected
        runs (those still shown) and the collapsed searches.

        A model reset, not an update by key: a refresh that finds anything new is a new RunsTable
        (its frame, filter and order recomputed), and diffing up to 100,000 rows on the main
        thread would cost more than the reset; the selected runs are selected again by their ids.
        """
        selected = self._current_run_id()
        chosen = self._visible_selected_ids()
        self.view_table = view
        self._nesting = nesting
        columns = self._visible_columns(table)
        changed = columns != self.runs_model.columns
        self.runs_model.set_table(view, columns, nesting)
        self._hide_collapsed()
        if changed:
            self._fit_columns(columns)
        total = len(table)
        shown = len(view)
        loading = "" if self.full is not None else " (loading the rest…)"
        self.count_label.setText(f"{shown:,} of {plural(total, 'run')}{loading}" if shown != total
                                 else f"{plural(total, 'run')}{loading}")
        if self.runs_model.running_rows():
            self._tick.start()
        else:
            self._tick.stop()
        try:
            if self._select_when_shown is not None:
                row = self.runs_model.row_of(self._select_when_shown)
                if row >= 0:
                    self._select_when_shown = None
                    self._detail_later = True  # the table first; the run's detail and chart in the next event
                    try:
                        self._select_row(row)
                    finally:
                        self._detail_later = False
                    return
            if selected and self.runs_model.row_of(selected) >= 0:
                self._reselecting = True
                try:
                    self._select_row(self.runs_model.row_of(selected))
                    self._reselect(chosen, keep=selected)
                finally:
                    self._reselecting = False
                return
            if self._switched or (self.run is not None and self.runs_model.row_of(self.run.id) < 0
                                  and self.full is not None and table.row_of(self.run.id) < 0):
                # another experiment (or the run left the store): the detail shows a run of this table, or none
                if shown:
                    self._select_row(0)
                    return
                self._clear_detail()
            self._draw_chart()
        finally:
            if self.full is not None:  # the whole table of the experiment chosen is shown
                self._switched = False
            self._selection_changed()

    def _fit_columns(self, columns: list[str]) -> None:
        """Each column as wide as its header's text (never clipped), metric cells' "mean ± std" included."""
        header = self.runs_view.horizontalHeader()
        metrics = header.fontMetrics()
        pad = 2 * header.style().pixelMetric(header.style().PixelMetric.PM_HeaderMargin) + 24  # the sort arrow
        model = self.runs_model
        for i, name in enumerate(columns):
            width = COLUMN_WIDTHS.get(name, 96)
            if name == "name" and model.nesting is not None and model.nesting.searched:
                # a search's row names what was searched: room for it (the tooltip has it all)
                width = max([width] + [metrics.horizontalAdvance(model._name(r)) + 24
                                       for r in list(model.nesting.searched)[:50]])
            if name not in COLUMN_WIDTHS:
                width = max(width, metrics.horizontalAdvance(header_title(name)) + pad)
                if name.startswith("metrics.") and self.runs_model._folds(name):
                    width = max(width, metrics.horizontalAdvance("0.000 ± 0.000") + 16)
            header.resizeSection(i, min(width, 400 if name == "name" else 260))

    def _select_row(self, row: int) -> None:
        """Select ``row`` (shown first if it is the trial of a collapsed search)."""
        parent = self.runs_model.parent_row(row)
        if parent >= 0 and self.runs_model.run_id(parent) in self.runs_model.collapsed:
            self.set_trials_shown(self.runs_model.run_id(parent), True)
        self.runs_view.selectRow(row)

    def _reselect(self, run_ids: list[str], keep: str) -> None:
        """Add the other runs that were selected (and are still shown) to the selection."""
        from PySide6.QtCore import QItemSelectionModel

        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        model = self.runs_view.selectionModel()
        for run_id in run_ids:
            row = self.runs_model.row_of(run_id)
            if run_id != keep and row >= 0 and not self.runs_view.isRowHidden(row):
                model.select(self.runs_model.index(row, 0), flags)

    def _clear_detail(self) -> None:
        """Nothing in the detail (the experiment shown has no runs)."""
        self.run = None
        self.detail_title.setText("Select a run to see its parameters, metrics and curves.")
        for model in (self.params_model, self.metrics_model, self.tags_model, self.artifacts_model):
            model.set_rows([])
        self.reproduce_button.setEnabled(False)
        if self.client is not None:
            self.client.select("run", None)
        self._update_run_buttons()

    # ------------------------------------------------------------------ filter, sort, columns
    def _apply_filter_text(self) -> None:
        from modelyard.core.experiments.runquery import FilterError, parse_filter

        text = self.filter_edit.text().strip()
        try:
            parse_filter(text)  # parsing only (pure, bounded): the filter itself runs off the main thread
        except FilterError as exc:
            self._filter_failed(exc)
            return
        self.filter_error.hide()
        self.filter_edit.setStyleSheet("")
        self.filter_text = text
        self._reshow()

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
        self._reshow()

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
        """Show or hide a column (the rows stay: no filter or sort runs again)."""
        current = [c for c in self.runs_model.columns if c not in BASE_COLUMNS]
        if visible and column not in current:
            current.append(column)
        if not visible and column in current:
            current.remove(column)
        self.extra_columns = current
        table = self.full if self.full is not None else self.runs_model.table
        if table is not None and self.view_table is not None:
            self._display(table, self.view_table, getattr(self, "_nesting", None))

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        """A training or reproduce job ended (the runner has ended the runs a killed job left): show its runs."""
        if handle is None or handle.spec.kind not in TRAIN_JOB_KINDS or self.store is None:
            return
        reproduced = self.reproductions.pop(outcome.job_id, None)
        result = outcome.result or {}
        if outcome.ok and handle.spec.kind == "train" and result.get("run_id"):
            self._select_when_shown = str(result["run_id"])
        if self.full is not None and self.isVisible():
            self._live_refresh(force=True)  # relist and re-read what changed, off the main thread
        else:
            self.refresh()
        if self.run is not None and self._select_when_shown is None:
            self._run_selected(self.runs_view.currentIndex())  # its status may have changed
        if not self.runs_model.running_rows():
            self._tick.stop()
        if outcome.ok and handle.spec.kind == "train.reproduce":
            self.show_reproduction(result)
        elif outcome.status == "failed":
            what = "reproduce the run" if reproduced or handle.spec.kind == "train.reproduce" else "train"
            show_error(self, f"Could not {what}", ModelyardError(outcome.message, hint=outcome.hint))

    def shutdown(self) -> None:
        self._timer.stop()
        self._tick.stop()
        if self.form_reader is not None:
            self.form_reader.close()
