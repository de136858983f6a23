"""``modelyard store cluster WHERE`` on a team store: a member who is not an admin is refused (exit 1, one line
naming the role needed) and the preference stays; an admin sets it (issue 17).

PostgreSQL only (tests/backends.py): roles are a team store's, on a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.experiments.training import engine
from team_helpers import Team, team_store


@pytest.fixture
def crew(backend: str, db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        yield t


def test_only_an_admin_sets_where_the_stores_searches_run(crew: Team, capsys, monkeypatch) -> None:
    monkeypatch.delenv(engine.ENV_VAR, raising=False)

    def where(role: str) -> list[str]:
        return ["--store", str(crew.root), "--db-url", crew.url(role)]

    code, out, err = cli(capsys, "store", "cluster", "tcp://10.0.0.5:8786", *where("scientist"))
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith("error: Changing where searches run needs") and "admin" in first, err
    code, data, _ = cli_json(capsys, "store", "cluster", *where("viewer"))  # anyone may look
    assert code == 0 and data["preference"] is None
    code, out, err = cli(capsys, "store", "cluster", "tcp://10.0.0.5:8786", *where("admin"))
    assert code == 0 and out == "This store's searches now run on tcp://10.0.0.5:8786.\n", err
    code, data, _ = cli_json(capsys, "store", "cluster", *where("scientist"))
    assert code == 0 and data["preference"] == data["cluster"] == "tcp://10.0.0.5:8786"
