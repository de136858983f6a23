"""prediction log: one row per file of a served model's prediction log (Parquet segments of logged
requests, and files of labels joined later by key), see core/serving/predlog.py.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("prediction_log_files",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("model_id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=20), nullable=False),
    sa.Column("path", sa.String(length=500), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("first_at", sa.DateTime(), nullable=True),
    sa.Column("last_at", sa.DateTime(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"],
                            name=op.f("fk_prediction_log_files_model_id_registered_models"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log_files")),
    )
    op.create_index("ix_prediction_log_files_model", "prediction_log_files", ["model_id", "kind", "first_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_prediction_log_files_model", table_name="prediction_log_files")
    op.drop_table("prediction_log_files")
