"""The Registry panel: registered models, their versions, aliases, stages, gates and audit trail.

Left, the models (with their monitoring status); right, the selected model: its versions, the
audit timeline, and for the selected version its lineage and model card. Every change asks for a
comment (:mod:`modelyard.ui.registry.dialogs`) and goes through :mod:`modelyard.core.registry.versions`,
which audits it; a promotion blocked by a gate shows every reason and can be overridden with the
comment (also audited). Runs are registered with the Register button, from the Experiments
panel's context menu, or by dropping runs here (or on the sidebar's Registry item).
Bundles are exported and imported as jobs; a ``.mybundle`` file dropped here is imported.

This module builds the panel and shows the selected model and version; the tables are in
:mod:`~modelyard.ui.registry.tables`, the changes (aliases, stages, gates, registering, the
versions' menu) in :mod:`~modelyard.ui.registry.changes`, and the lineage, card, bundles, batch
scoring and serving in :mod:`~modelyard.ui.registry.version_actions` (mixins of the panel).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSizePolicy,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs.runner import JobOutcome
from modelyard.core.registry import versions as registry
from modelyard.ui.common import rights, theme
from modelyard.ui.common.dnd import RUN_IDS_MIME, local_files
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import (
    ActionBar,
    ElidedLabel,
    master_detail,
    push_button,
    rows_view,
    show_error,
)
from modelyard.ui.registry.changes import RegistryChanges
from modelyard.ui.registry.review import ReviewTab
from modelyard.ui.registry.stale import StaleBar
from modelyard.ui.registry.tables import ModelsModel, TimelineModel, VersionsModel, when
from modelyard.ui.registry.version_actions import (
    BUNDLE_JOB_KINDS,
    BUNDLE_SUFFIX,
    SCORE_KIND,
    VersionActions,
)

MIN_TEXT_COLUMN = 110  # px: a change or comment column narrower than this is not read, it is scrolled to
NARROW_MODELS_LIST = 280  # px: below, the models list shows the name and status only (the champion: tooltip)


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


# --------------------------------------------------------------------------- the panel


class RegistryPanel(VersionActions, RegistryChanges, Panel):
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
        # the model as shown and the revision it was read at: every alias, stage and gate change sends
        # it, so a change decided on what another member has since changed is refused, not written
        self.shown_model: registry.ModelInfo | None = None
        self.model_revision: int | None = None
        self._want_model: str | None = None  # what the next list read shows
        self._want_ref: str | None = None  # the version it selects
        self._selecting = False  # the panel itself moves a table's selection
        self.lineage_view: Any = None  # LineageView, built on first show
        self.server: Any = None  # serving.ServerProcess of the shown model, if serving
        self.server_ref: str | None = None
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(1000)
        self._stats_timer.timeout.connect(self._poll_stats)
        self._stats_reader: Any = None  # the worker that waits on the server's child process
        self._server_starting: Any = None  # a ServerProcess not yet ready
        self._server_stopping: Any = None  # a ServerProcess being stopped
        self._serve_after_stop: tuple[str, int] | None = None  # a start asked for while one stops
        self.review_needed = False  # champion / Production moves by this member need a request (Review tab)
        self.request_dialog: Any = None  # the Request promotion dialog while it shows
        self.stream_dialog: Any = None  # the Stream dialog while it shows
        self.empty.add_action("Register a run…", lambda: self.register_run(), icon_name="registry")
        self.empty.add_action("Import a bundle…", lambda: self.import_bundle(), icon_name="import")

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.models_model = ModelsModel(self)
        self.models_view = self._table("modelsTable", self.models_model)
        self.models_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            self.models_view.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.models_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the whole name is in the tooltip
        self.models_view.setColumnHidden(1, True)  # the latest version: in the facts and the versions table
        self.models_view.installEventFilter(self)  # narrow: the champion column gives its room to the names
        self.models_view.selectionModel().currentRowChanged.connect(
            lambda cur, _p: None if self._selecting else self._model_selected(cur.row()))
        self.register_button = push_button(self, "Register run…", lambda: self.register_run(), name="registerButton",
                                           icon="registry")
        self.import_button = push_button(self, "Import bundle…", lambda: self.import_bundle(),
                                         name="importBundleButton", icon="import")
        lb = ActionBar(self)  # the list may be narrow: what does not fit goes to "More"
        lb.setObjectName("modelsActionBar")
        lb.add(self.register_button, 1)
        lb.add(self.import_button, 0)
        self.models_bar = lb
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        ll.addWidget(lb)
        ll.addWidget(self.models_view, 1)

        self.model_title = ElidedLabel("", self)
        self.model_title.setObjectName("modelTitle")
        theme.make_heading(self.model_title, 1.3)
        # the buttons keep their width; the name gives way (elided in the middle, whole in its tooltip)
        self.model_title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_title.setMinimumWidth(160)
        self.serve_button = push_button(self, "Serve", self.toggle_serving, name="serveButton", icon="play",
                                        tip="Serve the champion (else the selected version) over HTTP on this "
                                            "computer (MLflow's scoring protocol)")
        self.export_button = push_button(self, "Export bundle…", lambda: self.export_bundle(),
                                         name="exportBundleButton",
                                         tip="Write the selected version, its card and checksums to one .mybundle file")
        self.monitor_button = push_button(self, "Monitor", lambda: self.monitor_version(), name="monitorButton",
                                          icon="monitoring",
                                          tip="Check new data against the selected version for drift (Monitoring)")
        self.score_button = push_button(self, "Score data…", lambda: self.score_file(), name="scoreButton",
                                        tip="Predict a data file with the selected version; the predictions become a "
                                            "dataset version linked to both")
        self.stream_button = push_button(self, "Stream…", lambda: self.open_stream_dialog(), name="streamButton",
                                         tip="Score each line of a JSON Lines file with the selected version as it "
                                             "is written, with a live rate and latency chart")
        self.alias_button = push_button(self, "Set alias…", lambda: self.set_alias(), name="aliasButton",
                                        tip="Point an alias (champion, challenger…) at the selected version")
        self.stage_button = push_button(self, "Stage…", lambda: self.set_stage(), name="stageButton",
                                        tip="Move the selected version to Staging, Production or Archived")
        self.gates_button = push_button(self, "Gates…", lambda: self.edit_gates(), name="gatesButton",
                                        tip="What a version must reach before it becomes champion or goes to "
                                            "Production")
        # a scientist may set aliases and stages; champion and Production by one who needs a review
        # become a promotion request (the Review tab)
        rights.guard("write", self.register_button, self.import_button, self.serve_button, self.export_button,
                     self.monitor_button, self.score_button, self.alias_button, self.stage_button)
        rights.guard("approve", self.gates_button)
        # what is done with a version first (serve it, export it, watch it) stays longest in the bar
        self.actions_bar = ActionBar(self, align=Qt.AlignmentFlag.AlignRight)
        for button, priority in ((self.serve_button, 3), (self.export_button, 2), (self.monitor_button, 2),
                                 (self.score_button, 1), (self.stream_button, 1), (self.alias_button, 1),
                                 (self.stage_button, 0), (self.gates_button, 0)):
            self.actions_bar.add(button, priority)
        head = QHBoxLayout()
        head.addWidget(self.model_title, 1)
        head.addWidget(self.actions_bar)
        self.stale_bar = StaleBar(self)  # a change refused because the model changed meanwhile: who, when, Reload
        self.stale_bar.reload.connect(self.reload_model)
        self.facts = QLabel(self)
        self.facts.setObjectName("modelFacts")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.facts.setOpenExternalLinks(True)
        # the next step after registering: one calm line with links (Serve / Export bundle)
        self.next_label = QLabel(self)
        self.next_label.setObjectName("nextStepLabel")
        self.next_label.setTextFormat(Qt.TextFormat.RichText)
        self.next_label.setWordWrap(True)
        self.next_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.next_label.linkActivated.connect(self._next_step_link)
        self.next_label.hide()
        self._next_ref: str | None = None  # the version just registered (the hint shows while it is selected)
        # the gates: the verdict only (the reasons in its tooltip and behind "details"), so the table
        # keeps the height; it wraps only in a narrow window
        self.gate_label = QLabel(self)
        self.gate_label.setObjectName("gateLabel")
        self.gate_label.setWordWrap(True)
        self.gate_label.setTextFormat(Qt.TextFormat.RichText)
        self.gate_label.linkActivated.connect(lambda _link: self.show_gate_details())
        self.gate_reasons: list[str] = []
        self.serving_label = QLabel(self)
        self.serving_label.setObjectName("servingLabel")
        self.serving_label.setTextFormat(Qt.TextFormat.RichText)
        self.serving_label.setOpenExternalLinks(True)
        self.serving_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.serving_label.setWordWrap(True)
        self.serving_label.hide()

        self.versions_model = VersionsModel(self)
        self.versions_view = self._table("versionsTable", self.versions_model)
        self.versions_view.horizontalHeader().setMinimumSectionSize(48)
        self.versions_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.versions_model.modelReset.connect(self._fit_version_columns)  # the metric columns change
        self._fit_version_columns()
        self.versions_view.selectionModel().currentRowChanged.connect(
            lambda cur, _p: None if self._selecting else self._version_selected(cur.row()))
        self.versions_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.versions_view.customContextMenuRequested.connect(self._versions_menu)
        self.versions_view.doubleClicked.connect(lambda _i: self.tabs.setCurrentWidget(self.card_tab))

        self.timeline_model = TimelineModel(self)
        self.timeline_view = self._table("timelineTable", self.timeline_model)
        self.timeline_view.setWordWrap(False)
        self.timeline_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # each row's tooltip has it whole
        header = self.timeline_view.horizontalHeader()
        header.setMinimumSectionSize(48)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)  # the change and the comment share
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)  # what is left (see eventFilter)
        self.timeline_view.installEventFilter(self)

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
        self.edit_notes_button = push_button(self, "Edit notes…", lambda: self.edit_card_notes(),
                                             name="editNotesButton")
        self.export_card_button = push_button(self, "Export HTML…", lambda: self.export_card(), name="exportCardButton")
        rights.guard("write", self.edit_notes_button)
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
        self.review_tab = ReviewTab(self)
        self.tabs.addTab(self.review_tab, "Review")
        self.review_tab.open_count_changed.connect(self._show_open_requests)
        self.tabs.currentChanged.connect(lambda _i: self._show_version_tab())

        return master_detail(self, left, [head, self.stale_bar, self.facts, self.next_label, self.gate_label, self.serving_label,
                                          self.tabs], 300)

    def _fit_version_columns(self) -> None:
        """Every column as wide as its text, but the last (the source): it takes what is left and
        elides in the middle (its tooltip has it whole), so no column is cut at the window's edge."""
        header = self.versions_view.horizontalHeader()
        last = self.versions_model.columnCount() - 1
        for col in range(last):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        if last >= 0:
            header.setSectionResizeMode(last, QHeaderView.ResizeMode.Stretch)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Resize:
            if watched is getattr(self, "models_view", None):
                self.models_view.setColumnHidden(2, event.size().width() < NARROW_MODELS_LIST)
            elif watched is getattr(self, "timeline_view", None):
                self._fit_timeline(event.size().width())
        return super().eventFilter(watched, event)

    def _fit_timeline(self, width: int) -> None:
        """The change and the comment share what the other columns leave; when that is too narrow
        to read, they keep a readable width and the table scrolls sideways instead."""
        header = self.timeline_view.horizontalHeader()
        left = width - sum(header.sectionSize(c) for c in range(4))
        mode = QHeaderView.ResizeMode.Stretch if left >= 2 * MIN_TEXT_COLUMN else QHeaderView.ResizeMode.Interactive
        if header.sectionResizeMode(4) == mode:
            return
        for col in (4, 5):
            header.setSectionResizeMode(col, mode)
            if mode == QHeaderView.ResizeMode.Interactive:
                header.resizeSection(col, MIN_TEXT_COLUMN)

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
        self.review_tab.reload()

    def on_changed(self, topics: frozenset[str]) -> None:
        if topics & {"models", "checks"}:
            self.refresh()

    def _show_open_requests(self, n: int) -> None:
        """The Review tab's label counts the open requests."""
        self.tabs.setTabText(self.tabs.indexOf(self.review_tab), f"Review ({n})" if n else "Review")
        self.tabs.setTabToolTip(self.tabs.indexOf(self.review_tab),
                                f"{plural(n, 'promotion request')} waiting for an approver" if n else
                                "Promotion requests and the evidence each was decided on")

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
            self.shown_model, self.model_revision = None, None
            self.stale_bar.hide()
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
            self.stale_bar.hide()  # it was about the other model
        if self.model_name != info.name or self.shown_model is None or info.revision >= self.shown_model.revision:
            self.shown_model, self.model_revision = info, info.revision
        self.model_name = info.name
        self.model_title.setText(info.name)
        self._show_facts(self.shown_model)
        name = info.name

        def read(store: Any) -> tuple[registry.ModelInfo, list[registry.ModelVersionInfo], list[dict]]:
            return registry.get_model(store, name), registry.list_versions(store, name), registry.timeline(store, name)

        self.client.read("registry.model", read, lambda answer: self._model_loaded(name, *answer), self._read_failed)

    def reload_model(self) -> None:
        """Read the shown model again (the stale bar's Reload): its list row, facts, versions and timeline."""
        self.stale_bar.hide()
        self.refresh()

    def _model_loaded(self, name: str, model: registry.ModelInfo, versions: list[registry.ModelVersionInfo],
                      timeline: list[dict]) -> None:
        if name != self.model_name:
            return  # another model was chosen meanwhile
        # read one after the other: if an edit landed in between, the older revision is what is shown
        self.shown_model = model
        self.model_revision = min([model.revision, *(v.model_revision for v in versions)])
        self._show_facts(model)
        wanted = self._want_ref or (self.version.ref if self.version is not None else None)
        self._selecting = True
        try:
            self.versions_model.set_rows(versions)
            self.timeline_model.model_name = name
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
        aliases = " · ".join(f"<b>{html.escape(a)}</b> → v{n}" for a, n in info.aliases.items()) or "no aliases"
        stages = " · ".join(f"{st}: " + ", ".join(f"v{n}" for n in ns) for st, ns in info.stages.items())
        self.facts.setText(f"{plural(info.n_versions, 'version')} · {aliases}"
                           + (f" · {stages}" if stages else "") + f" · created {when(info.created_at)}")

    def _version_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.versions_model.rowCount():
            self.version = None
            self._show_next_step()
            return
        self.version = self.versions_model.rows[row]
        if self.client is not None:  # a next step elsewhere (Monitoring, Serve) defaults to it
            self.client.select("model_version", self.version.ref)
        self._show_next_step()
        self._show_gates()
        self._show_version_tab()

    def _show_next_step(self) -> None:
        """After registering, one line says what comes next for the new version."""
        v = self.version
        if v is None or v.ref != self._next_ref or self.server is not None:
            self.next_label.hide()
            return
        self.next_label.setText(f"Next: <a href='serve'>serve v{v.version}</a> over HTTP, "
                                f"<a href='export'>export it as a bundle</a> or "
                                f"<a href='monitor'>monitor it</a> for drift.")
        self.next_label.show()

    def _next_step_link(self, link: str) -> None:
        ref = self.version.ref if self.version is not None else None
        if ref is None:
            return
        if link == "serve":
            self.serve_version(ref)
        elif link == "export":
            self.export_bundle()
        elif link == "monitor":
            self.monitor_version()

    def _model_info(self, name: str | None) -> registry.ModelInfo | None:
        """The model as last read (the one shown, else its row in the list on the left)."""
        if name is not None and self.shown_model is not None and self.shown_model.name == name:
            return self.shown_model
        row = self.models_model.row_of(name)
        return self.models_model.rows[row] if row >= 0 else None

    def _show_gates(self) -> None:
        if self.client is None or self.model_name is None:
            return
        info = self._model_info(self.model_name)
        if info is None:
            return
        if not info.gates:
            self.gate_reasons = []
            self.gate_label.setText("<span style='color:gray'>No promotion gates: any version can become champion"
                                    " (<b>Gates…</b> sets some).</span>")
            self.gate_label.setToolTip("Use Gates… to require minimum metrics or beating the champion before a "
                                       "version becomes champion or goes to Production.")
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
        n, reasons = version.version, list(report.reasons)
        self.gate_reasons = reasons
        details = " · <a href='details'>details</a>"
        if report.is_champion and report.passed:
            text = (f"<span style='color:{ok_colour}'>★ v{n} is the champion</span>; the gates are checked "
                    "when another version is promoted over it" + details)
        elif report.is_champion:
            text = (f"<span style='color:{bad_colour}'>✖ v{n} is the champion but no longer meets the gates</span>"
                    f" ({plural(len(reasons), 'reason')})" + details)
        elif report.passed:
            text = f"<span style='color:{ok_colour}'>✔ v{n} passes the gates</span>" + details
        else:
            text = (f"<span style='color:{bad_colour}'>✖ v{n} would be blocked from champion / Production</span>"
                    f" ({plural(len(reasons), 'reason')})" + details)
        self.gate_label.setText(text)
        self.gate_label.setToolTip(self.gate_details_text(report))

    @staticmethod
    def gate_details_text(report: Any) -> str:
        lines = ["Checked: " + "; ".join(report.checked) + "."] if report.checked else []
        lines += [f"• {r}" for r in report.reasons]
        return "\n".join(lines)

    def show_gate_details(self) -> None:
        """The gates' whole text (the line above the versions shows only the verdict)."""
        tip = self.gate_label.toolTip()
        if not tip:
            return
        verdict = self.gate_label.text().split(" · <a href='details'>", 1)[0]
        icon = QMessageBox.Icon.Warning if self.gate_reasons else QMessageBox.Icon.Information
        box = QMessageBox(icon, "Promotion gates", "", QMessageBox.StandardButton.Close, self)
        box.setObjectName("gateDetailsBox")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(verdict + "<br><br>" + "<br>".join(html.escape(line) for line in tip.splitlines()))
        box.open()

    def _show_version_tab(self) -> None:
        if self.version is None:
            return
        current = self.tabs.currentWidget()
        if current is self.lineage_tab:
            self.show_lineage()
        elif current is self.card_tab:
            self.show_card()
        elif current is self.review_tab:
            self.review_tab.show_version()

    def select_version(self, ref: str) -> None:
        """Show ``NAME@vN`` (or any reference) in the panel (once read, off the main thread)."""
        assert self.client is not None
        self.client.read("registry.select", lambda store: registry.get_version(store, ref), self._version_found,
                         lambda exc: show_error(self, "Cannot show the version", exc))

    def _version_found(self, info: registry.ModelVersionInfo) -> None:
        self._want_ref = info.ref
        self.refresh(select=info.name)

    def serve_version(self, ref: str) -> bool:
        """Show ``ref`` and serve it (what another room's "Serve" asks for; a server of another
        version of this panel stops first)."""
        if self.client is None:
            return False
        self.select_version(ref)
        if self._server_starting is not None and self._server_starting.ref == ref:
            return True
        if self.server is not None:
            if self.server_ref == ref:
                return True
            self.stop_serving()
        return self.start_serving(ref)

    def monitor_version(self, ref: str | None = None) -> None:
        """Show the model of ``ref`` (default: the selected version) in the Monitoring panel."""
        ref = ref or (self.version.ref if self.version is not None else None)
        if self.client is None or ref is None:
            return
        name = ref.split("@", 1)[0]
        self.client.navigate.emit("monitoring", ("monitor_model", name, ref))

    # ------------------------------------------------------------------ jobs and shutdown
    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        if handle is not None and handle.spec.kind == SCORE_KIND:
            if outcome.ok:
                self._scored(outcome.result or {})
                self._after_change(self.version.ref if self.version else None)
            elif outcome.status == "failed":
                show_error(self, "Scoring failed", ModelyardError(outcome.message, hint=outcome.hint))
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
                if result.get("path") and self.client is not None:  # the window says where ("Show in folder")
                    self.client.saved.emit(f"Bundle {result.get('ref') or ''}".strip(), str(result["path"]))
                self._after_change(self.version.ref if self.version else None)
        elif outcome.status == "failed":
            title = "The bundle import failed" if handle.spec.kind == "bundle.import" else "The bundle export failed"
            show_error(self, title, ModelyardError(outcome.message, hint=outcome.hint))

    def shutdown(self) -> None:
        self._shutdown_serving()

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

