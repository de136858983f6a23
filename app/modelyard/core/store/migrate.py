"""Alembic glue: upgrade a store's database to the newest revision this Modelyard knows.

Imported only when a store actually needs creating or upgrading, so opening an up-to-date store
never pays for importing Alembic.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
def lock_schema(conn: Connection) -> None:
    """Make other processes creating or upgrading this store's schema wait for this transaction.

    SQLite needs nothing: its write transactions start with ``BEGIN IMMEDIATE``, which already
    queues them. On PostgreSQL an advisory lock is held until the transaction ends, and the
    waiter then reads the committed schema, so it finds the work done.
    """
    from modelyard.core.store.server import xact_lock

    xact_lock(conn, "modelyard schema")


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
