"""Starting the GUI: ``modelyard`` (or ``python -m modelyard``) with no subcommand."""

from __future__ import annotations

import argparse
import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.paths import (
    DB_URL_ENV,
    STORE_ENV,
    default_store_dir,
    resolve_store_dir,
)
from modelyard.core.store import Store
from modelyard.ui.common import theme
from modelyard.ui.common.dialogs import apply_preferences
from modelyard.ui.common.settings import last_team_store, open_settings
from modelyard.ui.common.x11_libraries import check_or_exit
from modelyard.ui.main_window import MainWindow

STARTUP_PROBE_ENV = "MODELYARD_STARTUP_PROBE"
WARMUP_DELAY_MS = 600


def _parse(args: list[str], gui_options: tuple[str, ...] | list[str] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelyard", description="Open the Modelyard window.")
    parser.add_argument("--store", help="store folder (default: MODELYARD_STORE, else the last store used, else the platform data folder)")
    parser.add_argument("--db-url", help="SQLAlchemy URL of the database (default: MODELYARD_DB_URL, else the store's SQLite file)")
    ns, _unknown = parser.parse_known_args(args)
    return ns


def create_application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Modelyard")
    app.setApplicationDisplayName("Modelyard")
    app.setOrganizationName("Modelyard")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(theme.icon("app"))
    return app  # type: ignore[return-value]


def choose_store_location(explicit: str | None, settings) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """(location, explicit?) — --store, then MODELYARD_STORE, then the last store used, then the default."""
    if explicit:
        return explicit, True
    if os.environ.get(STORE_ENV):
        return os.environ[STORE_ENV], True
    last = settings.value("stores/last")
    if last and os.path.isdir(str(last)):
        return str(last), False
    return str(default_store_dir()), False


def _nothing_there(location: str, db_url: str | None) -> bool:
    """True when ``location`` holds no store and nothing else: a missing or empty folder."""
    if db_url or os.environ.get(DB_URL_ENV):
        return False
    root = resolve_store_dir(location)
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))


def _ask_to_create(location: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, "Create a new store?",
                      f"There is no Modelyard store in {resolve_store_dir(location)}.",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
    box.setInformativeText("Create a new, empty store there? (Cancel leaves the folder as it is.)")
    box.setObjectName("createStoreQuestion")
    box.button(QMessageBox.StandardButton.Yes).setText("Create store")
    return box.exec() == QMessageBox.StandardButton.Yes


def _cannot_open(exc: ModelyardError) -> None:
    QMessageBox.critical(None, "Cannot open the store", f"{exc.message}\n\n{exc.hint or ''}".strip())


def open_start_store(location: str, explicit: bool, db_url: str | None) -> Store | None:
    """The store the window opens on, or None (the user was told why, or declined to create one).

    A store is created without asking only for the platform's default location on first use.
    A folder named by ``--store``/``MODELYARD_STORE`` that holds nothing yet is created only
    when the user says so; anything else that is not a store is refused, as the CLI does.
    The last store used falls back to the default one if it has moved or broken.
    """
    is_default = resolve_store_dir(location) == default_store_dir()
    try:
        return Store.open(location, db_url=db_url, create=is_default and not explicit)
    except ModelyardError as refused:
        exc = refused
        if explicit:
            if _nothing_there(location, db_url):
                if not _ask_to_create(location):
                    return None
                try:
                    return Store.open(location, db_url=db_url, create=True)
                except ModelyardError as exc2:
                    exc = exc2
            _cannot_open(exc)
            return None
        try:  # the last store moved or broke: fall back to the default one and say so
            store = Store.open(default_store_dir(), db_url=db_url, create=True)
        except ModelyardError as exc2:
            _cannot_open(exc2)
            return None
        QMessageBox.warning(None, "Opened the default store", f"{exc.message}\n\nShowing the default store instead.")
        return store


def open_last_team_store(entry: dict[str, str]) -> Store | None:
    """The team store shown last, or None (said why; the folder store opens instead)."""
    from modelyard.core.store.teamstore import open_team_store

    try:
        return open_team_store(entry["url"], entry.get("artifacts") or None)
    except ModelyardError as exc:
        QMessageBox.warning(None, "Opened the last store folder instead",
                            f"{exc.message}\n\nFile › Open Team Store… connects again (with your password).")
        return None


def open_window_store(store_arg: str | None, db_url: str | None, settings) -> Store | None:  # type: ignore[no-untyped-def]
    """The store the window opens on (None: the user was told why).

    A team store named by ``--db-url``/``MODELYARD_DB_URL`` with no ``--store``/``MODELYARD_STORE``
    opens on the artifacts folder recorded in it; with no store named at all, the team store the
    window showed last opens again (its password from ~/.pgpass); otherwise a folder, as before.
    """
    from modelyard.core.store import teamstore

    location, explicit = choose_store_location(store_arg, settings)
    url = db_url or os.environ.get(DB_URL_ENV) or None
    if url and not url.startswith("sqlite") and not (store_arg or os.environ.get(STORE_ENV)):
        try:
            if teamstore.recorded_artifacts_dir(url):
                return teamstore.open_team_store(url)
        except ModelyardError as exc:
            _cannot_open(exc)
            return None
    team = last_team_store(settings) if not (explicit or url) else None
    if team is not None:
        store = open_last_team_store(team)
        if store is not None:
            return store
    return open_start_store(location, explicit, db_url)


def run_gui(args: list[str], gui_options: tuple[str, ...] | list[str] = ()) -> int:
    ns = _parse(args, gui_options)
    check_or_exit(args)  # on X11 without the libraries Qt's xcb plugin needs: one line and exit 1, not Qt's abort
    app = create_application()
    settings = open_settings()
    apply_preferences(settings)
    store = open_window_store(ns.store, ns.db_url, settings)
    if store is None:
        return 1
    window = MainWindow(store, settings)
    window.show()
    from modelyard.ui.common import warmup

    QTimer.singleShot(WARMUP_DELAY_MS, warmup.start)  # once the window is up and idle
    if os.environ.get(STARTUP_PROBE_ENV):
        # tests/benchmarks/startup.py: report when the event loop first runs with the window shown
        def _probe() -> None:
            print(f"MODELYARD_RESPONSIVE {time.time():.6f}", flush=True)
            window.close()

        QTimer.singleShot(0, _probe)
    code = app.exec()
    store.close()
    return code
