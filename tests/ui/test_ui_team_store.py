"""A team store in the window (issue 15): File › Open/New Team Store… (typed into, clicked), the status
bar naming who you are and your role, what a viewer may not do greyed out with the role it needs,
and Store › Team…. On the session's PostgreSQL server (tests/pg_server.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import open_window, settle
from modelyard.core.store import Store, team
from modelyard.core.store.teamstore import init_team_store, server_address
from modelyard.ui.common import rights
from modelyard.ui.common.settings import last_team_store, recent_team_stores
from modelyard.ui.common.team_store import TeamStoreDialog
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox


@pytest.fixture
def team_db(pg_server_session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A team store made by 'store init' (as the server's superuser, its admin): (server, database, share)."""
    monkeypatch.setenv("PGPASSWORD", "")  # the dialog sets it for its connections: restored after the test
    monkeypatch.delenv("PGPASSWORD")
    server = pg_server_session
    name = server.create_database()
    share = tmp_path / "share"
    store, _done = init_team_store(server.url(name), share)
    store.close()
    yield server, name, share
    server.drop_database(name)


def add_login(server, database: str, login: str, role: str) -> None:
    """A member's own database login, in ``role``, added by the store's owner (an admin)."""
    with Store.open(None, db_url=server.url(database), create=False) as store:
        team.add_member(store, login, role, password="secret")


def _modal(kind: type[QDialog]) -> QDialog | None:
    widget = QApplication.activeModalWidget()
    return widget if isinstance(widget, kind) else None


def fill_and_open(qtbot, *, host: str, port: int, database: str, user: str, password: str = "",
                  artifacts: str = "", remember: bool = False) -> list[str]:
    """When the Open Team Store dialog shows: type into its fields and click Open. Returns what it said
    (the status line) if it stayed open."""
    said: list[str] = []

    def drive() -> None:
        dialog = _modal(TeamStoreDialog)
        if dialog is None:
            QTimer.singleShot(20, drive)
            return
        for edit, text in ((dialog.host_edit, host), (dialog.database_edit, database), (dialog.user_edit, user),
                           (dialog.password_edit, password), (dialog.artifacts_edit, artifacts)):
            edit.clear()
            if text:
                qtbot.keyClicks(edit, text)
        dialog.port_spin.setValue(port)
        if remember:
            qtbot.mouseClick(dialog.remember_check, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, drive)
    return said


def test_opening_a_team_store_through_the_dialog_shows_who_and_greys_out_what_a_viewer_may_not_do(
        qtbot, store, team_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, database, share = team_db
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # where ~/.pgpass goes
    (tmp_path / "home").mkdir()
    login = f"vera_{database}"
    add_login(server, database, login, "viewer")
    window = open_window(qtbot, store, (1024, 640))
    settle(qtbot, window)
    assert window.store_label.text().startswith("Store: ")  # a SQLite store: its folder, no role
    assert not window.action_team.isEnabled() and "SQLite" in window.action_team.toolTip()
    datasets, experiments = window.panel_of("datasets"), window.panel_of("experiments")
    registry = window.panel_of("registry")
    assert datasets.import_button.isEnabled() and experiments.train_button.isEnabled()

    fill_and_open(qtbot, host="127.0.0.1", port=server.port, database=database, user=login, password="secret",
                  remember=True)
    window.action_open_team_store.trigger()  # modal: the timer above types and clicks while it shows
    qtbot.waitUntil(lambda: not window.store.is_sqlite, timeout=15_000)
    settle(qtbot, window)
    qtbot.waitUntil(lambda: window.member is not None, timeout=10_000)
    where = f"{database}@127.0.0.1:{server.port}"
    assert window.store_label.text() == f"{login} · viewer · team store {where}"
    assert server_address(window.store.engine.url) == where and window.store.root == share
    assert "secret" not in window.store.db_url  # the password went to PGPASSWORD, never into the URL
    assert os.environ.get("PGPASSWORD") == "secret"
    pgpass = tmp_path / "home" / ".pgpass"  # "Remember the password in ~/.pgpass" was ticked
    assert pgpass.read_text() == f"127.0.0.1:{server.port}:{database}:{login}:secret\n"
    assert pgpass.stat().st_mode & 0o777 == 0o600

    for button in (datasets.import_button, experiments.train_button, experiments.register_button,
                   registry.register_button, registry.import_button):
        assert not button.isEnabled(), button.objectName()
        assert "Needs the data scientist role" in button.toolTip() and "viewer" in button.toolTip()
    assert not registry.gates_button.isEnabled() and "Needs the approver role" in registry.gates_button.toolTip()
    # a scientist may set aliases (champion through a promotion request): a viewer may not
    assert not registry.alias_button.isEnabled() and "Needs the data scientist role" in registry.alias_button.toolTip()
    assert not window.action_import.isEnabled() and rights.reason(window.action_import)
    experiments.register_button.setEnabled(True)  # the panel enables it when a run is selected ...
    assert not experiments.register_button.isEnabled()  # ... the role keeps it off

    # remembered: the URL without the password, for the dialog's Recent list and the next start
    recent = recent_team_stores(window.settings)
    assert recent[0]["url"].endswith(f"{login}@127.0.0.1:{server.port}/{database}") and "secret" not in str(recent)
    assert last_team_store(window.settings)["url"] == recent[0]["url"]

    # back on a SQLite store: everything may be done again, with the panel's own tooltips
    assert window.switch_store(Store.open(store.root, create=False))
    settle(qtbot, window)
    qtbot.waitUntil(lambda: datasets.import_button.isEnabled(), timeout=10_000)
    assert "Needs" not in datasets.import_button.toolTip() and datasets.import_button.toolTip()
    assert window.store_label.text().startswith("Store: ")
    assert last_team_store(window.settings) is None


def test_problems_are_one_line_in_the_dialog_and_it_stays_open(qtbot, team_db, tmp_path: Path) -> None:
    from modelyard.ui.common.settings import open_settings

    server, database, _share = team_db
    dialog = TeamStoreDialog(open_settings())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert "(Server)" in dialog.status_label.text()  # nothing typed yet
    qtbot.keyClicks(dialog.host_edit, "127.0.0.1")
    qtbot.keyClicks(dialog.database_edit, database)
    qtbot.keyClicks(dialog.user_edit, "modelyard")
    dialog.port_spin.setValue(1)  # nothing listens there
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.ok_button.isEnabled()  # connecting, off the main thread
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=15_000)
    text = dialog.status_label.text()
    assert "Cannot reach the database server at 127.0.0.1:1" in text and "server fields" in text
    assert "\n" not in text and dialog.isVisible() and dialog.store is None
    dialog.port_spin.setValue(server.port)
    qtbot.keyClicks(dialog.artifacts_edit, str(tmp_path / "not-mounted"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=15_000)
    assert "(Artifacts folder) does not exist" in dialog.status_label.text()
    # a URL pasted into the Server field fills the fields
    dialog.host_edit.selectAll()
    QApplication.clipboard().setText("postgresql://ana@db.example:6543/mlstore")
    qtbot.keyClick(dialog.host_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert (dialog.host_edit.text(), dialog.port_spin.value(), dialog.database_edit.text(),
            dialog.user_edit.text()) == ("db.example", 6543, "mlstore", "ana")
    dialog.close()
    assert dialog.wait()


def test_a_new_team_store_is_made_through_the_dialog(qtbot, pg_server_session, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.ui.common.settings import open_settings

    monkeypatch.delenv("MODELYARD_STORE")
    server = pg_server_session
    database = server.create_database()
    try:
        dialog = TeamStoreDialog(open_settings(), create=True)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.keyClicks(dialog.host_edit, "127.0.0.1")
        dialog.port_spin.setValue(server.port)
        qtbot.keyClicks(dialog.database_edit, database)
        qtbot.keyClicks(dialog.user_edit, "modelyard")
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        assert "(Artifacts folder)" in dialog.status_label.text()
        qtbot.keyClicks(dialog.artifacts_edit, str(tmp_path / "share"))
        with qtbot.waitSignal(dialog.opened, timeout=20_000) as opened:
            qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        store = opened.args[0]
        try:
            assert store.root == tmp_path / "share" and store.meta()["artifacts_dir"] == str(tmp_path / "share")
        finally:
            store.close()
        with Store.open(db_url=server.url(database), create=False) as again:  # members open it by URL alone
            assert again.root == tmp_path / "share"
    finally:
        server.drop_database(database)


def test_an_admin_adds_a_member_changes_their_role_and_removes_them_in_the_team_dialog(qtbot, team_db) -> None:
    from modelyard.ui.common.team_dialog import AddMemberDialog, TeamDialog

    server, database, share = team_db
    with Store.open(db_url=server.url(database), create=False) as admin_store:
        window = open_window(qtbot, admin_store, (1024, 640))
        settle(qtbot, window)
        qtbot.waitUntil(lambda: window.member is not None, timeout=10_000)
        assert window.member.role == "admin" and window.action_team.isEnabled()
        login = f"nia_{database}"

        def add() -> None:
            dialog = _modal(TeamDialog)
            if dialog is None:
                QTimer.singleShot(20, add)
                return
            qtbot.waitUntil(lambda: dialog.model.rowCount() >= 1, timeout=10_000)

            def fill() -> None:
                adding = _modal(AddMemberDialog)
                if adding is None:
                    QTimer.singleShot(20, fill)
                    return
                qtbot.keyClicks(adding.login_edit, login)
                adding.role_combo.setCurrentIndex(team.ROLES.index("viewer"))
                qtbot.keyClicks(adding.password_edit, "first-pw")
                adding.buttons.accepted.emit()

            QTimer.singleShot(0, fill)
            qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: login in [m.login for m in dialog.model.rows], timeout=10_000)
            dialog.select(login)
            dialog.role_edit.setCurrentIndex(team.ROLES.index("approver"))
            qtbot.mouseClick(dialog.set_role_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: {m.login: m.role for m in dialog.model.rows}.get(login) == "approver",
                            timeout=10_000)
            owner = next(m for m in dialog.model.rows if m.owner)  # the store's owner: always an admin
            dialog.select(owner.login)
            assert not dialog.set_role_button.isEnabled() and "always an admin" in dialog.set_role_button.toolTip()
            assert not dialog.remove_button.isEnabled()
            dialog.select(login)
            assert dialog.remove_button.isEnabled()

            def confirm() -> None:
                box = _modal(QMessageBox)
                if box is None:
                    QTimer.singleShot(20, confirm)
                    return
                box.button(QMessageBox.StandardButton.Yes).click()

            QTimer.singleShot(0, confirm)
            qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: login not in [m.login for m in dialog.model.rows], timeout=10_000)
            dialog.accept()

        QTimer.singleShot(0, add)
        window.action_team.trigger()
        settle(qtbot, window)
        assert login not in {m.login for m in team.list_members(admin_store)}
        from modelyard.core.store import models as m
        from sqlalchemy import select

        with admin_store.session() as s:
            entries = s.execute(select(m.AuditEvent.entity_id, m.AuditEvent.action, m.AuditEvent.to_value)
                                .where(m.AuditEvent.entity_type == "member", m.AuditEvent.entity_id == login)
                                .order_by(m.AuditEvent.id)).all()
        assert [e.action for e in entries] == ["add_member", "set_role", "remove_member"], entries
        assert [e.to_value for e in entries][:2] == ["viewer", "approver"], entries
        window.close()


def test_a_viewer_sees_the_team_read_only_with_the_reason(qtbot, team_db) -> None:
    from modelyard.ui.common.team_dialog import TeamDialog

    server, database, _share = team_db
    login = f"otto_{database}"
    add_login(server, database, login, "viewer")
    with Store.open(db_url=server.url(database, user=login), create=False) as store:
        window = open_window(qtbot, store, (1024, 640))
        settle(qtbot, window)
        qtbot.waitUntil(lambda: window.member is not None, timeout=10_000)
        dialog = TeamDialog(window.client, window.member, window)
        qtbot.addWidget(dialog)
        dialog.show()
        assert "Only an admin" in dialog.note.text() and login in dialog.note.text()
        for widget in (dialog.add_button, dialog.set_role_button, dialog.role_edit):
            assert not widget.isEnabled() and "Needs the admin role" in widget.toolTip()
        settle(qtbot, window)
        dialog.close()
        window.close()


def test_the_window_starts_on_a_team_store_named_by_its_url_or_shown_last(
        qtbot, team_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelyard.ui.app as app_module
    from modelyard.ui.common.settings import (
        open_settings,
        remember_store,
        remember_team_store,
    )

    server, database, share = team_db
    monkeypatch.delenv("MODELYARD_STORE")
    monkeypatch.setattr(app_module, "default_store_dir", lambda: tmp_path / "default-store")
    settings = open_settings()
    url = server.url(database)
    store = app_module.open_window_store(None, url, settings)  # modelyard --db-url URL
    assert store is not None and store.root == share  # the recorded share, not the default folder
    store.close()

    folder = tmp_path / "my-store"
    Store.open(folder, create=True).close()
    remember_store(settings, str(folder))
    remember_team_store(settings, url)
    store = app_module.open_window_store(None, None, settings)  # no store named: the team store shown last
    assert store is not None and not store.is_sqlite and store.root == share
    store.close()

    # the server is gone: the last folder opens instead, and the user is told why
    remember_team_store(settings, f"postgresql+psycopg://modelyard@127.0.0.1:1/{database}")
    seen: list[str] = []

    def close_warning() -> None:
        box = _modal(QMessageBox)
        if box is None:
            QTimer.singleShot(20, close_warning)
            return
        seen.append(box.text())
        box.accept()

    QTimer.singleShot(0, close_warning)
    store = app_module.open_window_store(None, None, settings)
    assert store is not None and store.root == folder.resolve() and store.is_sqlite
    store.close()
    assert "Cannot reach the database server at 127.0.0.1:1" in seen[0]
