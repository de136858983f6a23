"""The store's schema: SQLAlchemy 2.0 typed ORM, portable to SQLite and PostgreSQL.

The whole lineage chain lives here from the first schema revision so later features add
behaviour, not tables: file -> dataset version -> run -> model version -> bundle / server ->
monitoring check -> retraining run. Every arrow is a foreign key or a :class:`LineageEdge`;
every state change of a registered thing is an :class:`AuditEvent`.

Sizing: indexes are chosen for 100,000 runs and 10 million metric points. Metric points are
narrow rows keyed by an integer run id (not the 32-character public id), and the latest value
of each metric per run is kept in :class:`LatestMetric` so the runs table sorts and filters by
metric without scanning the series.

Changing anything here needs an Alembic revision in ``migrations/versions``;
``tests/core/store/test_store.py`` fails when the models and the migrations disagree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_uuid() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive text)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use modelyard.core.store.models.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# --------------------------------------------------------------------------- store-wide


class StoreMeta(Base):
    """Key/value facts about the store itself: its id, when and by which Modelyard it was made."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """One state change: who did what to which record, from what, to what, and why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60))
    from_value: Mapped[str | None] = mapped_column(Text)
    to_value: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id", "at"),
        Index("ix_audit_log_at", "at"),
    )


class Artifact(Base):
    """A file in the content-addressed artifact folder, known by the sha256 of its bytes."""

    __tablename__ = "artifacts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LineageEdge(Base):
    """A recorded arrow between two records of any kind (e.g. model_version -> bundle)."""

    __tablename__ = "lineage_edges"
    id: Mapped[int] = mapped_column(primary_key=True)
    src_type: Mapped[str] = mapped_column(String(40))
    src_id: Mapped[str] = mapped_column(String(64))
    dst_type: Mapped[str] = mapped_column(String(40))
    dst_id: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_lineage_edges_src", "src_type", "src_id"),
        Index("ix_lineage_edges_dst", "dst_type", "dst_id"),
    )


# --------------------------------------------------------------------------- jobs


class Job(Base):
    """A unit of background work and its outcome.

    Status: queued -> running -> succeeded | failed | cancelled; a job found 'running' whose
    process is gone is marked 'interrupted' when a store is next opened.
    """

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    actor: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_created_at", "created_at"),
    )


# --------------------------------------------------------------------------- datasets


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    deleted_at: Mapped[dt.datetime | None]

    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset", order_by="DatasetVersion.version", cascade="all, delete-orphan"
    )


class DatasetVersion(Base):
    """An immutable snapshot of a table: never updated; changes create a child version."""

    __tablename__ = "dataset_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    n_rows: Mapped[int] = mapped_column(BigInteger)
    n_cols: Mapped[int]
    source_path: Mapped[str | None] = mapped_column(Text)
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    source_mtime: Mapped[dt.datetime | None]
    source_format: Mapped[str | None] = mapped_column(String(20))
    schema: Mapped[dict[str, Any] | None]
    profile: Mapped[dict[str, Any] | None]
    target: Mapped[str | None] = mapped_column(String(300))
    task: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))

    dataset: Mapped[Dataset] = relationship(back_populates="versions")

    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index("ix_dataset_versions_content_hash", "content_hash"),
    )


class DatasetSplit(Base):
    """A stored train/validation/test split of one dataset version (random, stratified or by time)."""

    __tablename__ = "dataset_splits"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="default")
    method: Mapped[str] = mapped_column(String(20))
    seed: Mapped[int | None]
    spec: Mapped[dict[str, Any]]
    assignment_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("dataset_version_id", "name"),)


# --------------------------------------------------------------------------- experiments


class Experiment(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None]


class Run(Base):
    """One training attempt. ``uuid`` is the public id; ``id`` keys the big child tables."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uuid)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="running")
    start_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    end_time: Mapped[dt.datetime | None]
    source_type: Mapped[str | None] = mapped_column(String(20))
    source_name: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(200))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    split_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_splits.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    heartbeat_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any] | None]
    deleted_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_runs_experiment_start", "experiment_id", "start_time"),
        Index("ix_runs_start_time", "start_time"),  # the newest runs of all experiments (first page)
        Index("ix_runs_parent_run_id", "parent_run_id"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_dataset_version_id", "dataset_version_id"),
    )


class Param(Base):
    __tablename__ = "params"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_params_key_value", "key", "value"),)


class Metric(Base):
    """One point of a metric series. Narrow on purpose: 10 million of these must stay fast."""

    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # milliseconds since the epoch, UTC
    value: Mapped[float]

    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)


class LatestMetric(Base):
    """The last value (highest step, then latest time) of each metric of each run."""

    __tablename__ = "latest_metrics"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float]

    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value"),)


class Tag(Base):
    __tablename__ = "tags"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_tags_key_value", "key", "value"),)


class RunsTableCache(Base):
    """Columnar snapshots of the runs table, one per block of 4,096 run ids (``runs.id >> 12``).

    Written by readers (:mod:`modelyard.core.experiments.runquery`), never by writers, and kept
    valid by triggers on ``runs``, ``params``, ``latest_metrics`` and ``tags`` in the writer's
    transaction, so a snapshot the cache hands out is always current:

    - SQLite (:data:`RUNS_TABLE_CACHE_TRIGGERS`): a write bumps the block's ``generation`` and
      clears its ``data``; a reader stores a block it built only if the block's generation is
      still the one its read saw (SQLite has one writer at a time: no lock to wait for).
    - PostgreSQL (:data:`RUNS_TABLE_CACHE_PG_DDL`): writers run side by side, and a shared
      generation row would make every writer of a block wait for the others' commits (and two
      transactions writing two blocks in opposite orders deadlock). So a write only adds a
      :class:`RunsTableCacheMark` (block, its transaction id): no row is shared, nothing waits. A
      reader stores a block with the ``snapshot`` (``pg_current_snapshot()``) it was read in; the
      block is current as long as every mark of it is visible in that snapshot (a later write's
      is not), and storing it removes the marks the snapshot sees. A stored snapshot is replaced
      only by one that sees everything it saw (else a removed mark would be missed).

    A batch migration that recreates one of those four tables drops its triggers: recreate them
    (tests/core/experiments/test_runquery.py checks they exist).
    """

    __tablename__ = "runs_table_cache"
    block: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    snapshot: Mapped[str | None] = mapped_column(Text)  # PostgreSQL: the pg_snapshot ``data`` was read in


class RunsTableCacheMark(Base):
    """PostgreSQL: a transaction (``xid``, ``pg_current_xact_id()``) wrote to a run of ``block``
    (see :class:`RunsTableCache`); unused on SQLite."""

    __tablename__ = "runs_table_cache_marks"
    block: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    xid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


RUNS_TABLE_CACHE_BLOCK_BITS = 12
_CACHED_TABLES = (("runs", "id"), ("params", "run_id"), ("latest_metrics", "run_id"), ("tags", "run_id"))
_CACHE_EVENTS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))


def _runs_table_cache_triggers() -> list[str]:
    out = []
    for table, column in _CACHED_TABLES:
        for event_name, row in _CACHE_EVENTS:
            out.append(
                f"CREATE TRIGGER trg_runs_table_cache_{table}_{event_name.lower()} AFTER {event_name} ON {table} "
                f"BEGIN INSERT INTO runs_table_cache (block, generation, data) "
                f"VALUES ({row}.{column} >> {RUNS_TABLE_CACHE_BLOCK_BITS}, 1, NULL) "
                f"ON CONFLICT (block) DO UPDATE SET generation = generation + 1, data = NULL; END")
    return out


# SQLite only (migration 0003 creates the same ones); see RunsTableCache
RUNS_TABLE_CACHE_TRIGGERS: tuple[str, ...] = tuple(_runs_table_cache_triggers())


# PostgreSQL: a statement that writes its own runs-table-cache mark (and whose points' run is
# checked by the run's row it updates, and the foreign keys of latest_metrics) sets this
# transaction-local setting, and the marking and checking triggers do not fire for it: a firing
# statement-level trigger costs the server ~50 us however little it does, five per tracked run
# (core/experiments/tracking/pgwrites.py; tests/benchmarks/team_store.py). Every other write, of
# any client, fires them. A client that sets it itself only skips the cache's marks (the runs
# table may then show stale rows until the next write of the block) and the points' run check.
PG_MARKED_SETTING = "modelyard.marked"
PG_UNLESS_MARKED = f"WHEN (current_setting('{PG_MARKED_SETTING}', true) IS DISTINCT FROM 'on')"


def _runs_table_cache_pg_ddl() -> list[str]:
    """PostgreSQL's: one statement-level trigger per table and event (a transition table holds
    the statement's rows: one INSERT of marks per statement, however many rows it wrote)."""
    bits = RUNS_TABLE_CACHE_BLOCK_BITS
    out = [f"""CREATE OR REPLACE FUNCTION modelyard_runs_table_cache_mark() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_ARGV[0] = 'id' THEN
    INSERT INTO runs_table_cache_marks (block, xid)
      SELECT DISTINCT id >> {bits}, pg_current_xact_id()::text::bigint FROM changed ON CONFLICT DO NOTHING;
  ELSE
    INSERT INTO runs_table_cache_marks (block, xid)
      SELECT DISTINCT run_id >> {bits}, pg_current_xact_id()::text::bigint FROM changed ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$fn$"""]
    for table, column in _CACHED_TABLES:
        for event_name, row in _CACHE_EVENTS:
            name = f"trg_runs_table_cache_{table}_{event_name.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            out.append(f"CREATE TRIGGER {name} AFTER {event_name} ON {table} REFERENCING {row} TABLE AS changed "
                       f"FOR EACH STATEMENT {PG_UNLESS_MARKED} EXECUTE FUNCTION modelyard_runs_table_cache_mark('{column}')")
    return out


# PostgreSQL only (migrations 0006 and 0009 run the same); see RunsTableCache
RUNS_TABLE_CACHE_PG_DDL: tuple[str, ...] = tuple(_runs_table_cache_pg_ddl())

# PostgreSQL: metrics.run_id is checked once per statement, not per row. The foreign key's
# check is a query per inserted row (more than half of the server's time for a batch of points,
# tests/benchmarks/team_store.py); a statement-level trigger checks (and locks, FOR KEY SHARE,
# as the foreign key does) each distinct run of the statement once, with the foreign key's
# error (SQLSTATE 23503, its constraint name), and a statement-level trigger on runs deletes
# the points of deleted runs (ON DELETE CASCADE). The model keeps the foreign key: SQLite's
# stores keep it, and tests/core/store/test_store.py knows this difference (PG_TRIGGER_CHECKED_FKS).
METRICS_RUN_FK = "fk_metrics_run_id_runs"


def _run_check_function(name: str, constraint: str, table: str, message: str) -> str:
    """A statement-level trigger function checking, and locking FOR KEY SHARE as a foreign key
    does, each distinct run_id of the statement's rows (transition table ``changed``) once,
    raising the foreign key's error (SQLSTATE 23503) for a missing run. No '%' in the body: a
    driver given parameters reads it as a placeholder (0008's format() said "($3)")."""
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


def _metrics_run_check_pg_ddl() -> list[str]:
    return [
        f"ALTER TABLE metrics DROP CONSTRAINT IF EXISTS {METRICS_RUN_FK}",
        _run_check_function("modelyard_metrics_run_check", f"'{METRICS_RUN_FK}'", "'metrics'",
                            f"""'insert or update on table "metrics" violates foreign key constraint "{METRICS_RUN_FK}"'"""),
        """CREATE OR REPLACE FUNCTION modelyard_metrics_of_deleted_runs() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM metrics WHERE run_id IN (SELECT id FROM gone);
  RETURN NULL;
END
$fn$""",
        "DROP TRIGGER IF EXISTS trg_metrics_run_check_insert ON metrics",
        "CREATE TRIGGER trg_metrics_run_check_insert AFTER INSERT ON metrics REFERENCING NEW TABLE AS changed "
        f"FOR EACH STATEMENT {PG_UNLESS_MARKED} EXECUTE FUNCTION modelyard_metrics_run_check()",
        "DROP TRIGGER IF EXISTS trg_metrics_run_check_update ON metrics",
        "CREATE TRIGGER trg_metrics_run_check_update AFTER UPDATE ON metrics REFERENCING NEW TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_metrics_run_check()",
        "DROP TRIGGER IF EXISTS trg_runs_delete_metrics ON runs",
        "CREATE TRIGGER trg_runs_delete_metrics AFTER DELETE ON runs REFERENCING OLD TABLE AS gone "
        "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_metrics_of_deleted_runs()",
    ]


# PostgreSQL only (migrations 0008, 0009 and 0011 run the same)
METRICS_RUN_CHECK_PG_DDL: tuple[str, ...] = tuple(_metrics_run_check_pg_ddl())


# PostgreSQL: the run_id of params, tags and latest_metrics too (migration 0011), the same way:
# a foreign key checks each row with a query (15 rows a tracked run, a fifth of a one-statement
# write's time on the server), a statement-level trigger each distinct run once, with the
# foreign key's error; a trigger on runs deletes a deleted run's rows (the ON DELETE CASCADE).
# The tracking API's one-statement writes (marked, see PG_MARKED_SETTING) take the run from the
# row they insert or lock in the same statement, and fire none of these checks.
RUN_ROWS_CHECKED = ("params", "tags", "latest_metrics")
# (table, foreign key) a server store drops: its triggers check them
PG_TRIGGER_CHECKED_FKS = frozenset({("metrics", METRICS_RUN_FK), *((t, f"fk_{t}_run_id_runs") for t in RUN_ROWS_CHECKED)})


def _run_rows_check_pg_ddl() -> list[str]:
    out = [f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS fk_{t}_run_id_runs" for t in RUN_ROWS_CHECKED]
    out += [_run_check_function("modelyard_run_rows_check", "TG_ARGV[0]", "TG_TABLE_NAME",
                                """'insert or update on table "' || TG_TABLE_NAME || '" violates foreign key constraint "'
                  || TG_ARGV[0] || '"'"""),
            f"""CREATE OR REPLACE FUNCTION modelyard_run_rows_of_deleted_runs() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
{"".join(f"  DELETE FROM {t} WHERE run_id IN (SELECT id FROM gone);{chr(10)}" for t in RUN_ROWS_CHECKED)}  RETURN NULL;
END
$fn$"""]
    for t in RUN_ROWS_CHECKED:
        for event_name in ("INSERT", "UPDATE"):
            name = f"trg_{t}_run_check_{event_name.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {t}")
            out.append(f"CREATE TRIGGER {name} AFTER {event_name} ON {t} REFERENCING NEW TABLE AS changed "
                       f"FOR EACH STATEMENT {PG_UNLESS_MARKED} EXECUTE FUNCTION "
                       f"modelyard_run_rows_check('fk_{t}_run_id_runs')")
    out += ["DROP TRIGGER IF EXISTS trg_runs_delete_run_rows ON runs",
            "CREATE TRIGGER trg_runs_delete_run_rows AFTER DELETE ON runs REFERENCING OLD TABLE AS gone "
            "FOR EACH STATEMENT EXECUTE FUNCTION modelyard_run_rows_of_deleted_runs()"]
    return out


# PostgreSQL only (migration 0011 runs the same)
RUN_ROWS_CHECK_PG_DDL: tuple[str, ...] = tuple(_run_rows_check_pg_ddl())


def _create_runs_table_cache_triggers(target: Any, connection: Any, **_kw: Any) -> None:
    if connection.dialect.name == "sqlite":
        for ddl in RUNS_TABLE_CACHE_TRIGGERS:
            connection.exec_driver_sql(ddl)
    elif connection.dialect.name == "postgresql":
        for ddl in RUNS_TABLE_CACHE_PG_DDL + METRICS_RUN_CHECK_PG_DDL + RUN_ROWS_CHECK_PG_DDL:
            connection.exec_driver_sql(ddl)


class RunArtifact(Base):
    """A named file of a run (fitted pipeline, curves, importances...), stored by content."""

    __tablename__ = "run_artifacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    kind: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "path"),)


# --------------------------------------------------------------------------- registry


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    gates: Mapped[dict[str, Any] | None]
    monitoring: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Bumped by every change to the model's registry state (aliases, stages, gates): an edit made
    # from what a member saw at revision N is refused when the model is past N (a stale edit).
    revision: Mapped[int] = mapped_column(default=0, server_default="0")


STAGES = ("None", "Staging", "Production", "Archived")


# --------------------------------------------------------------------------- governance (reviews)


class ModelEvidence(Base):
    """The evidence computed for a model version (a JSON artifact): its metrics on its held-out rows
    with bootstrap intervals against the champion of the moment, group metrics for the sensitive
    columns, permutation importance, partial dependence and calibration. A new computation adds a
    row (the newest one per version is current); rows are never edited, so an old request's
    snapshot keeps naming the evidence it was made on."""

    __tablename__ = "model_evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    champion_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    settings: Mapped[dict[str, Any] | None]  # sensitive columns, resamples, repeats, seed it was computed with
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_model_evidence_version_id", "version_id", "id"),)


REQUEST_STATUSES = ("open", "approved", "rejected", "withdrawn")


class PromotionRequest(Base):
    """A request to move ``champion`` (or the Production stage) to a version, and its decision.

    ``snapshot_sha256``: a JSON artifact with what the request was made on (evidence, gates and
    their verdicts, the card's review fields); ``decision_sha256``: the same as the approver saw it
    when deciding, so an old decision replays exactly even after thresholds or data changed."""

    __tablename__ = "promotion_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(100))  # "champion" (the alias) or "Production" (the stage)
    replaces_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    model_revision: Mapped[int] = mapped_column(default=0)  # the model's revision the request was made at
    status: Mapped[str] = mapped_column(String(20), default="open")  # REQUEST_STATUSES
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None]
    decision_comment: Mapped[str | None] = mapped_column(Text)
    snapshot_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    decision_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))

    __table_args__ = (Index("ix_promotion_requests_model_status", "model_id", "status"),
                      Index("ix_promotion_requests_status", "status", "id"))


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    stage: Mapped[str] = mapped_column(String(20), default="None")
    model_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    source: Mapped[str] = mapped_column(String(20), default="run")
    signature: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]
    card: Mapped[dict[str, Any] | None]
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        Index("ix_model_versions_run_id", "run_id"),
        Index("ix_model_versions_dataset_version_id", "dataset_version_id"),
    )


class ModelAlias(Base):
    __tablename__ = "model_aliases"
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- monitoring


class MonitoringCheck(Base):
    """One drift check of a batch against a model version's reference, with its full config."""

    __tablename__ = "monitoring_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    batch_dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    reference_dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(20))  # ok | warning | drift | error
    drift_share: Mapped[float | None]
    config: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_monitoring_checks_model_version_created", "model_version_id", "created_at"),)


class PredictionLogFile(Base):
    """One file of a model's prediction log (core/serving/predlog.py): a Parquet segment of logged
    requests (``kind`` "predictions") or a file of labels joined later by key ("labels"), at
    ``path`` under the store's artifact folder (relative to it)."""

    __tablename__ = "prediction_log_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(String(500))
    rows: Mapped[int]
    size: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[dt.datetime | None]
    last_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_prediction_log_files_model", "model_id", "kind", "first_at"),)


# --------------------------------------------------------------------------- pipelines


class Pipeline(Base):
    """A pipeline file the store knows (the YAML stays in the team's git; the store lists it).

    ``spec`` is the file as last validated (plain data); ``spec_sha256`` the file's bytes then.
    ``schedules_enabled`` switches the file's schedule triggers on and off (its other triggers too).
    """

    __tablename__ = "pipelines"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(Text)  # absolute path of the YAML file
    description: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    spec_sha256: Mapped[str] = mapped_column(String(64))
    schedules_enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))


class PipelineRun(Base):
    """One run of a pipeline: queued -> running -> succeeded | failed | blocked | cancelled | interrupted.

    ``blocked``: a gate or a check stopped it (the CLI exits 3). ``interrupted``: the process running
    it ended before it finished (found by the store's sweep); it can be resumed (``resumed_from``).
    """

    __tablename__ = "pipeline_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    params: Mapped[dict[str, Any] | None]  # the resolved pipeline parameters
    spec: Mapped[dict[str, Any]]  # the pipeline as it was run
    spec_sha256: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[dict[str, Any] | None]  # {"type": "manual" | "schedule" | "new_file" | "drift" | "resume", ...}
    resumed_from: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))  # the run's own job, if any
    max_parallel: Mapped[int] = mapped_column(default=1)
    force: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    actor: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None]

    __table_args__ = (Index("ix_pipeline_runs_pipeline_created", "pipeline_id", "created_at"),
                      Index("ix_pipeline_runs_status", "status"))


class PipelineStepRun(Base):
    """One step of a pipeline run: pending -> running -> succeeded | cached | failed | blocked |
    skipped | cancelled | interrupted. ``cache_key`` hashes everything the step's result depends
    on; ``cached_from`` names the step run whose outputs a cached step reused."""

    __tablename__ = "pipeline_step_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(default=0)  # the step's place in the file (for lists)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    params: Mapped[dict[str, Any] | None]  # resolved params (references replaced)
    cache_key: Mapped[str | None] = mapped_column(String(64))
    cached_from: Mapped[int | None] = mapped_column(ForeignKey("pipeline_step_runs.id", ondelete="SET NULL"))
    outputs: Mapped[dict[str, Any] | None]
    records: Mapped[list[Any] | None]  # [{"type": "dataset_version", "id": "12"}, ...] the step created
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))  # the last attempt's job
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("run_id", "step"),
                      Index("ix_pipeline_step_runs_cache", "step", "cache_key"))


class TriggerFiring(Base):
    """A trigger that fired, claimed once: the unique (pipeline, trigger, fire key) row is what
    makes two agents, or an agent and an open window, run a due trigger exactly once.

    ``fire_key`` names the occasion: a schedule's due time (ISO), a new file's path and content
    hash, a drift check's id.
    """

    __tablename__ = "trigger_firings"
    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(100))  # the trigger's key in the file, e.g. "schedule:0"
    fire_key: Mapped[str] = mapped_column(String(500))
    fired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(String(20), default="run")  # run | skipped (a missed schedule)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]

    __table_args__ = (UniqueConstraint("pipeline_id", "trigger", "fire_key"),)


class Notification(Base):
    """One message to one channel (email | webhook | desktop) about an event, and its delivery.

    status: pending -> sent | failed (after its last attempt). Never holds a password.
    """

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(60))  # pipeline.failed | pipeline.succeeded | pipeline.blocked | check.drift ...
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str | None] = mapped_column(Text)  # recipients or URL (no secrets)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    pipeline_run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("monitoring_checks.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_notifications_status", "status"),)


class ChangeEvent(Base):
    """One committed write: which change topics it touched (core/jobs/kinds.py TOPICS) and, where
    known, the ids of what changed, so other windows on the store refresh just that
    (core/store/live.py). Rows older than a few minutes are pruned; a reader that fell further
    behind refreshes everything."""

    __tablename__ = "change_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    topics: Mapped[str] = mapped_column(String(200))  # comma-separated, e.g. "runs,models"
    ids: Mapped[dict[str, Any] | None]  # {"runs": ["3f2a…"], "models": ["churn"]}; None: unknown
    actor: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(String(80))  # "host:pid:token" of the writing process


# a new database is created from these models (Store._create_fresh): add the triggers once every table exists
event.listen(Base.metadata, "after_create", _create_runs_table_cache_triggers)

__all__ = [name for name in dir() if name[:1].isupper()] + ["utcnow", "new_uuid"]
