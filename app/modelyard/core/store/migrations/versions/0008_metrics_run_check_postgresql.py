"""metrics.run_id on PostgreSQL: checked once per statement by a trigger instead of per row by the
foreign key (see ``modelyard.core.store.models.METRICS_RUN_CHECK_PG_DDL``: the per-row check was
more than half of the server's time for a batch of points); the points of deleted runs are
deleted by a trigger on runs. SQLite keeps its foreign key: nothing changes there.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A frozen copy of models.METRICS_RUN_CHECK_PG_DDL as it was at this revision (a later change to
# the models is a later migration).
_PG_DDL = (
    "ALTER TABLE metrics DROP CONSTRAINT IF EXISTS fk_metrics_run_id_runs",
    """CREATE OR REPLACE FUNCTION modelyard_metrics_run_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  rid bigint;
BEGIN
  FOR rid IN SELECT DISTINCT run_id FROM changed LOOP
    PERFORM 1 FROM runs WHERE id = rid FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_metrics_run_id_runs', TABLE = 'metrics',
        MESSAGE = 'insert or update on table "metrics" violates foreign key constraint "fk_metrics_run_id_runs"',
        DETAIL = format('Key (run_id)=(%s) is not present in table "runs".', rid);
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$""",
    """CREATE OR REPLACE FUNCTION modelyard_metrics_of_deleted_runs() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM metrics WHERE run_id IN (SELECT id FROM gone);
  RETURN NULL;
END
$fn$""",
    "DROP TRIGGER IF EXISTS trg_metrics_run_check_insert ON metrics",
    "CREATE TRIGGER trg_metrics_run_check_insert AFTER INSERT ON metrics REFERENCING NEW TABLE AS changed "
    "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_metrics_run_check()",
    "DROP TRIGGER IF EXISTS trg_metrics_run_check_update ON metrics",
    "CREATE TRIGGER trg_metrics_run_check_update AFTER UPDATE ON metrics REFERENCING NEW TABLE AS changed "
    "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_metrics_run_check()",
    "DROP TRIGGER IF EXISTS trg_runs_delete_metrics ON runs",
    "CREATE TRIGGER trg_runs_delete_metrics AFTER DELETE ON runs REFERENCING OLD TABLE AS gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_metrics_of_deleted_runs()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in _PG_DDL:
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_runs_delete_metrics ON runs")
    op.execute("DROP TRIGGER IF EXISTS trg_metrics_run_check_insert ON metrics")
    op.execute("DROP TRIGGER IF EXISTS trg_metrics_run_check_update ON metrics")
    op.execute("DROP FUNCTION IF EXISTS modelyard_metrics_of_deleted_runs()")
    op.execute("DROP FUNCTION IF EXISTS modelyard_metrics_run_check()")
    op.create_foreign_key("fk_metrics_run_id_runs", "metrics", "runs", ["run_id"], ["id"], ondelete="CASCADE")
