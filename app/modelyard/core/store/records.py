"""The store boundary's record writers: the one place that builds audit entries and lineage links.

Every state change of a registered thing is an ``audit_log`` row and every recorded arrow of the
data flow is a ``lineage_edges`` row. Services never construct those rows themselves; they call
:func:`audit` and :func:`link` inside their write transaction, so who/when is filled the same
way everywhere and the team store's row versions and change notifications have one place to
hook into. ``tests/test_architecture.py`` fails when an ``AuditEvent(`` or ``LineageEdge(`` is
built anywhere else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from modelyard.core.common.procs import current_user
from modelyard.core.store import models as m

# Session.info key of the actor a write session records (a team store's database login; else the
# current user). On PostgreSQL the database writes the login into audit_log.actor for every member
# but admins anyway (core/store/roles_sql.py).
ACTOR_KEY = "modelyard_actor"
# Session.info key of the Store that opened the session (code given only a session, like the gates
# reading a version's stored evidence, finds the artifacts through it)
STORE_KEY = "modelyard_store"


def audit(s: Session, entity_type: str, entity_id: Any, action: str, *, from_value: str | None = None,
          to_value: str | None = None, comment: str | None = None, details: dict[str, Any] | None = None,
          actor: str | None = None) -> m.AuditEvent:
    """Add one audit entry to the transaction ``s``: who (``actor``, else the session's member on a team
    store, else the current user) did ``action`` to ``entity_type``/``entity_id``, from what, to what,
    and why."""
    row = m.AuditEvent(actor=actor or s.info.get(ACTOR_KEY) or current_user(), entity_type=entity_type,
                       entity_id=str(entity_id), action=action, from_value=from_value, to_value=to_value,
                       comment=comment, details=details)
    s.add(row)
    return row


def link(s: Session, src_type: str, src_id: Any, dst_type: str, dst_id: Any, relation: str,
         details: dict[str, Any] | None = None) -> m.LineageEdge:
    """Add one recorded lineage arrow ``src -> dst`` (``relation`` says what the arrow means)."""
    row = m.LineageEdge(src_type=src_type, src_id=str(src_id), dst_type=dst_type, dst_id=str(dst_id),
                        relation=relation, details=details)
    s.add(row)
    return row
