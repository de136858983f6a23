"""The Pipelines panel's table models: the pipelines, a pipeline's runs, a step's outputs and a
file's problems. Rows are plain dicts read off the main thread."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import Qt

from modelyard.ui.common import theme
from modelyard.ui.common.keyed_rows import KeyedRowsModel
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.pipelines.texts import (
    counts_text,
    elapsed,
    short_value,
    trigger_detail,
    trigger_detail_of_run,
    trigger_text,
    triggers_text,
    when,
)

DISPLAY, TOOLTIP, DECORATION = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.DecorationRole


def _status_icon(status: str | None) -> Any:
    return theme.status_icon(status or "queued") if status else None


class PipelinesModel(KeyedRowsModel[dict[str, Any]]):
    """Name, steps, triggers (with "off" when the pipeline's triggers are switched off) and the
    last run (its status as an icon, its time; both in the tooltip)."""

    headers = ("Pipeline", "Steps", "Triggers", "Last run")
    NAME, STEPS, TRIGGERS, LAST = range(4)

    def key(self, row: dict[str, Any]) -> Hashable:
        return row["name"]

    def row_of(self, name: str | None) -> int:
        return self.row_of_key(name) if name is not None else -1

    @staticmethod
    def triggers_cell(row: dict[str, Any]) -> str:
        text = triggers_text(row.get("triggers"))
        if row.get("triggers") and not row.get("schedules_enabled", True):
            return f"off ({text})"
        return text

    def cell(self, row: dict[str, Any], column: int, role: int) -> Any:
        last = row.get("last_run") or {}
        if column == self.NAME:
            if role == DISPLAY:
                return row["name"]
            if role == TOOLTIP:
                steps = len(row.get("steps") or [])
                tip = [row["name"], row.get("description") or "", row.get("path") or "",
                       f"{steps} step{'s' if steps != 1 else ''} · triggers: {self.triggers_cell(row)}"]
                if row.get("file_changed"):
                    tip.append("The file changed (or is gone) since it was listed.")
                return "\n".join(t for t in tip if t)
            if role == DECORATION and row.get("file_changed"):
                return theme.status_icon("warning")
        elif column == self.STEPS:
            if role == DISPLAY:
                return str(len(row.get("steps") or []))
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif column == self.TRIGGERS:
            if role == DISPLAY:
                return self.triggers_cell(row)
            if role == TOOLTIP:
                details = "\n".join(trigger_detail(t) for t in row.get("triggers") or [])
                if not details:
                    return "No triggers: it runs when asked"
                state = ("On: they start runs by themselves" if row.get("schedules_enabled", True)
                         else "Off: it runs only when asked")
                return f"{details}\n{state}"
        elif column == self.LAST:
            if role == DISPLAY:
                return when(last.get("started_at") or last.get("created_at")) or last.get("status", "") \
                    if last else "never"
            if role == DECORATION and last:
                return _status_icon(last.get("status"))
            if role == TOOLTIP and last:
                return f"Run {last.get('id')} {last.get('status')}, {trigger_text(last.get('trigger'))}, " \
                       f"{when(last.get('started_at'), short=False)}" + (f"\n{last['error']}" if last.get("error") else "")
        return None


class RunsModel(KeyedRowsModel[dict[str, Any]]):
    headers = ("Run", "Status", "Trigger", "Started", "Duration", "Steps")
    ID, STATUS, TRIGGER, STARTED, DURATION, COUNTS = range(6)

    def key(self, row: dict[str, Any]) -> Hashable:
        return row["id"]

    def cell(self, row: dict[str, Any], column: int, role: int) -> Any:
        if role == DISPLAY:
            return (str(row["id"]), row.get("status") or "", trigger_text(row.get("trigger")),
                    when(row.get("started_at") or row.get("created_at")), elapsed(row),
                    counts_text(row.get("counts")))[column]
        if role == DECORATION and column == self.STATUS:
            return _status_icon(row.get("status"))
        if role == TOOLTIP:
            if column == self.STATUS and row.get("error"):
                return row["error"]
            if column == self.STARTED:
                return when(row.get("started_at") or row.get("created_at"), short=False)
            if column == self.TRIGGER:
                return trigger_detail_of_run(row.get("trigger"))
            if column == self.ID and row.get("resumed_from"):
                return f"Resumes run {row['resumed_from']}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.ID:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class OutputsModel(RowsTableModel[tuple[str, Any]]):
    headers = ("Output", "Value")

    def cell(self, row: tuple[str, Any], column: int, role: int) -> Any:
        if role == DISPLAY:
            return row[0] if column == 0 else short_value(row[1])
        if role == TOOLTIP and column == 1:
            return short_value(row[1], 2000)
        return None


class ProblemsModel(RowsTableModel[dict[str, Any]]):
    headers = ("Where", "Problem")

    def cell(self, row: dict[str, Any], column: int, role: int) -> Any:
        if role == DISPLAY:
            return f"{row['line']}:{row['column']}" if column == 0 else self.text(row)
        if role == TOOLTIP and column == 1:
            return self.text(row)
        if role == DECORATION and column == 0:
            return theme.status_icon("error")
        return None

    @staticmethod
    def text(row: dict[str, Any]) -> str:
        return f"{row['message']} {row['hint']}" if row.get("hint") else str(row["message"])
