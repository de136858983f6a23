"""The run detail's Reproducibility tab (what a run recorded to be retrained exactly) and the
report of a reproduction (metric by metric, and which recorded facts differ now)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.experiments.tracking.queries import run_artifact_json
from modelyard.ui.common import theme
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.experiments.plots import muted as _muted

# --------------------------------------------------------------------------- reproducibility record


def flatten_record(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """reproducibility.json as (key, value) rows: nested keys dotted, lists joined, the spec as JSON."""
    rows: list[tuple[str, str]] = []

    def fmt(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple)):
            return ", ".join(fmt(v) for v in value)
        return str(value)

    def walk(prefix: str, value: Any) -> None:
        if prefix == "spec":
            rows.append((prefix, json.dumps(value, sort_keys=True)))
        elif isinstance(value, Mapping) and prefix.endswith("counts"):
            rows.append((prefix, ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items())))
        elif isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows.append((prefix, fmt(value)))

    order = ["dataset", "split", "seed", "target", "task", "features", "python", "python_implementation", "platform",
             "system", "machine", "packages", "modelyard", "threads", "git", "spec"]
    for key in order + [k for k in record if k not in order]:
        if key in record:
            walk(key, record[key])
    return rows


class KeyValueModel(RowsTableModel[tuple[str, str]]):
    headers = ("Fact", "Recorded")

    def cell(self, kv: tuple[str, str], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return kv[column]
        return None


class ReproducibilityView(QWidget):
    """The Reproducibility tab: what the run recorded to be retrained exactly, and for a
    reproduction run, its verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reproducibilityView")
        self.verdict = QLabel(self)
        self.verdict.setObjectName("reproductionVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.hide()
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {_muted(self).name()}")
        self.model = KeyValueModel(self)
        self.view = QTableView(self)
        self.view.setObjectName("reproducibilityTable")
        self.view.setModel(self.model)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().resizeSection(0, 200)
        self.view.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addWidget(self.verdict)
        layout.addWidget(self.message)
        layout.addWidget(self.view, 1)

    @staticmethod
    def read(store: Any, info: Any) -> dict[str, Any]:
        """``info``'s reproducibility record and reproduction report (off the main thread)."""
        return {"record": run_artifact_json(store, info, "reproducibility.json"),
                "report": run_artifact_json(store, info, "reproduction.json")}

    def show_run(self, store: Any, info: Any) -> None:
        self.show_records(info, self.read(store, info))

    def show_records(self, info: Any, records: dict[str, Any]) -> None:
        record, report = records.get("record"), records.get("report")
        if report:
            self.verdict.setText(verdict_html(report))
            self.verdict.show()
        else:
            self.verdict.hide()
        if record:
            self.model.set_rows(flatten_record(record))
            self.message.setText("What this run used, recorded so that <b>Reproduce</b> can retrain it and say which "
                                 "fact changed if the result differs.")
            self.message.setTextFormat(Qt.TextFormat.RichText)
            self.view.show()
        else:
            self.model.set_rows([])
            self.view.hide()
            self.message.setText("This run has no reproducibility record: it was not trained by Modelyard"
                                 + (" (a search trial: its search's run holds the record)." if info.tags.get("search_trial")
                                    else " (perhaps logged from a script)."))

    def rows(self) -> dict[str, str]:
        return dict(self.model.rows)


def verdict_html(report: Mapping[str, Any]) -> str:
    ok = bool(report.get("matches"))
    colour = theme.status_colour("ok" if ok else "warning").name()
    head = "Matches" if ok else "Does not match"
    return f"<b style='color:{colour}'>{'✔' if ok else '⚠'} {head}</b> — {report.get('summary', '')}"


# --------------------------------------------------------------------------- the reproduction report


class _MetricRowsModel(RowsTableModel[dict[str, Any]]):
    headers = ("Metric", "Recorded", "Reproduced", "Result")

    def cell(self, m: dict[str, Any], column: int, role: int) -> Any:
        equal = bool(m.get("equal"))
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return str(m.get("key"))
            if column in (1, 2):
                v = m.get("recorded" if column == 1 else "reproduced")
                return "—" if v is None else (f"{v:.10g}" if isinstance(v, float) else str(v))
            if equal:
                return "equal"
            diff = m.get("abs_diff")
            return "differs" + (f" by {diff:.3g}" if isinstance(diff, (int, float)) and math.isfinite(diff) else "")
        if role == Qt.ItemDataRole.DecorationRole and column == 3:
            return theme.status_icon("ok" if equal else "warning")
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            return theme.status_colour("ok" if equal else "warning")
        if role == Qt.ItemDataRole.BackgroundRole and not equal:
            colour = QColor(theme.status_colour("warning"))
            colour.setAlpha(40)
            return colour
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _FactRowsModel(RowsTableModel[dict[str, Any]]):
    headers = ("Fact", "Recorded", "Now")

    def cell(self, d: dict[str, Any], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            v = (d.get("fact"), d.get("recorded"), d.get("now"))[column]
            return "—" if v is None else str(v)
        return None


class ReproductionDialog(QDialog):
    """The result of a reproduce job: metric by metric equal or not, and which recorded facts differ."""

    show_run_requested = Signal(str)

    def __init__(self, result: Mapping[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reproductionDialog")
        self.result_ = dict(result)
        self.matches = bool(result.get("matches"))
        self.setWindowTitle("Reproduction: " + ("matches" if self.matches else "does not match"))
        self.resize(720, 520)
        self.verdict = QLabel(verdict_html(result), self)
        self.verdict.setObjectName("reproductionVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        original, new = str(result.get("run_id") or ""), str(result.get("new_run_id") or "")
        ids = QLabel(f"Recorded run {original[:12]} · reproduced as run {new[:12]}", self)
        ids.setStyleSheet(f"color: {_muted(self).name()}")
        ids.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.metrics_model = _MetricRowsModel(self)
        self.metrics_model.set_rows(sorted(result.get("metrics", []), key=lambda m: (bool(m.get("equal")), m.get("key"))))
        self.metrics_view = self._table(self.metrics_model, "reproductionMetrics")
        self.facts_model = _FactRowsModel(self)
        self.facts_model.set_rows(list(result.get("differences", [])))
        self.facts_view = self._table(self.facts_model, "reproductionFacts")
        facts_title = QLabel("Recorded facts that differ now", self)
        theme.make_heading(facts_title, 1.0)
        self.no_facts = QLabel("None: the data, split, packages and platform are as recorded.", self)
        self.no_facts.setStyleSheet(f"color: {_muted(self).name()}")
        has_facts = bool(result.get("differences"))
        self.facts_view.setVisible(has_facts)
        self.no_facts.setVisible(not has_facts)
        metrics_title = QLabel("Metrics", self)
        theme.make_heading(metrics_title, 1.0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        show = buttons.addButton("Show the new run", QDialogButtonBox.ButtonRole.ActionRole)
        show.setEnabled(bool(new))
        show.clicked.connect(lambda: (self.show_run_requested.emit(new), self.accept()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_L, theme.SPACE_L, theme.SPACE_L, theme.SPACE_L)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.verdict)
        layout.addWidget(ids)
        layout.addWidget(metrics_title)
        layout.addWidget(self.metrics_view, 3)
        layout.addWidget(facts_title)
        layout.addWidget(self.facts_view, 1)
        layout.addWidget(self.no_facts)
        layout.addWidget(buttons)

    def _table(self, model: Any, name: str) -> QTableView:
        view = QTableView(self)
        view.setObjectName(name)
        view.setModel(model)
        view.verticalHeader().hide()
        view.verticalHeader().setDefaultSectionSize(22)
        view.setShowGrid(False)
        view.setWordWrap(False)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        return view

    def metric_results(self) -> dict[str, bool]:
        return {str(m.get("key")): bool(m.get("equal")) for m in self.metrics_model.rows}
