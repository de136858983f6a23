"""runs_table_cache on PostgreSQL: the marks writers add (runs_table_cache_marks), the snapshot a
stored block was read in (runs_table_cache.snapshot), and the triggers adding the marks (see
``modelyard.core.store.models.RunsTableCache``). SQLite gets the column and the table, unused (its
triggers from 0003 stay). Nothing is backfilled: a block with no row was never written to since
the triggers exist, and the first full read of the runs table stores it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs_table_cache", sa.Column("snapshot", sa.Text(), nullable=True))
    op.create_table("runs_table_cache_marks",
    sa.Column("block", sa.Integer(), autoincrement=False, nullable=False),
    sa.Column("xid", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint("block", "xid", name=op.f("pk_runs_table_cache_marks")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from modelyard.core.store.models import RUNS_TABLE_CACHE_PG_DDL

    op.execute("DELETE FROM runs_table_cache")  # never used on a server before: nothing in it is known valid
    for ddl in RUNS_TABLE_CACHE_PG_DDL:
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("runs", "params", "latest_metrics", "tags"):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS trg_runs_table_cache_{table}_{event} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS modelyard_runs_table_cache_mark()")
        op.execute("DELETE FROM runs_table_cache")
    op.drop_table("runs_table_cache_marks")
    with op.batch_alter_table("runs_table_cache") as batch:
        batch.drop_column("snapshot")
