"""A team store with one member per role for the roles tests (tests/core/store/test_roles.py,
tests/cli/test_cli_team.py): the store made by the server's superuser (its owner, an admin), then
a login per role added through core/store/team.py, each able to open the store as itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.core.store import Store, team
from sqlalchemy.engine import make_url

MEMBER_ROLES = ("viewer", "scientist", "approver", "admin")


@dataclass
class Team:
    root: Path
    owner: Store
    server: object  # tests/pg_server.py PgServer
    database: str
    logins: dict[str, str]  # role -> login
    _open: list[Store] = field(default_factory=list)

    def url(self, role: str) -> str:
        """The store's URL for the member holding ``role`` (or a login's name)."""
        return self.server.url(self.database, self.logins.get(role, role))  # type: ignore[attr-defined]

    def open(self, role: str) -> Store:
        """The store opened as the member holding ``role`` (closed when the team is)."""
        store = Store.open(self.root, db_url=self.url(role), create=False)
        self._open.append(store)
        return store


@contextmanager
def team_store(server: object, db_url: str, root: Path) -> Iterator[Team]:
    """A new team store on ``db_url`` (the superuser's URL) with one member per role."""
    database = str(make_url(db_url).database)
    owner = Store.open(root, db_url=db_url)
    logins = {role: f"{database}_{role}" for role in MEMBER_ROLES}  # logins are the server's: one set per test
    for role, login in logins.items():
        team.add_member(owner, login, role)
    t = Team(root, owner, server, database, logins)
    try:
        yield t
    finally:
        for store in t._open:
            store.close()
        owner.close()
