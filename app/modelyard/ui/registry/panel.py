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
        self.beginResetModel()
        self.all_metric_keys = preferred + [k for k in keys if k not in preferred]
        self.metric_keys = self.all_metric_keys[:MAX_METRIC_COLUMNS]
        self.headers = self._headers()
        self.rows = list(reversed(rows))  # newest first
        self.endResetModel()

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
        self.models_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._model_selected(cur.row()))
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
        self.versions_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._version_selected(cur.row()))
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
        if self.store is None:
            return
        current = select or self.model_name
        models = registry.list_models(self.store)
        self.models_model.status = self._statuses([mi.name for mi in models])
        self.models_model.set_rows(models)
        super().refresh()
        if models:
            row = max(self.models_model.row_of(current), 0)
            self.models_view.selectRow(row)
            self._model_selected(row)
        else:  # nothing registered (or another store): no stale rows behind the empty page
            self.model_name, self.version = None, None
            self.versions_model.set_rows([])
            self.timeline_model.set_rows([])

    def _statuses(self, names: list[str]) -> dict[str, str | None]:
        """The latest drift verdict of each model (the monitoring service, when present)."""
        if self.store is None or not names:
            return {}
        try:
            from modelyard.core.monitoring.drift import model_status
        except ImportError:
            return {}
        out: dict[str, str | None] = {}
        for name in names:
            try:
                out[name] = model_status(self.store, name)
            except ModelyardError:
                out[name] = None
        return out

    def _model_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.models_model.rowCount():
            return
        info = self.models_model.rows[row]
        previous = self.version.ref if self.version is not None and self.model_name == info.name else None
        self.model_name = info.name
        self.model_title.setText(info.name)
        versions = registry.list_versions(self.store, info.name)
        self.versions_model.set_rows(versions)
        self.timeline_model.set_rows(registry.timeline(self.store, info.name))
        self._show_facts(info)
        row_to_select = 0
        if previous is not None:
            row_to_select = next((i for i, v in enumerate(self.versions_model.rows) if v.ref == previous), 0)
        if self.versions_model.rowCount():
            self.versions_view.selectRow(row_to_select)
            self._version_selected(row_to_select)
        self.model_shown.emit(info.name)

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

    def _show_gates(self) -> None:
        if self.store is None or self.model_name is None:
            return
        info = self.models_model.rows[self.models_model.row_of(self.model_name)]
        if not info.gates:
            self.gate_label.setText("<span style='color:gray'>No promotion gates: any version can become champion."
                                    " Use <b>Gates…</b> to require minimum metrics or beating the champion.</span>")
            return
        if self.version is None:
            return
        report = registry.check_gates(self.store, self.version.ref)
        ok_colour, bad_colour = theme.status_colour("ok").name(), theme.status_colour("failed").name()
        checked = "; ".join(report.checked)
        if report.passed:
            self.gate_label.setText(f"<span style='color:{ok_colour}'>✔ v{self.version.version} passes the gates</span>"
                                    f" ({checked}).")
        else:
            reasons = "<br>".join(f"• {r}" for r in report.reasons)
            self.gate_label.setText(f"<span style='color:{bad_colour}'>✖ v{self.version.version} would be blocked "
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
        """Show ``NAME@vN`` (or any reference) in the panel."""
        assert self.store is not None
        info = registry.get_version(self.store, ref)
        self.refresh(select=info.name)
        row = next((i for i, v in enumerate(self.versions_model.rows) if v.id == info.id), -1)
        if row >= 0:
            self.versions_view.selectRow(row)
            self._version_selected(row)

    # ------------------------------------------------------------------ changes
    def _ask(self, dialog: ChangeDialog) -> tuple[str, str] | None:
        if dialog.exec() != ChangeDialog.DialogCode.Accepted:
            return None
        return dialog.choice_text(), dialog.comment_text()

    def _promote(self, do: Any, what: str, comment: str) -> Any:
        """Run a registry change; a gate failure shows its reasons and offers an audited override."""
        try:
            return do(False)
        except GateFailed as exc:
            box = QMessageBox(QMessageBox.Icon.Warning, "Promotion blocked by a gate", exc.message,
                              QMessageBox.StandardButton.Cancel, self)
            box.setObjectName("gateBlockedBox")
            box.setInformativeText(f"You can override the gates for {what}; the override and your comment "
                                   f"“{comment}” are written to the audit log.")
            override = box.addButton("Override and promote", QMessageBox.ButtonRole.DestructiveRole)
            override.setObjectName("overrideButton")
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is not override:
                return None
            try:
                return do(True)
            except ModelyardError as again:
                show_error(self, "Cannot promote", again)
        except ModelyardError as exc:
            show_error(self, "Cannot change the model", exc)
        return None

    def _after_change(self, ref: str | None = None) -> None:
        if ref is not None:
            self.select_version(ref)
        else:
            self.refresh()
        self.changed.emit()

    def set_alias(self, alias: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        """Point ``alias`` at ``ref`` (default: the selected version), asking for what is missing."""
        if self.store is None:
            return False
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return False
        if alias is None or comment is None:
            info = registry.get_version(self.store, ref)
            model = registry.get_model(self.store, info.name)
            holders = "".join(f"<br>• <b>{a}</b> is on v{n}" for a, n in model.aliases.items())
            choices = list(dict.fromkeys([*(a for a in COMMON_ALIASES), *model.aliases]))
            dialog = ChangeDialog(f"Set an alias on {ref}",
                                  f"Point an alias at <b>{ref}</b>. An alias is on one version at a time: "
                                  f"setting it moves it off the version that has it.{holders}", self,
                                  choice_label="Alias:", choices=choices, current=alias or registry.CHAMPION,
                                  editable=True, ok_text="Set alias")
            answer = self._ask(dialog)
            if answer is None:
                return False
            alias, comment = answer
        result = self._promote(lambda force: registry.set_alias(self.store, ref, alias, comment=comment, force=force),
                               f"{ref} as {alias}", comment)
        if result is None:
            return False
        self._after_change(ref)
        return True

    def remove_alias(self, alias: str, comment: str | None = None) -> bool:
        if self.store is None or self.model_name is None:
            return False
        if comment is None:
            answer = self._ask(ChangeDialog(f"Remove the alias {alias}",
                                            f"Take <b>{alias}</b> off {self.model_name}.", self, ok_text="Remove"))
            if answer is None:
                return False
            comment = answer[1]
        try:
            registry.remove_alias(self.store, self.model_name, alias, comment=comment)
        except ModelyardError as exc:
            show_error(self, "Cannot remove the alias", exc)
            return False
        self._after_change()
        return True

    def set_stage(self, stage: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        if self.store is None:
            return False
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return False
        if stage is None or comment is None:
            current = registry.get_version(self.store, ref).stage
            dialog = ChangeDialog(f"Change the stage of {ref}",
                                  f"<b>{ref}</b> is in stage <b>{current}</b>. Moving to Production passes the "
                                  "model's gates.", self, choice_label="Stage:", choices=list(registry.STAGES),
                                  current=stage or current, ok_text="Change stage")
            answer = self._ask(dialog)
            if answer is None:
                return False
            stage, comment = answer
        result = self._promote(lambda force: registry.set_stage(self.store, ref, stage, comment=comment, force=force),
                               f"{ref} to {stage}", comment)
        if result is None:
            return False
        self._after_change(ref)
        return True

    def edit_gates(self) -> bool:
        if self.store is None or self.model_name is None:
            return False
        info = registry.get_model(self.store, self.model_name)
        dialog = GatesDialog(info.name, self.versions_model.metric_keys_all(), info.gates, self)
        if dialog.exec() != GatesDialog.DialogCode.Accepted:
            return False
        try:
            registry.set_gates(self.store, info.name, dialog.gates(), comment=dialog.comment_text())
        except ModelyardError as exc:
            show_error(self, "Cannot change the gates", exc)
            return False
        self._after_change(self.version.ref if self.version else None)
        return True

    def register_run(self, run_id: str | None = None, name: str | None = None, comment: str | None = None) -> bool:
        """Register a run's model as the next version of ``name`` (asking for what is missing)."""
        if self.store is None:
            return False
        if run_id is None or name is None:
            runs = registry.registrable_runs(self.store)
            if run_id is None and not runs:
                show_error(self, "Nothing to register", ModelyardError(
                    "No run has logged a model yet.",
                    hint="Train a model in the Experiments panel, or log one with run.log_model() in a script."))
                return False
            names = [mi.name for mi in registry.list_models(self.store)]
            if run_id is not None:
                label = f"run <b>{run_id[:12]}</b>"
                default = name or (self.model_name or (runs[0]["experiment"] if runs else ""))
                dialog = ChangeDialog("Register a model", f"Register the model of {label} as the next version of:",
                                      self, choice_label="Model name:", choices=names, current=default, editable=True,
                                      placeholder="What is this version? (optional)", ok_text="Register",
                                      comment_required=False)
                answer = self._ask(dialog)
                if answer is None:
                    return False
                name, comment = answer[0], answer[1] or comment
            else:
                from modelyard.ui.registry.dialogs import RegisterDialog

                rdialog = RegisterDialog(runs, names, self.model_name, self)
                if rdialog.exec() != RegisterDialog.DialogCode.Accepted:
                    return False
                run_id, name, comment = rdialog.run_id(), rdialog.name(), rdialog.comment_text()
        try:
            info = registry.register(self.store, run_id, name, comment=comment or None)
        except ModelyardError as exc:
            show_error(self, "Cannot register the model", exc)
            return False
        self._after_change(info.ref)
        self.show_panel()
        return True

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
        window = self.window()
        for panel in getattr(window, "panels", []):
            if hasattr(panel, "select_run"):
                window.show_panel(window.panels.index(panel))
                panel.select_run(run_id)

    def show_panel(self) -> None:
        window = self.window()
        if hasattr(window, "show_panel") and hasattr(window, "panels"):
            window.show_panel(window.panels.index(self))

    # ------------------------------------------------------------------ lineage and card
    def show_lineage(self) -> None:
        if self.store is None or self.version is None:
            return
        from modelyard.core.registry import lineage
        from modelyard.ui.registry.lineage_view import LineageView

        if self.lineage_view is None:
            self.lineage_hint.hide()
            self.lineage_view = LineageView(self.lineage_tab)
            self.lineage_view.node_activated.connect(self._lineage_node_activated)
            self.lineage_layout.addWidget(self.lineage_view)
        try:
            graph = lineage.version_lineage(self.store, self.version.ref)
        except ModelyardError as exc:
            show_error(self, "Cannot show the lineage", exc)
            return
        self.lineage_view.set_graph(graph)

    def _lineage_node_activated(self, node_type: str, node_id: str) -> None:
        if node_type == "run":
            self._show_run(node_id)
        elif node_type == "dataset_version":
            window = self.window()
            panel = getattr(window, "datasets_panel", None)
            if panel is not None:
                window.show_panel(window.panels.index(panel))
                panel.refresh()
                panel.show_version(int(node_id))

    def show_card(self) -> None:
        if self.store is None or self.version is None:
            return
        from modelyard.core.registry import cards

        if self.card_browser is None:
            from PySide6.QtWidgets import QTextBrowser

            self.card_browser = QTextBrowser(self.card_tab)
            self.card_browser.setObjectName("cardBrowser")
            self.card_browser.setOpenExternalLinks(True)
            self.card_layout.insertWidget(0, self.card_browser, 1)
        try:
            self.card_html = cards.render_html(cards.model_card(self.store, self.version.ref))
        except ModelyardError as exc:
            show_error(self, "Cannot show the model card", exc)
            return
        scroll = self.card_browser.verticalScrollBar().value()
        self.card_browser.setHtml(self.card_html)
        self.card_browser.verticalScrollBar().setValue(scroll)

    def edit_card_notes(self, intended_use: str | None = None, notes: str | None = None,
                        comment: str | None = None) -> bool:
        if self.store is None or self.version is None:
            return False
        from modelyard.core.registry import cards

        if intended_use is None or notes is None or comment is None:
            from modelyard.ui.registry.dialogs import NotesDialog

            current = (self.version.card or {}).get("notes") or {}
            fresh = registry.get_version(self.store, self.version.ref)
            current = (fresh.card or {}).get("notes") or current
            dialog = NotesDialog(self.version.ref, current.get("intended_use", ""), current.get("notes", ""), self)
            if dialog.exec() != NotesDialog.DialogCode.Accepted:
                return False
            intended_use, notes, comment = dialog.values()
        try:
            cards.set_card_notes(self.store, self.version.ref, intended_use=intended_use, notes=notes, comment=comment)
        except ModelyardError as exc:
            show_error(self, "Cannot save the notes", exc)
            return False
        self._after_change(self.version.ref)
        self.tabs.setCurrentWidget(self.card_tab)
        self.show_card()
        return True

    def export_card(self, path: str | None = None) -> str | None:
        if self.store is None or self.version is None:
            return None
        from modelyard.core.registry import cards

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"{self.version.name}-v{self.version.version}-card.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the model card", suggested, "HTML (*.html)")
            if not path:
                return None
        try:
            cards.export_html(self.store, self.version.ref, path)
        except (ModelyardError, OSError) as exc:
            show_error(self, "Cannot export the model card", exc)
            return None
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
        if self.store is None:
            return None
        from modelyard.core import bundles

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self, "Import a bundle", "", f"Modelyard bundle (*{BUNDLE_SUFFIX})")
            if not path:
                return None
        try:
            report = bundles.inspect_bundle(path, store=self.store)
        except ModelyardError as exc:
            show_error(self, f"{Path(path).name} cannot be imported", exc)
            return None
        if trust_pickle is None:
            from modelyard.ui.registry.dialogs import BundleImportDialog

            dialog = BundleImportDialog(Path(path), report, self)
            if dialog.exec() != BundleImportDialog.DialogCode.Accepted:
                return None
            trust_pickle, name = dialog.trust_pickle(), dialog.name() or name
        return self.start_job(bundles.import_bundle_spec(str(path), name=name, trust_pickle=bool(trust_pickle)))

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
        window = self.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(
                f"Predictions of {(result.get('model') or {}).get('ref', '')} stored as {out.get('ref', '')}", 15_000)
        panel = getattr(window, "datasets_panel", None)
        if panel is not None:
            panel.refresh()

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
            if self.model_name is None:
                return False
            info = registry.get_model(self.store, self.model_name)
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

