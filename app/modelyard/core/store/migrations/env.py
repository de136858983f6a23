"""Alembic environment for Modelyard stores. Always run through modelyard.core.store.migrate."""

from __future__ import annotations

from alembic import context
from modelyard.core.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline/autogenerate use by developers
    raise RuntimeError("Run Modelyard migrations through modelyard.core.store.migrate.upgrade().")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
