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


# A frozen copy of models.RUNS_TABLE_CACHE_PG_DDL as it was at this revision (a later change to the
# models is a later migration; tests/core/experiments/test_runquery.py checks new and upgraded
# server stores get the same triggers).
_MARK_FUNCTION = """CREATE OR REPLACE FUNCTION modelyard_runs_table_cache_mark() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_ARGV[0] = 'id' THEN
    INSERT INTO runs_table_cache_marks (block, xid)
      SELECT DISTINCT id >> 12, pg_current_xact_id()::text::bigint FROM changed ON CONFLICT DO NOTHING;
  ELSE
    INSERT INTO runs_table_cache_marks (block, xid)
      SELECT DISTINCT run_id >> 12, pg_current_xact_id()::text::bigint FROM changed ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$fn$"""


def _pg_ddl() -> list[str]:
    out = [_MARK_FUNCTION]
    for table, column in (("runs", "id"), ("params", "run_id"), ("latest_metrics", "run_id"), ("tags", "run_id")):
        for event, rows in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            name = f"trg_runs_table_cache_{table}_{event.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            out.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {rows} TABLE AS changed "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION modelyard_runs_table_cache_mark('{column}')")
    return out


_PG_DDL = tuple(_pg_ddl())


def upgrade() -> None:
    op.add_column("runs_table_cache", sa.Column("snapshot", sa.Text(), nullable=True))
    op.create_table("runs_table_cache_marks",
    sa.Column("block", sa.Integer(), autoincrement=False, nullable=False),
    sa.Column("xid", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint("block", "xid", name=op.f("pk_runs_table_cache_marks")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DELETE FROM runs_table_cache")  # never used on a server before: nothing in it is known valid
    for ddl in _PG_DDL:
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
