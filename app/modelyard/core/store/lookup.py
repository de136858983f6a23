"""The store boundary's look-ups: find one row by name or id, or fail with the one "not found" error.

Services never write ``select(...).where(X.name == name).first()`` plus their own
:class:`~modelyard.core.common.errors.NotFoundError`; they call these inside their session, so
the message and its hint are the same wherever a thing is missing (the CLI prints them as they
are). Parsing a reference (``churn@v3``, ``churn@champion``) is the registry's business
(:func:`modelyard.core.registry.versions.parse_ref`); what reaches here is a checked name or an id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import NotFoundError
from modelyard.core.store import models as m


def find_model(s: Session, name: str) -> m.RegisteredModel | None:
    """The registered model called ``name``, or None (for get-or-create)."""
    return s.scalars(select(m.RegisteredModel).where(m.RegisteredModel.name == name)).first()


def model_by_name(s: Session, name: str) -> m.RegisteredModel:
    """The registered model called ``name``; NotFoundError when there is none."""
    model = find_model(s, name)
    if model is None:
        raise NotFoundError(f"There is no registered model {name!r}.",
                            hint="'modelyard model list' shows the registered models.")
    return model


def _by_id(s: Session, table: Any, key: Any, missing: str, hint: str | None = None) -> Any:
    row = s.get(table, int(key))
    if row is None:
        raise NotFoundError(missing, hint=hint)
    return row


def model_version_by_id(s: Session, version_id: Any) -> m.ModelVersion:
    """The model version with primary key ``version_id``; NotFoundError when there is none."""
    return _by_id(s, m.ModelVersion, version_id, f"There is no model version with id {version_id}.")


def drift_check_by_id(s: Session, check_id: Any) -> m.MonitoringCheck:
    """The drift check with id ``check_id``; NotFoundError when there is none."""
    return _by_id(s, m.MonitoringCheck, check_id, f"There is no drift check {check_id}.",
                  "'modelyard monitor list NAME' lists a model's checks.")


def dataset_version_by_id(s: Session, version_id: Any) -> m.DatasetVersion:
    """The dataset version with primary key ``version_id``; NotFoundError when there is none."""
    return _by_id(s, m.DatasetVersion, version_id, f"There is no dataset version with id {version_id}.",
                  "'modelyard dataset versions NAME' lists a dataset's versions.")
