"""The Train dialog's "Validation and search" box: cross-validation, the search (method, trial and
time budget, metric, space) and where its fits run (:class:`ClusterChoice`).

Where the fits run is the training job's ``cluster`` (core/experiments/training/engine.py), not
part of the spec: this machine one fit at a time (``serial``), a local Dask cluster of N worker
processes (``local:N``), the team's Dask scheduler (``tcp://host:port``) or ``auto``. The dialog
opens on the choice a job would make without it (``$MODELYARD_CLUSTER`` — which Preferences ›
Searches run on sets —, else the store's preference, else auto: :func:`read_cluster_default`,
read off the main thread with the dialog's other choices).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.ui.common import theme

SEARCH_CHOICES = (("No search", None), ("Random search", "random"), ("Grid search", "grid"),
                  ("Optuna (TPE)", "optuna"))
SEARCH_TIPS = {
    None: "Train once with the parameters in the form.",
    "random": "Random combinations from the space, as many as the trial budget.",
    "grid": "Every combination of the space's values (a budget takes the first ones).",
    "optuna": "Optuna's TPE sampler: each trial's parameters are chosen from the scores of the trials before; "
              "unpromising trials are stopped early (pruned) on the cross-validation folds. "
              "Stops at the trial budget or the time budget, whichever comes first.",
}
MAX_TIMEOUT_S = 7 * 24 * 3600

# where the fits run: (label, kind); the kind's value is serial, local:N, the address, or auto
WHERE_CHOICES = (("This machine, one at a time", "serial"), ("Local Dask cluster", "local"),
                 ("Team's Dask scheduler", "address"), ("Automatic", "auto"))
WHERE_TIPS = {
    "serial": "The fits run one after the other in the training job's process.",
    "local": "A Dask cluster of worker processes on this machine, started for the search and stopped after it.",
    "address": "The team's Dask scheduler (started with 'dask scheduler'; docs/scale.md): its workers fit, "
               "this machine records every run. They see the training rows, never the store.",
    "auto": "A local cluster when the training rows number 10,000 or more (on two cores or more), "
            "else this machine, one at a time.",
}
WHERE_SOURCES = {"MODELYARD_CLUSTER": "Preferences or MODELYARD_CLUSTER",
                 "The store's cluster preference": "the store's preference"}
MODELYARDS = "no preference set"
NO_FITS_TO_SPREAD = "Only a search or a cross-validation spreads fits: choose one above."
NO_FITS_NOTE = "Needs a search or a cross-validation."  # under the field (its tooltip says the rest)
ADDRESS_HINT = "tcp://host:8786"
WORKERS_TIP = "Worker processes of the local cluster (one fit each at a time); one per core is a good start."
ADDRESS_TIP = "The Dask scheduler's address, host:port (tcp:// or tls://), as 'dask scheduler' prints it."


def read_cluster_default(store: Any) -> dict[str, Any]:
    """Where a training job would run its fits without a choice of its own (off the main thread):
    ``{"value": "serial" | "local" | "local:N" | "auto" | address, "source": where it comes from,
    "workers": the local cluster's default size}``. A setting that is not a cluster reads as auto."""
    from modelyard.core.experiments.training import engine

    try:
        chosen = engine.choose_cluster(store)
    except ModelyardError as exc:
        return {"value": "auto", "source": "instead of a setting that is not a cluster", "problem": exc.message,
                "workers": engine.local_workers()}
    source = WHERE_SOURCES.get(chosen.source, MODELYARDS)
    return {"value": chosen.text, "source": source, "workers": engine.local_workers()}


class Note(QLabel):
    """A muted, word-wrapped line under a field whose height is that of its text at its width (a
    wrapped QLabel asks for the height of a narrow guess, which leaves a gap in a form)."""

    def __init__(self, text: str, parent: QWidget, muted: Callable[[QLabel], None]) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        muted(self)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), self.heightForWidth(max(self.width(), hint.width())))

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.sizeHint().height())

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.heightForWidth(self.width()) != self.height():
            self.updateGeometry()


class _FittedCombo(QComboBox):
    """A combo as wide as its current choice (not its widest), so the field beside it keeps the room."""

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        text = self.fontMetrics().horizontalAdvance(self.currentText())
        return QSize(min(hint.width(), text + 44), hint.height())  # + its frame and arrow

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class ClusterChoice(QWidget):
    """Where a search's fits run: a kind (this machine, a local cluster, the team's scheduler,
    automatic) and, beside it, the local cluster's number of workers or the scheduler's address."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = _FittedCombo(self)
        self.combo.setObjectName("trainWhere")
        for label, kind in WHERE_CHOICES:
            self.combo.addItem(label, kind)
            self.combo.setItemData(self.combo.count() - 1, WHERE_TIPS[kind], Qt.ItemDataRole.ToolTipRole)
        self.workers_spin = QSpinBox(self)
        self.workers_spin.setObjectName("trainWorkers")
        self.workers_spin.setRange(1, 256)
        self.workers_spin.setSuffix(" workers")
        self.address_edit = QLineEdit(self)
        self.address_edit.setObjectName("trainScheduler")
        self.address_edit.setPlaceholderText(ADDRESS_HINT)
        self.detail = QStackedWidget(self)
        self.detail.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.detail.addWidget(QWidget(self))
        self.detail.addWidget(self.workers_spin)
        self.detail.addWidget(self.address_edit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.combo)
        layout.addWidget(self.detail, 1)
        self.default: dict[str, Any] = {"value": "auto", "source": MODELYARDS, "workers": 1}
        self.reason: str | None = None  # why the choice is disabled
        self.combo.currentIndexChanged.connect(self._kind_changed)
        self.workers_spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.address_edit.textChanged.connect(lambda _t: self.changed.emit())
        self._kind_changed()

    # ------------------------------------------------------------------ the choice
    def kind(self) -> str:
        return str(self.combo.currentData())

    def choose(self, kind: str) -> None:
        self.combo.setCurrentIndex(max(self.combo.findData(kind), 0))

    def set_default(self, default: Mapping[str, Any] | None) -> None:
        """Open on ``default`` (:func:`read_cluster_default`)."""
        if default:
            self.default = dict(default)
        value = str(self.default.get("value") or "auto")
        self.workers_spin.setValue(int(self.default.get("workers") or 1))
        if value == "serial":
            self.choose("serial")
        elif value == "auto":
            self.choose("auto")
        elif value == "local" or value.startswith("local:"):
            if ":" in value:
                self.workers_spin.setValue(int(value.split(":", 1)[1]))
            self.choose("local")
        else:
            self.address_edit.setText(value)
            self.choose("address")
        self._kind_changed()

    def value(self) -> str:
        """The job's ``cluster``: serial, local:N, the scheduler's address or auto (a ModelyardError
        naming the field when the address is not one)."""
        kind = self.kind()
        if kind == "local":
            return f"local:{self.workers_spin.value()}"
        if kind != "address":
            return kind
        from modelyard.core.experiments.training.engine import parse_cluster

        text = self.address_edit.text().strip()
        if not text:
            raise ModelyardError(f"Runs on: give the team's Dask scheduler's address, such as {ADDRESS_HINT}.")
        try:
            cluster = parse_cluster(text, "Runs on")
        except ModelyardError:
            cluster = None
        if cluster is None or cluster.kind != "address":
            raise ModelyardError(f"Runs on: {text!r} is not a scheduler's address; give host:port, such as "
                                 f"{ADDRESS_HINT}.")
        return str(cluster.address)

    def problem(self) -> str | None:
        """What is wrong with the choice (one line), or None; marks the address field."""
        try:
            self.value()
        except ModelyardError as exc:
            self.address_edit.setStyleSheet(f"border: 1px solid {theme.status_colour('failed').name()};")
            return exc.message
        self.address_edit.setStyleSheet("")
        return None

    def describe_default(self) -> str:
        """The default and where it comes from, one line ("Default: tcp://... (the store's preference).")."""
        value = str(self.default.get("value") or "auto")
        label = {"serial": "this machine, one at a time", "auto": "automatic"}.get(value, value)
        problem = f" ({self.default['problem']})" if self.default.get("problem") else ""
        return f"Default: {label} ({self.default.get('source')}).{problem}"

    def set_reason(self, reason: str | None) -> None:
        """Disable the choice saying why (``reason``), or enable it (None)."""
        self.reason = reason
        self.setEnabled(reason is None)
        if reason is not None:
            self.address_edit.setStyleSheet("")
        self._tips()

    def _tips(self) -> None:
        """Each field says what it is; all say why when the choice is disabled."""
        self.combo.setToolTip(self.reason or f"{WHERE_TIPS[self.kind()]}\n{self.describe_default()}")
        self.workers_spin.setToolTip(self.reason or WORKERS_TIP)
        self.address_edit.setToolTip(self.reason or ADDRESS_TIP)

    def _kind_changed(self) -> None:
        kind = self.kind()
        self.detail.setCurrentIndex({"local": 1, "address": 2}.get(kind, 0))
        self._tips()
        self.combo.updateGeometry()
        if kind == "address" and self.isVisible():
            self.address_edit.setFocus()
        self.changed.emit()


# --------------------------------------------------------------------------- the box


class SearchOptions(QGroupBox):
    """Cross-validation, the search and where its fits run; ``changed`` when any of them does."""

    changed = Signal()

    def __init__(self, parent: QWidget, muted: Callable[[QLabel], None]) -> None:
        super().__init__("Validation and search", parent)
        self.cv_spin = QSpinBox(self)
        self.cv_spin.setObjectName("trainCv")
        self.cv_spin.setRange(0, 20)
        self.cv_spin.setSpecialValueText("none")
        self.cv_spin.setSuffix(" folds")
        self.cv_spin.setToolTip("k-fold cross-validation on the training rows (0: none). Each fold is reported "
                                "as it finishes and recorded as a step of the cv_ metrics.")
        self._cv_last = 0
        self.search_combo = QComboBox(self)
        self.search_combo.setObjectName("trainSearch")
        for label, method in SEARCH_CHOICES:
            self.search_combo.addItem(label, method)
            self.search_combo.setItemData(self.search_combo.count() - 1, SEARCH_TIPS[method],
                                          Qt.ItemDataRole.ToolTipRole)
        self.trials_spin = QSpinBox(self)
        self.trials_spin.setObjectName("trainTrials")
        self.trials_spin.setRange(1, 1000)
        self.trials_spin.setValue(10)
        self.trials_spin.setSuffix(" trials")
        self.timeout_spin = QSpinBox(self)
        self.timeout_spin.setObjectName("trainTimeout")
        self.timeout_spin.setRange(0, MAX_TIMEOUT_S)
        self.timeout_spin.setSingleStep(60)
        self.timeout_spin.setSpecialValueText("no time limit")
        self.timeout_spin.setPrefix("at most ")
        self.timeout_spin.setSuffix(" s")
        self.timeout_spin.setToolTip("The time budget in seconds: no new trial starts after it (0: none). "
                                     "The search ends at the trial budget or the time budget, whichever comes first.")
        self.metric_combo = QComboBox(self)
        self.metric_combo.setObjectName("trainSearchMetric")
        self.space_edit = QLineEdit(self)
        self.space_edit.setObjectName("trainSpace")
        self.space_edit.setToolTip('The search space as JSON: per parameter a list of values, or '
                                   '{"type": "int"|"float", "low": L, "high": H, "log": true}. '
                                   "Parameters you changed in the form stay fixed.")
        self.space_note = Note("Each trial is a child run; parameters you changed stay fixed.", self, muted)
        self.space_note.setToolTip("Each trial is recorded as a child run of the search's run, with its "
                                   "cross-validation or validation score; the best parameters are then refitted on "
                                   "all training rows. Parameters you changed in the form are not searched.")
        self.where = ClusterChoice(self)
        self.where_note = Note("", self, muted)
        self.where_note.setObjectName("trainWhereNote")
        budget = QWidget(self)
        bl = QHBoxLayout(budget)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(theme.SPACE_M)
        bl.addWidget(self.trials_spin, 1)
        bl.addWidget(self.timeout_spin, 1)
        self.form = QFormLayout(self)
        self.form.addRow("Cross-validation:", self.cv_spin)
        self.form.addRow("Search:", self.search_combo)
        self.form.addRow("Budget:", budget)
        self.form.addRow("Optimise:", self.metric_combo)
        self.form.addRow("Space:", self.space_edit)
        self.form.addRow("", self.space_note)
        self.form.addRow("Runs on:", self.where)
        self.form.addRow("", self.where_note)
        self.where_label = self.form.labelForField(self.where)
        self.cv_spin.valueChanged.connect(self._cv_changed)
        self.search_combo.currentIndexChanged.connect(lambda _i: self._search_changed())
        self.space_edit.textChanged.connect(lambda _t: self.changed.emit())
        self.timeout_spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.trials_spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.where.changed.connect(self._where_changed)
        self._search_changed()

    # ------------------------------------------------------------------ reading it
    def search_method(self) -> str | None:
        return self.search_combo.currentData()

    def cv(self) -> int:
        cv = self.cv_spin.value()
        return cv if cv >= 2 else 0

    def spreads(self) -> bool:
        """Whether there are several fits whose place matters (a search or a cross-validation)."""
        return self.search_method() is not None or self.cv() >= 2

    def cluster(self) -> str | None:
        """The job's ``cluster`` (None without a search or a cross-validation; ModelyardError when wrong)."""
        return self.where.value() if self.spreads() else None

    def search(self, model_key: str, task: str) -> dict[str, Any] | None:
        """The spec's ``search`` (ModelyardError when the space is not valid for the model)."""
        from modelyard.ui.experiments.train_form import _catalogue

        method = self.search_method()
        if method is None:
            return None
        text = self.space_edit.text().strip()
        space: Any = None
        if text:
            try:
                space = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ModelyardError(f"The search space is not valid JSON: {exc.msg} (column {exc.colno}).") from None
            space = _catalogue().check_search_space(model_key, task, space)
        trials = self.trials_spin.value()
        out: dict[str, Any] = {"method": method, "trials": trials if trials > 0 else None, "space": space,
                               "metric": self.metric_combo.currentText() or None}
        if method == "optuna" and self.timeout_spin.value() > 0:
            out["timeout"] = self.timeout_spin.value()
        return out

    def problems(self, model_key: str, task: str, *, search: bool = True) -> list[str]:
        """What is wrong with the search (``search``: once the model's form is loaded) and where it
        runs, one line each, marking the fields."""
        out = []
        if search and self.search_method() is not None:
            try:
                self.search(model_key, task)
                self.space_edit.setStyleSheet("")
            except ModelyardError as exc:
                out.append(f"Search: {exc.message}")
                self.space_edit.setStyleSheet(f"border: 1px solid {theme.status_colour('failed').name()};")
        problem = self.where.problem() if self.spreads() else None
        if problem:
            out.append(problem)
        return out

    # ------------------------------------------------------------------ filling it
    def set_metrics(self, metrics: list[str]) -> None:
        self.metric_combo.clear()
        self.metric_combo.addItems(metrics)

    def fill_space(self, model_key: str, task: str) -> None:
        from modelyard.ui.experiments.train_form import _catalogue

        try:
            space = _catalogue().default_search_space(model_key, task)
        except ModelyardError:
            space = {}
        self.space_edit.setText(json.dumps(space))
        self.space_edit.setCursorPosition(0)

    # ------------------------------------------------------------------ following the user
    def _cv_changed(self, value: int) -> None:
        if value == 1:  # one fold is no cross-validation: step over it
            value = 2 if self._cv_last == 0 else 0
            self.cv_spin.setValue(value)
            return
        self._cv_last = value
        self._where_changed()

    def _search_changed(self) -> None:
        method = self.search_method()
        on = method is not None
        for w in (self.trials_spin, self.metric_combo, self.space_edit):
            w.setEnabled(on)
        if method == "grid":
            self.trials_spin.setMinimum(0)
            self.trials_spin.setSpecialValueText("every combination")
        else:
            self.trials_spin.setSpecialValueText("")
            self.trials_spin.setMinimum(1)
        self.timeout_spin.setVisible(method == "optuna")  # a time budget is Optuna's
        self.space_note.setVisible(on)
        self.search_combo.setToolTip(SEARCH_TIPS.get(method, ""))
        self._where_changed()

    def _where_changed(self) -> None:
        """Where the fits run matters only with several fits: otherwise disabled, saying why."""
        on = self.spreads()
        self.where.set_reason(None if on else NO_FITS_TO_SPREAD)
        self.where_label.setEnabled(on)
        self.where_note.setText(self.where.describe_default() if on else NO_FITS_NOTE)
        self.where_note.setToolTip("" if on else NO_FITS_TO_SPREAD)
        self.changed.emit()
