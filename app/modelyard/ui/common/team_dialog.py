"""Store › Team…: the members of a team store and their roles (core/store/team.py).

An admin adds members (a new database login with its password) and changes roles; both go through
the window's client's write path, and the core records them in the audit trail. Everyone else sees
the same table read-only, with the reason on the greyed-out buttons (ui/common/rights.py).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.store import team
from modelyard.ui.common import rights, theme
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import push_button, rows_view


class MembersModel(RowsTableModel[Any]):
    headers = ("Login", "Role")

    def key(self, row: Any) -> str:
        return row.login

    def cell(self, row: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            login = f"{row.login} (you)" if row.login == self.me else row.login
            return (login, team.ROLE_LABELS.get(row.role, row.role))[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 1:
            may = [team.ACTION_LABELS[a] for a in team.ACTIONS if team.role_at_least(row.role, team.ACTIONS[a])]
            return "Reads everything" + (f"; may {', '.join(may)}" if may else "") + "."
        return None

    me: str = ""  # the login of whoever looks


class AddMemberDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("addMemberDialog")
        self.setWindowTitle("Add Member")
        self.login_edit = QLineEdit(self)
        self.login_edit.setObjectName("loginEdit")
        self.login_edit.setPlaceholderText("their database login, e.g. alice")
        self.role_combo = role_combo(self)
        self.role_combo.setCurrentIndex(team.ROLES.index("scientist"))
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("newPasswordEdit")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("their first password (they can change it)")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Login:", self.login_edit)
        form.addRow("Role:", self.role_combo)
        form.addRow("Password:", self.password_edit)
        form.addRow(self.buttons)
        self.setMinimumWidth(380)

    def values(self) -> tuple[str, str, str | None]:
        return (self.login_edit.text().strip(), str(self.role_combo.currentData()),
                self.password_edit.text() or None)


def role_combo(parent: QWidget) -> QComboBox:
    combo = QComboBox(parent)
    combo.setObjectName("roleCombo")
    for role in team.ROLES:
        combo.addItem(team.ROLE_LABELS[role], role)
    return combo


class TeamDialog(QDialog):
    def __init__(self, client: Any, member: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("teamDialog")
        self.setWindowTitle("Team")
        self.client = client
        self.member = member
        self.model = MembersModel(self)
        self.model.me = member.login if member is not None else ""
        self.view = rows_view(self, "membersTable", self.model)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        admin = member is not None and member.may("manage")
        who = f"you ({member.login}) are {_article(member.role_label)} {member.role_label}" if member else ""
        self.note = QLabel(
            "Each member connects with their own database login; the database enforces their role. "
            "Adding members and changing roles is recorded in the audit trail." if admin else
            f"Only an admin adds members or changes roles; {who}. The table shows who may do what.", self)
        self.note.setObjectName("teamNote")
        self.note.setWordWrap(True)
        self.add_button = push_button(self, "Add member…", self.add_member, name="addMemberButton", icon="folder-plus")
        self.role_edit = role_combo(self)
        self.role_edit.setObjectName("memberRoleCombo")
        self.set_role_button = push_button(self, "Set role", self.set_role, name="setRoleButton", enabled=False)
        self.remove_button = push_button(self, "Remove…", self.remove_member, name="removeMemberButton", icon="trash",
                                         enabled=False, tip="Take every role on this store from the selected member")
        self.error_label = QLabel(self)
        self.error_label.setObjectName("teamError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.error_label.hide()
        rights.guard("manage", self.add_button, self.role_edit, self.set_role_button, self.remove_button)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(QLabel("Role of the selected member:", self))
        row.addWidget(self.role_edit)
        row.addWidget(self.set_role_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        layout.addWidget(self.error_label)
        layout.addWidget(close)
        self.resize(620, 400)
        self.reload()

    # ------------------------------------------------------------------ reading
    def reload(self) -> None:
        self.client.read("team.members", lambda store: team.list_members(store), self._members, self._error)

    def _members(self, members: list[Any]) -> None:
        current = self.selected()
        self.model.set_rows(sorted(members, key=lambda m: m.login))
        self.view.resizeColumnToContents(0)
        self.view.setColumnWidth(0, max(self.view.columnWidth(0) + 24, 160))  # room for the longest login
        if current is not None:
            self.select(current.login)
        elif self.model.rows:
            self.view.selectRow(0)

    def selected(self) -> Any:
        index = self.view.currentIndex()
        return self.model.rows[index.row()] if index.isValid() and index.row() < len(self.model.rows) else None

    def select(self, login: str) -> None:
        for i, m in enumerate(self.model.rows):
            if m.login == login:
                self.view.selectRow(i)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        member = self.selected()
        if member is not None:
            self.role_edit.setCurrentIndex(team.ROLES.index(member.role))
        owner = member is not None and getattr(member, "owner", False)
        tip = f"{member.login} owns the store (or is a superuser) and is always an admin." if owner else ""
        for button in (self.set_role_button, self.remove_button):
            button.setEnabled(member is not None and not owner)
        self.set_role_button.setToolTip(tip)
        self.remove_button.setToolTip(tip or "Take every role on this store from the selected member")

    # ------------------------------------------------------------------ writing
    def add_member(self) -> None:
        dialog = AddMemberDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        login, role, password = dialog.values()
        if not login:
            self._error("Give the new member's database login (Login).")
            return
        self._write(lambda store: team.add_member(store, login, role, password=password), select=login)

    def set_role(self) -> None:
        member = self.selected()
        if member is None:
            return
        role = str(self.role_edit.currentData())
        if role == member.role:
            return
        self._write(lambda store: team.set_role(store, member.login, role), select=member.login)

    def remove_member(self) -> None:
        member = self.selected()
        if member is None:
            return
        answer = QMessageBox.question(
            self, "Remove member",
            f"Take every role on this store from {member.login}? Their login stays on the server; without a role "
            "it cannot open this store.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self._write(lambda store: team.remove_member(store, member.login), select="")

    def _write(self, fn: Any, *, select: str) -> None:
        self.error_label.hide()

        def done(_result: Any) -> None:
            self.reload()
            self.select(select)

        self.client.write(fn, done, self._error)

    def _error(self, error: Any) -> None:
        text = getattr(error, "message", None) or " ".join(str(error).split())
        self.error_label.setText(text)
        self.error_label.setToolTip(getattr(error, "hint", None) or "")
        self.error_label.show()


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
