"""Alembic glue: upgrade a store's database to the newest revision this Modelyard knows.

Imported only when a store actually needs creating or upgrading, so opening an up-to-date store
never pays for importing Alembic.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: object | None = None):  # -> alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(write_engine: Engine, revision: str = "head") -> None:
    """Run the migrations inside one write transaction (``BEGIN IMMEDIATE`` on SQLite).

    Two processes opening the same old store at once queue on the lock; the second finds the
    schema already current and does nothing.
    """
    from alembic import command

    with write_engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def script_revisions() -> list[str]:
    """Every revision in migrations/versions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
