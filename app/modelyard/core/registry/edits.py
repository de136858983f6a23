"""Edits of a registered model's registry state: its aliases, its versions' stages and its gates.

Every edit is one transaction with its audit event (see :mod:`modelyard.core.registry.versions`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.registry.gates import _enforce, _validate_gates
from modelyard.core.registry.refs import (
    CHAMPION,
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
    parse_ref,
)
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

# =========================================================================== gates


def set_gates(store: Store, name: str, gates: dict[str, Any] | None, *, comment: str | None) -> ModelInfo:
    """Replace the model's gates (``{}`` or None removes them)."""
    clean = _validate_gates(gates)
    comment = _need_comment(comment, "Changing the gates")
    with store.write() as s:
        model = lookup.model_by_name(s, check_name(name))
        old = model.gates or {}
        model.gates = clean or None
        _audit(s, model, "set_gates", from_value=json.dumps(old, sort_keys=True) if old else None,
               to_value=json.dumps(clean, sort_keys=True) if clean else None, comment=comment)
        s.flush()
        return _model_info(s, model)

# =========================================================================== aliases and stages


def set_alias(store: Store, ref: str, alias: str, *, comment: str | None, force: bool = False) -> ModelVersionInfo:
    """Point ``alias`` at the version ``ref`` (moving it off the version it was on).

    Making a version ``champion`` passes the model's gates first (GateFailed, exit code 3,
    naming every reason); ``force`` overrides them and records a ``gate_override`` event.
    """
    alias = check_alias(alias)
    if force and not (isinstance(comment, str) and comment.strip()):
        raise ModelyardError("--force needs a --comment saying why the gates are overridden.",
                             hint="Pass --comment \"why\" with --force; the override is audited.")
    comment = _need_comment(comment, f"Setting the alias {alias!r}")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        row = s.get(m.ModelAlias, (model.id, alias))
        if row is not None and row.version_id == mv.id:
            return _version_info(s, model, mv)
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
               comment=comment, details={"alias": alias})
        s.flush()
        return _version_info(s, model, mv)


def remove_alias(store: Store, name: str, alias: str, *, comment: str | None) -> ModelInfo:
    """Take ``alias`` off whichever version of ``name`` has it."""
    name, _, _ = parse_ref(name)
    comment = _need_comment(comment, f"Removing the alias {alias!r}")
    with store.write() as s:
        model = lookup.model_by_name(s, name)
        row = s.get(m.ModelAlias, (model.id, (alias or "").strip()))
        if row is None:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.")
        number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
        s.delete(row)
        _audit(s, model, "remove_alias", version=number, from_value=f"{name}@v{number}", to_value=None,
               comment=comment, details={"alias": row.alias})
        s.flush()
        return _model_info(s, model)


def set_stage(store: Store, ref: str, stage: str, *, comment: str | None, force: bool = False) -> ModelVersionInfo:
    """Move a version to a lifecycle stage (None, Staging, Production, Archived).

    Moving to Production passes the model's gates first (as :func:`set_alias` for champion).
    """
    match = [st for st in STAGES if st.lower() == (stage or "").strip().lower()]
    if not match:
        raise ModelyardError(f"{stage!r} is not a stage.", hint=f"Choose one of {', '.join(STAGES)}.")
    stage = match[0]
    if force and not (isinstance(comment, str) and comment.strip()):
        raise ModelyardError("--force needs a --comment saying why the gates are overridden.",
                             hint="Pass --comment \"why\" with --force; the override is audited.")
    comment = _need_comment(comment, f"Moving a version to {stage}")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        if mv.stage == stage:
            return _version_info(s, model, mv)
        if stage == "Production":
            _enforce(s, model, mv, f"{model.name}@v{mv.version} to Production", force=force, comment=comment)
        old = mv.stage
        mv.stage = stage
        _audit(s, model, "set_stage", version=mv.version, from_value=old, to_value=stage, comment=comment)
        s.flush()
        return _version_info(s, model, mv)
