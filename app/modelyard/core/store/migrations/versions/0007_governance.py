"""governance: promotion requests (reviewed moves of champion / Production, with a snapshot of what
each was decided on) and the evidence computed for a model version.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("model_evidence",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("version_id", sa.Integer(), nullable=False),
    sa.Column("champion_version_id", sa.Integer(), nullable=True),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("settings", sa.JSON(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], name=op.f("fk_model_evidence_version_id_model_versions"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["champion_version_id"], ["model_versions.id"], name=op.f("fk_model_evidence_champion_version_id_model_versions"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["sha256"], ["artifacts.sha256"], name=op.f("fk_model_evidence_sha256_artifacts")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_model_evidence")),
    )
    op.create_index("ix_model_evidence_version_id", "model_evidence", ["version_id", "id"], unique=False)
    op.create_table("promotion_requests",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("model_id", sa.Integer(), nullable=False),
    sa.Column("version_id", sa.Integer(), nullable=False),
    sa.Column("target", sa.String(length=100), nullable=False),
    sa.Column("replaces_version_id", sa.Integer(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("requested_by", sa.String(length=200), nullable=False),
    sa.Column("requested_at", sa.DateTime(), nullable=False),
    sa.Column("model_revision", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=20), nullable=False),
    sa.Column("decided_by", sa.String(length=200), nullable=True),
    sa.Column("decided_at", sa.DateTime(), nullable=True),
    sa.Column("decision_comment", sa.Text(), nullable=True),
    sa.Column("snapshot_sha256", sa.String(length=64), nullable=True),
    sa.Column("decision_sha256", sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], name=op.f("fk_promotion_requests_model_id_registered_models"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], name=op.f("fk_promotion_requests_version_id_model_versions"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["replaces_version_id"], ["model_versions.id"], name=op.f("fk_promotion_requests_replaces_version_id_model_versions"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["snapshot_sha256"], ["artifacts.sha256"], name=op.f("fk_promotion_requests_snapshot_sha256_artifacts")),
    sa.ForeignKeyConstraint(["decision_sha256"], ["artifacts.sha256"], name=op.f("fk_promotion_requests_decision_sha256_artifacts")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_requests")),
    )
    op.create_index("ix_promotion_requests_model_status", "promotion_requests", ["model_id", "status"], unique=False)
    op.create_index("ix_promotion_requests_status", "promotion_requests", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_promotion_requests_status", table_name="promotion_requests")
    op.drop_index("ix_promotion_requests_model_status", table_name="promotion_requests")
    op.drop_table("promotion_requests")
    op.drop_index("ix_model_evidence_version_id", table_name="model_evidence")
    op.drop_table("model_evidence")
