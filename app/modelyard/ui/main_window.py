"""The main window: a sidebar of five panels, the Jobs dock, menus and the status bar.

It fits screens down to 800x600: the sidebar is as wide as its longest name, the store's path in
the status bar is elided in the middle, and the Jobs dock collapses to a status-bar strip when
nothing runs (ui/jobs/strip.py decides when it opens). An export's ``client.saved`` shows where
the file went, with "Show in folder" (ui/common/saved_notice.py).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs import housekeeping as maintenance
from modelyard.core.jobs.runner import JobSpec
from modelyard.core.store import Store
from modelyard.core.store.team import member as member_of
from modelyard.ui.common import rights, team_status, theme
from modelyard.ui.common.client import CoreClient
from modelyard.ui.common.dialogs import PreferencesDialog
from modelyard.ui.common.dnd import FileDropTarget
from modelyard.ui.common.jobrunner import JobHandle, JobRunner
from modelyard.ui.common.saved_notice import SavedNotice
from modelyard.ui.common.settings import remember_store, remember_team_store
from modelyard.ui.common.widgets import ElidedLabel, show_error
from modelyard.ui.jobs.dock import JobsPanel
from modelyard.ui.jobs.strip import DockPolicy, JobsStrip
from modelyard.ui.panels import (
    ALL_PANELS,
    DatasetsPanel,
    ExperimentsPanel,
    Panel,
    RegistryPanel,
)


class _Sidebar(QListWidget):
    """The panel list. During a drag, hovering an item shows its panel; runs dropped on the
    Registry item are registered there (a bundle file too)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(False)

    def _target(self, event: Any) -> Any:
        from modelyard.ui.registry.panel import bundle_files, run_ids_from

        item = self.itemAt(event.position().toPoint())
        row = self.row(item) if item is not None else -1
        panel = self._window.panels[row] if 0 <= row < len(self._window.panels) else None
        takes = bool(run_ids_from(event.mimeData()) or bundle_files(event.mimeData()))
        return row, panel if takes and panel is self._window.registry_panel else None

    def dragEnterEvent(self, event: Any) -> None:
        from modelyard.ui.registry.panel import bundle_files, run_ids_from

        if run_ids_from(event.mimeData()) or bundle_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        row, panel = self._target(event)
        if row >= 0 and row != self.currentRow():
            self.setCurrentRow(row)  # spring-loaded: the panel under the pointer opens
        if panel is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: Any) -> None:
        from modelyard.ui.registry.panel import bundle_files, run_ids_from

        _row, panel = self._target(event)
        if panel is None:
            event.ignore()
            return
        event.acceptProposedAction()
        runs, files = run_ids_from(event.mimeData()), bundle_files(event.mimeData())
        QTimer.singleShot(0, panel, lambda: panel.take_drop(runs, files))


class MainWindow(FileDropTarget, QMainWindow):
    store_changed = Signal(object)  # Store

    def __init__(self, store: Store, settings: QSettings) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings
        self.store = store
        self.runner = JobRunner(store, self)
        self.client = CoreClient(store, self)
        self.setWindowTitle("Modelyard")
        self.setWindowIcon(theme.icon("app"))
        self.setMinimumSize(QSize(720, 480))  # works at 1024x640, usable at 800x600
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowNestedDocks)

        # sidebar + panels
        self.sidebar = _Sidebar(self)
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(theme.SIDEBAR_ICON_SIZE)
        self.sidebar.setSpacing(theme.SPACE_XS)
        self.sidebar.setFrameShape(QListWidget.Shape.NoFrame)
        self.stack = QStackedWidget(self)
        self.panels: list[Panel] = []
        for number, panel_cls in enumerate(ALL_PANELS, start=1):
            panel = panel_cls(self.stack)
            self.panels.append(panel)
            self.stack.addWidget(panel)
            item = QListWidgetItem(theme.icon(panel.icon_name), panel.title)
            item.setToolTip(f"{panel.title} (Ctrl+{number})")
            self.sidebar.addItem(item)
        self._fit_sidebar()
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        for panel in self.panels:
            if isinstance(panel, ExperimentsPanel) and hasattr(panel, "register_requested"):
                panel.register_requested.connect(self.register_run)
        central = QWidget(self)
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.sidebar)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        # jobs dock
        self.jobs_panel = JobsPanel(self)
        self.jobs_dock = QDockWidget("Jobs", self)
        self.jobs_dock.setObjectName("jobsDock")
        self.jobs_dock.setWidget(self.jobs_panel)
        self.jobs_dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.resizeDocks([self.jobs_dock], [180], Qt.Orientation.Vertical)

        # status bar: the store (elided in the middle), an export's notice, the jobs strip
        self.store_label = ElidedLabel("", self)
        self.store_label.setObjectName("storeLabel")
        self.store_label.setMinimumWidth(120)
        self.saved_notice = SavedNotice(self)
        self.jobs_strip = JobsStrip(self)
        self.statusBar().addWidget(self.store_label, 1)
        self.statusBar().addPermanentWidget(self.saved_notice, 1)
        self.saved_notice.visibility_changed.connect(lambda shown: self.store_label.setVisible(not shown))
        self.statusBar().addPermanentWidget(self.jobs_strip)

        self._build_menus()
        self.dock_policy = DockPolicy(self, self.jobs_dock, self.jobs_panel, self.jobs_dock.toggleViewAction(),
                                      self.jobs_strip, settings)
        self._attach_store(store)
        self.sidebar.setCurrentRow(0)
        self._restore_geometry()
        self.dock_policy.apply_start_state()

    def _fit_sidebar(self) -> None:
        """As wide as the longest panel name beside its icon, no wider."""
        metrics = self.sidebar.fontMetrics()
        text = max(metrics.horizontalAdvance(self.sidebar.item(i).text()) for i in range(self.sidebar.count()))
        width = text + theme.SIDEBAR_ICON_SIZE.width() + 4 * theme.SPACE_M + 2 * theme.SPACE_S
        for i in range(self.sidebar.count()):
            self.sidebar.item(i).setSizeHint(QSize(width - 2 * theme.SPACE_S, 40))
        self.sidebar.setFixedWidth(width)

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.action_new_store = self._action(file_menu, "&New Store…", self.new_store, "folder-plus", QKeySequence.StandardKey.New)
        self.action_open_store = self._action(file_menu, "&Open Store…", self.open_store, "folder-open", QKeySequence.StandardKey.Open)
        self.action_new_team_store = self._action(file_menu, "New &Team Store…", lambda: self.open_team_store(create=True), "folder-plus")
        self.action_open_team_store = self._action(file_menu, "Open T&eam Store…", self.open_team_store, "folder-open")
        file_menu.addSeparator()
        self.action_import = self._action(file_menu, "&Import Dataset…", self.import_dataset, "import", "Ctrl+I")
        self.action_import_bundle = self._action(file_menu, "Import &Bundle…", self.import_bundle, "registry")
        file_menu.addSeparator()
        self.action_preferences = self._action(file_menu, "&Preferences…", self.show_preferences, "settings", QKeySequence.StandardKey.Preferences)
        file_menu.addSeparator()
        self.action_quit = self._action(file_menu, "&Quit", self.close, "quit", QKeySequence.StandardKey.Quit)
        self.action_quit.setMenuRole(QAction.MenuRole.QuitRole)

        view_menu = bar.addMenu("&View")
        self.panel_actions: list[QAction] = []
        for number, panel in enumerate(self.panels, start=1):
            action = self._action(view_menu, panel.title, lambda n=number - 1: self.show_panel(n),
                                  panel.icon_name, f"Ctrl+{number}")
            self.panel_actions.append(action)
        view_menu.addSeparator()
        toggle = self.jobs_dock.toggleViewAction()
        toggle.setText("&Jobs")
        toggle.setShortcut(QKeySequence("Ctrl+J"))
        toggle.setIcon(theme.icon("jobs"))
        view_menu.addAction(toggle)

        store_menu = bar.addMenu("&Store")
        self.action_verify = self._action(store_menu, "&Verify Artifacts", lambda: self.start_job(maintenance.verify_spec()), "ok")
        self.action_compact = self._action(store_menu, "&Compact Database", lambda: self.start_job(maintenance.compact_spec()), "refresh")
        self.action_gc = self._action(store_menu, "&Remove Unused Files…", self.remove_unused_files, "trash")
        store_menu.addSeparator()
        self.action_team = self._action(store_menu, "&Team…", self.show_team, "info")

        help_menu = bar.addMenu("&Help")
        samples = help_menu.addMenu(theme.icon("datasets"), "Try a &Sample Dataset")
        from modelyard.core.datasets.catalog import SAMPLES

        self.sample_actions = {}
        for key, (_loader, _target, description) in SAMPLES.items():
            action = self._action(samples, description,
                                  lambda k=key: self.client.navigate.emit("datasets", ("import_sample", k)))
            self.sample_actions[key] = action
        help_menu.addSeparator()
        self.action_about = self._action(help_menu, "&About Modelyard", self.show_about, "info")
        self.action_about.setMenuRole(QAction.MenuRole.AboutRole)
        # what a member's role may not do is greyed out, saying why (ui/common/rights.py)
        rights.guard("write", self.action_import, self.action_import_bundle, self.action_verify,
                     *self.sample_actions.values())
        rights.guard("manage", self.action_compact, self.action_gc)

    def remove_unused_files(self) -> None:
        """List the files no record uses (a dry-run job), then remove them if the user agrees."""
        self.when_finished(self.start_job(maintenance.gc_spec(dry_run=True)), self._confirm_removing_unused_files)

    def when_finished(self, handle: JobHandle, slot: Any) -> None:
        """Call ``slot(outcome)`` when ``handle``'s job ends. Through the runner's ``job_finished``
        (a main-thread signal): a fast job's own ``finished`` may be emitted by its worker before a
        slot connected after ``submit`` returns, and that slot would never be called."""
        runner = self.runner

        def done(finished: JobHandle, outcome: Any) -> None:
            if finished is handle:
                runner.job_finished.disconnect(done)
                slot(outcome)

        runner.job_finished.connect(done)

    def _confirm_removing_unused_files(self, outcome) -> None:  # type: ignore[no-untyped-def]
        if not outcome.ok or not outcome.result:
            return  # the Jobs dock shows why
        from modelyard.core.common.names import fmt_bytes

        count, size, young = outcome.result["count"], outcome.result["bytes"], outcome.result.get("left_young", 0)
        later = (f" {plural(young, 'newer unused file')} may still be being written and "
                 "will be left alone.") if young else ""
        if not count:
            QMessageBox.information(self, "Remove unused files", f"No unused files: every file in the store is used "
                                    f"by a record.{later}")
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Remove unused files",
                          f"{plural(count, 'file')} ({fmt_bytes(size)}) in the store "
                          f"{'are' if count != 1 else 'is'} used by no record: left by a write that was interrupted, "
                          f"or temporary files of processes that have ended.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("The Jobs dock lists them. Remove them?" + later)
        box.button(QMessageBox.StandardButton.Yes).setText("Remove files")
        if box.exec() == QMessageBox.StandardButton.Yes:
            self.start_job(maintenance.gc_spec())

    def _action(self, menu, text, slot, icon_name=None, shortcut=None) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if icon_name:
            action.setIcon(theme.icon(icon_name))
            action.setData(icon_name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ panels
    def show_panel(self, index: int) -> None:
        self.sidebar.setCurrentRow(index)

    @property
    def datasets_panel(self) -> DatasetsPanel:
        return next(p for p in self.panels if isinstance(p, DatasetsPanel))

    def panel_of(self, room: str) -> Panel | None:
        """The panel showing ``room`` ("datasets", "experiments", "registry", "monitoring", "pipelines")."""
        return next((p for p in self.panels if p.room == room), None)

    def navigate(self, room: str, target: Any = None) -> None:
        """Show ``room``'s panel and, when ``target`` is ``(method, *args)``, ask that panel to show
        or do it (on the next event-loop turn: a drop or a menu has returned by then). Panels ask
        for this through ``client.navigate``; they never call each other."""
        panel = self.panel_of(room)
        if panel is None:
            return
        self.show_panel(self.panels.index(panel))
        if not target:
            return
        name, *args = target if isinstance(target, (tuple, list)) else (target,)
        method = getattr(panel, name, None) if not str(name).startswith("_") else None
        if callable(method):
            QTimer.singleShot(0, panel, lambda: method(*args))

    def import_dataset(self) -> None:
        self.client.navigate.emit("datasets", ("import_with_dialog",))

    @property
    def registry_panel(self) -> RegistryPanel:
        return next(p for p in self.panels if isinstance(p, RegistryPanel))

    def register_run(self, run_id: str) -> None:
        """A run's "Register model…": the Registry panel opens and asks for the name and comment."""
        self.client.navigate.emit("registry", ("register_run", run_id))

    def import_bundle(self) -> None:
        self.client.navigate.emit("registry", ("import_bundle",))

    def files_dropped(self, files: list[Path]) -> None:
        """Files dropped anywhere on the window (panels that take drops take their own): bundles
        go to the Registry, pipeline files (.yml) to Pipelines, data files to the Datasets panel."""
        from modelyard.ui.pipelines.sources import PIPELINE_SUFFIXES
        from modelyard.ui.registry.panel import BUNDLE_SUFFIX

        bundles = [f for f in files if f.suffix.lower() == BUNDLE_SUFFIX]
        pipelines = [f for f in files if f.suffix.lower() in PIPELINE_SUFFIXES]
        data = [f for f in files if f.suffix.lower() not in (BUNDLE_SUFFIX, *PIPELINE_SUFFIXES)]
        if pipelines:
            self.client.navigate.emit("pipelines", ("add_files", pipelines))
        if data:
            self.client.navigate.emit("datasets", ("import_files", data))
        if bundles:
            self.client.navigate.emit("registry", ("take_drop", [], bundles))

    def current_panel(self) -> Panel:
        return self.panels[self.stack.currentIndex()]

    # ------------------------------------------------------------------ store
    def _attach_store(self, store: Store) -> None:
        self.store = store
        self.member = None
        self.store_label.setText(team_status.store_text(store, None))
        self.store_label.setToolTip(team_status.store_tooltip(store, None))
        rights.apply(self, None)
        self.action_team.setEnabled(not store.is_sqlite)
        self.action_team.setToolTip("" if not store.is_sqlite else team_status.SQLITE_TEAM_TIP)
        self.client.read("window.member", member_of, self._member_known,
                         lambda exc: self.statusBar().showMessage(
                             f"Cannot tell your role on this store: {getattr(exc, 'message', None) or exc}", 10_000))
        self.jobs_panel.attach(store, self.runner, self.client)
        self.runner.job_started.connect(self._job_started)  # after the dock's own: it has the row
        self.runner.job_finished.connect(self.client.job_finished)
        self.client.navigate.connect(self.navigate)
        self.client.message.connect(self.statusBar().showMessage)
        self.client.saved.connect(self.saved_notice.show_saved)
        for panel in self.panels:
            panel.set_store(store, self.runner, self.client)
        self.client.start_live()  # other windows', scripts' and the CLI's changes show here too
        if store.is_sqlite:
            remember_store(self.settings, str(store.root))
        self.store_changed.emit(store)

    def _member_known(self, member: Any) -> None:
        """Who uses this store: the status bar says so, and what the role may not do is greyed out."""
        self.member = member
        self.store_label.setText(team_status.store_text(self.store, member))
        self.store_label.setToolTip(team_status.store_tooltip(self.store, member))
        rights.apply(self, member)

    def open_team_store(self, *, create: bool = False) -> None:
        """File › New/Open Team Store…: the dialog connects off the main thread, then the window switches."""
        from modelyard.ui.common.team_store import TeamStoreDialog

        dialog = TeamStoreDialog(self.settings, self, create=create)
        if dialog.exec() == TeamStoreDialog.DialogCode.Accepted and dialog.store is not None:
            if self.switch_store(dialog.store):
                remember_team_store(self.settings, dialog.url, dialog.artifacts)

    def show_team(self) -> None:
        from modelyard.ui.common.team_dialog import TeamDialog

        TeamDialog(self.client, self.member, self).exec()

    def switch_store(self, store: Store) -> bool:
        """Show another store. Refused (returns False) while this store's jobs run."""
        if self.runner.running_count():
            QMessageBox.information(self, "Jobs are running",
                                    "Wait for the running jobs to finish, or cancel them, before switching stores.")
            store.close()
            return False
        old_store, old_runner = self.store, self.runner
        old_runner.job_started.disconnect(self._job_started)
        old_runner.wait()
        self.runner = JobRunner(store, self)
        old_runner.deleteLater()
        self.client.close()
        self.client.deleteLater()
        self.client = CoreClient(store, self)
        self._attach_store(store)
        old_store.close()
        return True

    def new_store(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new store")
        if folder:
            self._open_store_at(folder, create=True)

    def open_store(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a Modelyard store folder")
        if folder:
            self._open_store_at(folder, create=False)

    def _open_store_at(self, folder: str, *, create: bool) -> bool:
        try:
            store = Store.open(folder, create=create)
        except ModelyardError as exc:
            show_error(self, "Cannot open the store", exc)
            return False
        return self.switch_store(store)

    # ------------------------------------------------------------------ jobs
    def start_job(self, spec: JobSpec) -> JobHandle:
        return self.runner.submit(spec)  # shown by _job_started, as a panel's job is

    def _job_started(self, handle: JobHandle) -> None:
        """Every job started in this window is selected in the Jobs dock (which opens: DockPolicy)."""
        self.jobs_panel.select_job(handle.job_id)

    # ------------------------------------------------------------------ dialogs
    def show_preferences(self) -> None:
        PreferencesDialog(self.settings, self).exec()

    def show_about(self) -> None:
        from PySide6 import __version__ as pyside_version

        QMessageBox.about(
            self, "About Modelyard",
            f"<h3>Modelyard {__version__}</h3>"
            "<p>Datasets, experiments, a model registry and monitoring for a small team — on the desktop, "
            "with no cloud and no server.</p>"
            f"<p>Store: {self.store.display_location}<br>"
            f"Python {platform.python_version()} · Qt for Python {pyside_version}</p>",
        )

    # ------------------------------------------------------------------ window life
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry() if self.screen() else None
            if screen is None:
                self.resize(1200, 780)
            else:  # a small screen gets a window that fits it
                self.resize(min(1200, int(screen.width() * 0.92)), min(780, int(screen.height() * 0.92)))
        if state is not None:
            self.restoreState(state)

    def confirm_cancel_running(self, count: int) -> bool:
        answer = QMessageBox.question(
            self, "Jobs are running",
            f"{plural(count, 'job')} {'are' if count != 1 else 'is'} still running. Cancel and quit?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.runner.running_count()
        ask = str(self.settings.value("confirm/quit_with_jobs", "true")) == "true"
        if running and ask and not self.confirm_cancel_running(running):
            event.ignore()
            return
        self.statusBar().showMessage("Cancelling jobs…")
        if not self.runner.shutdown(30_000):
            QMessageBox.warning(self, "Jobs still running",
                                "Some jobs did not stop within 30 seconds; they will be marked interrupted.")
        QApplication.processEvents()  # deliver the workers' last signals while widgets exist
        self.jobs_panel.stop_timers()
        for panel in self.panels:
            panel.shutdown()
        self.client.close()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        event.accept()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.refresh_icons()
        super().changeEvent(event)

    def refresh_icons(self) -> None:
        """Redraw icons in the palette's colours after a light/dark switch."""
        theme.clear_cache()
        for i, panel in enumerate(self.panels):
            self.sidebar.item(i).setIcon(theme.icon(panel.icon_name))
            panel.refresh_icons()
        for action in self.findChildren(QAction):
            name = action.data()
            if isinstance(name, str) and name:
                action.setIcon(theme.icon(name))
