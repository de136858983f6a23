"""What the status bar and the About box say about the store and who uses it.

A team store: "alice · approver · team store modelyard@db.example:5432". A SQLite store has one user
with every right, so naming a role there would only be noise: its line stays the store's folder.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.store.team import ACTION_LABELS, ACTIONS, ROLE_LABELS
from modelyard.core.store.teamstore import server_address

SQLITE_TEAM_TIP = ("A SQLite store has one user with every right; members and roles are for a team store on "
                   "PostgreSQL (File › New Team Store…, docs/team.md).")


def store_text(store: Any, member: Any) -> str:
    if store.is_sqlite:
        return f"Store: {store.display_location}"
    where = f"team store {server_address(store.engine.url)}"
    if member is None:
        return where
    return f"{member.login} · {member.role_label} · {where}"


def store_tooltip(store: Any, member: Any) -> str:
    if store.is_sqlite:
        return f"{store.display_location}\nOne user with every right (a SQLite store)."
    lines = [f"Database: {store.engine.url.render_as_string(hide_password=True)}", f"Artifacts: {store.root}"]
    if member is not None:
        may = [ACTION_LABELS[a] for a in ACTIONS if member.may(a)]
        lines.insert(0, f"You are {member.login}, {ROLE_LABELS[member.role]}: "
                        f"{'you may ' + ', '.join(may) if may else 'you may read everything'}.")
    return "\n".join(lines)
