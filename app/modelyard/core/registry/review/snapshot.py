"""What a promotion request or decision was made on, as one JSON document (format 1).

::

    {"format": 1, "kind": "request" | "decision" | "current", "at": iso, "by": login,
     "candidate": "churn@v3", "target": "champion" | "Production", "champion": "churn@v2" | None,
     "request": PromotionRequestInfo.to_json() | None,
     "gates": the model's gates as stored, "gate_report": GateReport.to_json(),
     "card": {the four review fields}, "card_revision": 3,
     "evidence": the evidence document | None, "evidence_sha256": sha | None}

A request stores one (kind "request") and each decision another (kind "decision", what the
approver saw when deciding), as JSON artifacts written in the same transaction as the request's
row, so opening an old decision shows exactly its numbers and thresholds even after the gates,
the card or the evidence changed (:func:`modelyard.core.registry.review.requests.request_snapshot`).
:func:`current_snapshot` is the same document for a version as it stands now (kind "current").
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.procs import current_user
from modelyard.core.registry.cards import REVIEW_FIELDS
from modelyard.core.registry.gates import _check
from modelyard.core.registry.refs import CHAMPION, ENTITY, _resolve
from modelyard.core.registry.review.evidence import MEDIA_TYPE, latest_evidence_of
from modelyard.core.store import Store, team
from modelyard.core.store import models as m

SNAPSHOT_FORMAT = 1
KINDS = ("request", "decision", "current")


def acting_login(store: Store) -> str:
    """Who acts on ``store``, as its audit entries name them: the member's login on a team store (an
    admin's tool may name another, ``MODELYARD_USER``), else the current user."""
    return (team.session_actor(store.member) if store.member.team else None) or current_user()


def card_revision(s: Session, model: m.RegisteredModel, mv: m.ModelVersion) -> int:
    """The revision of the card's texts: ``notes_revision`` when the card keeps one, else how many
    times they were edited (``edit_card`` events of the version)."""
    stored = (mv.card or {}).get("notes_revision")
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    events = s.scalars(select(m.AuditEvent.details).where(
        m.AuditEvent.entity_type == ENTITY, m.AuditEvent.entity_id == str(model.id),
        m.AuditEvent.action == "edit_card")).all()
    return sum(1 for d in events if isinstance(d, dict) and d.get("version") == mv.version)


def review_fields(mv: m.ModelVersion) -> dict[str, str]:
    """The card's four review fields as stored (empty text where unset)."""
    notes = (mv.card or {}).get("notes")
    notes = notes if isinstance(notes, dict) else {}
    return {key: str(notes.get(key) or "") for key in REVIEW_FIELDS}


def champion_of(s: Session, model: m.RegisteredModel) -> m.ModelVersion | None:
    row = s.get(m.ModelAlias, (model.id, CHAMPION))
    return s.get(m.ModelVersion, row.version_id) if row is not None else None


def build(s: Session, store: Store, model: m.RegisteredModel, mv: m.ModelVersion, *, kind: str, target: str,
          request: dict[str, Any] | None = None) -> dict[str, Any]:
    """The snapshot document of ``mv`` of ``model`` as it stands in ``s`` now."""
    assert kind in KINDS
    champ = champion_of(s, model)
    evidence = latest_evidence_of(s, store, mv.id)
    return {"format": SNAPSHOT_FORMAT, "kind": kind, "at": dt.datetime.now(dt.UTC).isoformat(),
            "by": acting_login(store), "candidate": f"{model.name}@v{mv.version}", "target": target,
            "champion": f"{model.name}@v{champ.version}" if champ is not None else None, "request": request,
            "gates": dict(model.gates or {}), "gate_report": _check(s, model, mv).to_json(),
            "card": review_fields(mv), "card_revision": card_revision(s, model, mv),
            "evidence": evidence.payload if evidence is not None else None,
            "evidence_sha256": evidence.sha256 if evidence is not None else None}


def put(s: Session, store: Store, doc: dict[str, Any]) -> str:
    """Store the snapshot ``doc`` as a JSON artifact in the write transaction ``s``; its sha256."""
    data = json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    return store.artifacts.put_bytes(data, session=s, media_type=MEDIA_TYPE).sha256


def read(store: Store, sha256: str | None) -> dict[str, Any] | None:
    """A stored snapshot document (None when there is none)."""
    if not sha256:
        return None
    doc = store.artifacts.read_json(sha256, what="the snapshot of a promotion request")
    return doc if isinstance(doc, dict) else None


def current_snapshot(store: Store, ref: str, target: str = "champion") -> dict[str, Any]:
    """What the Review tab shows for a version without a request: its snapshot as of now (kind "current")."""
    with store.session() as s:
        model, mv = _resolve(s, ref)
        return build(s, store, model, mv, kind="current", target=target)

