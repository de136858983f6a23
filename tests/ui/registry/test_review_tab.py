"""Reviewed promotions in the window, on a team store with a login per role (tests/team_helpers.py):
a data scientist asks for churn@v2 as champion from their own window (another process:
tests/review_window_child.py, real clicks and keys), the approver's window shows the request live
and raises a notice, the approver approves it with a comment, the alias moves, and the audit
timeline shows the request, the approval and the move with their comments. The author cannot
approve their own request; a viewer can neither request nor approve; an approval opened after the
gates changed shows the thresholds it was decided on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from child_lines import Child
from factories import open_window, settle
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import requests as review
from modelyard.core.store import Store
from modelyard.ui.registry.dialogs import ChangeDialog
from modelyard.ui.registry.panel import RegistryPanel
from modelyard.ui.registry.request_dialog import RequestDialog
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTextEdit,
    QWidget,
)
from review_helpers import make_versions, ready
from team_helpers import Team, team_store
from test_ui_registry import click, comment_and_ok, when_modal

THRESHOLD = r"accuracy\D{{0,20}}{}\b"  # a gate's threshold as the tab words it ("min accuracy >= 0.8")


def shown_text(widget: QWidget) -> str:
    """Every text ``widget`` shows: its labels, text views and the cells of its tables."""
    parts: list[str] = []
    for label in widget.findChildren(QLabel):
        if label.isVisibleTo(widget):
            parts.append(re.sub(r"<[^>]+>", "", label.text()))
    for edit in widget.findChildren(QTextEdit):
        parts.append(edit.toPlainText())
    for view in widget.findChildren(QAbstractItemView):
        model = view.model()
        if model is not None:
            parts += [str(model.index(r, c).data() or "") for r in range(model.rowCount())
                      for c in range(model.columnCount())]
    return "\n".join(parts)


def two_versions_ready_for_review(store: Store) -> None:
    """churn v1 (champion) and v2, gates at accuracy 0.8; v2's card filled and its evidence against v1."""
    make_versions(store, [0.81, 0.86])
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.8}}, comment="the floor")
    ready(store, "churn@v2", 0.86)


def registry_of(window) -> RegistryPanel:  # type: ignore[no-untyped-def]
    panel = window.panel_of("registry")
    window.show_panel(window.panels.index(panel))
    return panel


def click_row(qtbot, view, row: int) -> None:  # type: ignore[no-untyped-def]
    rect = view.visualRect(view.model().index(row, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def open_request(qtbot, window, request_id: int) -> RegistryPanel:  # type: ignore[no-untyped-def]
    """The window's Review tab, showing request ``request_id`` (clicked) and its snapshot."""
    panel = registry_of(window)
    tab = panel.review_tab
    panel.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.model.row_of(request_id) >= 0, timeout=10_000)
    settle(qtbot, window)
    with qtbot.waitSignal(tab.shown, timeout=10_000):
        click_row(qtbot, tab.table, tab.model.row_of(request_id))
    return panel


@pytest.fixture
def crew(db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        yield t


@pytest.fixture
def shown_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The error boxes the Registry panel would show, collected (none is expected)."""
    errors: list[str] = []
    for module in ("panel", "changes", "version_actions", "review"):
        monkeypatch.setattr(f"modelyard.ui.registry.{module}.show_error",
                            lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    return errors


def test_a_scientist_asks_the_approver_approves_live_and_the_audit_shows_every_step(
        qtbot, crew: Team, shown_errors: list[str]) -> None:
    two_versions_ready_for_review(crew.owner)
    approver = open_window(qtbot, crew.open("approver"), (1280, 800))
    panel = registry_of(approver)
    tab = panel.review_tab
    qtbot.waitUntil(lambda: tab.state is not None and panel.models_model.rowCount() == 1, timeout=15_000)
    settle(qtbot, approver)
    assert tab.model.rowCount() == 0 and panel.tabs.tabText(panel.tabs.indexOf(tab)) == "Review"
    assert not tab.state.review_required  # an approver moves champion directly
    viewer = open_window(qtbot, crew.open("viewer"), (1024, 640))
    scientist_login = crew.logins["scientist"]

    child = Child("review_window_child.py", crew.root, crew.url("scientist"))
    try:
        child.wait_for(qtbot, "ready")
        assert child.said("champion churn v1") is not None
        child.send("request churn@v2 v2 is five points better on held-out rows")
        qtbot.waitUntil(lambda: bool(review.list_requests(crew.owner)), timeout=30_000)
        asked = review.list_requests(crew.owner)[0]
        assert (asked.candidate, asked.target, asked.replaces, asked.requested_by, asked.status) == (
            "churn@v2", "champion", "churn@v1", scientist_login, "open")
        assert asked.reason == "v2 is five points better on held-out rows"

        # the approver's window shows it without a refresh: the live feed re-reads the requests
        qtbot.waitUntil(lambda: tab.model.row_of(asked.id) >= 0, timeout=10_000)
        settle(qtbot, approver)
        assert panel.tabs.tabText(panel.tabs.indexOf(tab)) == "Review (1)"
        row = tab.model.row_of(asked.id)
        assert [tab.model.index(row, c).data() for c in range(5)] == [
            "open", "churn@v2 → champion", "v1", scientist_login, tab.model.index(row, 4).data()]
        where, line = tab.last_notice  # a desktop notice: the tray, or the status bar offscreen
        assert scientist_login in line and "churn@v2" in line and "champion" in line and "churn@v1" in line
        if where == "status bar":
            assert line in approver.statusBar().currentMessage()

        # the author's own window: Approve disabled saying why (the core's rule: requests.may), Withdraw offered
        child.wait_for(qtbot, f"request {asked.id} open")
        child.send(f"select {asked.id}")
        qtbot.waitUntil(lambda: child.said_starting("buttons ") is not None or child.proc.poll() is not None,
                        timeout=15_000)
        buttons = child.said_starting("buttons ") or ""
        assert buttons == (f"buttons False True | Approving a promotion request needs the approver role; you "
                           f"({scientist_login}) are a data scientist on this store."), buttons

        # the viewer sees it too, and may neither request nor approve
        vpanel = open_request(qtbot, viewer, asked.id)
        vtab = vpanel.review_tab
        assert not vtab.request_button.isEnabled() and "Needs the data scientist role" in vtab.request_button.toolTip()
        assert not vtab.approve_button.isEnabled() and "needs the approver role" in vtab.approve_button.toolTip()
        assert not vtab.reject_button.isEnabled() and not vtab.withdraw_button.isVisible()

        # the approver opens it: the evidence it was asked on, then approves with a comment
        open_request(qtbot, approver, asked.id)
        shown = shown_text(tab)
        assert re.search(THRESHOLD.format("0.8"), shown) and "churn@v2" in shown, shown
        assert tab.shown_snapshot["kind"] == "request" and tab.shown_snapshot["candidate"] == "churn@v2"
        assert "v2 is five points better" in tab.summary.text()
        assert tab.approve_button.isEnabled() and tab.reject_button.isEnabled()
        assert not tab.withdraw_button.isVisible()

        def approve_with_comment(d: ChangeDialog) -> None:
            assert not d.ok_button.isEnabled(), "Approve must wait for a comment"
            qtbot.keyClicks(d.comment, "group gaps are small; approved")
            click(qtbot, d.ok_button)

        when_modal(qtbot, ChangeDialog, approve_with_comment)
        click(qtbot, tab.approve_button)
        qtbot.waitUntil(lambda: registry.get_model(crew.owner, "churn").aliases.get("champion") == 2, timeout=15_000)
        settle(qtbot, approver)
        decided = review.get_request(crew.owner, asked.id)
        assert (decided.status, decided.decided_by, decided.decision_comment) == (
            "approved", crew.logins["approver"], "group gaps are small; approved")
        qtbot.waitUntil(lambda: panel.tabs.tabText(panel.tabs.indexOf(tab)) == "Review", timeout=10_000)
        assert tab.model.index(tab.model.row_of(asked.id), 0).data() == "approved"

        # the scientist's window follows: the champion moved and the request is approved
        child.wait_for(qtbot, "champion churn v2", timeout_ms=15_000)
        child.wait_for(qtbot, f"request {asked.id} approved", timeout_ms=15_000)
    finally:
        child.stop()

    # the audit timeline, in the approver's window: the request, the approval and the move, with comments
    panel.tabs.setCurrentWidget(panel.timeline_view)
    qtbot.waitUntil(lambda: panel.timeline_model.rowCount() >= 6, timeout=10_000)
    model = panel.timeline_model
    rows = [[model.index(r, c).data() for c in range(6)] for r in range(model.rowCount())]
    by_what: dict[str, list] = {}
    for r in rows:  # newest first: the latest of each kind
        by_what.setdefault(r[2], r)
    assert by_what["requested promotion"][1] == scientist_login
    assert by_what["requested promotion"][5] == "v2 is five points better on held-out rows"
    assert by_what["approved the request"][1] == crew.logins["approver"]
    assert by_what["approved the request"][5] == "group gaps are small; approved"
    move = by_what["moved alias champion"]
    assert move[1] == crew.logins["approver"] and move[3] == "v2" and move[4] == "v1 → v2", rows
    assert not shown_errors


def test_an_approval_opened_after_the_gates_changed_shows_what_it_was_decided_on(
        qtbot, crew: Team, shown_errors: list[str]) -> None:
    two_versions_ready_for_review(crew.owner)
    scientist_store, approver_store = crew.open("scientist"), crew.open("approver")
    asked = review.request_promotion(scientist_store, "churn@v2", reason="better on held-out rows")
    review.approve(approver_store, asked.id, comment="checked")
    registry.set_gates(crew.owner, "churn", {"min_metrics": {"accuracy": 0.95}}, comment="a higher floor")

    window = open_window(qtbot, approver_store, (1280, 800))
    panel = registry_of(window)
    tab = panel.review_tab
    panel.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.state is not None and panel.version is not None, timeout=15_000)
    settle(qtbot, window)
    # nothing selected: the version as it stands now, under today's gates
    qtbot.waitUntil(lambda: re.search(THRESHOLD.format("0.95"), shown_text(tab)) is not None, timeout=10_000)
    assert tab.shown_snapshot["kind"] == "current"
    open_request(qtbot, window, asked.id)
    shown = shown_text(tab)
    assert tab.shown_snapshot["gates"] == {"min_metrics": {"accuracy": 0.8}}
    assert re.search(THRESHOLD.format("0.8"), shown) and not re.search(THRESHOLD.format("0.95"), shown), shown
    summary = re.sub(r"<[^>]+>", "", tab.summary.text())
    assert re.search(rf"Approved by {crew.logins['approver']} .+: checked", summary), summary
    assert tab.evidence.gates_label.text() == "<i>Gates when it was decided:</i> min accuracy &gt;= 0.8"
    assert not tab.approve_button.isEnabled() and "approved already" in tab.approve_button.toolTip()
    assert not shown_errors


def test_make_champion_by_a_scientist_opens_the_request_dialog_with_what_is_missing(
        qtbot, crew: Team, shown_errors: list[str]) -> None:
    two_versions_ready_for_review(crew.owner)
    with tracking.start_run("churn", store=crew.owner, name="v3") as run:
        run.log_metrics({"accuracy": 0.9})
        run.log_bytes(b"a model", "model/model.joblib", kind="model")
    registry.register(crew.owner, run.id, "churn")  # v3: no card fields, no evidence
    window = open_window(qtbot, crew.open("scientist"), (1024, 640))
    panel = registry_of(window)
    qtbot.waitUntil(lambda: panel.review_tab.state is not None and panel.version is not None, timeout=15_000)
    settle(qtbot, window)
    assert panel.review_needed and panel.version.ref == "churn@v3"
    seen: list[str] = []

    def look_and_cancel(d: RequestDialog) -> None:
        qtbot.waitUntil(lambda: d.readiness is not None, timeout=10_000)
        seen.append(d.card_label.text())
        seen.append(d.evidence_label.text())
        qtbot.keyClicks(d.reason, "v3 is better")
        assert not d.ok_button.isEnabled()
        seen.append(d.ok_button.toolTip())
        assert d.evidence_button.isVisible() and d.edit_card_button.isVisible()
        d.reject()

    when_modal(qtbot, RequestDialog, look_and_cancel)
    menu = panel.versions_menu()
    champion = next(a for a in menu.actions() if a.text() == "Make v3 champion…")
    champion.trigger()
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=15_000)
    assert "leaves empty: Intended use, Out-of-scope uses, Known limitations, Ethical considerations;" in seen[0]
    assert "No evidence yet for churn@v3" in seen[1]
    assert seen[2] == "Needs the card's review fields, evidence against the current champion."
    assert registry.get_model(crew.owner, "churn").aliases == {"champion": 1}
    assert not review.list_requests(crew.owner) and not shown_errors


def test_when_the_store_starts_requiring_reviews_set_alias_champion_becomes_a_request_the_author_withdraws(
        qtbot, crew: Team, shown_errors: list[str]) -> None:
    from modelyard.core.registry.review.policy import set_review_required

    two_versions_ready_for_review(crew.owner)
    window = open_window(qtbot, crew.owner, (1024, 640))
    panel = registry_of(window)
    qtbot.waitUntil(lambda: panel.review_tab.state is not None and panel.version is not None, timeout=15_000)
    settle(qtbot, window)
    assert not panel.review_needed  # the owner is an admin: a direct move, until the store asks for reviews
    set_review_required(crew.owner, True, comment="every promotion is reviewed")  # this window was not told
    panel.select_version("churn@v2")
    settle(qtbot, window)
    values: list[tuple[str, str]] = []

    def request_it(d: RequestDialog) -> None:
        if d.readiness is None or not d.ok_button.isEnabled():
            QTimer.singleShot(20, lambda: request_it(d))  # still reading the card and the evidence
            return
        values.append(d.values())
        click(qtbot, d.ok_button)

    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "v2 beats v1", "champion"))
    when_modal(qtbot, RequestDialog, request_it)
    click(qtbot, panel.alias_button)  # the core refuses the direct move: the Request dialog opens instead
    qtbot.waitUntil(lambda: bool(review.list_requests(crew.owner)), timeout=15_000)
    assert values == [("champion", "v2 beats v1")]  # the comment typed for the move is the reason
    settle(qtbot, window)
    made = review.list_requests(crew.owner)[0]
    assert (made.candidate, made.target, made.reason, made.status) == ("churn@v2", "champion", "v2 beats v1", "open")
    assert registry.get_model(crew.owner, "churn").aliases == {"champion": 1}
    assert panel.review_needed

    tab = panel.review_tab
    qtbot.waitUntil(lambda: panel.tabs.currentWidget() is tab and tab.request is not None
                    and tab.request.id == made.id, timeout=10_000)
    settle(qtbot, window)
    assert not tab.approve_button.isEnabled()
    assert tab.approve_button.toolTip() == f"You ({made.requested_by}) made request {made.id}; its author cannot approve it."
    assert tab.withdraw_button.isVisible() and tab.withdraw_button.isEnabled()
    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "waiting for March data"))
    click(qtbot, tab.withdraw_button)
    qtbot.waitUntil(lambda: review.get_request(crew.owner, made.id).status == "withdrawn", timeout=10_000)
    settle(qtbot, window)
    qtbot.waitUntil(lambda: tab.model.index(tab.model.row_of(made.id), 0).data() == "withdrawn", timeout=10_000)
    assert panel.tabs.tabText(panel.tabs.indexOf(tab)) == "Review" and not tab.withdraw_button.isVisible()
    assert not shown_errors


def test_an_approval_the_gates_block_shows_why_and_may_be_overridden_with_the_comment(
        qtbot, crew: Team, shown_errors: list[str]) -> None:
    two_versions_ready_for_review(crew.owner)
    registry.set_gates(crew.owner, "churn", {"min_metrics": {"accuracy": 0.9}}, comment="a higher floor")
    asked = review.request_promotion(crew.open("scientist"), "churn@v2", reason="better on held-out rows")
    window = open_window(qtbot, crew.open("approver"), (1280, 800))
    panel = open_request(qtbot, window, asked.id)
    tab = panel.review_tab
    blocked: list[str] = []

    def override(box: QMessageBox) -> None:
        blocked.append(box.text())
        click(qtbot, box.findChild(QPushButton, "overrideButton"))

    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "accepted below the floor for the pilot"))
    when_modal(qtbot, QMessageBox, override)
    click(qtbot, tab.approve_button)
    qtbot.waitUntil(lambda: review.get_request(crew.owner, asked.id).status == "approved", timeout=15_000)
    settle(qtbot, window)
    assert len(blocked) == 1 and "accuracy" in blocked[0] and "0.9" in blocked[0], blocked
    assert registry.get_model(crew.owner, "churn").aliases == {"champion": 2}
    assert review.get_request(crew.owner, asked.id).decision_comment == "accepted below the floor for the pilot"
    assert not shown_errors
