"""The Registry panel's tables: the models (by name, with their latest drift verdict), a model's
versions (by id, with its leading metrics as columns) and its audit timeline (by event id)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from PySide6.QtCore import Qt

from modelyard.core.common.names import plural
from modelyard.core.registry import versions as registry
from modelyard.ui.common import theme
from modelyard.ui.common.rows import RowsTableModel

MAX_METRIC_COLUMNS = 3
STATUS_TEXT = {"ok": "ok", "warning": "warning", "drift": "drift", "error": "error"}


def when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else ""


def short_when(value: dt.datetime | None) -> str:
    """``Dec 6 14:05`` this year, ``2025-12-06`` before (the whole time is in the tooltip)."""
    if value is None:
        return ""
    local = value.astimezone()
    if local.year == dt.datetime.now().astimezone().year:
        return f"{local:%b} {local.day} {local:%H:%M}"
    return local.strftime("%Y-%m-%d")


def _source(v: registry.ModelVersionInfo) -> str:
    if v.source == "run":
        return f"run {v.run_id}" if v.run_id else "run"
    return v.source


class ModelsModel(RowsTableModel["registry.ModelInfo"]):
    headers = ("Model", "Latest", "Champion", "Status")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.status: dict[str, str | None] = {}

    def cell(self, info: registry.ModelInfo, column: int, role: int) -> Any:
        status = self.status.get(info.name)
        if role == Qt.ItemDataRole.DisplayRole:
            champion = info.aliases.get(registry.CHAMPION)
            return (info.name, f"v{info.latest_version}" if info.latest_version else "",
                    f"v{champion}" if champion else "—", STATUS_TEXT.get(status or "", "—"))[column]
        if role == Qt.ItemDataRole.DecorationRole:
            if column == 0:
                return theme.icon("registry")
            if column == 3 and status:
                return theme.status_icon(status)
        if role == Qt.ItemDataRole.ForegroundRole and column == 3 and status:
            return theme.status_colour(status)
        if role == Qt.ItemDataRole.ToolTipRole:
            aliases = ", ".join(f"{a} → v{n}" for a, n in info.aliases.items()) or "no aliases"
            return f"{info.name}: {plural(info.n_versions, 'version')}; {aliases}" + (
                f"; latest drift check: {status}" if status else "; never checked for drift")
        return None

    def key(self, info: registry.ModelInfo) -> str:
        return info.name

    def row_of(self, name: str | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)


class VersionsModel(RowsTableModel["registry.ModelVersionInfo"]):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.metric_keys: list[str] = []
        self.all_metric_keys: list[str] = []
        self.headers = self._headers()

    def metric_keys_all(self) -> list[str]:
        return list(self.all_metric_keys)

    def _headers(self) -> tuple[str, ...]:
        # who registered it is in the row's tooltip and the audit timeline; the source, last, takes
        # what width is left (elided in the middle, whole in its tooltip)
        return ("Version", "Aliases", "Stage", *self.metric_keys, "Created", "Source")

    def set_rows(self, rows: list[registry.ModelVersionInfo]) -> None:
        keys: list[str] = []
        for v in rows:
            for k in v.metrics:
                if k not in keys:
                    keys.append(k)
        preferred = [k for k in ("f1_macro", "f1", "accuracy", "roc_auc", "r2", "rmse", "mae") if k in keys]
        all_keys = preferred + [k for k in keys if k not in preferred]
        newest_first = list(reversed(rows))
        if all_keys[:MAX_METRIC_COLUMNS] == self.metric_keys:  # the same columns: update rows by key
            self.all_metric_keys = all_keys
            super().set_rows(newest_first)
            return
        self.beginResetModel()
        self.all_metric_keys = all_keys
        self.metric_keys = self.all_metric_keys[:MAX_METRIC_COLUMNS]
        self.headers = self._headers()
        self.rows = newest_first
        self.endResetModel()

    def key(self, v: registry.ModelVersionInfo) -> int:
        return v.id

    def cell(self, v: registry.ModelVersionInfo, column: int, role: int) -> Any:
        n = len(self.metric_keys)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return f"v{v.version}"
            if column == 1:
                return ", ".join(v.aliases)
            if column == 2:
                return "" if v.stage == "None" else v.stage
            if 3 <= column < 3 + n:
                value = v.metrics.get(self.metric_keys[column - 3])
                return f"{value:.4g}" if isinstance(value, (int, float)) else ""
            return (short_when(v.created_at), _source(v))[column - 3 - n]
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column < 3 + n:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and column == 1 and registry.CHAMPION in v.aliases:
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{v.ref}" + (f" from run {v.run_id}" if v.run_id else f" from a {v.source}")
                    + f"\nregistered {when(v.created_at)}" + (f" by {v.created_by}" if v.created_by else "")
                    + ("\n" + v.description if v.description else ""))
        return None


_ACTION_TEXT = {
    "create_model": "created the model", "register": "registered", "set_alias": "moved alias",
    "remove_alias": "removed alias", "set_stage": "changed stage", "set_gates": "changed gates",
    "gate_override": "overrode gates", "export_bundle": "exported a bundle", "import_bundle": "imported a bundle",
    "edit_card": "edited the card", "serve_start": "started serving", "serve_stop": "stopped serving",
    "drift_check": "checked drift", "retrain": "retrained", "batch_score": "scored data",
    "set_monitoring": "changed monitoring", "set_watch_folder": "set the watch folder",
    "request_promotion": "requested promotion", "approve_request": "approved the request",
    "reject_request": "rejected the request", "withdraw_request": "withdrew the request",
}


_LONG_RUN_ID = re.compile(r"\brun [0-9a-f]{32}\b")


def _json_dicts(e: dict) -> tuple[dict, dict] | None:
    """(before, after) when an event's from/to values are JSON objects (a card's or settings' edit)."""
    import json

    out = []
    for key in ("from_value", "to_value"):
        text = e.get(key) or "{}"
        if not text.startswith("{"):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        out.append(value)
    return (out[0], out[1]) if (e.get("from_value") or e.get("to_value")) else None


class TimelineModel(RowsTableModel[dict]):
    headers = ("When", "Who", "What", "Version", "Change", "Comment")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.model_name = ""  # the model whose events these are: "churn@v2" reads "v2" in its own timeline

    def key(self, e: dict) -> Any:
        return e.get("id")

    def _short(self, text: str) -> str:
        if not self.model_name:
            return text
        return re.sub(rf"(?<![\w.-]){re.escape(self.model_name)}@(?=v\d)", "", text)

    def change_text(self, e: dict, *, short: bool = True) -> str:
        """What the event changed, in a few words (the tooltip has the whole values)."""
        change = ""
        dicts = _json_dicts(e)
        if e["action"] == "set_gates":
            change = "gates changed" if e.get("to_value") else "gates removed"
        elif dicts is not None:
            before, after = dicts
            changed = [k.replace("_", " ") for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
            change = (" and ".join(changed) + " changed") if changed else "no change"
        elif e.get("from_value") or e.get("to_value"):
            change = f"{e.get('from_value') or '—'} → {e.get('to_value') or '—'}"
            change = _LONG_RUN_ID.sub(lambda mt: mt.group(0)[:12], change)  # "run 9d7d335d" (tooltip: all)
        return self._short(change) if short else change

    def cell(self, e: dict, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            details = e.get("details") or {}
            what = _ACTION_TEXT.get(e["action"], e["action"])
            if details.get("alias"):
                what += f" {details['alias']}"
            return (short_when(e["at"]), e.get("actor") or "", what,
                    f"v{e['version']}" if e.get("version") else "", self.change_text(e), e.get("comment") or "")[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            details = e.get("details") or {}
            text = f"{when(e['at'])}: {self.change_text(e, short=False)}".rstrip(": ") + "\n" + (e.get("comment") or "")
            if details.get("reasons"):
                text += "\nOverridden gates:\n" + "\n".join(f"• {r}" for r in details["reasons"])
            if e["action"] == "set_gates" or _json_dicts(e) or _LONG_RUN_ID.search(e.get("from_value") or "") \
                    or _LONG_RUN_ID.search(e.get("to_value") or ""):
                text += f"\nfrom {e.get('from_value') or 'none'}\nto {e.get('to_value') or 'none'}"
            return text.strip() or None
        if role == Qt.ItemDataRole.DecorationRole and column == 2 and e["action"] == "gate_override":
            return theme.status_icon("warning")
        return None
