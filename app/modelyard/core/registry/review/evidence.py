"""The stored evidence of a model version: one JSON artifact per computation, named by a
``model_evidence`` row (the newest row of a version is its current evidence).

The document's shape (``format`` 1) is described in docs/governance.md ("The evidence
document"); :mod:`modelyard.core.registry.review.compute` makes it. Rows are only ever added, so
a request's snapshot that names an older computation still finds it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.procs import current_user
from modelyard.core.registry.refs import _resolve
from modelyard.core.store import Store
from modelyard.core.store import models as m

EVIDENCE_FORMAT = 1
MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class EvidenceInfo:
    id: int
    version_id: int
    ref: str  # NAME@vN of the version
    champion: str | None  # NAME@vN of the champion it was compared with, None when there was none
    sha256: str
    settings: dict[str, Any]
    created_at: dt.datetime
    created_by: str | None
    payload: dict[str, Any]  # the evidence document itself

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version_id": self.version_id, "ref": self.ref, "champion": self.champion,
                "sha256": self.sha256, "settings": self.settings, "created_by": self.created_by,
                "created_at": self.created_at.isoformat() if self.created_at else None}


def _ref_of(s: Session, version_id: int | None) -> str | None:
    if version_id is None:
        return None
    row = s.execute(select(m.RegisteredModel.name, m.ModelVersion.version)
                    .join(m.ModelVersion, m.ModelVersion.model_id == m.RegisteredModel.id)
                    .where(m.ModelVersion.id == version_id)).first()
    return f"{row[0]}@v{row[1]}" if row is not None else None


def _info(store: Store, s: Session, row: m.ModelEvidence) -> EvidenceInfo:
    payload = store.artifacts.read_json(row.sha256, what="the evidence document")
    return EvidenceInfo(id=row.id, version_id=row.version_id, ref=_ref_of(s, row.version_id) or "?",
                        champion=_ref_of(s, row.champion_version_id), sha256=row.sha256,
                        settings=dict(row.settings or {}), created_at=row.created_at, created_by=row.created_by,
                        payload=payload if isinstance(payload, dict) else {})


def store_evidence(store: Store, version_id: int, payload: dict[str, Any], *, settings: dict[str, Any],
                   champion_version_id: int | None) -> EvidenceInfo:
    """Write ``payload`` as an artifact and add its ``model_evidence`` row, in one transaction."""
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")
    with store.write() as s:
        ref = store.artifacts.put_bytes(data, session=s, media_type=MEDIA_TYPE)
        row = m.ModelEvidence(version_id=version_id, champion_version_id=champion_version_id, sha256=ref.sha256,
                              settings=settings, created_by=current_user())
        s.add(row)
        s.flush()
        return _info(store, s, row)


def latest_evidence(store: Store, ref: str) -> EvidenceInfo | None:
    """The current (newest) evidence of the version ``ref`` names, or None when none was computed."""
    with store.session() as s:
        _, mv = _resolve(s, ref)
        row = s.scalars(select(m.ModelEvidence).where(m.ModelEvidence.version_id == mv.id)
                        .order_by(m.ModelEvidence.id.desc()).limit(1)).first()
        return _info(store, s, row) if row is not None else None


def latest_evidence_of(s: Session, store: Store, version_id: int) -> EvidenceInfo | None:
    """:func:`latest_evidence` inside an open session (the gates read it in their transaction)."""
    row = s.scalars(select(m.ModelEvidence).where(m.ModelEvidence.version_id == version_id)
                    .order_by(m.ModelEvidence.id.desc()).limit(1)).first()
    return _info(store, s, row) if row is not None else None
