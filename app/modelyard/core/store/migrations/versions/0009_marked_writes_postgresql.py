"""PostgreSQL: the runs-table-cache marking triggers and the metrics' run check do not fire for
a statement that sets ``modelyard.marked`` (transaction-local): the tracking API's one-statement
writes add their mark themselves, and their points' run is checked by the run's row they update
and latest_metrics' foreign key (see ``modelyard.core.store.models.PG_MARKED_SETTING``; a firing
statement-level trigger cost the server ~50 us, five per tracked run). Every other write fires
them as before. SQLite: nothing changes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copies of the trigger definitions as they are at this revision (a later change to the
# models is a later migration; tests/core/store/test_store.py compares new and upgraded stores).
_WHEN = "WHEN (current_setting('modelyard.marked', true) IS DISTINCT FROM 'on')"
_CACHED = (("runs", "id"), ("params", "run_id"), ("latest_metrics", "run_id"), ("tags", "run_id"))
_EVENTS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))


def _ddl(when: str) -> list[str]:
    out = []
    for table, column in _CACHED:
        for event, rows in _EVENTS:
            name = f"trg_runs_table_cache_{table}_{event.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            out.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {rows} TABLE AS changed "
                       f"FOR EACH STATEMENT {when}EXECUTE FUNCTION modelyard_runs_table_cache_mark('{column}')")
    out.append("DROP TRIGGER IF EXISTS trg_metrics_run_check_insert ON metrics")
    out.append("CREATE TRIGGER trg_metrics_run_check_insert AFTER INSERT ON metrics REFERENCING NEW TABLE AS changed "
               f"FOR EACH STATEMENT {when}EXECUTE FUNCTION modelyard_metrics_run_check()")
    return out


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in _ddl(_WHEN + " "):
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in _ddl(""):
        op.execute(ddl)
