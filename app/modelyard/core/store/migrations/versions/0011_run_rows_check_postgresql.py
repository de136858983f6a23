"""PostgreSQL: the run_id of params, tags and latest_metrics checked once per statement by a
trigger instead of per row by their foreign keys, as 0008 did for metrics (see
``modelyard.core.store.models.RUN_ROWS_CHECK_PG_DDL``: 15 row checks a tracked run were a fifth
of a one-statement write's time on the server); a trigger on runs deletes a deleted run's rows
(the ON DELETE CASCADE); and 0008's metrics check names the missing run in its DETAIL. SQLite
keeps its foreign keys: nothing changes there.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# A frozen copy of models.RUN_ROWS_CHECK_PG_DDL as it is at this revision (a later change to the
# models is a later migration; tests/core/store/test_store.py compares new and upgraded stores).
_TABLES = ("params", "tags", "latest_metrics")
_WHEN = "WHEN (current_setting('modelyard.marked', true) IS DISTINCT FROM 'on')"


def _check_function(name: str, constraint: str, table: str, message: str) -> str:
    """A statement-level function checking (and locking FOR KEY SHARE) each distinct run_id of the
    rows in ``changed`` once, raising the foreign key's error; its DETAIL without a '%' (a driver
    given parameters read 0008's format() %s as a placeholder: "Key (run_id)=($3)")."""
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  rid bigint;
BEGIN
  FOR rid IN SELECT DISTINCT run_id FROM changed LOOP
    PERFORM 1 FROM runs WHERE id = rid FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', CONSTRAINT = {constraint}, TABLE = {table},
        MESSAGE = {message},
        DETAIL = 'Key (run_id)=(' || rid || ') is not present in table "runs".';
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$"""


# one function for the three tables (the constraint's name is the trigger's argument)
_CHECK = _check_function("modelyard_run_rows_check", "TG_ARGV[0]", "TG_TABLE_NAME",
                         """'insert or update on table "' || TG_TABLE_NAME || '" violates foreign key constraint "'
                  || TG_ARGV[0] || '"'""")
# 0008's metrics check again, naming the missing run
_METRICS_CHECK = _check_function(
    "modelyard_metrics_run_check", "'fk_metrics_run_id_runs'", "'metrics'",
    """'insert or update on table "metrics" violates foreign key constraint "fk_metrics_run_id_runs"'""")
_DELETE = """CREATE OR REPLACE FUNCTION modelyard_run_rows_of_deleted_runs() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM params WHERE run_id IN (SELECT id FROM gone);
  DELETE FROM tags WHERE run_id IN (SELECT id FROM gone);
  DELETE FROM latest_metrics WHERE run_id IN (SELECT id FROM gone);
  RETURN NULL;
END
$fn$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for t in _TABLES:
        op.execute(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS fk_{t}_run_id_runs")
    op.execute(_CHECK)
    op.execute(_METRICS_CHECK)
    op.execute(_DELETE)
    for t in _TABLES:
        for event in ("INSERT", "UPDATE"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_{t}_run_check_{event.lower()} ON {t}")
            op.execute(f"CREATE TRIGGER trg_{t}_run_check_{event.lower()} AFTER {event} ON {t} REFERENCING NEW TABLE "
                       f"AS changed FOR EACH STATEMENT {_WHEN} EXECUTE FUNCTION "
                       f"modelyard_run_rows_check('fk_{t}_run_id_runs')")
    op.execute("DROP TRIGGER IF EXISTS trg_runs_delete_run_rows ON runs")
    op.execute("CREATE TRIGGER trg_runs_delete_run_rows AFTER DELETE ON runs REFERENCING OLD TABLE AS gone "
               "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_run_rows_of_deleted_runs()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_runs_delete_run_rows ON runs")
    for t in _TABLES:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_{t}_run_check_{event} ON {t}")
        op.execute(f"DELETE FROM {t} WHERE run_id NOT IN (SELECT id FROM runs)")
        op.create_foreign_key(f"fk_{t}_run_id_runs", t, "runs", ["run_id"], ["id"], ondelete="CASCADE")
    op.execute("DROP FUNCTION IF EXISTS modelyard_run_rows_of_deleted_runs()")
    op.execute("DROP FUNCTION IF EXISTS modelyard_run_rows_check()")
