"""File › New team store… and File › Open team store…: the store's database on a PostgreSQL server,
its artifacts in a folder every member can reach (core/store/teamstore.py, docs/team.md).

The password is used for the connection and handed to the job processes this window starts through
``PGPASSWORD`` (never on a command line); it is never written to the settings file. With "Remember
the password in ~/.pgpass" it goes where PostgreSQL's own tools look for it (mode 0600). Connecting
happens on a pool thread: the window keeps painting while a server is slow to answer, and a problem
is shown in the dialog, in one line naming the field.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QSettings, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import teamstore
from modelyard.ui.common import theme
from modelyard.ui.common.background import Call
from modelyard.ui.common.settings import recent_team_stores

LABELS = {"db_url": "the server fields", "artifacts": "Artifacts folder"}
PASSWORD_ENV = "PGPASSWORD"


class TeamStoreDialog(QDialog):
    """Asks where the team store is and opens (or creates) it off the main thread.

    After ``exec()`` returns Accepted, :attr:`store` is the opened store, :attr:`url` its URL
    without a password and :attr:`artifacts` the folder the user gave ('' for the recorded one).
    """

    opened = Signal(object)  # the Store
    _done = Signal(int, object, object)

    def __init__(self, settings: QSettings, parent: QWidget | None = None, *, create: bool = False) -> None:
        super().__init__(parent)
        self.create = create
        self.settings = settings
        self.setObjectName("newTeamStoreDialog" if create else "openTeamStoreDialog")
        self.setWindowTitle("New Team Store" if create else "Open Team Store")
        self.store: Any = None
        self.url = ""
        self.artifacts = ""
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._token = 0
        self._cancelled = False
        self._old_password: str | None = None
        self._done.connect(self._finished)

        intro = QLabel(
            "Create the team's store in an empty PostgreSQL database; its artifacts go to a folder every "
            "member can reach (a network share)." if create else
            "Open the team's store on its PostgreSQL server with your own login.", self)
        intro.setWordWrap(True)
        self.recent_combo = QComboBox(self)
        self.recent_combo.setObjectName("recentTeamStores")
        self._recent = recent_team_stores(settings)
        self.recent_combo.addItem("Choose a recent team store…")
        for entry in self._recent:
            self.recent_combo.addItem(entry["url"].split("://", 1)[-1])
        self.recent_combo.activated.connect(self._use_recent)

        self.host_edit = QLineEdit(self)
        self.host_edit.setObjectName("hostEdit")
        self.host_edit.setPlaceholderText("db.example.org, or paste a postgresql:// URL")
        self.host_edit.textEdited.connect(self._maybe_url)
        self._host_length = 0
        self.port_spin = QSpinBox(self)
        self.port_spin.setObjectName("portSpin")
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(5432)
        self.database_edit = QLineEdit(self)
        self.database_edit.setObjectName("databaseEdit")
        self.database_edit.setPlaceholderText("modelyard")
        self.user_edit = QLineEdit(self)
        self.user_edit.setObjectName("userEdit")
        self.user_edit.setPlaceholderText("your database login")
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("passwordEdit")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("empty: from ~/.pgpass or PGPASSWORD")
        self.remember_check = QCheckBox("Remember the password in ~/.pgpass (readable only by you)", self)
        self.remember_check.setObjectName("rememberPassword")
        self.artifacts_edit = QLineEdit(self)
        self.artifacts_edit.setObjectName("artifactsEdit")
        self.artifacts_edit.setPlaceholderText("/mnt/share/modelyard" if create else
                                               "empty: the folder recorded in the store")
        browse = QPushButton("Browse…", self)
        browse.setObjectName("browseArtifacts")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.artifacts_edit, 1)
        folder_row.addWidget(browse)
        for edit in (self.host_edit, self.database_edit, self.user_edit):  # no longer the recent one shown
            edit.textEdited.connect(lambda _text: self.recent_combo.setCurrentIndex(0))
        server_row = QHBoxLayout()
        server_row.setContentsMargins(0, 0, 0, 0)
        server_row.addWidget(self.host_edit, 1)
        server_row.addWidget(QLabel("Port:", self))
        server_row.addWidget(self.port_spin)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if self._recent and not create:  # a new store is made in an empty database: none of these
            form.addRow("Recent:", self.recent_combo)
        else:
            self.recent_combo.hide()
        form.addRow("Server:", server_row)
        form.addRow("Database:", self.database_edit)
        form.addRow("User:", self.user_edit)
        form.addRow("Password:", self.password_edit)
        form.addRow("", self.remember_check)
        form.addRow("Artifacts folder:", folder_row)

        self.status_label = QLabel(self)
        self.status_label.setObjectName("teamStoreError")
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Create" if create else "Open")
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(min(560, max(420, self.screen().availableGeometry().width() - 80))
                             if self.screen() else 520)
        if self._recent and not create:
            self.recent_combo.setCurrentIndex(1)  # the fields show the last one opened
            self._fill(self._recent[0])

    # ------------------------------------------------------------------ fields
    def _use_recent(self, index: int) -> None:
        if index > 0:
            self._fill(self._recent[index - 1])

    def _fill(self, entry: dict[str, str]) -> None:
        self.set_url(entry["url"])
        self.artifacts_edit.setText(entry.get("artifacts", ""))

    def set_url(self, url: str) -> None:
        """Fill the server fields from a ``postgresql://`` URL (a password in it goes to its field)."""
        parts = teamstore.url_parts(url)
        if parts is None:  # not a URL after all: leave what was typed
            return
        self.host_edit.setText(parts["host"])
        self.port_spin.setValue(int(parts["port"]))
        self.database_edit.setText(parts["database"])
        self.user_edit.setText(parts["user"])
        if parts["password"]:
            self.password_edit.setText(parts["password"])

    def _maybe_url(self, text: str) -> None:
        """A URL pasted into the Server field (not typed: that arrives a character at a time) fills them all."""
        pasted = len(text) - self._host_length > 1
        self._host_length = len(text)
        if pasted and "://" in text:
            self.set_url(text.strip())
            self._host_length = len(self.host_edit.text())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The team's artifacts folder", self.artifacts_edit.text())
        if folder:
            self.artifacts_edit.setText(folder)

    def server_url(self) -> str:
        """The URL of the fields, without the password."""
        return teamstore.server_url(self.host_edit.text().strip(), self.port_spin.value(),
                                    self.database_edit.text().strip(), self.user_edit.text().strip())

    # ------------------------------------------------------------------ opening
    @property
    def busy(self) -> bool:
        return not self.ok_button.isEnabled()

    def _problem(self) -> str:
        if not self.host_edit.text().strip():
            return "Give the server's host name (Server)."
        if not self.database_edit.text().strip():
            return "Give the store's database on the server (Database)."
        if not self.user_edit.text().strip():
            return "Give your database login (User)."
        if self.create and not self.artifacts_edit.text().strip():
            return "Choose the folder every member can reach for the artifacts (Artifacts folder)."
        return ""

    def start(self) -> None:
        problem = self._problem()
        if problem:
            self._show(problem, error=True)
            return
        url, folder = self.server_url(), self.artifacts_edit.text().strip()
        password = self.password_edit.text()
        if password:  # for this process's connections and the job processes it starts; never on disk
            self._old_password = os.environ.get(PASSWORD_ENV)
            os.environ[PASSWORD_ENV] = password
        self.ok_button.setEnabled(False)
        self._show(f"Connecting to {teamstore.server_address(url)}…", error=False)
        self._token += 1
        create = self.create

        def work() -> Any:
            if create:
                store, _done = teamstore.init_team_store(url, folder, labels=LABELS)
                return store
            return teamstore.open_team_store(url, folder or None, labels=LABELS)

        self._pool.start(Call(work, self._done, self._token))

    def _finished(self, token: int, store: Any, error: Exception | None) -> None:
        if self._cancelled:  # closed while connecting: nothing to show it in
            if store is not None:
                store.close()
            self._restore_password()
            return
        self.ok_button.setEnabled(True)
        if error is not None:
            self._restore_password()
            if not isinstance(error, ModelyardError):
                error = ModelyardError(f"Cannot open the team store: {type(error).__name__}: "
                                       f"{' '.join(str(error).split())}")
            self._show(error.message, error=True, hint=error.hint)
            return
        self.store, self.url, self.artifacts = store, self.server_url(), self.artifacts_edit.text().strip()
        if self.remember_check.isChecked() and self.password_edit.text():
            try:
                teamstore.write_pgpass(self.host_edit.text().strip(), self.port_spin.value(),
                                       self.database_edit.text().strip(), self.user_edit.text().strip(),
                                       self.password_edit.text())
            except OSError as exc:
                self._show(f"Opened, but could not write ~/.pgpass: {exc.strerror or exc}.", error=True)
        self.opened.emit(store)
        self.accept()

    def _restore_password(self) -> None:
        if self.password_edit.text():
            if self._old_password is None:
                os.environ.pop(PASSWORD_ENV, None)
            else:
                os.environ[PASSWORD_ENV] = self._old_password

    def _show(self, text: str, *, error: bool, hint: str | None = None) -> None:
        colour = theme.status_colour("failed").name() if error else self.palette().placeholderText().color().name()
        self.status_label.setStyleSheet(f"color: {colour}")
        self.status_label.setText(text)
        self.status_label.setToolTip(hint or "")
        self.status_label.show()

    def reject(self) -> None:
        if self.busy:
            self._cancelled = True  # the answer still comes: _finished closes the store it opened
        super().reject()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        return self._pool.waitForDone(timeout_ms)
