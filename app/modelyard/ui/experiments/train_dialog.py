"""The Train dialog: a dataset version, its split and target, a model with a form generated from
the estimator, editable preprocessing, cross-validation and search; ``spec()`` is the TrainSpec.

Everything here is light except the model's form (:func:`catalogue.param_form` imports
scikit-learn, 1–1.5 s on first use), which is read on a :class:`BackgroundReader` thread while
the form shows "Loading the model's parameters…". Once a form is loaded, checking a value
(:func:`catalogue.coerce_params`) and building the preprocessing plan are pure Python and run
on the main thread as the user types.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.store import Store
from modelyard.ui.common import theme
from modelyard.ui.common.background import BackgroundReader
from modelyard.ui.common.widgets import fit_to_screen
from modelyard.ui.experiments.train_form import (
    GENERATED_HEADING,
    INT_MAX,
    ParamEditor,
    PlanModel,
    _catalogue,
    _same,
    infer_task,
    plan_view,
    read_choices,
    read_version,
)
from modelyard.ui.experiments.train_search import SearchOptions

NEW_SPLIT = -1  # item data of the "new split" choice
NEW_SPLIT_TEST = 0.2
LOADING_TEXT = "Loading the model's parameters…"
DEFAULT_MODEL = "random_forest"


_SWITCH_INTERVAL: list[float] = []  # the interpreter's own, while a form loads with a shorter one
IMPORT_SWITCH_INTERVAL = 0.0005  # s


def _yield_to_the_window(loading: bool) -> None:
    """While a form loads on a background thread that imports scikit-learn (seconds of Python
    code holding the GIL), switch threads every 0.5 ms instead of 5: the main thread, which needs
    the GIL for each of its many short Python calls per paint, waits 10 times less for it and the
    window keeps painting (measured in a fresh process: gaps of 100-200 ms became under 75 ms)."""
    if loading and not _SWITCH_INTERVAL and "sklearn" not in sys.modules:
        _SWITCH_INTERVAL.append(sys.getswitchinterval())
        sys.setswitchinterval(min(IMPORT_SWITCH_INTERVAL, _SWITCH_INTERVAL[0]))
    elif not loading and _SWITCH_INTERVAL:
        sys.setswitchinterval(_SWITCH_INTERVAL.pop())


# --------------------------------------------------------------------------- the dialog


class TrainDialog(QDialog):
    """Choose what to train; ``spec()`` gives the :class:`TrainSpec` (source "gui")."""

    form_loaded = Signal()  # the model's parameter form is shown (or failed to load)

    def __init__(self, store: Store, parent: QWidget | None = None, dataset_ref: str | int | None = None, *,
                 reader: BackgroundReader | None = None, choices: dict[str, Any] | None = None,
                 client: Any = None) -> None:
        """``reader``: a long-lived BackgroundReader to load forms on (the panel's), so that closing the
        dialog while scikit-learn still imports does not wait for it; without one the dialog owns a
        reader and waits for it when it closes. ``choices``: :meth:`read_choices`, read off the main
        thread by the caller (else read here); ``client``: the window's client of the core, which then
        reads each chosen dataset version off the main thread."""
        super().__init__(parent)
        self.setObjectName("trainDialog")
        self.setWindowTitle("Train a model")
        self.store = store
        self.client = client
        self._read: dict[int, tuple[Any, list[Any]]] = {}  # version id -> (record, splits) read ahead
        self.version: Any = None  # DatasetVersionInfo
        self.fields: list[Any] = []
        self.editors: dict[str, ParamEditor] = {}
        self.overrides: dict[str, str] = {}
        self.plan: dict[str, Any] | None = None
        self.form_ready = False
        self._form_key: tuple[str, str] | None = None
        self._experiment_edited = False
        self._plan_error: str | None = None
        self._setting_experiment = False
        self._own_reader = reader is None
        self.reader = reader if reader is not None else BackgroundReader(self)
        self._closed = False
        fit_to_screen(self, 980, 600, parent)  # its model's parameters scroll: 600 px fit a 1024x640 screen

        self._build_layout(self._build_data(), self._build_model(), self._build_search(), self._build_run())
        self._connect(dataset_ref, choices)

    # ------------------------------------------------------------------ building, section by section
    def _build_data(self) -> QGroupBox:
        """Dataset version, target, task and split."""
        self.dataset_combo = QComboBox(self)
        self.dataset_combo.setObjectName("trainDataset")
        self.target_combo = QComboBox(self)
        self.target_combo.setObjectName("trainTarget")
        self.task_combo = QComboBox(self)
        self.task_combo.setObjectName("trainTask")
        self.task_combo.addItems(["classification", "regression"])
        self.task_combo.setToolTip("Follows from the target; change it to treat a numeric target as classes or numbers.")
        self.split_combo = QComboBox(self)
        self.split_combo.setObjectName("trainSplit")
        for combo in (self.dataset_combo, self.target_combo, self.split_combo):  # long names: the dialog fits 800 px
            combo.setMinimumContentsLength(18)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.split_combo.currentIndexChanged.connect(
            lambda _i: self.split_combo.setToolTip(self.split_combo.currentText()))
        self.data_facts = QLabel(self)
        self.data_facts.setObjectName("trainDataFacts")
        self.data_facts.setWordWrap(True)
        self._muted(self.data_facts)
        data_box = QGroupBox("Data", self)
        data_form = QFormLayout(data_box)
        data_form.addRow("Dataset:", self.dataset_combo)
        data_form.addRow("", self.data_facts)
        data_form.addRow("Target:", self.target_combo)
        data_form.addRow("Task:", self.task_combo)
        data_form.addRow("Split:", self.split_combo)
        return data_box

    def _build_model(self) -> QGroupBox:
        """The model and its parameter form (loaded off the main thread)."""
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("trainModel")
        self.model_description = QLabel(self)
        self.model_description.setObjectName("modelDescription")
        self.model_description.setWordWrap(True)
        self._muted(self.model_description)
        self.reset_button = QToolButton(self)
        self.reset_button.setText("Reset to defaults")
        self.reset_button.setIcon(theme.icon("refresh"))
        self.reset_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reset_button.clicked.connect(self.reset_params)
        self.loading_label = QLabel(LOADING_TEXT, self)
        self.loading_label.setObjectName("paramsLoading")
        self.loading_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._muted(self.loading_label)
        self.form_holder = QWidget(self)
        self.form_layout = QFormLayout(self.form_holder)
        self.form_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form_layout.setContentsMargins(theme.SPACE_S, theme.SPACE_S, theme.SPACE_M, theme.SPACE_S)
        self.form_layout.setVerticalSpacing(theme.SPACE_S)
        self.form_layout.addRow(self.loading_label)
        self.form_scroll = QScrollArea(self)
        self.form_scroll.setObjectName("paramsScroll")
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.form_scroll.setWidget(self.form_holder)
        model_box = QGroupBox("Model", self)
        ml = QVBoxLayout(model_box)
        top = QHBoxLayout()
        top.addWidget(self.model_combo, 1)
        top.addWidget(self.reset_button)
        ml.addLayout(top)
        ml.addWidget(self.model_description)
        ml.addWidget(self.form_scroll, 1)
        return model_box

    def _build_search(self) -> QGroupBox:
        """Cross-validation, the search and where its fits run (train_search.SearchOptions)."""
        self.options = SearchOptions(self, self._muted)
        o = self.options
        self.cv_spin, self.search_combo, self.trials_spin, self.timeout_spin = (o.cv_spin, o.search_combo,
                                                                               o.trials_spin, o.timeout_spin)
        self.metric_combo, self.space_edit, self.space_note, self.where = (o.metric_combo, o.space_edit,
                                                                           o.space_note, o.where)
        return o

    def _build_run(self) -> QGroupBox:
        """The run's experiment, name and seed."""
        self.experiment_combo = QComboBox(self)
        self.experiment_combo.setObjectName("trainExperiment")
        self.experiment_combo.setEditable(True)
        self.experiment_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.run_name_edit = QLineEdit(self)
        self.run_name_edit.setObjectName("trainRunName")
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setObjectName("trainSeed")
        self.seed_spin.setRange(0, INT_MAX)
        self.seed_spin.setToolTip("Seeds the model, the folds and the search: the same seed gives the same run.")
        run_box = QGroupBox("Run", self)
        rf = QFormLayout(run_box)
        rf.addRow("Experiment:", self.experiment_combo)
        rf.addRow("Run name:", self.run_name_edit)
        rf.addRow("Seed:", self.seed_spin)
        return run_box

    def _build_preprocessing(self) -> None:
        """The preprocessing plan (collapsed until asked for)."""
        self.preprocess_toggle = QToolButton(self)
        self.preprocess_toggle.setObjectName("preprocessToggle")
        self.preprocess_toggle.setCheckable(True)
        self.preprocess_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.preprocess_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.preprocess_toggle.setAutoRaise(True)
        self.preprocess_toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.preprocess_toggle.toggled.connect(self._toggle_preprocessing)
        self.plan_model = PlanModel(self)
        self.plan_model.step_edited.connect(self._step_edited)
        self.plan_view = plan_view(self, self.plan_model, self._step_choices)
        self.plan_view.hide()
        self.plan_hint = QLabel("Double-click a step to change how a column is used; 'drop' leaves it out.", self)
        self._muted(self.plan_hint)
        self.plan_hint.hide()

    def _build_buttons(self) -> None:
        """The error line and the Train and Cancel buttons."""
        self.error_label = QLabel(self)
        self.error_label.setObjectName("trainError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.train_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.train_button.setText("Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setIcon(theme.icon("play"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _build_layout(self, data_box: QGroupBox, model_box: QGroupBox, options_box: QGroupBox,
                      run_box: QGroupBox) -> None:
        self._build_preprocessing()
        self._build_buttons()
        grid = QGridLayout()
        grid.setHorizontalSpacing(theme.SPACE_L)
        grid.setVerticalSpacing(theme.SPACE_M)
        grid.addWidget(data_box, 0, 0)
        grid.addWidget(options_box, 1, 0, 2, 1)
        grid.addWidget(model_box, 0, 1, 2, 1)  # its parameters scroll: it gives way
        grid.addWidget(run_box, 2, 1)
        grid.setRowStretch(1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_L, theme.SPACE_L, theme.SPACE_L, theme.SPACE_L)
        layout.setSpacing(theme.SPACE_M)
        layout.addLayout(grid, 3)
        layout.addWidget(self.preprocess_toggle)
        layout.addWidget(self.plan_hint)
        layout.addWidget(self.plan_view, 2)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def _connect(self, dataset_ref: str | int | None, choices: dict[str, Any] | None) -> None:
        """Fill the choices, then follow the user's."""
        self._fill_choices(choices if choices is not None else self.read_choices(self.store, dataset_ref))
        self.dataset_combo.currentIndexChanged.connect(lambda _i: self._version_chosen())
        self.target_combo.currentIndexChanged.connect(lambda _i: self._target_chosen())
        self.task_combo.currentIndexChanged.connect(lambda _i: self._task_chosen())
        self.model_combo.currentIndexChanged.connect(lambda _i: self._model_chosen())
        self.options.changed.connect(self.validate)
        self.experiment_combo.editTextChanged.connect(self._experiment_typed)
        self._version_chosen()
        self.validate()

    # ------------------------------------------------------------------ helpers
    def _muted(self, label: QLabel) -> None:
        label.setStyleSheet(f"color: {self.palette().color(self.palette().ColorRole.PlaceholderText).name()}")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """A wheel over an unfocused spin box or combo in the form scrolls the form instead."""
        if event.type() == QEvent.Type.Wheel and isinstance(obj, (QAbstractSpinBox, QComboBox)) \
                and not obj.hasFocus():
            QApplication.sendEvent(self.form_scroll.verticalScrollBar(), event)
            return True
        return super().eventFilter(obj, event)

    # ------------------------------------------------------------------ data
    read_choices = staticmethod(read_choices)  # what the dialog offers (train_form.read_choices)
    read_version = staticmethod(read_version)

    def _fill_choices(self, choices: dict[str, Any]) -> None:
        combo = self.dataset_combo
        for ref, version_id, tip in choices["versions"]:
            combo.addItem(ref, version_id)
            combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        generated = choices.get("generated") or []
        if generated:  # model outputs (predictions, batches, retraining sets) apart, after the user's data
            if combo.count():
                combo.insertSeparator(combo.count())
            combo.addItem(GENERATED_HEADING)
            heading = combo.model().item(combo.count() - 1)
            heading.setFlags(Qt.ItemFlag.NoItemFlags)  # a heading, not a choice
            font = heading.font()
            font.setItalic(True)
            heading.setFont(font)
            for ref, version_id, tip in generated:
                combo.addItem("    " + ref, version_id)
                combo.setItemData(combo.count() - 1, f"{tip} · made by a model", Qt.ItemDataRole.ToolTipRole)
        i = combo.findData(choices["wanted"]) if choices["wanted"] is not None else -1
        combo.setCurrentIndex(i if i >= 0 else (0 if choices["versions"] else -1))
        self.experiment_combo.addItems(choices["experiments"])
        self.where.set_default(choices.get("cluster"))
        if choices.get("version") is not None:
            self._read[choices["wanted"]] = choices["version"]

    def _experiment_typed(self, _text: str) -> None:
        if not self._setting_experiment:
            self._experiment_edited = True
        self.validate()

    def _version_chosen(self) -> None:
        """A dataset version was chosen: read its record and splits (off the main thread when the
        dialog has the window's client), then offer its columns and splits."""
        version_id = self.dataset_combo.currentData()
        if version_id is None:
            self._version_read(None, [])
        elif version_id in self._read:
            self._version_read(*self._read.pop(version_id))
        elif self.client is None:
            self._version_read(*self.read_version(self.store, version_id))
        else:
            self.client.read(f"train.version.{id(self)}", lambda store: self.read_version(store, version_id),
                             lambda answer: self._version_read(*answer) if not self._closed
                             and self.dataset_combo.currentData() == version_id else None,
                             lambda exc: self.error_label.setText(str(exc)))

    def _version_read(self, version: Any, splits: list[Any]) -> None:
        self.version = v = version
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        if v is not None:
            for c in v.columns:
                self.target_combo.addItem(c["name"])
            self.target_combo.setCurrentIndex(self.target_combo.findText(v.target) if v.target else -1)
        self.target_combo.blockSignals(False)
        if v is not None:
            self.data_facts.setText(f"{plural(v.n_rows, 'row')} × {plural(v.n_cols, 'column')} · imported "
                                    f"{v.created_at.astimezone():%Y-%m-%d %H:%M} · content {v.content_hash[:12]}"
                                    + ("" if v.target else " · no target set: choose the column to predict"))
            if not self._experiment_edited:
                self._setting_experiment = True
                self.experiment_combo.setEditText(v.name)
                self._setting_experiment = False
        self._fill_splits(splits)
        self._target_chosen()

    def _fill_splits(self, splits: list[Any]) -> None:
        current = self.split_combo.currentData()
        self.split_combo.clear()
        if self.version is None:
            return
        for sp in reversed(splits):
            c = sp.counts
            self.split_combo.addItem(f"{sp.name}  (train {c.get('train', 0):,} · validation "
                                     f"{c.get('validation', 0):,} · test {c.get('test', 0):,})", sp.id)
        self.split_combo.addItem("", NEW_SPLIT)
        self._label_new_split()
        i = self.split_combo.findData(current)
        self.split_combo.setCurrentIndex(max(i, 0))

    def _label_new_split(self) -> None:
        i = self.split_combo.findData(NEW_SPLIT)
        if i < 0:
            return
        kind = "stratified" if self.task_combo.currentText() == "classification" else "random"
        self.split_combo.setItemText(i, f"New {kind} {NEW_SPLIT_TEST:.0%} test split, seed 0".replace("%", " %"))

    def _target_chosen(self) -> None:
        target = self.target_combo.currentText() or None
        self.overrides.pop(target or "", None)
        task = infer_task(self.version, target) if self.version is not None else None
        if task:
            self.task_combo.blockSignals(True)
            self.task_combo.setCurrentText(task)
            self.task_combo.blockSignals(False)
        self._task_chosen()

    def _task_chosen(self) -> None:
        from modelyard.core.experiments.training.train import (
            CLASSIFICATION_METRICS,
            REGRESSION_METRICS,
        )

        task = self.task_combo.currentText()
        self._label_new_split()
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for entry in _catalogue().list_models(task):
            self.model_combo.addItem(entry.name, entry.key)
            self.model_combo.setItemData(self.model_combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole)
        i = self.model_combo.findData(current)
        if i < 0:
            i = self.model_combo.findData(DEFAULT_MODEL)
        self.model_combo.setCurrentIndex(max(i, 0))
        self.model_combo.blockSignals(False)
        metrics = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        self.options.set_metrics([m for m in metrics if m != "log_loss"])
        self._model_chosen()

    # ------------------------------------------------------------------ model form
    def model_key(self) -> str:
        return str(self.model_combo.currentData() or "")

    def task(self) -> str:
        return self.task_combo.currentText()

    def _model_chosen(self) -> None:
        key, task = self.model_key(), self.task()
        if not key:
            return
        entry = _catalogue().get_model(key)
        self.model_description.setText(entry.description)
        self._rebuild_plan()
        if self._form_key == (key, task) and self.form_ready:
            self.validate()
            return
        self._form_key = (key, task)
        self.form_ready = False
        self._clear_form()
        self.loading_label.setText(LOADING_TEXT)
        self.loading_label.show()
        self.validate()
        _yield_to_the_window(True)
        self.reader.submit(lambda k=key, t=task: (k, t, _catalogue().param_form(k, t)), self._form_arrived,
                           self._form_failed)

    def _clear_form(self) -> None:
        while self.form_layout.rowCount() > 1:
            self.form_layout.removeRow(1)
        self.editors = {}
        self.fields = []

    def _form_arrived(self, answer: tuple[str, str, list[Any]]) -> None:
        _yield_to_the_window(False)
        if self._closed:  # the dialog was closed (and may be deleted) while the form loaded
            return
        key, task, fields = answer
        if (key, task) != (self.model_key(), self.task()):
            return  # an older request
        self._clear_form()
        self.fields = list(fields)
        self.loading_label.hide()
        for f in self.fields:
            editor = ParamEditor(f, self.form_holder)
            editor.widget.installEventFilter(self)
            editor.changed.connect(self.validate)
            label = QLabel(f.name, self.form_holder)
            label.setToolTip(editor.widget.toolTip())
            label.setBuddy(editor.widget)
            self.editors[f.name] = editor
            self.form_layout.addRow(label, editor)
            label.show()  # now, not on the next event-loop turn: form_ready means the form is on screen
            editor.show()
        if not self.fields:
            self.loading_label.setText("This model has no parameters to set.")
            self.loading_label.show()
        self.form_ready = True
        self.options.fill_space(key, task)
        self.validate()
        self.form_loaded.emit()

    def _form_failed(self, error: Exception) -> None:
        _yield_to_the_window(False)
        if self._closed:
            return
        message = error.message if isinstance(error, ModelyardError) else str(error)
        self.loading_label.setText(f"Cannot read the model's parameters: {message}")
        self.loading_label.show()
        self.form_ready = False
        self.validate()
        self.form_loaded.emit()

    def reset_params(self) -> None:
        for editor in self.editors.values():
            editor.reset()
        self.validate()

    def params(self) -> dict[str, Any]:
        """The values the user changed from the defaults, checked (raises ModelyardError)."""
        cat = _catalogue()
        out: dict[str, Any] = {}
        for name, editor in self.editors.items():
            value = cat.coerce_params(self.model_key(), {name: editor.raw()}, self.task())[name]
            if not _same(value, editor.field.default):
                out[name] = value
        return out

    # ------------------------------------------------------------------ preprocessing
    def _rebuild_plan(self) -> None:
        from modelyard.core.experiments.training.preprocess import (
            describe_preprocessing,
        )

        self.plan = None
        if self.version is None or not self.version.schema:
            self.plan_model.set_rows([])
            self._plan_error = "The dataset version has no schema."
            return
        target = self.target_combo.currentText() or None
        try:
            self.plan = describe_preprocessing(self.version.schema, target=target, model_key=self.model_key() or None,
                                               overrides=self.overrides)
            self._plan_error = None
        except ModelyardError as exc:
            self._plan_error = exc.message
            self.plan_model.set_rows([])
            return
        self.plan_model.set_rows(self.plan["columns"])
        n = len(self.plan["features"])
        edits = f", {len(self.overrides)} changed by you" if self.overrides else ""
        self.preprocess_toggle.setText(f"Preprocessing: {plural(n, 'feature')} from "
                                       f"{plural(len(self.plan['columns']), 'column')}{edits}")

    def _toggle_preprocessing(self, shown: bool) -> None:
        self.preprocess_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.plan_view.setVisible(shown)
        self.plan_hint.setVisible(shown)

    def _step_choices(self, index: QModelIndex) -> list[str]:
        """The steps a column may take: those the plan accepts for it."""
        from modelyard.core.experiments.training.preprocess import (
            STEPS,
            describe_preprocessing,
        )

        if self.version is None:
            return []
        name = self.plan_model.rows[index.row()]["name"]
        target = self.target_combo.currentText() or None
        ok = []
        for step in STEPS:
            try:
                describe_preprocessing(self.version.schema, target=target, model_key=self.model_key() or None,
                                       overrides={name: step})
            except ModelyardError:
                continue
            ok.append(step)
        return ok

    def _step_edited(self, column: str, step: str) -> None:
        self.overrides[column] = step
        QTimer.singleShot(0, self, self._after_step_edit)  # not inside the editor's own signal; dropped with the dialog

    def _after_step_edit(self) -> None:
        self._rebuild_plan()
        self.validate()

    # ------------------------------------------------------------------ options
    def search_method(self) -> str | None:
        return self.options.search_method()

    def search(self) -> dict[str, Any] | None:
        """The spec's ``search`` (raises ModelyardError)."""
        return self.options.search(self.model_key(), self.task())

    def cluster(self) -> str | None:
        """Where the job runs the fits of the search or cross-validation (its ``cluster``; None
        without either); raises ModelyardError for an address that is not one."""
        return self.options.cluster()

    # ------------------------------------------------------------------ checking and the spec
    def validate(self) -> bool:
        """Check every field; show what is wrong inline; enable Train only when all is well."""
        problems: list[str] = []
        if self.version is None:
            problems.append("There is no dataset to train on: import one in the Datasets panel first.")
        elif not self.target_combo.currentText():
            problems.append("Choose the target: the column the model predicts.")
        if self._plan_error:
            problems.append(f"Preprocessing: {self._plan_error}")
        bad = 0
        if self.form_ready:
            cat = _catalogue()
            for name, editor in self.editors.items():
                try:
                    cat.coerce_params(self.model_key(), {name: editor.raw()}, self.task())
                except ModelyardError as exc:
                    editor.set_error(exc.message)
                    bad += 1
                else:
                    editor.set_error(None)
            if bad:
                problems.append(f"{bad} parameter{'s' if bad > 1 else ''} need{'' if bad > 1 else 's'} fixing "
                                "(see the messages in the form).")
        problems += self.options.problems(self.model_key(), self.task(), search=self.form_ready)
        if not self.experiment_combo.currentText().strip():
            problems.append("Name the experiment the run goes into.")
        self.error_label.setText("\n".join(problems))
        self.error_label.setVisible(bool(problems))
        ok = not problems and self.form_ready
        self.train_button.setEnabled(ok)
        if not self.form_ready:
            self.train_button.setToolTip(LOADING_TEXT)
        else:
            self.train_button.setToolTip("" if ok else "Fix what the dialog points out first.")
        return ok

    def spec(self) -> Any:
        """The :class:`TrainSpec` the dialog describes (raises ModelyardError when something is wrong)."""
        from modelyard.core.experiments.training.spec import TrainSpec

        if self.version is None:
            raise ModelyardError("There is no dataset to train on.", hint="Import one in the Datasets panel first.")
        if not self.form_ready:
            raise ModelyardError("The model's parameters are still loading.")
        split_id = self.split_combo.currentData()
        split = {"test": NEW_SPLIT_TEST, "seed": 0} if split_id in (None, NEW_SPLIT) else {"id": int(split_id)}
        return TrainSpec(
            dataset=self.version.ref, model=self.model_key(), target=self.target_combo.currentText() or None,
            task=self.task(), params=self.params(), preprocessing=dict(self.overrides), split=split,
            cv=self.options.cv(), search=self.search(), seed=self.seed_spin.value(),
            experiment=self.experiment_combo.currentText().strip() or self.version.name,
            run_name=self.run_name_edit.text().strip() or None, source="gui")

    def accept(self) -> None:
        if not self.validate():
            return
        try:
            self.spec()
            self.cluster()
        except ModelyardError as exc:
            self.error_label.setText(exc.message + (f"\n{exc.hint}" if exc.hint else ""))
            self.error_label.show()
            return
        super().accept()

    def done(self, result: int) -> None:
        self._closed = True
        if self._own_reader:
            self.reader.wait()
        super().done(result)

    def sizeHint(self) -> Any:
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), 900))
        return hint


__all__ = ["NEW_SPLIT", "ParamEditor", "PlanModel", "TrainDialog", "infer_task"]
