"""What a store's schema is: the revisions this Modelyard knows, how a new one is made, and how
an existing database is told apart from an empty or someone else's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from modelyard._version import __version__
from modelyard.core.common.errors import StoreError
from modelyard.core.store import models as m

# Every Alembic revision this Modelyard knows, oldest first. tests/core/store/test_store.py checks this
# against migrations/versions so the fast path of Store._migrate (no Alembic import) cannot drift.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011")
HEAD_REVISION = KNOWN_REVISIONS[-1]
# Tables a store at revision 0001 (before store_meta existed) always has.
_REVISION_0001_TABLES = frozenset({"artifacts", "datasets", "experiments", "jobs", "runs"})
NOT_A_STORE_HINT = ("Check --store / --db-url. If this was a store, restore its modelyard.db from a backup; "
                    "to start a new store, use 'modelyard store init' on an empty folder or database.")


def schema_kind(tables: set[str], revision: str | None) -> str:
    """'store', 'empty' (no tables at all) or 'foreign' (someone else's tables)."""
    if not tables:
        return "empty"
    if "alembic_version" in tables and revision is not None and (
            "store_meta" in tables or (revision == KNOWN_REVISIONS[0] and _REVISION_0001_TABLES <= tables)):
        return "store"
    return "foreign"


def not_a_store(where: str, tables: set[str]) -> StoreError:
    shown = sorted(t for t in tables if t != "alembic_version") or sorted(tables)
    listed = ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")
    return StoreError(f"{where} is not a Modelyard store: it holds other tables ({listed}) and no Modelyard "
                      f"schema; it was not changed.", hint=NOT_A_STORE_HINT)


def create_schema(conn: Any) -> None:
    """The head schema, stamped, and the store's id, on ``conn`` (inside its transaction)."""
    m.Base.metadata.create_all(conn)
    conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                      "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION})
    # in the same transaction: a process that sees the schema also sees the store's id
    conn.execute(m.StoreMeta.__table__.insert(), [{"key": "store_id", "value": m.new_uuid()},
                                                  {"key": "created_with", "value": __version__}])
