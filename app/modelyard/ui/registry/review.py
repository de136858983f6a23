"""The Registry panel's Review tab: the store's promotion requests, open first, and the evidence
each was decided on.

Selecting a request shows its stored snapshot (the decision's once decided, else the request's:
``requests.request_snapshot``) in an :class:`~modelyard.ui.registry.evidence_view.EvidenceView`,
never the state of today; with no request selected the tab shows the selected version as it
stands now (``snapshot.current_snapshot``). Approve and Reject ask for a comment; they are
disabled, saying why, for the request's author and for a role that may not approve
(:mod:`modelyard.ui.common.rights`); the author may Withdraw an open request. The list is read
again whenever the models change, here or in another process (the client's live feed), and a new
open request by someone else raises a desktop notice for a member who may approve it
(:mod:`modelyard.ui.common.notices`).

Every read and write goes through the panel's client, off the main thread.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import GateFailed
from modelyard.core.common.names import plural
from modelyard.ui.common import notices, rights, theme
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import push_button, rows_view, show_error
from modelyard.ui.registry.dialogs import override_gates
from modelyard.ui.registry.evidence_view import EvidenceView
from modelyard.ui.registry.tables import short_when, when

STATUS_ICON = {"open": "running", "approved": "ok", "rejected": "failed", "withdrawn": "cancelled"}
STATUS_TEXT = {"open": "open", "approved": "approved", "rejected": "rejected", "withdrawn": "withdrawn"}
REVIEW_TARGETS = ("champion", "Production")  # the moves that may need an approver's review
# (column, px): below this table width the column hides (the row's tooltip still has it)
NARROW_HIDES = ((5, 700), (4, 560))


@dataclass(frozen=True)
class ReviewState:
    """What one read of the Review tab answers (plain data: it crosses from the reading thread)."""

    requests: list[Any]  # requests.PromotionRequestInfo, open first then newest first
    review_required: bool  # a champion / Production move by this member needs a request
    member: Any  # core.store.team.Member
    me: str  # who this member acts as in the audit and on requests (requests.requested_by)
    # per open request: action ("approve", "reject", "withdraw") -> (may, why not): requests.may
    rights: dict[int, dict[str, tuple[bool, str]]]


def read_review_state(store: Any) -> ReviewState:
    """The store's promotion requests and whether this member's promotions need a review (runs on
    the client's reading thread)."""
    from modelyard.core.registry.review import requests, snapshot
    from modelyard.core.store import team

    rows = list(requests.list_requests(store))
    rows.sort(key=lambda r: (r.status != "open", -(r.requested_at.timestamp() if r.requested_at else 0), -r.id))
    rights = {r.id: {action: requests.may(store, r, action) for action in ("approve", "reject", "withdraw")}
              for r in rows if r.status == "open"}
    return ReviewState(rows, bool(requests.review_required(store)), team.member(store), snapshot.acting_login(store),
                       rights)


def _short(ref: str | None) -> str:
    """``v1`` of ``churn@v1``: what a request replaces is a version of the same model."""
    return ref.rpartition("@")[2] if ref else "—"


class RequestsModel(RowsTableModel[Any]):
    headers = ("Status", "Request", "Replaces", "Requested by", "When", "Decided by")

    def key(self, r: Any) -> int:
        return r.id

    def row_of(self, request_id: int | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r.id == request_id), -1)

    def cell(self, r: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (STATUS_TEXT.get(r.status, r.status), f"{r.candidate} → {r.target}", _short(r.replaces),
                    r.requested_by or "", short_when(r.requested_at), r.decided_by or "")[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return theme.status_icon(STATUS_ICON.get(r.status, "queued"))
        if role == Qt.ItemDataRole.FontRole and r.status == "open":
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            text = f"{r.candidate} → {r.target}, asked by {r.requested_by} {when(r.requested_at)}:\n{r.reason}"
            if r.decided_by:
                text += f"\n{STATUS_TEXT.get(r.status, r.status)} by {r.decided_by} {when(r.decided_at)}: " \
                        f"{r.decision_comment or ''}"
            return text
        return None


class ReviewTab(QWidget):
    """See the module docstring. ``panel`` is the Registry panel (its client, selected version and
    request dialog)."""

    open_count_changed = Signal(int)
    loaded = Signal()  # the requests were read and shown
    shown = Signal()  # the evidence view shows what was selected (a request's snapshot or the version now)

    def __init__(self, panel: Any) -> None:
        super().__init__(panel)
        self.setObjectName("reviewTab")
        self.panel = panel
        self.state: ReviewState | None = None
        self.request: Any = None  # the selected request
        self.shown_key: tuple[str, Any] | None = None  # ("request", id) or ("current", ref): what the view shows
        self.shown_snapshot: dict | None = None  # the snapshot document it shows
        self._selecting = False
        self._seen_open: set[int] | None = None  # open requests already known (None: before the first read)
        self._seen_store: int | None = None  # id() of the store they are of
        self.last_notice: tuple[str, str] | None = None  # (where, text) of the last desktop notice

        self.model = RequestsModel(self)
        self.table = rows_view(self, "requestsTable", self.model)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _p: None if self._selecting else self._selected(cur.row()))
        self.table.installEventFilter(self)  # narrow: who decided and when give their room to the request

        self.request_button = push_button(self, "Request promotion…", lambda: self.panel.request_promotion(),
                                          name="requestPromotionButton", icon="registry",
                                          tip="Ask an approver to make the selected version champion or move it "
                                              "to Production")
        self.approve_button = push_button(self, "Approve…", self.approve, name="approveButton", icon="ok",
                                          enabled=False)
        self.reject_button = push_button(self, "Reject…", self.reject, name="rejectButton", enabled=False)
        self.withdraw_button = push_button(self, "Withdraw…", self.withdraw, name="withdrawButton",
                                           tip="Take back your request (the approvers no longer see it as open)")
        self.withdraw_button.hide()
        rights.guard("write", self.request_button, self.withdraw_button)
        # Approve and Reject are enabled by the core's rule for the selected request (requests.may), saying why not

        self.summary = QLabel("", self)
        self.summary.setObjectName("requestSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # the gates the shown snapshot was judged under (replay: an old decision keeps its thresholds)
        self.evidence = EvidenceView(self)

        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table)
        bottom = QWidget(self)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(theme.SPACE_S)
        buttons = QHBoxLayout()
        buttons.addWidget(self.request_button)
        buttons.addStretch(1)
        for b in (self.withdraw_button, self.reject_button, self.approve_button):
            buttons.addWidget(b)
        bl.addLayout(buttons)
        bl.addWidget(self.summary)
        bl.addWidget(self.evidence, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("reviewSplitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([120, 400])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addWidget(self.splitter)
        self._show_buttons()

    # ------------------------------------------------------------------ reading
    @property
    def client(self) -> Any:
        return self.panel.client

    def reload(self) -> None:
        """Read the requests again (off the main thread)."""
        if self.client is None:
            return
        self.client.read("registry.requests", read_review_state, self._loaded,
                         lambda exc: show_error(self, "Cannot read the promotion requests", exc))

    def _loaded(self, state: ReviewState) -> None:
        self.state = state
        if self.shown_key is not None and self.shown_key[0] == "current":
            self.shown_key = None  # the version's evidence or gates may have changed: read it again
        self.panel.review_needed = state.review_required
        wanted = self.request.id if self.request is not None else None
        self._selecting = True
        try:
            self.model.set_rows(state.requests)
            row = self.model.row_of(wanted)
            if row >= 0:
                self.table.selectRow(row)
            else:
                self.table.clearSelection()
        finally:
            self._selecting = False
        self.request = self.model.rows[row] if row >= 0 else None
        open_ids = {r.id for r in state.requests if r.status == "open"}
        self.open_count_changed.emit(len(open_ids))
        self._notify_new(state, open_ids)
        self._show_selected()
        self.loaded.emit()

    def _notify_new(self, state: ReviewState, open_ids: set[int]) -> None:
        """A new open request by someone else, for a member who may decide it: a desktop notice."""
        store = id(self.client.store)
        if store != self._seen_store:  # another store: its open requests are not news
            self._seen_open, self._seen_store = None, store
        seen, self._seen_open = self._seen_open, open_ids
        if seen is None:
            return
        fresh = [r for r in state.requests if r.id in open_ids - seen and state.rights[r.id]["approve"][0]]
        if not fresh:
            return
        if len(fresh) == 1:
            r = fresh[0]
            line = (f"{r.requested_by} asks to make {r.candidate} {r.target}"
                    + (f" (replacing {r.replaces})" if r.replaces else "") + ": open Registry › Review to decide.")
        else:
            line = (f"{plural(len(fresh), 'new promotion request')} "
                    f"({', '.join(f'{r.candidate} → {r.target}' for r in fresh)}): open Registry › Review to decide.")
        where = notices.notify(self, "A promotion request waits for you", line, self.client)
        self.last_notice = (where, line)

    def _selected(self, row: int) -> None:
        self.request = self.model.rows[row] if 0 <= row < self.model.rowCount() else None
        self._show_selected()

    def show_version(self) -> None:
        """The tab was shown, or the panel's selected version changed (shown as it is now while no
        request is selected)."""
        self._show_selected()

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if watched is self.table and event.type() == QEvent.Type.Resize:
            width = event.size().width()
            for column, below in NARROW_HIDES:
                self.table.setColumnHidden(column, width < below)
        return super().eventFilter(watched, event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._show_selected()  # what was selected while hidden is read now

    def select_request(self, request_id: int) -> bool:
        """Select the request ``request_id`` in the table (False when it is not listed)."""
        row = self.model.row_of(request_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        return True

    def _show_selected(self) -> None:
        self._show_buttons()
        if self.client is None:
            return
        if not self.isVisible():  # read when the tab is shown (show_version)
            self.shown_key = None
            return
        r = self.request
        if r is not None:
            key: tuple[str, Any] = ("request", (r.id, r.status))
            if key == self.shown_key:
                return
            self.summary.setText(self._request_text(r))
            rid = r.id

            def read(store: Any) -> dict:
                from modelyard.core.registry.review import requests

                return requests.request_snapshot(store, rid)

            self.client.read("registry.review-snapshot", read, lambda snap: self._snapshot_read(key, snap),
                             lambda exc: show_error(self, "Cannot show the request's evidence", exc))
            return
        version = getattr(self.panel, "version", None)
        if version is None:
            self.shown_key = None
            self.summary.setText("<span style='color:gray'>Select a request, or a version to see its evidence "
                                 "now.</span>")
            self._snapshot_read(("none", None), None)
            return
        key = ("current", version.ref)
        if key == self.shown_key:
            return
        ref = version.ref
        self.summary.setText(f"<b>{html.escape(ref)}</b> as it stands now; no request selected. "
                             "<span style='color:gray'>Request promotion… asks an approver to make it champion.</span>")

        def current(store: Any) -> dict:
            from modelyard.core.registry.review import snapshot

            return snapshot.current_snapshot(store, ref)

        self.client.read("registry.review-snapshot", current, lambda snap: self._snapshot_read(key, snap),
                         lambda exc: self._snapshot_read(key, None))

    def _snapshot_read(self, key: tuple[str, Any], snap: dict | None) -> None:
        self.shown_key = key
        self.shown_snapshot = snap
        self.evidence.set_snapshot(snap)
        self.shown.emit()

    def _request_text(self, r: Any) -> str:
        esc = html.escape
        head = (f"<b>{esc(r.candidate)} → {esc(r.target)}</b>"
                + (f", replacing {esc(_short(r.replaces))}" if r.replaces else "")
                + f" · asked by <b>{esc(r.requested_by or '')}</b> {esc(when(r.requested_at))}")
        text = head + f"<br><i>Reason:</i> {esc(r.reason or '')}"
        if r.status != "open":
            verb = STATUS_TEXT.get(r.status, r.status)
            colour = theme.status_colour(STATUS_ICON.get(r.status, "queued")).name()
            text += (f"<br><span style='color:{colour}'><b>{verb.capitalize()}</b></span> by "
                     f"<b>{esc(r.decided_by or '')}</b> {esc(when(r.decided_at))}: {esc(r.decision_comment or '')}")
        return text

    def _show_buttons(self) -> None:
        """Approve, Reject and Withdraw as the core's rule says for the selected request
        (``requests.may``: the role, and never the author's own), each saying why not."""
        r = self.request
        rights = (self.state.rights.get(r.id) if self.state is not None and r is not None else None) or {}
        for b, action, tip in ((self.approve_button, "approve", "Approve: the move happens now, after the gates "
                                                                "are checked again"),
                               (self.reject_button, "reject", "Reject: the version stays where it is")):
            if r is None:
                ok, why = False, "Select an open request to decide it."
            elif r.status != "open":
                ok, why = False, f"This request is {r.status} already."
            else:
                ok, why = rights.get(action, (False, "Reading who may decide it…"))
            b.setToolTip(tip if ok else why)
            b.setEnabled(ok)
        withdraw = r is not None and r.status == "open" and rights.get("withdraw", (False, ""))[0]
        self.withdraw_button.setVisible(withdraw)
        self.withdraw_button.setEnabled(withdraw)
        version = getattr(self.panel, "version", None)
        self.request_button.setEnabled(version is not None)
        if version is not None:
            self.request_button.setText(f"Request promotion of v{version.version}…")

    # ------------------------------------------------------------------ deciding
    def _comment(self, title: str, summary: str, ok_text: str) -> str | None:
        from modelyard.ui.registry.dialogs import ChangeDialog

        dialog = ChangeDialog(title, summary, self, ok_text=ok_text,
                              placeholder="Your comment (the requester and the audit log read it)")
        dialog.setObjectName("decisionDialog")
        if dialog.exec() != ChangeDialog.DialogCode.Accepted:
            return None
        return dialog.comment_text()

    def approve(self, comment: str | None = None, *, force: bool = False) -> bool:
        """Approve the selected request (asking for the comment when not given)."""
        r = self.request
        if r is None or r.status != "open" or self.client is None:
            return False
        if comment is None:
            replaces = f" from {html.escape(r.replaces)}" if r.replaces else ""
            comment = self._comment(f"Approve {r.candidate} → {r.target}",
                                    f"Approving moves <b>{html.escape(r.target)}</b>{replaces} to "
                                    f"<b>{html.escape(r.candidate)}</b> now; the gates are checked again first. "
                                    f"{html.escape(r.requested_by or '')} asked: “{html.escape(r.reason or '')}”",
                                    "Approve")
            if comment is None:
                return False
        rid, text = r.id, comment

        def do(store: Any) -> Any:
            from modelyard.core.registry.review import requests

            return requests.approve(store, rid, comment=text, force=force)

        def refused(exc: Exception) -> None:
            if isinstance(exc, GateFailed) and not force:
                self._offer_override(r, text, exc)
            else:
                show_error(self, "Cannot approve the request", exc)

        self.client.write(do, lambda info: self._decided(info), refused, changes="models")
        return True

    def _offer_override(self, r: Any, comment: str, exc: GateFailed) -> None:
        if override_gates(self, "Approval blocked by a gate", exc.message, f"{r.candidate} → {r.target}", comment,
                          "Override and approve"):
            self.approve(comment, force=True)

    def reject(self, comment: str | None = None) -> bool:
        r = self.request
        if r is None or r.status != "open" or self.client is None:
            return False
        if comment is None:
            comment = self._comment(f"Reject {r.candidate} → {r.target}",
                                    f"Rejecting leaves {html.escape(r.target)} where it is. Say what "
                                    f"{html.escape(r.requested_by or 'the requester')} should change.", "Reject")
            if comment is None:
                return False
        return self._decide("reject", r.id, comment, "Cannot reject the request")

    def withdraw(self, comment: str | None = None) -> bool:
        r = self.request
        if r is None or r.status != "open" or self.client is None:
            return False
        if comment is None:
            comment = self._comment(f"Withdraw {r.candidate} → {r.target}",
                                    "Withdrawing closes your request; the approvers no longer see it as open.",
                                    "Withdraw")
            if comment is None:
                return False
        return self._decide("withdraw", r.id, comment, "Cannot withdraw the request")

    def _decide(self, verb: str, rid: int, comment: str, title: str) -> bool:
        def do(store: Any) -> Any:
            from modelyard.core.registry.review import requests

            return getattr(requests, verb)(store, rid, comment=comment)

        self.client.write(do, self._decided, lambda exc: show_error(self, title, exc), changes="models")
        return True

    def _decided(self, info: Any) -> None:
        """A decision landed: the panel shows the candidate's model (the changed signal re-reads the list)."""
        self.shown_key = None
        if info is not None and getattr(info, "status", None) == "approved":
            self.panel.select_version(info.candidate)
