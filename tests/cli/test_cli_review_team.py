"""The promotion-request flow through the command line on a team store with a login per role (issue 16):
the data scientist's ``model alias ... champion`` says a request is needed and how; they request; the
approver lists and approves it; the scientist cannot approve, a viewer can do neither (exit 1, one line
naming the role); the timeline shows request, approval and move with their comments.
PostgreSQL only (tests/backends.py POSTGRESQL_ONLY)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.registry import versions as registry
from review_helpers import make_versions, ready
from team_helpers import Team, team_store


@pytest.fixture
def crew(backend: str, db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        sci, appr = t.open("scientist"), t.open("approver")
        v1, v2 = make_versions(sci, [0.8, 0.9])
        registry.set_alias(appr, v1, "champion", comment="first champion")
        ready(sci, v2)
        yield t


def as_(crew: Team, role: str) -> list[str]:
    return ["--store", str(crew.root), "--db-url", crew.url(role)]


def first_line(code: int, err: str) -> str:
    assert code == 1, err
    return err.splitlines()[0]


def test_the_request_flow_through_the_cli_with_three_logins(crew: Team, capsys: pytest.CaptureFixture[str]) -> None:
    login = crew.logins
    code, _, err = cli(capsys, "model", "alias", "churn@v2", "champion", "--comment", "mine", *as_(crew, "scientist"))
    assert first_line(code, err) == (
        f"error: Moving 'champion' needs an approved request: you ({login['scientist']}) are a data scientist on "
        "this store; request it with 'modelyard model request churn@v2 --reason \"why\"'.")
    code, out, err = cli(capsys, "model", "request", "churn@v2", "--reason", "better recall on March",
                         *as_(crew, "scientist"))
    assert code == 0, err
    code, listed, _ = cli_json(capsys, "model", "requests", *as_(crew, "approver"))
    (req,) = listed["requests"]
    rid = str(req["id"])
    assert out.strip() == (f"Made request {rid}: churn@v2 as champion, replacing churn@v1; an approver decides it "
                           f"('modelyard model requests {rid}' shows it).")
    assert req["requested_by"] == login["scientist"] and req["status"] == "open"
    code, _, err = cli(capsys, "model", "approve", rid, "--comment", "mine", *as_(crew, "scientist"))
    assert first_line(code, err) == (f"error: Approving a promotion request needs the approver role; you "
                                     f"({login['scientist']}) are a data scientist on this store.")
    code, _, err = cli(capsys, "model", "approve", rid, "--comment", "me", *as_(crew, "viewer"))
    assert "needs the approver role" in first_line(code, err)
    code, _, err = cli(capsys, "model", "request", "churn@v2", "--reason", "me", *as_(crew, "viewer"))
    assert "Requesting a promotion needs the data scientist role" in first_line(code, err)
    code, out, err = cli(capsys, "model", "approve", rid, "--comment", "group gap within policy", *as_(crew, "approver"))
    assert code == 0 and "churn@v2 is now champion" in out, err
    code, shown, _ = cli_json(capsys, "model", "show", "churn@champion", *as_(crew, "viewer"))
    assert shown["ref"] == "churn@v2"
    code, events, _ = cli_json(capsys, "model", "timeline", "churn", *as_(crew, "viewer"))
    trail = [(e["action"], e["actor"], e["comment"]) for e in reversed(events)
             if (e.get("details") or {}).get("request") == int(rid)]
    assert trail == [("request_promotion", login["scientist"], "better recall on March"),
                     ("approve_request", login["approver"], "group gap within policy"),
                     ("set_alias", login["approver"], "group gap within policy")]
