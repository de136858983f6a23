"""The Registry panel: registered models, their versions, aliases, stages, gates and audit trail.

Left, the models (with their monitoring status); right, the selected model: its versions, the
audit timeline, and for the selected version its lineage and model card. Every change asks for a
comment (:mod:`modelyard.ui.registry.dialogs`) and goes through :mod:`modelyard.core.registry.versions`,
which audits it; a promotion blocked by a gate shows every reason and can be overridden with the
comment (also audited). Runs are registered with the Register button, from the Experiments
panel's context menu, or by dropping runs here (or on the sidebar's Registry item).
Bundles are exported and imported as jobs; a ``.mybundle`` file dropped here is imported.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import GateFailed, ModelyardError
from modelyard.core.jobs.runner import JobOutcome
from modelyard.core.registry import versions as registry
from modelyard.ui.common import theme
from modelyard.ui.common.dnd import RUN_IDS_MIME, local_files
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import master_detail, rows_view, show_error
from modelyard.ui.registry.dialogs import ChangeDialog, GatesDialog

BUNDLE_SUFFIX = ".mybundle"
BUNDLE_JOB_KINDS = ("bundle.export", "bundle.import")
SCORE_KIND = "score"
COMMON_ALIASES = ("champion", "challenger", "candidate", "shadow")
MAX_METRIC_COLUMNS = 3
STATUS_TEXT = {"ok": "ok", "warning": "warning", "drift": "drift", "error": "error"}


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else ""


def run_ids_from(mime: QMimeData | None) -> list[str]:
    if mime is None or not mime.hasFormat(RUN_IDS_MIME):
        return []
    text = bytes(mime.data(RUN_IDS_MIME).data()).decode("utf-8", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def bundle_files(mime: QMimeData | None) -> list[Path]:
    return [p for p in local_files(mime) if p.suffix.lower() == BUNDLE_SUFFIX]


def _statuses(store: Any, names: list[str]) -> dict[str, str | None]:
    """The latest drift verdict of each model (the monitoring service, when present). Runs on
    the client's reading thread."""
    if not names:
        return {}
    try:
        from modelyard.core.monitoring.drift import model_status
    except ImportError:
        return {}
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = model_status(store, name)
        except ModelyardError:
            out[name] = None
    return out


# --------------------------------------------------------------------------- table models


class _ModelsModel(RowsTableModel["registry.ModelInfo"]):
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
            return f"{info.name}: {info.n_versions} version(s); {aliases}" + (
                f"; latest drift check: {status}" if status else "; never checked for drift")
        return None

    def key(self, info: registry.ModelInfo) -> str:
        return info.name

    def row_of(self, name: str | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)


class _VersionsModel(RowsTableModel["registry.ModelVersionInfo"]):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.metric_keys: list[str] = []
        self.all_metric_keys: list[str] = []
        self.headers = self._headers()

    def metric_keys_all(self) -> list[str]:
        return list(self.all_metric_keys)

    def _headers(self) -> tuple[str, ...]:
        return ("Version", "Aliases", "Stage", *self.metric_keys, "Source", "Created", "By")

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
            return (v.source if v.source != "run" else f"run {v.run_id[:8]}" if v.run_id else "run",
                    _when(v.created_at), v.created_by or "")[column - 3 - n]
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column < 3 + n:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and column == 1 and registry.CHAMPION in v.aliases:
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{v.ref}" + (f" from run {v.run_id}" if v.run_id else "")
                    + (f" · dataset version {v.dataset_version_id}" if v.dataset_version_id else "")
                    + ("\n" + v.description if v.description else ""))
        return None


_ACTION_TEXT = {
    "create_model": "created the model", "register": "registered", "set_alias": "moved alias",
    "remove_alias": "removed alias", "set_stage": "changed stage", "set_gates": "changed gates",
    "gate_override": "overrode gates", "export_bundle": "exported a bundle", "import_bundle": "imported a bundle",
    "edit_card": "edited the card", "serve_start": "started serving", "serve_stop": "stopped serving",
    "drift_check": "checked drift", "retrain": "retrained",
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


class _TimelineModel(RowsTableModel[dict]):
    headers = ("When", "Who", "What", "Version", "Change", "Comment")

    def key(self, e: dict) -> Any:
        return e.get("id")

    def cell(self, e: dict, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            details = e.get("details") or {}
            what = _ACTION_TEXT.get(e["action"], e["action"])
            if details.get("alias"):
                what += f" {details['alias']}"
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
            return (_when(e["at"]), e.get("actor") or "", what,
                    f"v{e['version']}" if e.get("version") else "", change, e.get("comment") or "")[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            details = e.get("details") or {}
            text = e.get("comment") or ""
            if details.get("reasons"):
                text += "\nOverridden gates:\n" + "\n".join(f"• {r}" for r in details["reasons"])
            if e["action"] == "set_gates" or _json_dicts(e) or _LONG_RUN_ID.search(e.get("from_value") or "") \
                    or _LONG_RUN_ID.search(e.get("to_value") or ""):
                text += f"\nfrom {e.get('from_value') or 'none'}\nto {e.get('to_value') or 'none'}"
            return text.strip() or None
        if role == Qt.ItemDataRole.DecorationRole and column == 2 and e["action"] == "gate_override":
            return theme.status_icon("warning")
        return None


# --------------------------------------------------------------------------- the panel


class RegistryPanel(Panel):
    title = "Registry"
    icon_name = "registry"
    empty_headline = "No registered models yet"
    empty_body = (
        "Register the best run of an experiment to give it versions, aliases such as <i>champion</i>, an audit "
        "trail, and a verified bundle to share or serve. Drop runs or a <b>.mybundle</b> file here."
    )

    model_shown = Signal(str)  # model name
    changed = Signal()  # something was registered, moved or imported

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.model_name: str | None = None
        self.version: registry.ModelVersionInfo | None = None
        self._want_model: str | None = None  # what the next list read shows
        self._want_ref: str | None = None  # the version it selects
        self._selecting = False  # the panel itself moves a table's selection
        self.lineage_view: Any = None  # LineageView, built on first show
        self.server: Any = None  # serving.ServerProcess of the shown model, if serving
        self.server_ref: str | None = None
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(1000)
        self._stats_timer.timeout.connect(self._poll_stats)
        self._stats_reader: Any = None
        self.empty.add_action("Register a run…", lambda: self.register_run(), icon_name="registry")
        self.empty.add_action("Import a bundle…", lambda: self.import_bundle(), icon_name="import")

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.models_model = _ModelsModel(self)
        self.models_view = self._table("modelsTable", self.models_model)
        self.models_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            self.models_view.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.models_view.selectionModel().currentRowChanged.connect(
            lambda cur, _p: None if self._selecting else self._model_selected(cur.row()))
        self.register_button = QPushButton(theme.icon("registry"), "Register run…", self)
        self.register_button.setObjectName("registerButton")
        self.register_button.clicked.connect(lambda: self.register_run())
        self.import_button = QPushButton(theme.icon("import"), "Import bundle…", self)
        self.import_button.setObjectName("importBundleButton")
        self.import_button.clicked.connect(lambda: self.import_bundle())
        lb = QHBoxLayout()
        lb.addWidget(self.register_button)
        lb.addWidget(self.import_button)
        lb.addStretch(1)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        ll.addLayout(lb)
        ll.addWidget(self.models_view, 1)

        self.model_title = QLabel(self)
        self.model_title.setObjectName("modelTitle")
        theme.make_heading(self.model_title, 1.3)
        self.alias_button = QPushButton("Set alias…", self)
        self.alias_button.setObjectName("aliasButton")
        self.alias_button.setToolTip("Point an alias (champion, challenger…) at the selected version")
        self.alias_button.clicked.connect(lambda: self.set_alias())
        self.stage_button = QPushButton("Stage…", self)
        self.stage_button.setObjectName("stageButton")
        self.stage_button.clicked.connect(lambda: self.set_stage())
        self.gates_button = QPushButton("Gates…", self)
        self.gates_button.setObjectName("gatesButton")
        self.gates_button.clicked.connect(lambda: self.edit_gates())
        self.export_button = QPushButton("Export bundle…", self)
        self.export_button.setObjectName("exportBundleButton")
        self.export_button.clicked.connect(lambda: self.export_bundle())
        self.score_button = QPushButton("Score data…", self)
        self.score_button.setObjectName("scoreButton")
        self.score_button.setToolTip("Predict a data file with the selected version; the predictions become a "
                                     "dataset version linked to both")
        self.score_button.clicked.connect(lambda: self.score_file())
        self.serve_button = QPushButton(theme.icon("play"), "Serve", self)
        self.serve_button.setObjectName("serveButton")
        self.serve_button.setToolTip("Serve the selected version over HTTP on this computer (MLflow's scoring protocol)")
        self.serve_button.clicked.connect(self.toggle_serving)
        head = QHBoxLayout()
        head.addWidget(self.model_title)
        head.addStretch(1)
        for b in (self.alias_button, self.stage_button, self.gates_button, self.export_button, self.score_button,
                  self.serve_button):
            head.addWidget(b)
        self.facts = QLabel(self)
        self.facts.setObjectName("modelFacts")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.facts.setOpenExternalLinks(True)
        self.gate_label = QLabel(self)
        self.gate_label.setObjectName("gateLabel")
        self.gate_label.setWordWrap(True)
        self.gate_label.setTextFormat(Qt.TextFormat.RichText)
        self.serving_label = QLabel(self)
        self.serving_label.setObjectName("servingLabel")
        self.serving_label.setTextFormat(Qt.TextFormat.RichText)
        self.serving_label.setOpenExternalLinks(True)
        self.serving_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.serving_label.hide()

        self.versions_model = _VersionsModel(self)
        self.versions_view = self._table("versionsTable", self.versions_model)
        self.versions_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.versions_view.horizontalHeader().setStretchLastSection(True)
        self.versions_view.selectionModel().currentRowChanged.connect(
            lambda cur, _p: None if self._selecting else self._version_selected(cur.row()))
        self.versions_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.versions_view.customContextMenuRequested.connect(self._versions_menu)
        self.versions_view.doubleClicked.connect(lambda _i: self.tabs.setCurrentWidget(self.card_tab))

        self.timeline_model = _TimelineModel(self)
        self.timeline_view = self._table("timelineTable", self.timeline_model)
        self.timeline_view.setWordWrap(False)
        header = self.timeline_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)

        self.lineage_tab = QWidget(self)
        self.lineage_layout = QVBoxLayout(self.lineage_tab)
        self.lineage_layout.setContentsMargins(0, 0, 0, 0)
        self.lineage_hint = QLabel("Select a version to see where it came from and where it went.", self)
        self.lineage_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.lineage_layout.addWidget(self.lineage_hint)

        self.card_tab = QWidget(self)
        self.card_layout = QVBoxLayout(self.card_tab)
        self.card_layout.setContentsMargins(0, 0, 0, 0)
        self.card_browser: Any = None
        self.card_html = ""
        self.edit_notes_button = QPushButton("Edit notes…", self)
        self.edit_notes_button.setObjectName("editNotesButton")
        self.edit_notes_button.clicked.connect(lambda: self.edit_card_notes())
        self.export_card_button = QPushButton("Export HTML…", self)
        self.export_card_button.setObjectName("exportCardButton")
        self.export_card_button.clicked.connect(lambda: self.export_card())
        cb = QHBoxLayout()
        cb.addStretch(1)
        cb.addWidget(self.edit_notes_button)
        cb.addWidget(self.export_card_button)
        self.card_layout.addLayout(cb)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("registryTabs")
        self.tabs.addTab(self.versions_view, "Versions")
        self.tabs.addTab(self.timeline_view, "Audit timeline")
        self.tabs.addTab(self.lineage_tab, "Lineage")
        self.tabs.addTab(self.card_tab, "Model card")
        self.tabs.currentChanged.connect(lambda _i: self._show_version_tab())

        return master_detail(self, left, [head, self.facts, self.gate_label, self.serving_label, self.tabs], 300)

    def _table(self, name: str, model: Any) -> QTableView:
        return rows_view(self, name, model)

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.models_model.rowCount() > 0

    def refresh(self, select: str | None = None) -> None:
        """Re-read the models (and their drift status) off the main thread; then show ``select``
        (default: the model shown)."""
        if self.client is None:
            return
        if select:
            self._want_model = select

        def read(store: Any) -> tuple[list[registry.ModelInfo], dict[str, str | None]]:
            models = registry.list_models(store)
            return models, _statuses(store, [mi.name for mi in models])

        self.client.read("registry.models", read, self._listed, self._read_failed)

    def on_changed(self, topics: frozenset[str]) -> None:
        if topics & {"models", "checks"}:
            self.refresh()

    def _read_failed(self, exc: Exception) -> None:
        show_error(self, "Cannot read the registry", exc)

    def _listed(self, answer: tuple[list[registry.ModelInfo], dict[str, str | None]]) -> None:
        models, status = answer
        current = self._want_model or self.model_name
        self._want_model = None
        self._selecting = True
        try:
            self.models_model.status = status
            self.models_model.set_rows(models)
            self.models_model.refresh_cells()  # a status may have changed while its row did not
        finally:
            self._selecting = False
        if models:  # the content shows once the model's versions are read
            row = max(self.models_model.row_of(current), 0)
            self._select_row(self.models_view, row)
            self._model_selected(row)
        else:  # nothing registered (or another store): no stale rows behind the empty page
            super().refresh()
            self.model_name, self.version = None, None
            self.versions_model.set_rows([])
            self.timeline_model.set_rows([])

    def _select_row(self, view: QTableView, row: int) -> None:
        """Select ``row`` of ``view`` without the selection handlers (the caller shows it)."""
        self._selecting = True
        try:
            view.selectRow(row)
        finally:
            self._selecting = False

    def _model_selected(self, row: int) -> None:
        if self.client is None or not 0 <= row < self.models_model.rowCount():
            return
        info = self.models_model.rows[row]
        if self.model_name != info.name:
            self.version = None
        self.model_name = info.name
        self.model_title.setText(info.name)
        self._show_facts(info)
        name = info.name
        self.client.read("registry.model",
                         lambda store: (registry.list_versions(store, name), registry.timeline(store, name)),
                         lambda answer: self._model_loaded(name, *answer), self._read_failed)

    def _model_loaded(self, name: str, versions: list[registry.ModelVersionInfo], timeline: list[dict]) -> None:
        if name != self.model_name:
            return  # another model was chosen meanwhile
        wanted = self._want_ref or (self.version.ref if self.version is not None else None)
        self._selecting = True
        try:
            self.versions_model.set_rows(versions)
            self.timeline_model.set_rows(timeline)
        finally:
            self._selecting = False
        row_to_select = 0
        if wanted is not None:
            row_to_select = next((i for i, v in enumerate(self.versions_model.rows) if v.ref == wanted), 0)
        if self._want_ref is not None and any(v.ref == self._want_ref for v in self.versions_model.rows):
            self._want_ref = None
        if self.versions_model.rowCount():
            self._select_row(self.versions_view, row_to_select)
            self._version_selected(row_to_select)
        super().refresh()
        self.model_shown.emit(name)

    def _show_facts(self, info: registry.ModelInfo) -> None:
        aliases = " · ".join(f"<b>{a}</b> → v{n}" for a, n in info.aliases.items()) or "no aliases"
        stages = " · ".join(f"{st}: " + ", ".join(f"v{n}" for n in ns) for st, ns in info.stages.items())
        self.facts.setText(f"{info.n_versions} version{'s' if info.n_versions != 1 else ''} · {aliases}"
                           + (f" · {stages}" if stages else "") + f" · created {_when(info.created_at)}")

    def _version_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.versions_model.rowCount():
            self.version = None
            return
        self.version = self.versions_model.rows[row]
        self._show_gates()
        self._show_version_tab()

    def _model_info(self, name: str | None) -> registry.ModelInfo | None:
        """The model as last read (the list on the left)."""
        row = self.models_model.row_of(name)
        return self.models_model.rows[row] if row >= 0 else None

    def _show_gates(self) -> None:
        if self.client is None or self.model_name is None:
            return
        info = self._model_info(self.model_name)
        if info is None:
            return
        if not info.gates:
            self.gate_label.setText("<span style='color:gray'>No promotion gates: any version can become champion."
                                    " Use <b>Gates…</b> to require minimum metrics or beating the champion.</span>")
            return
        if self.version is None:
            return
        version = self.version
        self.client.read("registry.gates", lambda store: registry.check_gates(store, version.ref),
                         lambda report: self._gates_checked(version, report), self._read_failed)

    def _gates_checked(self, version: registry.ModelVersionInfo, report: Any) -> None:
        if self.version is None or self.version.ref != version.ref:
            return
        ok_colour, bad_colour = theme.status_colour("ok").name(), theme.status_colour("failed").name()
        checked = "; ".join(report.checked)
        if report.passed:
            self.gate_label.setText(f"<span style='color:{ok_colour}'>✔ v{version.version} passes the gates</span>"
                                    f" ({checked}).")
        else:
            reasons = "<br>".join(f"• {r}" for r in report.reasons)
            self.gate_label.setText(f"<span style='color:{bad_colour}'>✖ v{version.version} would be blocked "
                                    f"from champion / Production</span> ({checked}):<br>{reasons}")

    def _show_version_tab(self) -> None:
        if self.version is None:
            return
        current = self.tabs.currentWidget()
        if current is self.lineage_tab:
            self.show_lineage()
        elif current is self.card_tab:
            self.show_card()

    def select_version(self, ref: str) -> None:
        """Show ``NAME@vN`` (or any reference) in the panel (once read, off the main thread)."""
        assert self.client is not None
        self.client.read("registry.select", lambda store: registry.get_version(store, ref), self._version_found,
                         lambda exc: show_error(self, "Cannot show the version", exc))

    def _version_found(self, info: registry.ModelVersionInfo) -> None:
        self._want_ref = info.ref
        self.refresh(select=info.name)

    # ------------------------------------------------------------------ changes
    def _ask(self, dialog: ChangeDialog) -> tuple[str, str] | None:
        if dialog.exec() != ChangeDialog.DialogCode.Accepted:
            return None
        return dialog.choice_text(), dialog.comment_text()

    def _write(self, do: Any, done: Any, title: str) -> None:
        """Run ``do(store)`` on the client's writing thread; ``done(result)`` after it landed."""
        assert self.client is not None
        self.client.write(do, done, lambda exc: show_error(self, title, exc), changes="models")

    def _promote(self, do: Any, what: str, comment: str, done: Any) -> None:
        """Run a registry change off the main thread; a gate failure shows its reasons and offers
        an audited override."""
        assert self.client is not None

        def refused(exc: Exception) -> None:
            if not isinstance(exc, GateFailed):
                show_error(self, "Cannot change the model", exc)
                return
            box = QMessageBox(QMessageBox.Icon.Warning, "Promotion blocked by a gate", exc.message,
                              QMessageBox.StandardButton.Cancel, self)
            box.setObjectName("gateBlockedBox")
            box.setInformativeText(f"You can override the gates for {what}; the override and your comment "
                                   f"“{comment}” are written to the audit log.")
            override = box.addButton("Override and promote", QMessageBox.ButtonRole.DestructiveRole)
            override.setObjectName("overrideButton")
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is override:
                self._write(lambda store: do(store, True), done, "Cannot promote")

        self.client.write(lambda store: do(store, False), done, refused, changes="models")

    def _after_change(self, ref: str | None = None) -> None:
        if ref is not None:
            self.select_version(ref)
        else:
            self.refresh()
        self.changed.emit()

    def _with_version(self, ref: str, then: Any) -> None:
        """``then(version_info, model_info)`` for ``ref``: from what is shown, else read first."""
        model = self._model_info(self.version.name) if self.version is not None else None
        if self.version is not None and ref == self.version.ref and model is not None:
            then(self.version, model)
            return
        assert self.client is not None

        def read(store: Any) -> tuple[registry.ModelVersionInfo, registry.ModelInfo]:
            info = registry.get_version(store, ref)
            return info, registry.get_model(store, info.name)

        self.client.read("registry.ask", read, lambda answer: then(*answer),
                         lambda exc: show_error(self, "Cannot change the model", exc))

    def set_alias(self, alias: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        """Point ``alias`` at ``ref`` (default: the selected version), asking for what is missing.
        False when nothing was asked of the store (no version, or the user cancelled); the change
        itself lands off the main thread."""
        if self.store is None:
            return False
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return False
        asked = [True]

        def change(alias: str, comment: str) -> None:
            self._promote(lambda store, force: registry.set_alias(store, ref, alias, comment=comment, force=force),
                          f"{ref} as {alias}", comment, lambda _r: self._after_change(ref))

        def ask(_info: registry.ModelVersionInfo, model: registry.ModelInfo) -> None:
            holders = "".join(f"<br>• <b>{a}</b> is on v{n}" for a, n in model.aliases.items())
            choices = list(dict.fromkeys([*(a for a in COMMON_ALIASES), *model.aliases]))
            dialog = ChangeDialog(f"Set an alias on {ref}",
                                  f"Point an alias at <b>{ref}</b>. An alias is on one version at a time: "
                                  f"setting it moves it off the version that has it.{holders}", self,
                                  choice_label="Alias:", choices=choices, current=alias or registry.CHAMPION,
                                  editable=True, ok_text="Set alias")
            answer = self._ask(dialog)
            if answer is None:
                asked[0] = False
                return
            change(*answer)

        if alias is None or comment is None:
            self._with_version(ref, ask)
        else:
            change(alias, comment)
        return asked[0]

    def remove_alias(self, alias: str, comment: str | None = None) -> bool:
        if self.store is None or self.model_name is None:
            return False
        if comment is None:
            answer = self._ask(ChangeDialog(f"Remove the alias {alias}",
                                            f"Take <b>{alias}</b> off {self.model_name}.", self, ok_text="Remove"))
            if answer is None:
                return False
            comment = answer[1]
        name = self.model_name
        self._write(lambda store: registry.remove_alias(store, name, alias, comment=comment),
                    lambda _r: self._after_change(), "Cannot remove the alias")
        return True

    def set_stage(self, stage: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        if self.store is None:
            return False
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return False
        asked = [True]

        def change(stage: str, comment: str) -> None:
            self._promote(lambda store, force: registry.set_stage(store, ref, stage, comment=comment, force=force),
                          f"{ref} to {stage}", comment, lambda _r: self._after_change(ref))

        def ask(info: registry.ModelVersionInfo, _model: registry.ModelInfo) -> None:
            current = info.stage
            dialog = ChangeDialog(f"Change the stage of {ref}",
                                  f"<b>{ref}</b> is in stage <b>{current}</b>. Moving to Production passes the "
                                  "model's gates.", self, choice_label="Stage:", choices=list(registry.STAGES),
                                  current=stage or current, ok_text="Change stage")
            answer = self._ask(dialog)
            if answer is None:
                asked[0] = False
                return
            change(*answer)

        if stage is None or comment is None:
            self._with_version(ref, ask)
        else:
            change(stage, comment)
        return asked[0]

    def edit_gates(self) -> bool:
        info = self._model_info(self.model_name)
        if self.store is None or info is None:
            return False
        dialog = GatesDialog(info.name, self.versions_model.metric_keys_all(), info.gates, self)
        if dialog.exec() != GatesDialog.DialogCode.Accepted:
            return False
        name, gates, comment = info.name, dialog.gates(), dialog.comment_text()
        ref = self.version.ref if self.version else None
        self._write(lambda store: registry.set_gates(store, name, gates, comment=comment),
                    lambda _r: self._after_change(ref), "Cannot change the gates")
        return True

    def register_run(self, run_id: str | None = None, name: str | None = None, comment: str | None = None) -> bool:
        """Register a run's model as the next version of ``name`` (asking for what is missing; what
        the dialogs offer is read off the main thread first)."""
        if self.client is None:
            return False
        if run_id is not None and name is not None:
            self._register(run_id, name, comment)
            return True
        self.client.read("registry.registrable",
                         lambda store: (registry.registrable_runs(store), [mi.name for mi in registry.list_models(store)]),
                         lambda answer: self._ask_registration(run_id, name, comment, *answer), self._read_failed)
        return True

    def _ask_registration(self, run_id: str | None, name: str | None, comment: str | None,
                          runs: list[dict[str, Any]], names: list[str]) -> None:
        if run_id is None and not runs:
            show_error(self, "Nothing to register", ModelyardError(
                "No run has logged a model yet.",
                hint="Train a model in the Experiments panel, or log one with run.log_model() in a script."))
            return
        if run_id is not None:
            label = f"run <b>{run_id[:12]}</b>"
            default = name or (self.model_name or (runs[0]["experiment"] if runs else ""))
            dialog = ChangeDialog("Register a model", f"Register the model of {label} as the next version of:",
                                  self, choice_label="Model name:", choices=names, current=default, editable=True,
                                  placeholder="What is this version? (optional)", ok_text="Register",
                                  comment_required=False)
            answer = self._ask(dialog)
            if answer is None:
                return
            name, comment = answer[0], answer[1] or comment
        else:
            from modelyard.ui.registry.dialogs import RegisterDialog

            rdialog = RegisterDialog(runs, names, self.model_name, self)
            if rdialog.exec() != RegisterDialog.DialogCode.Accepted:
                return
            run_id, name, comment = rdialog.run_id(), rdialog.name(), rdialog.comment_text()
        self._register(run_id, name, comment)

    def _register(self, run_id: str, name: str, comment: str | None) -> None:
        def registered(info: registry.ModelVersionInfo) -> None:
            self._after_change(info.ref)
            self.show_panel()

        self._write(lambda store: registry.register(store, run_id, name, comment=comment or None), registered,
                    "Cannot register the model")

    def _versions_menu(self, pos: Any) -> None:
        index = self.versions_view.indexAt(pos)
        if not index.isValid():
            return
        self.versions_view.selectRow(index.row())
        self.versions_menu().exec(self.versions_view.viewport().mapToGlobal(pos))

    def versions_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.setObjectName("versionsMenu")
        v = self.version
        if v is None:
            return menu
        champion = menu.addAction(f"Make v{v.version} champion…")
        champion.setEnabled(registry.CHAMPION not in v.aliases)
        champion.triggered.connect(lambda: self.set_alias(registry.CHAMPION))
        menu.addAction("Set alias…").triggered.connect(lambda: self.set_alias())
        for alias in v.aliases:
            menu.addAction(f"Remove alias {alias}…").triggered.connect(lambda _c=False, a=alias: self.remove_alias(a))
        menu.addAction("Change stage…").triggered.connect(lambda: self.set_stage())
        menu.addSeparator()
        menu.addAction("Lineage").triggered.connect(lambda: self.tabs.setCurrentWidget(self.lineage_tab))
        menu.addAction("Model card").triggered.connect(lambda: self.tabs.setCurrentWidget(self.card_tab))
        menu.addAction("Export bundle…").triggered.connect(lambda: self.export_bundle())
        menu.addAction("Score data…").triggered.connect(lambda: self.score_file())
        if v.run_id:
            menu.addAction("Show the run").triggered.connect(lambda: self._show_run(v.run_id))
        return menu

    def _show_run(self, run_id: str) -> None:
        if self.client is not None:
            self.client.navigate.emit("experiments", ("select_run", run_id))

    # ------------------------------------------------------------------ lineage and card
    def show_lineage(self) -> None:
        if self.client is None or self.version is None:
            return
        ref = self.version.ref

        def read(store: Any) -> Any:
            from modelyard.core.registry import lineage

            return lineage.version_lineage(store, ref)

        self.client.read("registry.lineage", read, lambda graph: self._lineage_read(ref, graph),
                         lambda exc: show_error(self, "Cannot show the lineage", exc))

    def _lineage_read(self, ref: str, graph: Any) -> None:
        if self.version is None or self.version.ref != ref:
            return
        from modelyard.ui.registry.lineage_view import LineageView

        if self.lineage_view is None:
            self.lineage_hint.hide()
            self.lineage_view = LineageView(self.lineage_tab)
            self.lineage_view.node_activated.connect(self._lineage_node_activated)
            self.lineage_layout.addWidget(self.lineage_view)
        self.lineage_view.set_graph(graph)

    def _lineage_node_activated(self, node_type: str, node_id: str) -> None:
        if node_type == "run":
            self._show_run(node_id)
        elif node_type == "dataset_version" and self.client is not None:
            self.client.navigate.emit("datasets", ("show_version", int(node_id)))

    def show_card(self) -> None:
        if self.client is None or self.version is None:
            return
        ref = self.version.ref

        def read(store: Any) -> str:
            from modelyard.core.registry import cards

            return cards.render_html(cards.model_card(store, ref))

        self.client.read("registry.card", read, lambda html: self._card_read(ref, html),
                         lambda exc: show_error(self, "Cannot show the model card", exc))

    def _card_read(self, ref: str, html: str) -> None:
        if self.version is None or self.version.ref != ref:
            return
        if self.card_browser is None:
            from PySide6.QtWidgets import QTextBrowser

            self.card_browser = QTextBrowser(self.card_tab)
            self.card_browser.setObjectName("cardBrowser")
            self.card_browser.setOpenExternalLinks(True)
            self.card_layout.insertWidget(0, self.card_browser, 1)
        self.card_html = html
        scroll = self.card_browser.verticalScrollBar().value()
        self.card_browser.setHtml(self.card_html)
        self.card_browser.verticalScrollBar().setValue(scroll)

    def edit_card_notes(self, intended_use: str | None = None, notes: str | None = None,
                        comment: str | None = None) -> bool:
        if self.client is None or self.version is None:
            return False
        ref = self.version.ref

        def save(intended_use: str, notes: str, comment: str) -> None:
            from modelyard.core.registry import cards

            def saved(_result: Any) -> None:
                self._after_change(ref)
                self.tabs.setCurrentWidget(self.card_tab)
                self.show_card()

            self._write(lambda store: cards.set_card_notes(store, ref, intended_use=intended_use, notes=notes,
                                                           comment=comment), saved, "Cannot save the notes")

        def ask(fresh: registry.ModelVersionInfo) -> None:
            from modelyard.ui.registry.dialogs import NotesDialog

            current = (fresh.card or {}).get("notes") or ((self.version.card or {}).get("notes") if self.version
                                                          else None) or {}
            dialog = NotesDialog(ref, current.get("intended_use", ""), current.get("notes", ""), self)
            if dialog.exec() == NotesDialog.DialogCode.Accepted:
                save(*dialog.values())

        if intended_use is None or notes is None or comment is None:
            self.client.read("registry.ask", lambda store: registry.get_version(store, ref), ask,
                             lambda exc: show_error(self, "Cannot save the notes", exc))
        else:
            save(intended_use, notes, comment)
        return True

    def export_card(self, path: str | None = None) -> str | None:
        """Write the card of the selected version to ``path`` (asked for when not given), off the
        main thread; returns the path it is written to."""
        if self.client is None or self.version is None:
            return None
        ref = self.version.ref
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"{self.version.name}-v{self.version.version}-card.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the model card", suggested, "HTML (*.html)")
            if not path:
                return None
        target = path

        def write(store: Any) -> Any:
            from modelyard.core.registry import cards

            return cards.export_html(store, ref, target)

        self.client.read(f"registry.card-export.{target}", write, lambda _p: None,
                         lambda exc: show_error(self, "Cannot export the model card", exc))
        return path

    # ------------------------------------------------------------------ bundles
    def export_bundle(self, path: str | None = None, signing_key: str | None = None, *,
                      force: bool | None = None) -> JobHandle | None:
        """Export the selected version as a bundle. An existing file is replaced only once the user
        agreed: in the save dialog (which asks) or, for a path given otherwise, in a question here
        (``force`` answers it in advance)."""
        if self.store is None or self.version is None:
            return None
        from modelyard.core import bundles

        confirmed: Path | None = None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"{self.version.name}-v{self.version.version}{BUNDLE_SUFFIX}"
            path, _ = QFileDialog.getSaveFileName(self, f"Export {self.version.ref} as a bundle", suggested,
                                                  f"Modelyard bundle (*{BUNDLE_SUFFIX})")
            if not path:
                return None
            confirmed = Path(path)  # the dialog asked before returning an existing file
        try:
            target = bundles.target_path(path)
        except ModelyardError as exc:
            show_error(self, "Cannot export the bundle there", exc)
            return None
        if target.exists() and force is None:
            force = target == confirmed or QMessageBox.question(
                self, "Replace the file?", f"{target} already exists. Replace it with the bundle of "
                f"{self.version.ref}?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) == QMessageBox.StandardButton.Yes
            if not force:
                return None
        return self.start_job(bundles.export_bundle_spec(self.version.ref, path, signing_key=signing_key,
                                                         force=bool(force)))

    def import_bundle(self, path: str | Path | None = None, *, trust_pickle: bool | None = None,
                      name: str | None = None) -> JobHandle | None:
        """Verify a bundle, show what it holds, and import it (a job) once the user agrees."""
        if self.client is None:
            return None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self, "Import a bundle", "", f"Modelyard bundle (*{BUNDLE_SUFFIX})")
            if not path:
                return None
        if trust_pickle is not None:
            from modelyard.core import bundles

            return self.start_job(bundles.import_bundle_spec(str(path), name=name, trust_pickle=bool(trust_pickle)))
        chosen = str(path)

        def inspect(store: Any) -> Any:  # verifies every checksum: off the main thread
            from modelyard.core import bundles

            return bundles.inspect_bundle(chosen, store=store)

        self.client.read(f"registry.inspect.{chosen}", inspect, lambda report: self._ask_import(chosen, report, name),
                         lambda exc: show_error(self, f"{Path(chosen).name} cannot be imported", exc))
        return None

    def _ask_import(self, path: str, report: Any, name: str | None) -> JobHandle | None:
        from modelyard.core import bundles
        from modelyard.ui.registry.dialogs import BundleImportDialog

        dialog = BundleImportDialog(Path(path), report, self)
        if dialog.exec() != BundleImportDialog.DialogCode.Accepted:
            return None
        trust_pickle, name = dialog.trust_pickle(), dialog.name() or name
        return self.start_job(bundles.import_bundle_spec(path, name=name, trust_pickle=bool(trust_pickle)))

    # ------------------------------------------------------------------ batch scoring
    def score_file(self, path: str | Path | None = None, ref: str | None = None) -> JobHandle | None:
        """Predict a data file with ``ref`` (default: the selected version) in a child-process job."""
        if self.store is None:
            return None
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return None
        from modelyard.core.serving import scoring

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(
                self, f"Score a file with {ref}", "",
                "Data files (*.csv *.tsv *.txt *.parquet *.pq *.xlsx *.json *.jsonl *.ndjson);;All files (*)")
            if not path:
                return None
        return self.start_job(scoring.score_spec(ref, path=path, process=True))

    def _scored(self, result: dict[str, Any]) -> None:
        self.last_scored = result
        out = result.get("output") or {}
        if self.client is not None:  # the Datasets panel re-reads on the job's change signal
            self.client.message.emit(
                f"Predictions of {(result.get('model') or {}).get('ref', '')} stored as {out.get('ref', '')}", 15_000)

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        if handle is not None and handle.spec.kind == SCORE_KIND:
            if outcome.ok:
                self._scored(outcome.result or {})
                self._after_change(self.version.ref if self.version else None)
            elif outcome.status == "failed":
                show_error(self, "Scoring failed", ModelyardError(outcome.error or "Scoring failed.", hint=outcome.hint))
            return
        if handle is None or handle.spec.kind not in BUNDLE_JOB_KINDS:
            return
        if outcome.ok:
            result = outcome.result or {}
            ref = result.get("ref")
            if handle.spec.kind == "bundle.import" and ref:
                self._after_change(ref)
                self.show_panel()
            else:
                self._after_change(self.version.ref if self.version else None)
        elif outcome.status == "failed":
            title = "The bundle import failed" if handle.spec.kind == "bundle.import" else "The bundle export failed"
            show_error(self, title, ModelyardError(outcome.error or title, hint=outcome.hint))

    # ------------------------------------------------------------------ serving
    def toggle_serving(self) -> None:
        if self.server is not None:
            self.stop_serving()
        else:
            self.start_serving()

    def start_serving(self, ref: str | None = None, port: int = 0) -> bool:
        """Serve ``ref`` (default: the model's champion, else the selected version) in a child process."""
        if self.store is None:
            return False
        if ref is None:
            info = self._model_info(self.model_name)
            if info is None:
                return False
            ref = (f"{info.name}@{registry.CHAMPION}" if registry.CHAMPION in info.aliases
                   else self.version.ref if self.version else None)
        if ref is None:
            return False
        from modelyard.core import serving

        self.serve_button.setEnabled(False)
        self.serving_label.setText(f"Starting a server for <b>{ref}</b>…")
        self.serving_label.show()
        proc = serving.ServerProcess(ref, store=self.store.root, db_url=self.store.db_url, port=port)
        # start() waits for the child's "ready" line (it loads the model): off the main thread
        self._serve_reader().submit(proc.start, lambda started: self._serving_started(ref, started),
                                    self._serving_failed)
        return True

    def _serve_reader(self) -> Any:
        if self._stats_reader is None:
            from modelyard.ui.common.background import BackgroundReader

            self._stats_reader = BackgroundReader(self)
        return self._stats_reader

    def _serving_started(self, ref: str, proc: Any) -> None:
        self.server, self.server_ref = proc, ref
        self.serve_button.setEnabled(True)
        self.serve_button.setText("Stop serving")
        self.serve_button.setIcon(theme.icon("stop"))
        self._show_stats(None)
        self._stats_timer.start()

    def _serving_failed(self, error: Exception) -> None:
        self.serve_button.setEnabled(True)
        self.serving_label.hide()
        show_error(self, "Cannot start the server", error)

    def _poll_stats(self) -> None:
        server = self.server
        if server is None:
            self._stats_timer.stop()
            return
        reader = self._serve_reader()
        if reader.busy:
            return
        reader.submit(server.stats, self._show_stats, lambda _e: self._show_stats(None))

    def _show_stats(self, stats: dict[str, Any] | None) -> None:
        if self.server is None:
            return
        url = self.server.url
        text = f"Serving <b>{self.server_ref}</b> at <a href='{url}/metadata'>{url}</a>"
        if stats:
            if stats.get("version") is not None:
                text += f" (v{stats['version']})"
            text += f" · {stats.get('requests', 0):,} requests"
            if stats.get("errors"):
                text += f" · {stats['errors']:,} errors"
            latency = stats.get("latency_ms") or {}
            if latency.get("p50") is not None:
                text += f" · latency p50 {latency['p50']:.1f} ms, p99 {latency.get('p99') or 0:.1f} ms"
        self.serving_label.setText(text)
        self.serving_label.show()

    def stop_serving(self) -> None:
        server, self.server = self.server, None
        self._stats_timer.stop()
        if self._stats_reader is not None:
            self._stats_reader.wait()
        if server is not None:
            server.stop()
        self.serve_button.setText("Serve")
        self.serve_button.setIcon(theme.icon("play"))
        self.serving_label.hide()

    def shutdown(self) -> None:
        self.stop_serving()
        if self._stats_reader is not None:
            self._stats_reader.close()

    # ------------------------------------------------------------------ drops
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if run_ids_from(event.mimeData()) or bundle_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if run_ids_from(event.mimeData()) or bundle_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        runs, files = run_ids_from(event.mimeData()), bundle_files(event.mimeData())
        if not runs and not files:
            event.ignore()
            return
        event.acceptProposedAction()
        # after the drop returns: the dialogs are modal and must not run inside the drag's event loop
        QTimer.singleShot(0, self, lambda: self.take_drop(runs, files))

    def take_drop(self, run_ids: list[str], files: list[Path]) -> None:
        for run_id in run_ids:
            if not self.register_run(run_id):
                break
        for path in files:
            self.import_bundle(path)

    def refresh_icons(self) -> None:
        super().refresh_icons()
        self.models_model.layoutChanged.emit()

