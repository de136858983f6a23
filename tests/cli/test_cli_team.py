"""``modelyard team add | list | set-role | remove | whoami``, and a member's refusals on the command line:
exit 1 with one line naming the role needed (issue 15).

PostgreSQL only (tests/backends.py POSTGRESQL_ONLY); the SQLite test says a store file has one user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, cli_json, run_modelyard, subprocess_env
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from team_helpers import Team, team_store


@pytest.fixture
def crew(backend: str, db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        yield t


def registered(store: Store) -> str:
    from sklearn.linear_model import LogisticRegression

    x, y = np.array([[0.0, 1.0], [1.0, 0.0]] * 5), np.array([0, 1] * 5)
    with tracking.start_run("churn", store=store) as run:
        run.log_metrics({"accuracy": 0.9})
        run.log_model(LogisticRegression().fit(x, y))
    return registry.register(store, run.id, "churn").ref


def refusal_line(code: int, err: str) -> str:
    """The one error line of a refused command (exit 1), its hint aside."""
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and all(ln.startswith(("error: ", "hint: ")) for ln in lines), err
    return lines[0]


def test_an_admin_adds_lists_changes_and_removes_members(crew: Team, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    where = ["--store", str(crew.root), "--db-url", crew.url("admin")]
    new = f"{crew.database}_cli"
    monkeypatch.setenv("NEW_PW", "pa55word")
    code, data, err = cli_json(capsys, "team", "add", new, "--role", "viewer", "--password-env", "NEW_PW", *where)
    assert code == 0, err
    assert data["member"] == {"login": new, "role": "viewer", "role_label": "viewer", "team": True, "owner": False}
    assert data["password_set"] is True and data["url"].startswith(f"postgresql+psycopg://{new}@")
    code, out, err = cli(capsys, "team", "set-role", new, "scientist", "--comment", "joins the project", *where)
    assert code == 0 and f"{new} is now a data scientist (was a viewer)." in out, err
    code, data, _ = cli_json(capsys, "team", "list", *where)
    assert data["you"]["login"] == crew.logins["admin"] and data["you"]["role"] == "admin"
    roles = {mem["login"]: mem["role"] for mem in data["members"]}
    assert roles[new] == "scientist" and roles[crew.logins["viewer"]] == "viewer"
    assert [mem["login"] for mem in data["members"] if mem["owner"]] == [crew.owner.member.login]
    code, out, _ = cli(capsys, "team", "list", *where)
    assert code == 0 and out.splitlines()[0].split() == ["LOGIN", "ROLE"]
    assert any(line.split()[0] == crew.logins["admin"] and line.rstrip().endswith("you") for line in out.splitlines())
    code, out, _ = cli(capsys, "team", "whoami", "--store", str(crew.root), "--db-url", crew.url("scientist"))
    assert out.strip() == f"{crew.logins['scientist']} · data scientist · a team store"

    code, out, err = cli(capsys, "team", "remove", new, "--comment", "left", *where)
    assert code == 0 and f"{new} is no longer a member (a data scientist before)" in out, err
    code, _, err = cli(capsys, "team", "set-role", new, "viewer", *where)
    assert refusal_line(code, err) == f"error: '{new}' is not a member of this store."
    code, _, err = cli(capsys, "team", "add", f"{crew.database}_x", "--role", "viewer", "--password-env", "UNSET_PW",
                       *where)
    assert refusal_line(code, err) == "error: The environment variable UNSET_PW (--password-env) is not set or empty."
    events = [e for e in member_audit(crew) if e[1] == new]
    assert events == [(crew.logins["admin"], new, "add_member", None, "viewer", None),
                      (crew.logins["admin"], new, "set_role", "viewer", "scientist", "joins the project"),
                      (crew.logins["admin"], new, "remove_member", "scientist", None, "left")]


def member_audit(crew: Team) -> list[tuple]:
    from modelyard.core.store import models as m
    from sqlalchemy import select

    with crew.owner.session() as s:
        return [tuple(r) for r in s.execute(
            select(m.AuditEvent.actor, m.AuditEvent.entity_id, m.AuditEvent.action, m.AuditEvent.from_value,
                   m.AuditEvent.to_value, m.AuditEvent.comment)
            .where(m.AuditEvent.entity_type == "member").order_by(m.AuditEvent.id))]


def test_a_viewers_writes_exit_1_naming_the_role_needed(crew: Team, tmp_path: Path) -> None:
    """Real processes, as a member would run them: each write refused in one line, no traceback."""
    ref = registered(crew.owner)
    login = crew.logins["viewer"]
    env = subprocess_env() | {"MODELYARD_DB_URL": crew.url("viewer"), "MODELYARD_STORE": str(crew.root)}
    script = tmp_path / "track.py"
    script.write_text("import modelyard\nwith modelyard.start_run('churn') as run:\n    run.log_metric('a', 1.0)\n")
    for args, needed in (
            (["model", "alias", ref, "challenger", "--comment", "try"], "data scientist"),
            (["model", "alias", ref, "champion", "--comment", "mine"], "approver"),
            (["notify", "webhook", "--url", "http://127.0.0.1:9/hook"], "admin"),
            (["team", "add", f"{crew.database}_x", "--role", "viewer"], "admin")):
        proc = run_modelyard(*args, env=env)
        line = refusal_line(proc.returncode, proc.stderr)
        assert line.endswith(f" needs the {needed} role; you ({login}) are a viewer on this store."), proc.stderr
    proc = run_modelyard("run", "list", "--json", env=env)  # reading works
    assert proc.returncode == 0, proc.stderr
    # the tracking API in a script: the refusal is the exception's one line
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-2].endswith(
        f"PermissionRefused: Recording runs needs the data scientist role; you ({login}) are a viewer on "
        "this store."), proc.stderr[-600:]


def test_a_scientist_cannot_move_champion_and_an_approver_can(crew: Team, capsys: pytest.CaptureFixture[str]) -> None:
    ref = registered(crew.owner)
    code, _, err = cli(capsys, "model", "alias", ref, "champion", "--comment", "mine", "--store", str(crew.root),
                       "--db-url", crew.url("scientist"))
    assert refusal_line(code, err) == (  # a scientist requests the move instead (issue 16)
        f"error: Moving 'champion' needs an approved request: you ({crew.logins['scientist']}) are a data scientist "
        f"on this store; request it with 'modelyard model request {ref} --reason \"why\"'.")
    code, _, err = cli(capsys, "model", "alias", ref, "champion", "--comment", "approved", "--store", str(crew.root),
                       "--db-url", crew.url("approver"))
    assert code == 0, err
    assert registry.get_version(crew.owner, "churn@champion").ref == ref


def test_an_sqlite_store_says_it_has_one_user(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_DB_URL")  # this module's tests get a server database: not this one
    root = str(tmp_path / "store")
    assert cli(capsys, "store", "init", "--store", root)[0] == 0
    code, _, err = cli(capsys, "team", "add", "vera", "--role", "viewer", "--store", root)
    assert refusal_line(code, err).startswith("error: Cannot add a member: this store is an SQLite file with one user "
                                              f"({os.environ['MODELYARD_USER']}), who has every right")
    code, out, _ = cli(capsys, "team", "list", "--store", root)
    assert code == 0 and "one user, with every right" in out and "tester" in out
    code, data, _ = cli_json(capsys, "team", "whoami", "--store", root)
    assert data == {"login": "tester", "role": "admin", "role_label": "admin", "team": False, "owner": False}
