"""runs_table_cache: columnar snapshots of the runs table per block of 4,096 runs, kept valid by
triggers; and an index on runs.start_time (the newest runs of all experiments, the runs table's
first page, without sorting every run).

On SQLite, triggers on runs, params, latest_metrics and tags bump a block's generation and clear
its snapshot in the same transaction as any change to one of its runs (see
``modelyard.core.store.models.RunsTableCache``). Other backends get the table but no triggers,
and never use it. Nothing is backfilled: the first full read of the runs table fills it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (("runs", "id"), ("params", "run_id"), ("latest_metrics", "run_id"), ("tags", "run_id"))
_EVENTS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))


def upgrade() -> None:
    op.create_table('runs_table_cache',
    sa.Column('block', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('block', name=op.f('pk_runs_table_cache'))
    )
    op.create_index('ix_runs_start_time', 'runs', ['start_time'], unique=False)  # before the triggers
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in _TABLES:
        for event, row in _EVENTS:
            op.execute(
                f"CREATE TRIGGER trg_runs_table_cache_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN INSERT INTO runs_table_cache (block, generation, data) "
                f"VALUES ({row}.{column} >> 12, 1, NULL) "
                f"ON CONFLICT (block) DO UPDATE SET generation = generation + 1, data = NULL; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, _column in _TABLES:
            for event, _row in _EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS trg_runs_table_cache_{table}_{event.lower()}")
    op.drop_index('ix_runs_start_time', table_name='runs')
    op.drop_table('runs_table_cache')
