"""The Step tab: the clicked step of the shown run — its state, attempts and times, its outputs,
the records it created (each a button that shows it in its own panel) and its log."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.widgets import rows_view
from modelyard.ui.pipelines.tables import OutputsModel
from modelyard.ui.pipelines.texts import elapsed, state_colour, step_status_text, when

# record type -> (room, panel method, button caption)
RECORD_TARGETS: dict[str, tuple[str, str, str]] = {
    "dataset_version": ("datasets", "show_version", "Dataset version"),
    "run": ("experiments", "select_run", "Run"),
    "model_version": ("registry", "select_version", "Model version"),
    "check": ("monitoring", "", "Drift check"),  # shown under its model in Monitoring
}
NAVIGABLE = ("dataset_version", "run", "model_version")


def with_refs(records: list[dict[str, Any]], outputs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The records with a ``ref`` where the step's outputs name one (an import's or a register
    step's ``ref``: "churn@v3"), when the step made one record of that type."""
    outputs = outputs or {}
    out = []
    for r in records:
        kind = r.get("type")
        alone = sum(1 for x in records if x.get("type") == kind) == 1
        if not r.get("ref") and alone and kind in ("dataset_version", "model_version") and outputs.get("ref"):
            r = {**r, "ref": outputs["ref"]}
        out.append(r)
    return out


def record_target(record: dict[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """Where a step's record is shown: ``("datasets", ("show_version", 12))``; None when no panel
    shows it (a model version is shown by its reference, "churn@v3")."""
    kind = str(record.get("type") or "")
    if kind not in NAVIGABLE or record.get("id") in (None, ""):
        return None
    room, method, _caption = RECORD_TARGETS[kind]
    value: Any = record["id"]
    if kind == "model_version":
        if not record.get("ref"):
            return None
        value = record["ref"]
    elif kind == "dataset_version":
        try:
            value = int(value)
        except (TypeError, ValueError):
            value = record.get("ref") or value
    return room, (method, value)


def record_caption(record: dict[str, Any]) -> str:
    kind = str(record.get("type") or "record")
    caption = RECORD_TARGETS.get(kind, ("", "", kind.replace("_", " ").capitalize()))[2]
    label = str(record.get("label") or record.get("ref") or record.get("id") or "")
    if kind == "run" and len(label) > 12 and not record.get("label"):
        label = label[:8]  # the start of the run's id, as the runs table shows it
    return f"{caption} {label}".strip()


class StepView(QWidget):
    """``show_step(step, log)``; ``navigate_requested(room, target)`` when a record's button is clicked."""

    navigate_requested = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step: dict[str, Any] | None = None
        self.title = QLabel(self)
        self.title.setObjectName("stepTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.facts = QLabel(self)
        self.facts.setObjectName("stepFacts")
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.records_row = QHBoxLayout()
        self.records_row.setSpacing(theme.SPACE_S)
        self.records_label = QLabel("Created:", self)
        self.records_row.addWidget(self.records_label)
        self.records_row.addStretch(1)
        self.record_buttons: list[QPushButton] = []
        self.outputs_model = OutputsModel(self)
        self.outputs_view = rows_view(self, "stepOutputs", self.outputs_model)
        oh = self.outputs_view.horizontalHeader()
        oh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        oh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.outputs_view.verticalHeader().setDefaultSectionSize(22)
        self.log = QPlainTextEdit(self)
        self.log.setObjectName("stepLog")
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("No log lines.")
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setObjectName("stepSplit")
        split.addWidget(self.outputs_view)
        split.addWidget(self.log)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([360, 540])
        self.hint = QLabel("Click a step in the graph to see its outputs and log.", self)
        self.hint.setObjectName("stepHint")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.setSpacing(theme.SPACE_S)
        layout.addWidget(self.hint)
        layout.addWidget(self.title)
        layout.addWidget(self.facts)
        layout.addLayout(self.records_row)
        layout.addWidget(split, 1)
        self.split = split
        self.show_step(None)

    def show_step(self, step: dict[str, Any] | None, log: str | None = None) -> None:
        self.step = step
        parts = (self.title, self.facts, self.split, self.records_label)
        for w in parts:
            w.setVisible(step is not None)
        self.hint.setVisible(step is None)
        for b in self.record_buttons:
            b.deleteLater()
        self.record_buttons = []
        if step is None:
            self.outputs_model.set_rows([])
            self.log.setPlainText("")
            return
        status = str(step.get("status") or "pending")
        colour = state_colour(status, theme.is_dark(self.palette())).name()
        self.title.setText(f"<b>{html.escape(str(step['name']))}</b> · {html.escape(str(step.get('kind') or ''))} "
                           f"step · <span style='color:{colour}'><b>{html.escape(step_status_text(step))}</b></span>")
        facts = []
        if step.get("started_at"):
            facts.append(f"started {when(step['started_at'], short=False)}")
        if elapsed(step):
            facts.append(f"took {elapsed(step)}" if status not in ("running",) else f"running for {elapsed(step)}")
        if int(step.get("attempts") or 0) > 1:
            facts.append(f"{step['attempts']} attempts")
        if step.get("cached_from"):
            facts.append("outputs reused from an earlier run")
        if step.get("needs"):
            facts.append("after " + ", ".join(step["needs"]))
        text = " · ".join(facts) or ("not started yet" if status == "pending" else "")
        if step.get("error"):
            text += ("\n" if text else "") + str(step["error"])
        self.facts.setText(text)
        self.outputs_model.set_rows(sorted((step.get("outputs") or {}).items()))
        self.outputs_view.setVisible(bool(self.outputs_model.rows))  # none yet (or failed): the log takes the room
        records = with_refs([r for r in step.get("records") or [] if isinstance(r, dict)], step.get("outputs"))
        self.records_label.setVisible(bool(records))
        for r in records:
            target = record_target(r)
            button = QPushButton(record_caption(r), self)
            button.setObjectName(f"record_{r.get('type')}")
            button.setEnabled(target is not None)
            button.setToolTip(f"Show it in {target[0].capitalize()}" if target is not None
                              else f"{record_caption(r)} (no panel shows it from here)")
            if target is not None:
                button.clicked.connect(lambda _c=False, t=target: self.navigate_requested.emit(*t))
            self.records_row.insertWidget(self.records_row.count() - 1, button)
            self.record_buttons.append(button)
        if log is not None:
            self.set_log(log)

    def set_log(self, text: str) -> None:
        if text != self.log.toPlainText():
            bar = self.log.verticalScrollBar()
            at_end = bar.value() >= bar.maximum() - 2
            self.log.setPlainText(text)
            if at_end:
                bar.setValue(bar.maximum())
