"""Who needs a review to move ``champion`` or the Production stage, and the store setting that asks it of everyone.

On a team store a member who may write but is not an approver (a data scientist) requests a
promotion instead of making it; approvers move directly (their move is audited as before). The
store setting ``review.required`` (``store_meta``; :func:`set_review_required`, admins) asks a
review of everyone, on a single-user store too: then someone other than the author approves.
:mod:`modelyard.core.registry.edits` refuses the direct move with :class:`ReviewRequired` naming
the ``modelyard model request`` command; :mod:`.requests` makes and decides the requests.
"""

from __future__ import annotations

from modelyard.core.common.errors import ModelyardError, ReviewRequired
from modelyard.core.store import Store, records, team
from modelyard.core.store import models as m

META_KEY = "review.required"  # store_meta: "true" when every promotion needs an approved request
AUDIT_ENTITY = "store"  # audit_log.entity_type of the setting's changes (entity_id: META_KEY)


def review_setting(store: Store) -> bool:
    """Whether the store asks a review of every promotion (``review.required``)."""
    with store.session() as s:
        row = s.get(m.StoreMeta, META_KEY)
        return row is not None and row.value == "true"


def review_required(store: Store, name: str | None = None) -> bool:
    """Whether the store's member needs an approved request to move ``champion`` or into Production
    (of the model ``name``; today the rule is the store's, the same for every model).

    A data scientist of a team store, or anyone who may write when the store requires a review.
    False for a viewer, who may do neither (the move is refused naming the approver role)."""
    mem = store.member
    if not mem.may("write"):
        return False
    if mem.team and not mem.may("approve"):
        return True
    return review_setting(store)


def set_review_required(store: Store, required: bool, *, comment: str | None) -> bool:
    """Require (or stop requiring) a review of every promotion on this store (admins; audited
    ``set_review_required``). Returns the setting as it was before."""
    text = (comment or "").strip() if isinstance(comment, str) else ""
    if not text:
        raise ModelyardError("Changing whether promotions need a review needs a short comment for the audit log.",
                             hint="Pass --comment \"why\".")
    team.require(store, "manage", "Changing whether promotions need a review")
    with store.write() as s:
        row = s.get(m.StoreMeta, META_KEY)
        before = row is not None and row.value == "true"
        if row is None:
            s.add(m.StoreMeta(key=META_KEY, value="true" if required else "false"))
        else:
            row.value = "true" if required else "false"
        if before != required:
            records.audit(s, AUDIT_ENTITY, META_KEY, "set_review_required", from_value=str(before).lower(),
                          to_value=str(required).lower(), comment=text)
    return before


def request_command(ref: str, target: str) -> str:
    """The command that requests promoting ``ref`` to ``target``."""
    option = "" if target == "champion" else f" --target {target}"
    return f"modelyard model request {ref}{option} --reason \"why\""


def review_refusal(store: Store, ref: str, target: str, what: str, *, ask: str = "request it") -> ReviewRequired:
    """The refusal of a direct move (``what``: "Moving 'champion'") by a member who needs a review."""
    mem = store.member
    command = request_command(ref, target)
    if mem.team and not mem.may("approve"):
        why = f"you ({mem.login}) are a {mem.role_label} on this store"
        hint = ("An approver approves it in the Registry's Review tab or with 'modelyard model approve ID "
                "--comment \"why\"'.")
    else:
        why = "this store requires a review of every promotion (review.required)"
        hint = ("Someone other than you approves it in the Registry's Review tab or with 'modelyard model approve "
                "ID --comment \"why\"'.")
    return ReviewRequired(f"{what} needs an approved request: {why}; {ask} with '{command}'.",
                          ref=ref, target=target, command=command, role=mem.role, hint=hint)
