"""Promotion requests: asking to move ``champion`` (or a version into Production), and the decision.

::

    from modelyard.core.registry.review import requests

    req = requests.request_promotion(store, "churn@v3", reason="better recall on March")   # a scientist
    requests.list_requests(store, status="open")
    requests.approve(store, req.id, comment="checked the group table")   # an approver: the alias moves
    requests.request_snapshot(store, req.id)      # what it was decided on (replay)

**Who.** On a team store a data scientist requests (:func:`~.policy.review_required`: moving
``champion`` directly is refused with :class:`ReviewRequired`); an approver approves or rejects;
the author never decides their own request (they may withdraw it). With the store setting
``review.required`` everyone requests and anyone but the author decides (a single-user store:
another ``MODELYARD_USER``). PostgreSQL enforces the same for any client
(:mod:`modelyard.core.store.roles_sql`, the ``promotion_requests`` guard).

**What a request needs.** The card's four review fields filled
(:func:`~modelyard.core.registry.cards.missing_review_fields`) and the version's evidence computed
against the current champion (:mod:`.evidence`); one open request per version and target.

**Approval** is one transaction: the request must still be open and the model at the revision the
request was made at (else :class:`StaleEditError` naming who moved what and when), the gates
(fairness gates included) pass (:class:`GateFailed`, exit code 3, unless ``force`` with the
comment), the move is made by :func:`~modelyard.core.registry.edits.move_alias` /
:func:`~modelyard.core.registry.edits.move_stage` (the same code as a direct edit), and the decision
snapshot (:mod:`.snapshot`) is stored. Audit events: ``request_promotion``, ``approve_request``,
``reject_request``, ``withdraw_request`` and the move itself (its details carry ``"request": id``).

**Notification.** A new request notifies the store's channels (event ``review.requested``,
docs/notifications.md); a failure to send never fails the request.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelyard.core.common.errors import (
    ModelyardError,
    NotFoundError,
    PermissionRefused,
    StaleEditError,
)
from modelyard.core.registry import edits
from modelyard.core.registry.cards import missing_review_fields
from modelyard.core.registry.refs import CHAMPION, _audit, _resolve
from modelyard.core.registry.review import snapshot
from modelyard.core.registry.review.evidence import latest_evidence_of
from modelyard.core.registry.review.policy import (  # noqa: F401 - re-exported: the design names them here
    META_KEY,
    review_required,
    review_setting,
    set_review_required,
)
from modelyard.core.store import Store, lookup, team
from modelyard.core.store import models as m

log = logging.getLogger(__name__)

TARGETS = ("champion", "Production")
STATUSES = m.REQUEST_STATUSES
EVENT = "review.requested"  # the notification of a new request (docs/notifications.md)
REASON_MAX = 5_000


@dataclass(frozen=True)
class PromotionRequestInfo:
    id: int
    model: str
    candidate: str  # NAME@vN
    target: str  # "champion" or "Production"
    replaces: str | None  # NAME@vN it replaces (the champion, or the version in Production), None when none
    reason: str
    requested_by: str
    requested_at: dt.datetime
    status: str  # open, approved, rejected, withdrawn
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_comment: str | None
    snapshot_sha256: str | None
    decision_sha256: str | None
    model_revision: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("requested_at", "decided_at"):
            d[key] = d[key].isoformat() if d[key] is not None else None
        return d


def _ref(s: Session, model: m.RegisteredModel, version_id: int | None) -> str | None:
    if version_id is None:
        return None
    number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == version_id))
    return f"{model.name}@v{number}" if number is not None else None


def _info(s: Session, row: m.PromotionRequest) -> PromotionRequestInfo:
    model = s.get(m.RegisteredModel, row.model_id)
    assert model is not None
    return PromotionRequestInfo(
        id=row.id, model=model.name, candidate=_ref(s, model, row.version_id) or "?", target=row.target,
        replaces=_ref(s, model, row.replaces_version_id), reason=row.reason, requested_by=row.requested_by,
        requested_at=row.requested_at, status=row.status, decided_by=row.decided_by, decided_at=row.decided_at,
        decision_comment=row.decision_comment, snapshot_sha256=row.snapshot_sha256,
        decision_sha256=row.decision_sha256, model_revision=row.model_revision or 0)


def _target(target: str) -> str:
    match = [t for t in TARGETS if t.lower() == (target or "").strip().lower()]
    if not match:
        raise ModelyardError(f"{target!r} is not something a promotion can be requested to.",
                             hint="Use --target champion (the alias) or --target Production (the stage).")
    return match[0]


def _text(value: str | None, what: str, option: str) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise ModelyardError(f"{what} needs a short text saying why.", hint=f"Pass {option} \"why\".")
    if len(text) > REASON_MAX:
        raise ModelyardError(f"The {option} text is too long ({len(text):,} characters, at most {REASON_MAX:,}).",
                             hint="Shorten it, or link to a longer document from it.")
    return text


def _replaced(s: Session, model: m.RegisteredModel, mv: m.ModelVersion, target: str) -> m.ModelVersion | None:
    """The version a promotion of ``mv`` to ``target`` replaces: the champion, or the newest other
    version in Production."""
    if target == CHAMPION:
        champ = snapshot.champion_of(s, model)
        return champ if champ is not None and champ.id != mv.id else None
    return s.scalars(select(m.ModelVersion).where(
        m.ModelVersion.model_id == model.id, m.ModelVersion.stage == "Production", m.ModelVersion.id != mv.id)
        .order_by(m.ModelVersion.version.desc()).limit(1)).first()


def _already_there(s: Session, model: m.RegisteredModel, mv: m.ModelVersion, target: str) -> bool:
    if target == CHAMPION:
        champ = snapshot.champion_of(s, model)
        return champ is not None and champ.id == mv.id
    return mv.stage == "Production"


# =========================================================================== requesting


def request_promotion(store: Store, ref: str, target: str = "champion", *, reason: str | None
                      ) -> PromotionRequestInfo:
    """Ask for ``ref`` (NAME@vN) to become ``target`` ("champion" or "Production"), saying why.

    Needs the write right, the card's review fields and evidence computed against the current
    champion; stores the snapshot it is made on, audits ``request_promotion`` and notifies."""
    target = _target(target)
    reason = _text(reason, "A promotion request", "--reason")
    team.require(store, "write", "Requesting a promotion")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        cref = f"{model.name}@v{mv.version}"
        if _already_there(s, model, mv, target):
            where = "champion" if target == CHAMPION else "in Production"
            raise ModelyardError(f"{cref} is already {where}; there is nothing to request.",
                                 hint=f"'modelyard model show {model.name}' shows its aliases and stages.")
        missing = missing_review_fields(mv.card)
        if missing:
            raise ModelyardError(
                f"The model card of {cref} leaves {_join(missing)} empty; reviewers need them before a promotion "
                "can be requested.",
                hint=f"Fill them in the Registry's Model card tab (Edit…) or with 'modelyard model card {cref} "
                     "--intended-use TEXT --out-of-scope-uses TEXT --known-limitations TEXT "
                     "--ethical-considerations TEXT --comment \"why\"'.")
        _check_evidence(s, store, model, mv, cref)
        open_row = s.scalars(select(m.PromotionRequest).where(
            m.PromotionRequest.version_id == mv.id, m.PromotionRequest.target == target,
            m.PromotionRequest.status == "open")).first()
        if open_row is not None:
            raise ModelyardError(
                f"Request {open_row.id} by {open_row.requested_by} already asks for {cref} as {target}; it is "
                "still open.", hint=f"See it with 'modelyard model requests {open_row.id}'.")
        replaced = _replaced(s, model, mv, target)
        row = m.PromotionRequest(model_id=model.id, version_id=mv.id, target=target,
                                 replaces_version_id=replaced.id if replaced is not None else None, reason=reason,
                                 requested_by=snapshot.acting_login(store), model_revision=model.revision or 0,
                                 status="open")
        s.add(row)
        s.flush()
        info = _info(s, row)
        doc = snapshot.build(s, store, model, mv, kind="request", target=target, request=info.to_json())
        row.snapshot_sha256 = snapshot.put(s, store, doc)
        _audit(s, model, "request_promotion", version=mv.version, from_value=info.replaces, to_value=cref,
               comment=reason, details={"request": row.id, "target": target})
        s.flush()
        info = _info(s, row)
    _notify(store, info)
    return info


def _join(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _check_evidence(s: Session, store: Store, model: m.RegisteredModel, mv: m.ModelVersion, cref: str) -> None:
    """Refuse a request whose version has no evidence, or evidence compared with another champion."""
    evidence = latest_evidence_of(s, store, mv.id)
    compute = f"Compute it with 'modelyard model evidence {cref}' (or wait for the job started when it was registered)."
    if evidence is None:
        raise ModelyardError(f"{cref} has no evidence yet (its metrics with intervals against the champion, group "
                             "metrics and explanations); a request needs it.", hint=compute)
    champ = snapshot.champion_of(s, model)
    now = f"{model.name}@v{champ.version}" if champ is not None and champ.id != mv.id else None
    if evidence.champion != now:
        was = evidence.champion or "no champion"
        raise ModelyardError(f"The evidence of {cref} was computed against {was}, but the champion is now "
                             f"{now or 'none'}; a request compares with the current champion.",
                             hint=f"Compute it again with 'modelyard model evidence {cref}'.")


def _notify(store: Store, info: PromotionRequestInfo) -> None:
    """Tell the approvers (the store's notification channels); never fails the request."""
    try:
        from modelyard.core.notify import notify

        replaces = f", replacing {info.replaces}" if info.replaces else ""
        body = (f"{info.requested_by} asks for {info.candidate} as {info.target}{replaces}.\n"
                f"Reason: {info.reason}\n\n"
                f"Review it in the Registry's Review tab, or:\n"
                f"  modelyard model requests {info.id}\n"
                f"  modelyard model approve {info.id} --comment \"why\"\n"
                f"  modelyard model reject {info.id} --comment \"why\"")
        notify(store, EVENT, subject=f"Review requested: {info.candidate} as {info.target}", body=body,
               payload={"request": info.id, "model": info.model, "candidate": info.candidate,
                        "target": info.target, "replaces": info.replaces, "requested_by": info.requested_by,
                        "reason": info.reason})
    except Exception:  # noqa: BLE001 - a notification never fails the request it tells of
        log.exception("Could not notify the approvers of request %s", info.id)


# =========================================================================== reading


def list_requests(store: Store, *, status: str | None = None, name: str | None = None
                  ) -> list[PromotionRequestInfo]:
    """The requests, newest first (``status``: one of open, approved, rejected, withdrawn; None or
    "all": every one; ``name``: of that model only)."""
    if status is not None and status != "all" and status not in STATUSES:
        raise ModelyardError(f"{status!r} is not a request status.",
                             hint=f"Use one of {', '.join(STATUSES)} or all.")
    with store.session() as s:
        stmt = select(m.PromotionRequest).order_by(m.PromotionRequest.id.desc())
        if status not in (None, "all"):
            stmt = stmt.where(m.PromotionRequest.status == status)
        if name:
            stmt = stmt.where(m.PromotionRequest.model_id == lookup.model_by_name(s, name.strip()).id)
        return [_info(s, row) for row in s.scalars(stmt)]


def _row(s: Session, request_id: int) -> m.PromotionRequest:
    row = s.get(m.PromotionRequest, request_id) if isinstance(request_id, int) else None
    if row is None:
        raise NotFoundError(f"There is no promotion request {request_id}.",
                            hint="'modelyard model requests --status all' lists them.")
    return row


def get_request(store: Store, request_id: int) -> PromotionRequestInfo:
    with store.session() as s:
        return _info(s, _row(s, request_id))


def request_snapshot(store: Store, request_id: int, which: str | None = None) -> dict[str, Any]:
    """The snapshot a request was decided on (``which`` "decision", the default once decided) or
    made on ("request"): the stored document, never the current state."""
    if which not in (None, "decision", "request"):
        raise ModelyardError(f"{which!r} is not a snapshot of a request.", hint="Use decision or request.")
    info = get_request(store, request_id)
    sha = info.decision_sha256 if which in (None, "decision") and info.decision_sha256 else None
    if which == "decision" and sha is None:
        raise NotFoundError(f"Request {request_id} is {info.status}; it has no decision snapshot.",
                            hint="Its request snapshot is what it was made on.")
    doc = snapshot.read(store, sha or info.snapshot_sha256)
    if doc is None:
        raise NotFoundError(f"Request {request_id} has no stored snapshot.")
    return doc


# =========================================================================== deciding


ACTIONS = ("approve", "reject", "withdraw")


def refusal(store: Store, info: PromotionRequestInfo, action: str) -> PermissionRefused | None:
    """Why the store's member may not ``action`` ("approve", "reject", "withdraw") the request
    ``info``, or None when they may (whether it is still open is checked when deciding)."""
    assert action in ACTIONS
    mem, who = store.member, snapshot.acting_login(store)
    if action == "withdraw":
        if not mem.may("write"):
            return team.refusal(mem, "write", "Withdrawing a promotion request")
        if who != info.requested_by:
            return PermissionRefused(
                f"Request {info.id} is {info.requested_by}'s; only its author can withdraw it.", needed="approver",
                role=mem.role, hint=f"An approver may reject it: 'modelyard model reject {info.id} --comment \"why\"'.")
        return None
    if not mem.may("approve"):
        return team.refusal(mem, "approve", f"{'Approving' if action == 'approve' else 'Rejecting'} a promotion request")
    if who == info.requested_by:
        hint = (f"Withdraw it instead with 'modelyard model withdraw {info.id} --comment \"why\"'."
                if action == "reject" else "Someone else decides it; you may withdraw it.")
        return PermissionRefused(f"You ({who}) made request {info.id}; its author cannot {action} it.",
                                 needed="approver", role=mem.role, hint=hint)
    return None


def may(store: Store, info: PromotionRequestInfo, action: str) -> tuple[bool, str]:
    """Whether the member may ``action`` the request, and when not the one-line reason (a tooltip)."""
    refused = refusal(store, info, action)
    return refused is None, refused.message if refused is not None else ""


def _may_decide(store: Store, request_id: int, action: str, comment: str | None
                ) -> tuple[PromotionRequestInfo, str, str]:
    """The request, who acts and the comment, once the member may ``action`` it (else refused)."""
    doing = {"approve": "Approving", "reject": "Rejecting", "withdraw": "Withdrawing"}[action]
    comment = _text(comment, f"{doing} a request", "--comment")
    info = get_request(store, request_id)
    refused = refusal(store, info, action)
    if refused is not None:
        raise refused
    return info, snapshot.acting_login(store), comment


def _close(s: Session, request_id: int, status: str, who: str, comment: str) -> m.PromotionRequest:
    """Mark the open request ``status`` (one conditional UPDATE: of two deciding at once, the second
    waits and finds it decided)."""
    done = s.execute(update(m.PromotionRequest)
                     .where(m.PromotionRequest.id == request_id, m.PromotionRequest.status == "open")
                     .values(status=status, decided_by=who, decided_at=m.utcnow(), decision_comment=comment)
                     .execution_options(synchronize_session=False))
    row = _row(s, request_id)
    s.refresh(row)
    if done.rowcount == 0:  # type: ignore[attr-defined]
        when = edits._utc_text(row.decided_at)
        raise ModelyardError(f"Request {request_id} is {row.status} already (by {row.decided_by} at {when}).",
                             hint=f"'modelyard model requests {request_id}' shows it.")
    return row


def approve(store: Store, request_id: int, *, comment: str | None, force: bool = False) -> PromotionRequestInfo:
    """Approve the open request and make its move, in one transaction (see the module docstring)."""
    info, who, comment = _may_decide(store, request_id, "approve", comment)
    edits._force_needs_comment(force, comment)
    try:
        with store.write() as s:
            row = _close(s, request_id, "approved", who, comment)
            model, mv = _resolve(s, info.candidate)

            def stale() -> StaleEditError:
                return edits.stale_error(
                    s, model, row.model_revision, since=f"request {row.id} was made",
                    hint=f"Reject it ('modelyard model reject {row.id} --comment \"why\"'); its author can request "
                         "again on what the model is now.")

            if (model.revision or 0) != row.model_revision:
                raise stale()
            doc = snapshot.build(s, store, model, mv, kind="decision", target=row.target,
                                 request=_info(s, row).to_json())
            row.decision_sha256 = snapshot.put(s, store, doc)
            _audit(s, model, "approve_request", version=mv.version, from_value=info.replaces, to_value=info.candidate,
                   comment=comment, details={"request": row.id, "target": row.target, "force": force})
            move = dict(comment=comment, force=force, expected_revision=row.model_revision,
                        details={"request": row.id})
            try:  # another edit may have committed since the check above: the move's own bump says so
                if row.target == CHAMPION:
                    edits.move_alias(s, info.candidate, CHAMPION, **move)  # type: ignore[arg-type]
                else:
                    edits.move_stage(s, store, info.candidate, "Production", **move)  # type: ignore[arg-type]
            except StaleEditError:
                raise stale() from None
            s.flush()
            return _info(s, row)
    except edits._Unchanged:
        raise ModelyardError(f"{info.candidate} is already {info.target}; request {request_id} was left open.",
                             hint=f"Withdraw or reject it ('modelyard model reject {request_id} --comment \"why\"')."
                             ) from None


def reject(store: Store, request_id: int, *, comment: str | None) -> PromotionRequestInfo:
    """Reject the open request, saying why (its decision snapshot is stored; nothing moves)."""
    info, who, comment = _may_decide(store, request_id, "reject", comment)
    with store.write() as s:
        row = _close(s, request_id, "rejected", who, comment)
        model, mv = _resolve(s, info.candidate)
        doc = snapshot.build(s, store, model, mv, kind="decision", target=row.target, request=_info(s, row).to_json())
        row.decision_sha256 = snapshot.put(s, store, doc)
        _audit(s, model, "reject_request", version=mv.version, from_value=info.replaces, to_value=info.candidate,
               comment=comment, details={"request": row.id, "target": row.target})
        s.flush()
        return _info(s, row)


def withdraw(store: Store, request_id: int, *, comment: str | None) -> PromotionRequestInfo:
    """The author takes back their open request."""
    info, who, comment = _may_decide(store, request_id, "withdraw", comment)
    with store.write() as s:
        row = _close(s, request_id, "withdrawn", who, comment)
        model, mv = _resolve(s, info.candidate)
        _audit(s, model, "withdraw_request", version=mv.version, from_value=info.replaces, to_value=info.candidate,
               comment=comment, details={"request": row.id, "target": row.target})
        s.flush()
        return _info(s, row)
