"""Alembic glue: upgrade a store's database to the newest revision this Modelyard knows.

Imported only when a store actually needs creating or upgrading, so opening an up-to-date store
never pays for importing Alembic.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The key of the PostgreSQL advisory lock under which a store's schema is created or upgraded
# ('MYSC'; any constant every Modelyard uses alike).
SCHEMA_LOCK_KEY = 0x4D595343


def lock_schema(conn: Connection) -> None:
    """Make other processes creating or upgrading this store's schema wait for this transaction.

    SQLite needs nothing: its write transactions start with ``BEGIN IMMEDIATE``, which already
    queues them. On PostgreSQL, ``pg_advisory_xact_lock`` is held until the transaction ends, and
    the waiter then reads the committed schema (READ COMMITTED), so it finds the work done.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def alembic_config(connection: object | None = None):  # -> alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(write_engine: Engine, revision: str = "head") -> None:
    """Run the migrations inside one write transaction (``BEGIN IMMEDIATE`` on SQLite, an advisory
    lock on PostgreSQL: :func:`lock_schema`; PostgreSQL's DDL is transactional too).

    Two processes opening the same old store at once queue on the lock; the second finds the
    schema already current and does nothing.
    """
    from alembic import command

    with write_engine.begin() as conn:
        lock_schema(conn)
        command.upgrade(alembic_config(conn), revision)


def script_revisions() -> list[str]:
    """Every revision in migrations/versions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
