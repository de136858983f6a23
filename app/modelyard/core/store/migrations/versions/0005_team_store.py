"""team store: a registered model's revision (stale registry edits are refused) and the change log
other windows on the store follow (live updates).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registered_models") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))
    op.create_table("change_log",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("topics", sa.String(length=200), nullable=False),
    sa.Column("ids", sa.JSON(), nullable=True),
    sa.Column("actor", sa.String(length=200), nullable=True),
    sa.Column("origin", sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_change_log")),
    )


def downgrade() -> None:
    op.drop_table("change_log")
    with op.batch_alter_table("registered_models") as batch:
        batch.drop_column("revision")
