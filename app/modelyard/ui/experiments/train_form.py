"""The Train dialog's parts: a parameter editor per estimator argument (generated from the
model's form) and the editable preprocessing plan."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.delegates import ComboDelegate
from modelyard.ui.common.rows import RowsTableModel

INT_MIN, INT_MAX = -(2**31) + 1, 2**31 - 1


def _catalogue():  # type: ignore[no-untyped-def]
    from modelyard.core.experiments.training import catalogue

    return catalogue


def _fmt(value: Any) -> str:
    """A default as the text a user would type."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:.10g}"
        return text if any(c in text for c in ".en") else text + ".0"  # 1.0 stays a float when read back
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind: an int 1 and a float 1.0 differ (for max_features, 1 is one
    column and 1.0 all of them)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def infer_task(version: Any, target: str | None) -> str | None:
    """The task a target implies: the schema's for its own target, else from the column's profile."""
    if not target:
        return None
    if target == version.target and version.task:
        return str(version.task)
    from modelyard.core.datasets.schema import infer_type, task_for

    profile = next((c for c in (version.profile or {}).get("columns", []) if c.get("name") == target), None)
    sem = next((c.get("type") for c in version.columns if c["name"] == target), None)
    if profile is None:
        return "classification" if sem in ("categorical", "boolean", "text", "id") else "regression"
    return task_for(profile, infer_type(profile, version.n_rows, for_target=True))


# --------------------------------------------------------------------------- parameter editors


class ParamEditor(QWidget):
    """One parameter of the form: the widget its kind calls for, and an inline error line.

    ``raw()`` is what :func:`catalogue.coerce_params` checks: a typed value from a spin box,
    check box or fixed combo, or the text of a free field ("0.5", "sqrt", "none").
    """

    changed = Signal()

    def __init__(self, field: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.field = field
        self.setObjectName(f"param_{field.name}")
        kinds = {a["kind"] for a in field.alternatives if a["kind"] != "none"} or {field.kind}
        self.kind = self._editor_kind(field, kinds)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE_XS)
        self.widget: QWidget
        if self.kind == "bool":
            self.widget = box = QCheckBox(self)
            box.toggled.connect(self.changed)
        elif self.kind == "int":
            self.widget = spin = QSpinBox(self)
            low_ok = field.low is not None and math.isfinite(field.low)
            high_ok = field.high is not None and math.isfinite(field.high)
            lo = math.floor(field.low) + (0 if field.low_inclusive else 1) if low_ok else INT_MIN
            hi = math.ceil(field.high) - (0 if field.high_inclusive else 1) if high_ok else INT_MAX
            lo, hi = max(lo, INT_MIN), min(hi, INT_MAX)
            if field.nullable:  # the value below the range reads "None" (Qt's special value)
                lo -= 1
                spin.setSpecialValueText("None")
            spin.setRange(lo, hi)
            spin.setAccelerated(True)
            spin.setKeyboardTracking(True)
            spin.valueChanged.connect(self.changed)
        elif self.kind == "choice":
            self.widget = combo = QComboBox(self)
            for c in field.choices:
                combo.addItem(str(c), c)
            if field.nullable:
                combo.addItem("None", None)
            combo.currentIndexChanged.connect(self.changed)
        elif self.kind == "editable_choice":
            self.widget = combo = QComboBox(self)
            combo.setEditable(True)
            combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            combo.addItems([str(c) for c in field.choices] + (["None"] if field.nullable else []))
            combo.editTextChanged.connect(self.changed)
        else:  # float, str, and mixed kinds: typed text, checked on every change
            self.widget = edit = QLineEdit(self)
            if field.nullable:
                edit.setPlaceholderText("None")
            edit.textChanged.connect(self.changed)
        self.widget.setObjectName(f"paramWidget_{field.name}")
        self.widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        tip = (field.help + "\n\n" if field.help else "") + f"Allowed: {field.describe()}.\n" \
            f"Default: {_fmt(field.default) or 'None'}."
        self.widget.setToolTip(tip)
        self.error = QLabel(self)
        self.error.setObjectName(f"paramError_{field.name}")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        small = self.error.font()
        small.setPointSizeF(small.pointSizeF() * 0.9)
        self.error.setFont(small)
        self.error.hide()
        layout.addWidget(self.widget)
        layout.addWidget(self.error)
        self.reset()

    @staticmethod
    def _editor_kind(field: Any, kinds: set[str]) -> str:
        if kinds == {"bool"}:
            return "bool"
        if kinds == {"int"} and not field.choices:
            return "int"
        if kinds == {"choice"}:
            return "choice"
        if field.choices:
            return "editable_choice"
        return "text"

    def reset(self) -> None:
        d = self.field.default
        w = self.widget
        blocked = w.blockSignals(True)
        try:
            if isinstance(w, QCheckBox):
                w.setChecked(bool(d))
            elif isinstance(w, QSpinBox):
                w.setValue(w.minimum() if d is None else int(d))
            elif isinstance(w, QComboBox) and not w.isEditable():
                i = next((i for i in range(w.count()) if _same(w.itemData(i), d)), 0)
                w.setCurrentIndex(i)
            elif isinstance(w, QComboBox):
                w.setEditText("None" if d is None else _fmt(d))
            elif isinstance(w, QLineEdit):
                w.setText(_fmt(d))
        finally:
            w.blockSignals(blocked)
        self.set_error(None)

    def raw(self) -> Any:
        w = self.widget
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return None if self.field.nullable and w.value() == w.minimum() else w.value()
        if isinstance(w, QComboBox) and not w.isEditable():
            return w.currentData()
        if isinstance(w, QComboBox):
            return w.currentText()
        assert isinstance(w, QLineEdit)
        return w.text()

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        colour = theme.status_colour("failed").name()
        if isinstance(self.widget, (QLineEdit, QComboBox)):
            self.widget.setStyleSheet(f"border: 1px solid {colour};" if message else "")


# --------------------------------------------------------------------------- the preprocessing table


class PlanModel(RowsTableModel[dict[str, Any]]):
    """The preprocessing plan, one row per column; the Step cell is editable."""

    headers = ("Column", "Type", "Step", "How")
    COL_STEP = 2
    step_edited = Signal(str, str)  # column name, step

    def cell(self, e: dict[str, Any], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == 0:
                return e["name"]
            if column == 1:
                return f"{e.get('type') or '?'} · {e.get('dtype') or '?'}"
            if column == 2:
                return e["step"]
            return describe_entry(e)
        if role == Qt.ItemDataRole.ToolTipRole:
            return describe_entry(e)
        if role == Qt.ItemDataRole.FontRole and e["step"] == "target":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and e["step"] == "drop":
            return QApplication.palette().color(QApplication.palette().ColorRole.PlaceholderText)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == self.COL_STEP and self.rows[index.row()]["step"] != "target":
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != self.COL_STEP or role != Qt.ItemDataRole.EditRole:
            return False
        entry = self.rows[index.row()]
        if str(value) == entry["step"]:
            return False
        self.step_edited.emit(entry["name"], str(value))
        return True


def plan_view(parent: QWidget, model: PlanModel, step_choices: Any) -> QTableView:
    """The preprocessing table: one row per column, its step chosen from ``step_choices(index)``."""
    view = QTableView(parent)
    view.setObjectName("preprocessTable")
    view.setModel(model)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(24)
    view.setShowGrid(False)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                         | QAbstractItemView.EditTrigger.SelectedClicked
                         | QAbstractItemView.EditTrigger.EditKeyPressed)
    view.setItemDelegateForColumn(PlanModel.COL_STEP, ComboDelegate(step_choices, view))
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.resizeSection(0, 200)
    header.resizeSection(1, 150)
    header.resizeSection(2, 100)
    header.setStretchLastSection(True)
    view.setMinimumHeight(160)
    return view


def describe_entry(e: dict[str, Any]) -> str:
    step = e["step"]
    bits: list[str] = []
    if step == "target":
        return "what the model predicts"
    if e.get("impute") and e["impute"] != "none":
        bits.append(f"{e['impute'].replace('_', ' ')} for gaps")
    if e.get("scale"):
        bits.append("standardised")
    if step == "onehot":
        mc = e.get("max_categories")
        bits.append(f"one 0/1 column per category (at most {mc})" if mc else "one 0/1 column per category")
    if step == "ordinal":
        bits.append("one number per category")
    if step == "datetime" and e.get("parts"):
        bits.append("as " + ", ".join(e["parts"]))
    reason = e.get("reason") or ""
    return "; ".join(bits) + (f" — {reason}" if bits and reason else reason)


# --------------------------------------------------------------------------- what the dialog offers


GENERATED_HEADING = "Generated by models"


def read_choices(store: Any, dataset_ref: str | int | None = None) -> dict[str, Any]:
    """What the Train dialog offers, read from the store (call it off the main thread): the user's
    dataset versions (newest first per dataset), then the ones models generated (predictions,
    monitoring batches, retraining sets) apart; the one to preselect (``dataset_ref``, a ref or a
    version id, else the newest version a user imported) with its record and splits; the
    experiments; and where a search's fits run by default (train_search.read_cluster_default)."""
    from modelyard.core.datasets import catalog
    from modelyard.core.experiments.tracking import list_experiments
    from modelyard.core.experiments.training import train  # noqa: F401 - imported here, off the main thread

    _catalogue()  # likewise: the dialog then finds both modules loaded (its first open stays under 100 ms)
    wanted: int | None = None
    if dataset_ref is not None:
        try:
            wanted = catalog.get_version(store, dataset_ref).id
        except ModelyardError:
            wanted = None
    versions: list[tuple[str, int, str]] = []
    generated: list[tuple[str, int, str]] = []
    newest = None
    for d in catalog.list_datasets(store):
        made = getattr(d, "origin", "imported") == "generated"
        for v in reversed(catalog.list_versions(store, d.name)):
            (generated if made else versions).append((v.ref, v.id, f"{plural(v.n_rows, 'row')} × {plural(v.n_cols, 'column')}"))
            if not made and (newest is None or v.created_at > newest[0]):
                newest = (v.created_at, v.id)
    if wanted is None:
        wanted = newest[1] if newest is not None else (generated[0][1] if generated else None)
    from modelyard.ui.experiments.train_search import read_cluster_default

    return {"versions": versions, "generated": generated, "wanted": wanted,
            "version": read_version(store, wanted) if wanted is not None else None,
            "experiments": [e.name for e in list_experiments(store=store)],
            "cluster": read_cluster_default(store)}


def read_version(store: Any, version_id: int) -> tuple[Any, list[Any]]:
    """A dataset version's record and its splits (off the main thread)."""
    from modelyard.core.datasets import catalog

    return catalog.get_version(store, int(version_id)), list(catalog.list_splits(store, int(version_id)))
