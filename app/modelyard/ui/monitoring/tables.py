"""The Monitoring panel's tables: models (by name), a model's checks (by id), a check's features."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.keyed_rows import KeyedRowsModel
from modelyard.ui.common.rows import RowsTableModel


def when(value: Any, *, short: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone().strftime("%b %d %H:%M" if short else "%Y-%m-%d %H:%M")


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def verdict_cell(verdict: str | None, role: int) -> Any:
    if not verdict:
        return "—" if role == Qt.ItemDataRole.DisplayRole else None
    if role == Qt.ItemDataRole.DisplayRole:
        return verdict
    if role == Qt.ItemDataRole.DecorationRole:
        return theme.status_icon(verdict)
    if role == Qt.ItemDataRole.ForegroundRole:
        return theme.status_colour(verdict)
    return None

# --------------------------------------------------------------------------- table models


class ModelsModel(KeyedRowsModel[dict]):
    headers = ("Model", "Status")
    STATUS = 1

    def cell(self, r: dict, column: int, role: int) -> Any:
        if column == self.STATUS and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole,
                                              Qt.ItemDataRole.ForegroundRole):
            return verdict_cell(r.get("status"), role)
        if role == Qt.ItemDataRole.DisplayRole:
            return (r["name"], "")[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return theme.icon("monitoring")
        if role == Qt.ItemDataRole.ToolTipRole:
            folder = r.get("watch_folder")
            n = int(r.get("n_checks") or 0)
            return (f"{r['name']}: checks run against {r.get('ref') or 'the champion'}\n"
                    + (f"{plural(n, 'check')}, the last {when(r.get('last'))}" if n else "No checks yet")
                    + (f"\nWatching {folder}" if folder else "\nNo watch folder") + "\nDrop a batch file here to check it.")
        return None

    def key(self, row: dict) -> Hashable:
        return row["name"]

    def row_of(self, name: str | None) -> int:
        return self.row_of_key(name)


class ChecksModel(KeyedRowsModel[dict]):
    headers = ("When", "Version", "Batch file", "Batch date", "Verdict", "Drifted", "Share")
    VERDICT = 4

    def key(self, row: dict) -> Hashable:
        return row["id"]

    def cell(self, c: dict, column: int, role: int) -> Any:
        if column == self.VERDICT:
            return verdict_cell(c.get("verdict"), role)
        if role == Qt.ItemDataRole.DisplayRole:
            drifted = c.get("drifted") or []
            share = c.get("drift_share")
            return (when(c.get("created_at"), short=True), f"v{c.get('version')}",
                    c.get("batch_file") or c.get("batch_ref") or "", when(c.get("batch_date"), short=True), "",
                    ", ".join(drifted[:4]) + ("…" if len(drifted) > 4 else ""),
                    f"{share:.0%}" if isinstance(share, (int, float)) else "")[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            facts = [c.get("summary") or ""]
            if column in (2, 3):
                facts.append(f"{c.get('batch_file') or 'the batch'}: file dated {when(c.get('batch_date'))}, imported "
                             f"{when(c.get('batch_imported'))} as {c.get('batch_ref') or 'a dataset version'}")
            return "\n".join(x for x in [*facts, *(c.get("reasons") or [])] if x) or None
        return None


class FeaturesModel(RowsTableModel[dict]):
    headers = ("Feature", "Kind", "Test", "Statistic", "p-value", "Effect", "Threshold", "Drift")

    def cell(self, f: dict, column: int, role: int) -> Any:
        drift = f.get("drift")
        status = f.get("status")
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 7:
                return "drift" if drift else ("ok" if status == "checked" else status or "")
            test = f.get("test") or ""
            effect = f.get("effect")
            return (f["name"] + (" ★" if f.get("critical") else ""), f.get("kind") or "", test,
                    num(f.get("statistic")) if f.get("statistic") is not None else "—",
                    num(f.get("p_adjusted", f.get("p_value"))) if f.get("p_value") is not None else "—",
                    num(effect) if effect is not None else "—",
                    num(f.get("threshold")), "")[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 7:
            return theme.status_icon("drift" if drift else "ok") if status == "checked" else theme.status_icon("warning")
        if role == Qt.ItemDataRole.ForegroundRole and column == 7:
            return theme.status_colour("drift" if drift else "ok" if status == "checked" else "warning")
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column <= 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == EffectDelegate.ROW_ROLE:
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            limit = effect_threshold(f)
            what = {0: f"{f['name']} ({f.get('kind') or 'unknown kind'})",
                    3: f.get("statistic_name"),
                    5: f"{f.get('effect_name') or 'effect'}: the bar on a 0–1 scale"
                       + (f", the dashed line at the drift threshold {limit:g}" if limit is not None else "")}.get(column)
            return "\n".join(x for x in (what, f.get("reason")) if x) or None
        return None


def effect_threshold(f: dict) -> float | None:
    """The effect size feature row ``f`` drifts at (None when its test decides on another measure)."""
    if f.get("test") in ("ks", "chisquare"):
        value = f.get("min_effect")
    elif f.get("statistic_name") and f.get("statistic_name") == f.get("effect_name"):
        value = f.get("threshold")
    else:
        value = None
    return float(value) if isinstance(value, (int, float)) else None


class EffectDelegate(QStyledItemDelegate):
    """A feature's effect size as a bar on a 0..1 scale with its drift threshold as a dashed tick,
    the number over it: how far past (or short of) the threshold each feature is, at a glance."""

    ROW_ROLE = Qt.ItemDataRole.UserRole + 1

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        f = index.data(self.ROW_ROLE) or {}
        score, limit = f.get("score"), effect_threshold(f)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = option.widget.style() if option.widget else None
        text = opt.text
        opt.text = ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, option.widget)
        rect = QRectF(option.rect).adjusted(3, 4, -3, -4)
        painter.save()
        if isinstance(score, (int, float)):
            colour = QColor(theme.status_colour("drift" if f.get("drift") else "ok"))
            colour.setAlpha(70)
            painter.fillRect(QRectF(rect.left(), rect.top(), rect.width() * min(max(float(score), 0.0), 1.0),
                                    rect.height()), colour)
        if limit is not None and 0 < limit <= 1:
            x = rect.left() + rect.width() * limit
            painter.setPen(QPen(QColor(theme.status_colour("drift")), 1.5, Qt.PenStyle.DashLine))
            painter.drawLine(int(x), int(rect.top()) - 2, int(x), int(rect.bottom()) + 2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        painter.drawText(rect.adjusted(0, 0, -2, 0), int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         text)
        painter.restore()
