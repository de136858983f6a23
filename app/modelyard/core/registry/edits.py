"""Edits of a registered model's registry state: its aliases, its versions' stages and its gates.

Every edit is one transaction with its audit event (see :mod:`modelyard.core.registry.versions`).

Optimistic revisions: ``registered_models.revision`` counts the edits of a model's registry
state. Each edit first bumps it with one atomic ``UPDATE registered_models SET revision =
revision + 1 WHERE id = :id [AND revision = :expected]``, before it reads anything it decides on,
so on PostgreSQL two members editing one model at once queue on that row's lock and the second
reads what the first wrote (READ COMMITTED: each statement sees what was committed before it);
on SQLite the write transaction already holds the database's one write lock. An edit given the
``expected_revision`` it was made from (what the member saw: ``ModelInfo.revision``,
``ModelVersionInfo.model_revision``) is refused with :class:`StaleEditError` when the model moved
past it, naming who changed it, what and when (from the audit log), and nothing is written. An
edit that changes nothing (the alias is already there) leaves the revision as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError, NotFoundError, StaleEditError
from modelyard.core.registry.gates import _enforce, _validate_gates
from modelyard.core.registry.refs import (
    CHAMPION,
    ENTITY,
    STAGES,
    ModelInfo,
    ModelVersionInfo,
    _audit,
    _model_info,
    _need_comment,
    _resolve,
    _version_info,
    check_alias,
    check_name,
    model_of,
    parse_ref,
)
from modelyard.core.registry.review.policy import review_refusal, review_required
from modelyard.core.store import Store, team
from modelyard.core.store import models as m

# the audit actions of the edits that bump a model's revision (their details carry the revision they made)
REVISION_ACTIONS = ("set_alias", "remove_alias", "set_stage", "set_gates")


class _Unchanged(Exception):
    """Raised inside an edit's transaction that changes nothing: it rolls back the revision bump."""

    def __init__(self, result: Any) -> None:
        super().__init__("unchanged")
        self.result = result


# =========================================================================== revisions


def bump_revision(s: Session, model: m.RegisteredModel, expected: int | None = None) -> int:
    """Take the model's next revision (the first statement of an edit; see the module docstring)
    and reload the model's row; StaleEditError when ``expected`` is given and the model is past it."""
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 0):
        raise ModelyardError(f"The expected revision must be a whole number of 0 or more, not {expected!r}.",
                             hint=f"'modelyard model show {model.name}' prints the model's revision.")
    stmt = update(m.RegisteredModel).where(m.RegisteredModel.id == model.id)
    if expected is not None:
        stmt = stmt.where(m.RegisteredModel.revision == expected)
    result = s.execute(stmt.values(revision=m.RegisteredModel.revision + 1)
                       .execution_options(synchronize_session=False))
    s.refresh(model)  # what the edit decides on is read after the lock: another member's edit is in it
    if result.rowcount == 0:  # type: ignore[attr-defined]
        assert expected is not None
        raise stale_error(s, model, expected)
    return int(model.revision)


def _utc_text(at: dt.datetime | None) -> str:
    if at is None:
        return "an unknown time"
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def describe_edit(event: m.AuditEvent) -> str:
    """What an edit did, as a member reads it: ``moved champion to churn@v5``."""
    details = event.details or {}
    alias = details.get("alias")
    if event.action == "set_alias":
        return f"moved {alias} to {event.to_value}" if event.from_value else f"put {alias} on {event.to_value}"
    if event.action == "remove_alias":
        return f"removed {alias} from {event.from_value}"
    if event.action == "set_stage":
        name = event.to_value or "None"
        version = details.get("version")
        return f"moved v{version} to {name}" if version is not None else f"changed a stage to {name}"
    if event.action == "set_gates":
        return "changed the gates" if event.to_value else "removed the gates"
    return event.action.replace("_", " ")


def stale_error(s: Session, model: m.RegisteredModel, expected: int, *, since: str | None = None,
                hint: str | None = None) -> StaleEditError:
    """The refusal of an edit made from revision ``expected`` of ``model``: who changed it since,
    what and when (the newest edit in the audit log), and how to catch up. ``since``: what was
    made from that revision (default "you loaded NAME"); ``hint``: what to do instead."""
    current = int(model.revision or 0)
    event = s.scalars(select(m.AuditEvent).where(
        m.AuditEvent.entity_type == ENTITY, m.AuditEvent.entity_id == str(model.id),
        m.AuditEvent.action.in_(REVISION_ACTIONS)).order_by(m.AuditEvent.id.desc()).limit(1)).first()
    hint = hint or (f"Reload {model.name} to see it, then decide again ('modelyard model show {model.name}' prints "
                    f"its revision, {current}).")
    if expected > current or event is None:
        return StaleEditError(
            f"Not changed: {model.name} is at revision {current}, not {expected}; it changed after "
            f"{since or 'you loaded it'}.",
            who=None, when=None, revision=current, hint=hint)
    more = current - expected - 1
    also = f" (and {more} more {'edit' if more == 1 else 'edits'})" if more > 0 else ""
    return StaleEditError(
        f"Not changed: {event.actor} {describe_edit(event)} at {_utc_text(event.at)}{also}, after "
        f"{since or f'you loaded {model.name}'}.",
        who=event.actor, when=event.at.isoformat() if event.at is not None else None, revision=current, hint=hint)


def _write_edit(store: Store, edit: Any) -> Any:
    """Run ``edit(s)`` in one write transaction; an edit that changes nothing rolls back (its
    revision bump too) and returns what it would have."""
    try:
        with store.write() as s:
            return edit(s)
    except _Unchanged as unchanged:
        return unchanged.result


# =========================================================================== gates


def set_gates(store: Store, name: str, gates: dict[str, Any] | None, *, comment: str | None,
              expected_revision: int | None = None) -> ModelInfo:
    """Replace the model's gates (``{}`` or None removes them)."""
    clean = _validate_gates(gates)
    comment = _need_comment(comment, "Changing the gates")
    team.require(store, "approve", "Changing a model's gates")
    name = check_name(name)

    def edit(s: Session) -> ModelInfo:
        model = model_of(s, name)
        revision = bump_revision(s, model, expected_revision)
        old = model.gates or {}
        model.gates = clean or None
        _audit(s, model, "set_gates", from_value=json.dumps(old, sort_keys=True) if old else None,
               to_value=json.dumps(clean, sort_keys=True) if clean else None, comment=comment,
               details={"revision": revision})
        s.flush()
        return _model_info(s, model)

    return _write_edit(store, edit)


# =========================================================================== aliases and stages


def _force_needs_comment(force: bool, comment: str | None) -> None:
    if force and not (isinstance(comment, str) and comment.strip()):
        raise ModelyardError("--force needs a --comment saying why the gates are overridden.",
                             hint="Pass --comment \"why\" with --force; the override is audited.")


def set_alias(store: Store, ref: str, alias: str, *, comment: str | None, force: bool = False,
              expected_revision: int | None = None) -> ModelVersionInfo:
    """Point ``alias`` at the version ``ref`` (moving it off the version it was on).

    Making a version ``champion`` passes the model's gates first (GateFailed, exit code 3,
    naming every reason); ``force`` overrides them and records a ``gate_override`` event.
    ``expected_revision``: the model's revision the change was decided on (StaleEditError if it moved).
    A member who needs a review (:func:`~modelyard.core.registry.review.policy.review_required`)
    is refused with :class:`~modelyard.core.common.errors.ReviewRequired` naming the request command.
    """
    alias = check_alias(alias)
    if alias == CHAMPION:
        if review_required(store):
            raise review_refusal(store, (ref or "").strip(), CHAMPION, "Moving 'champion'")
        team.require(store, "approve", "Moving 'champion'")
    _force_needs_comment(force, comment)
    comment = _need_comment(comment, f"Setting the alias {alias!r}")
    return _write_edit(store, lambda s: move_alias(s, ref, alias, comment=comment, force=force,
                                                   expected_revision=expected_revision))


def move_alias(s: Session, ref: str, alias: str, *, comment: str, force: bool = False,
               expected_revision: int | None = None, details: dict[str, Any] | None = None) -> ModelVersionInfo:
    """:func:`set_alias`'s edit inside the write transaction ``s`` (an approved request makes the
    same move in its own transaction: ``details`` go into the audit event, e.g. ``{"request": 3}``).
    Who may is checked by the caller; raises ``_Unchanged`` when the alias is already there."""
    revision = bump_revision(s, model_of(s, ref), expected_revision)
    model, mv = _resolve(s, ref)  # after the lock: NAME@ALIAS is where the last edit put it
    row = s.get(m.ModelAlias, (model.id, alias))
    if row is not None and row.version_id == mv.id:
        raise _Unchanged(replace(_version_info(s, model, mv), model_revision=revision - 1))  # bump rolls back
    if alias == CHAMPION:
        _enforce(s, model, mv, f"{model.name}@v{mv.version} as {alias}", force=force, comment=comment)
    old_ref = None
    if row is None:
        s.add(m.ModelAlias(model_id=model.id, alias=alias, version_id=mv.id))
    else:
        old_number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
        old_ref = f"{model.name}@v{old_number}"
        row.version_id, row.updated_at = mv.id, m.utcnow()
    _audit(s, model, "set_alias", version=mv.version, from_value=old_ref, to_value=f"{model.name}@v{mv.version}",
           comment=comment, details={"alias": alias, "revision": revision, **(details or {})})
    s.flush()
    return _version_info(s, model, mv)


def remove_alias(store: Store, name: str, alias: str, *, comment: str | None,
                 expected_revision: int | None = None) -> ModelInfo:
    """Take ``alias`` off whichever version of ``name`` has it."""
    name, _, _ = parse_ref(name)
    comment = _need_comment(comment, f"Removing the alias {alias!r}")
    if (alias or "").strip() == CHAMPION:
        if review_required(store):
            raise review_refusal(store, f"{name}@vN", CHAMPION, f"Removing 'champion' from {name}",
                                 ask="request the version that replaces it")
        team.require(store, "approve", "Moving 'champion'")

    def edit(s: Session) -> ModelInfo:
        model = model_of(s, name)
        revision = bump_revision(s, model, expected_revision)
        row = s.get(m.ModelAlias, (model.id, (alias or "").strip()))
        if row is None:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.",
                                hint=f"'modelyard model show {name}' lists its aliases.")
        number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
        s.delete(row)
        _audit(s, model, "remove_alias", version=number, from_value=f"{name}@v{number}", to_value=None,
               comment=comment, details={"alias": row.alias, "revision": revision})
        s.flush()
        return _model_info(s, model)

    return _write_edit(store, edit)


def _stage_named(stage: str) -> str:
    match = [st for st in STAGES if st.lower() == (stage or "").strip().lower()]
    if not match:
        raise ModelyardError(f"{stage!r} is not a stage.", hint=f"Choose one of {', '.join(STAGES)}.")
    return match[0]


def set_stage(store: Store, ref: str, stage: str, *, comment: str | None, force: bool = False,
              expected_revision: int | None = None) -> ModelVersionInfo:
    """Move a version to a lifecycle stage (None, Staging, Production, Archived).

    Moving to Production passes the model's gates first (as :func:`set_alias` for champion), and
    needs an approved request from a member who needs a review (:class:`ReviewRequired`).
    """
    stage = _stage_named(stage)
    _force_needs_comment(force, comment)
    comment = _need_comment(comment, f"Moving a version to {stage}")
    review = stage == "Production" and review_required(store)

    def edit(s: Session) -> ModelVersionInfo:
        return move_stage(s, store, ref, stage, comment=comment, force=force, expected_revision=expected_revision,
                          review=review)

    return _write_edit(store, edit)


def move_stage(s: Session, store: Store, ref: str, stage: str, *, comment: str, force: bool = False,
               expected_revision: int | None = None, details: dict[str, Any] | None = None,
               review: bool = False) -> ModelVersionInfo:
    """:func:`set_stage`'s edit inside the write transaction ``s`` (see :func:`move_alias`);
    ``review``: refuse a move into Production with :class:`ReviewRequired` (the member needs a review)."""
    stage = _stage_named(stage)
    revision = bump_revision(s, model_of(s, ref), expected_revision)
    model, mv = _resolve(s, ref)
    if mv.stage == stage:
        raise _Unchanged(replace(_version_info(s, model, mv), model_revision=revision - 1))
    if review:
        raise review_refusal(store, (ref or "").strip(), "Production", "Moving a version into Production")
    if "Production" in (stage, mv.stage):
        team.require(store, "approve", f"Moving a version {'into' if stage == 'Production' else 'out of'} "
                                       "Production")
    if stage == "Production":
        _enforce(s, model, mv, f"{model.name}@v{mv.version} to Production", force=force, comment=comment)
    old = mv.stage
    mv.stage = stage
    _audit(s, model, "set_stage", version=mv.version, from_value=old, to_value=stage, comment=comment,
           details={"revision": revision, **(details or {})})
    s.flush()
    return _version_info(s, model, mv)
