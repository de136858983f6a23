"""Roles on a team store (issue 15): the database refuses what a member's role does not allow, through the
core, the tracking API and a plain SQL client, and every refusal names the role needed.

PostgreSQL only (tests/backends.py POSTGRESQL_ONLY): an SQLite store has one user, with every right
(its test here runs on SQLite, having no ``backend``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import psycopg
import pytest
from modelyard.core.common.errors import (
    ModelyardError,
    NotFoundError,
    PermissionRefused,
    ReviewRequired,
    StoreError,
)
from modelyard.core.experiments import tracking
from modelyard.core.notify import set_webhook
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store, team
from modelyard.core.store import models as m
from modelyard.core.store.roles_sql import group_names
from sqlalchemy import func, select, text
from team_helpers import Team, team_store

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]] * 5)
Y = np.array([0, 1, 0, 1] * 5)


@pytest.fixture
def crew(backend: str, db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        yield t


def make_run(store: Store, accuracy: float = 0.8) -> str:
    from sklearn.linear_model import LogisticRegression

    with tracking.start_run("churn", store=store, spec={"model": "logistic_regression"}) as run:
        run.log_metrics({"accuracy": accuracy})
        run.log_model(LogisticRegression().fit(X, Y), input_example=X[:3])
    return run.id


@contextlib.contextmanager
def sql_as(crew: Team, role: str):
    """A plain SQL client (psycopg, autocommit) logged in as the member holding ``role``."""
    with psycopg.connect(host="127.0.0.1", port=crew.server.port, user=crew.logins[role], dbname=crew.database,
                         autocommit=True, connect_timeout=5) as conn:
        yield conn


def refused(role_label: str, login: str, member_role: str):
    """pytest.raises for a PermissionRefused naming the role needed and who the member is."""
    return pytest.raises(PermissionRefused, match=rf"needs the {role_label} role; you \({login}\) are an? "
                                                  rf"{member_role} on this store\.")


def count(store: Store, model: type, *where) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --------------------------------------------------------------------------- set-up


def test_every_store_has_its_own_roles_of_at_most_63_bytes() -> None:
    long_a, long_b = "team_" + "a" * 60, "team_" + "a" * 59 + "b"
    names = [group_names(db) for db in ("churn", "Churn Store", long_a, long_b)]
    every = [n for g in names for n in g.values()]
    assert len(set(every)) == len(every)  # no two stores share a role, however alike their names
    assert all(len(n.encode()) <= 63 for n in every)
    assert names[0]["viewer"] == "modelyard_churn_viewer"


def test_the_owner_is_admin_and_installing_again_changes_nothing(crew: Team) -> None:
    me = crew.owner.member
    assert (me.role, me.team, me.owner) == ("admin", True, True)
    before = {mem.login: mem.role for mem in team.list_members(crew.owner)}
    team.install_roles(crew.owner)
    team.install_roles(crew.owner)
    assert {mem.login: mem.role for mem in team.list_members(crew.owner)} == before
    assert {before[crew.logins[r]] for r in crew.logins} == set(crew.logins) and before[me.login] == "admin"
    for role, login in crew.logins.items():
        store = crew.open(role)
        assert (store.member.login, store.member.role, store.member.owner) == (login, role, False)


# --------------------------------------------------------------------------- viewer


def test_a_viewer_reads_everything_and_every_write_is_refused(crew: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = crew.owner
    v1 = registry.register(owner, make_run(owner), "churn")
    registry.set_alias(owner, v1.ref, "champion", comment="first")
    with owner.write() as s:  # a run left 'running' by a machine that is gone: opening would sweep it
        exp = s.scalar(select(m.Experiment.id))
        s.add(m.Run(uuid=m.new_uuid(), experiment_id=exp, status="running", start_time=m.utcnow(),
                    host="gone-host", pid=1, heartbeat_at=None))
    runs_before, audit_before = count(owner, m.Run), count(owner, m.AuditEvent)

    viewer = crew.open("viewer")  # opens: no sweep, nothing written
    login = crew.logins["viewer"]
    assert count(owner, m.Run, m.Run.status == "running") == 1
    assert registry.get_version(viewer, "churn@champion").ref == v1.ref  # reads everything
    assert [mem.login for mem in team.list_members(viewer)]  # the Team dialog reads the members too

    with refused("data scientist", login, "viewer"):
        make_run(viewer)
    monkeypatch.setenv("MODELYARD_DB_URL", crew.url("viewer"))  # the tracking API finds the store itself
    with refused("data scientist", login, "viewer") as err:
        tracking.start_run("churn", store=crew.root)
    assert err.value.needed == "scientist" and err.value.role == "viewer" and "\n" not in err.value.message
    with refused("data scientist", login, "viewer"):
        registry.set_alias(viewer, v1.ref, "challenger", comment="x")
    with refused("approver", login, "viewer"):
        registry.set_alias(viewer, v1.ref, "champion", comment="x")
    with refused("admin", login, "viewer"):
        set_webhook(viewer, url="http://127.0.0.1:9/hook")
    with refused("admin", login, "viewer"):
        team.add_member(viewer, f"{crew.database}_new", "viewer")

    with sql_as(crew, "viewer") as conn:
        for sql in ("INSERT INTO experiments (name, created_at) VALUES ('sneaky', now())",
                    "UPDATE runs SET name = 'renamed'", "DELETE FROM audit_log",
                    "UPDATE model_aliases SET updated_at = now()",
                    "INSERT INTO store_meta (key, value) VALUES ('k', 'v')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == runs_before  # reading works
    assert (count(owner, m.Run), count(owner, m.AuditEvent)) == (runs_before, audit_before)
    assert count(owner, m.Experiment, m.Experiment.name == "sneaky") == 0


# --------------------------------------------------------------------------- scientist and approver


def test_a_scientist_logs_and_registers_but_cannot_move_champion_or_production(crew: Team) -> None:
    sci, login = crew.open("scientist"), crew.logins["scientist"]
    v1 = registry.register(sci, make_run(sci, 0.8), "churn")
    v2 = registry.register(sci, make_run(sci, 0.9), "churn")
    registry.set_alias(sci, v2.ref, "challenger", comment="try it")
    registry.set_stage(sci, v1.ref, "Staging", comment="stage it")
    # moving champion or into Production is requested instead (issue 16), naming the command that does
    review = rf"needs an approved request: you \({login}\) are a data scientist on this store; request it with "
    with pytest.raises(ReviewRequired, match=review + r"'modelyard model request churn@v2 --reason \"why\"'\."):
        registry.set_alias(sci, v2.ref, "champion", comment="mine")
    with pytest.raises(ReviewRequired, match=review + r"'modelyard model request churn@v2 --target Production"):
        registry.set_stage(sci, v2.ref, "Production", comment="ship")
    with refused("approver", login, "data scientist"):
        registry.set_gates(sci, "churn", {"min_metrics": {"accuracy": 0.5}}, comment="policy")
    registry.set_stage(crew.owner, v1.ref, "Production", comment="owner ships v1")
    with refused("approver", login, "data scientist") as err:
        registry.set_stage(sci, v1.ref, "Archived", comment="retire")
    assert "out of Production" in err.value.message

    model_id, v2_id = v2.model_id, v2.id
    with sql_as(crew, "scientist") as conn:  # the database refuses a plain client too, naming the role
        for sql in (f"INSERT INTO model_aliases (model_id, alias, version_id, updated_at) "
                    f"VALUES ({model_id}, 'champion', {v2_id}, now())",
                    f"UPDATE model_versions SET stage = 'Production' WHERE id = {v2_id}",
                    f"UPDATE model_versions SET stage = 'None' WHERE id = {v1.id}",
                    f"UPDATE registered_models SET gates = '{{\"min_metrics\": {{}}}}' WHERE id = {model_id}",
                    "UPDATE store_meta SET value = 'x'", "UPDATE audit_log SET comment = 'rewritten'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs the approver role|permission "
                                                                           "denied"):
                conn.execute(sql)
        conn.execute(f"UPDATE model_aliases SET updated_at = now() WHERE alias = 'challenger' "
                     f"AND model_id = {model_id}")
        conn.execute("INSERT INTO audit_log (at, actor, entity_type, entity_id, action) "
                     "VALUES (now(), 'the-boss', 'model', '1', 'forged')")
    assert registry.get_version(crew.owner, "churn@challenger").ref == v2.ref
    assert registry.get_version(crew.owner, v1.ref).stage == "Production"
    with crew.owner.session() as s:  # nobody but an admin writes an entry in someone else's name
        assert s.scalar(select(m.AuditEvent.actor).where(m.AuditEvent.action == "forged")) == login
        assert s.scalar(select(m.AuditEvent.actor).where(m.AuditEvent.action == "set_alias")) == login
        # what other windows hear of names the login too (MODELYARD_USER is the owner's, an admin's, tool name)
        assert set(s.scalars(select(m.ChangeEvent.actor).distinct())) == {login, "tester"}


def test_an_approver_moves_champion_and_production_and_the_trail_names_them(crew: Team) -> None:
    sci, appr = crew.open("scientist"), crew.open("approver")
    v1 = registry.register(sci, make_run(sci), "churn")
    registry.set_gates(appr, "churn", {"min_metrics": {"accuracy": 0.5}}, comment="policy")
    assert registry.set_alias(appr, v1.ref, "champion", comment="approved").aliases == ["champion"]
    assert registry.set_stage(appr, v1.ref, "Production", comment="go live").stage == "Production"
    with sql_as(crew, "approver") as conn:
        conn.execute("UPDATE model_aliases SET updated_at = now() WHERE alias = 'champion'")
    events = {e["action"]: e["actor"] for e in registry.timeline(crew.owner, "churn")}
    assert events["set_alias"] == events["set_stage"] == events["set_gates"] == crew.logins["approver"]
    assert events["register"] == crew.logins["scientist"]


# --------------------------------------------------------------------------- admin


def test_an_admin_manages_members_without_createrole_and_it_is_audited(crew: Team) -> None:
    admin, login = crew.open("admin"), crew.logins["admin"]
    with crew.owner.session() as s:
        assert s.execute(text("SELECT rolcreaterole FROM pg_roles WHERE rolname = :l"), {"l": login}).scalar() is False
    new = f"{crew.database}_newcomer"
    team.add_member(admin, new, "viewer", comment="joins")
    team.set_role(admin, new, "approver", comment="promoted")
    team.set_role(admin, crew.logins["scientist"], "viewer", comment="on leave")
    assert crew.open(new).member.role == "approver"
    with crew.owner.session() as s:
        rows = s.execute(select(m.AuditEvent.actor, m.AuditEvent.entity_id, m.AuditEvent.action,
                                m.AuditEvent.from_value, m.AuditEvent.to_value, m.AuditEvent.comment)
                         .where(m.AuditEvent.entity_type == team.ENTITY, m.AuditEvent.actor == login)
                         .order_by(m.AuditEvent.id)).all()
    assert [tuple(r) for r in rows] == [
        (login, new, "add_member", None, "viewer", "joins"),
        (login, new, "set_role", "viewer", "approver", "promoted"),
        (login, crew.logins["scientist"], "set_role", "scientist", "viewer", "on leave")]

    team.remove_member(admin, new, comment="left")
    assert new not in {mem.login for mem in team.list_members(crew.owner)}
    with pytest.raises(PermissionRefused, match=rf"Opening this store needs a role on it; the login {new} has none"):
        Store.open(crew.root, db_url=crew.url(new), create=False)

    with refused("admin", crew.logins["approver"], "approver"):
        team.set_role(crew.open("approver"), crew.logins["viewer"], "admin")
    with pytest.raises(ModelyardError, match="owns the store .* always an admin"):
        team.set_role(admin, crew.owner.member.login, "viewer")
    with pytest.raises(ModelyardError, match="is a member already \\(approver\\)"):
        team.add_member(admin, crew.logins["approver"], "viewer")
    with pytest.raises(ModelyardError, match="exists on the server already; its password is not changed"):
        team.add_member(admin, new, "viewer", password="takeover")
    with pytest.raises(NotFoundError, match="is not a member of this store"):
        team.set_role(admin, f"{crew.database}_nobody", "viewer")
    with pytest.raises(ModelyardError, match="is not a role"):
        team.add_member(admin, f"{crew.database}_x", "boss")
    with pytest.raises(PermissionRefused, match="needs the owner of the store's database or a superuser; you "
                                                 rf"\({login}\) are an admin"):
        team.install_roles(admin)  # the store's grants and guards are its owner's to change
    assert team.install_roles(admin, required=False) is False  # (opening after an upgrade: the owner re-runs it)
    with sql_as(crew, "approver") as conn:  # the member function is the admins' alone, for a plain client too
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT modelyard_set_member(%s, 'admin', NULL, false)", (crew.logins["approver"],))


def test_the_password_given_to_add_member_is_the_new_logins_password(crew: Team) -> None:
    """The test server trusts every local login; one line of pg_hba.conf makes it ask this login for its
    password (SCRAM), so the verifier computed by roles_sql is proved by logging in with it."""
    login = f"{crew.database}_pw"
    team.add_member(crew.owner, login, "viewer", password="s3cret pässword")
    with crew.owner.session() as s:
        stored = s.execute(text("SELECT rolpassword FROM pg_authid WHERE rolname = :l"), {"l": login}).scalar()
    assert stored.startswith("SCRAM-SHA-256$4096:")
    hba = Path(crew.server.data) / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {login} 127.0.0.1/32 scram-sha-256\n" + original)
    try:
        with crew.server.connect() as conn:
            conn.execute("SELECT pg_reload_conf()")

        def connect(password: str):
            return psycopg.connect(host="127.0.0.1", port=crew.server.port, user=login, dbname=crew.database,
                                   password=password, connect_timeout=5)

        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            connect("wrong")
        with connect("s3cret pässword") as conn:
            assert conn.execute("SELECT session_user").fetchone()[0] == login
    finally:
        hba.write_text(original)
        with crew.server.connect() as conn:
            conn.execute("SELECT pg_reload_conf()")


# --------------------------------------------------------------------------- a store made by a plain owner


@pytest.mark.parametrize("createrole", [True, False], ids=["createrole", "no-createrole"])
def test_a_store_made_by_a_database_owner_who_is_no_superuser(backend: str, pg_server_session, tmp_path: Path,
                                                              createrole: bool) -> None:
    """What a team's DBA would set up (createdb -O ana): PostgreSQL 16 lets a CREATEROLE login manage only
    the roles it made; 15 lets it manage any. Without CREATEROLE the store still works for its owner."""
    server = pg_server_session
    database = server.create_database("template1")
    owner = f"{database}_owner"
    try:
        with server.connect() as conn:
            conn.execute(f'CREATE ROLE "{owner}" LOGIN{" CREATEROLE" if createrole else ""}')
            conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{owner}"')
        with Store.open(tmp_path / "store", db_url=server.url(database, owner)) as store:
            assert (store.member.login, store.member.role, store.member.owner) == (owner, "admin", True)
            make_run(store)
            if not createrole:
                assert not team.roles_installed(store)
                with pytest.raises(PermissionRefused, match=rf"needs a login that may create roles .*; {owner} "
                                                            "may not"):
                    team.add_member(store, f"{database}_vera", "viewer")
                return
            assert team.roles_installed(store)
            admin, viewer, sci = (f"{database}_{r}" for r in ("admin", "viewer", "sci"))
            team.add_member(store, admin, "admin")
            team.add_member(store, viewer, "viewer")
        with Store.open(tmp_path / "store", db_url=server.url(database, admin)) as as_admin:
            team.add_member(as_admin, sci, "scientist")  # an admin member, with no CREATEROLE of their own
            team.set_role(as_admin, sci, "approver")
            team.remove_member(as_admin, viewer)  # a login the owner made, not this admin
            assert {mem.login: mem.role for mem in team.list_members(as_admin)} == {
                owner: "admin", admin: "admin", sci: "approver"}
        with Store.open(tmp_path / "store", db_url=server.url(database, sci)) as as_sci:
            v1 = registry.register(as_sci, make_run(as_sci), "churn")
            registry.set_alias(as_sci, v1.ref, "champion", comment="approved")
    finally:
        server.drop_database(database)


# --------------------------------------------------------------------------- messages and SQLite


@pytest.mark.parametrize(("message", "statement", "what", "needed"), [
    ("permission denied for table runs", "INSERT INTO runs ...", "Recording runs", "scientist"),
    ("permission denied for table registered_models", "UPDATE registered_models SET revision=...",
     "Changing registered models", "scientist"),
    ("permission denied for table store_meta", "UPDATE store_meta ...", "Changing the store's settings", "admin"),
    ("permission denied for table audit_log", "DELETE FROM audit_log", "Editing the audit trail", "admin"),
    ("permission denied for sequence runs_id_seq", "INSERT INTO runs ...", "Changing the store", "scientist"),
    ("permission denied for function modelyard_set_member", "SELECT ...", "Managing the store's members", "admin"),
    ("permission denied for database t1", None, "Opening this store", "viewer"),
    ("must be owner of table runs", "ALTER TABLE runs ...", "Changing the store's roles or tables", "owner"),
])
def test_each_kind_of_refusal_names_what_and_the_role(message: str, statement: str | None, what: str,
                                                      needed: str) -> None:
    assert team.denied_what(message, statement) == (what, needed)


def test_an_sqlite_store_has_one_user_with_every_right(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_DB_URL")  # this module's tests get a server database: not this one
    with Store.open(tmp_path / "store") as store:
        me = team.member(store)
        assert (me.login, me.role, me.team) == ("tester", "admin", False)
        for action in ("write", "approve", "manage"):
            team.require(store, action, "Anything")
            assert team.allowed(me, action) == (True, "")
        assert team.list_members(store) == [me]
        team.install_roles(store)  # nothing to install
        with pytest.raises(StoreError, match=r"one user \(tester\), who has every right"):
            team.add_member(store, "vera", "viewer")


def test_a_viewers_window_leaves_triggers_to_others_and_a_viewer_cannot_run_the_agent(crew: Team, tmp_path: Path):
    import datetime as dt
    import time

    from modelyard.core.pipelines import agent, catalog, triggers
    from modelyard.ui.pipelines import data

    (tmp_path / "incoming").mkdir()
    recipe = tmp_path / "arrivals.yaml"
    recipe.write_text("name: arrivals\nparams:\n  data: none\ntriggers:\n  - on: new_file\n    folder: incoming\n"
                      "    param: data\nsteps:\n  count:\n    kind: shell\n    params: {command: \"true\"}\n",
                      encoding="utf-8")
    catalog.add_pipeline_file(crew.owner, recipe)
    with crew.owner.write() as s:  # listed an hour ago; a settled file arrived since
        s.execute(m.Pipeline.__table__.update().values(created_at=m.utcnow() - dt.timedelta(hours=1)))
    arrived = tmp_path / "incoming" / "week.csv"
    arrived.write_text("a\n1\n", encoding="utf-8")
    time.sleep(triggers.SETTLE_S + 0.2)  # settled: unchanged for the triggers' settle time

    def firings() -> int:
        with crew.owner.session() as s:
            return s.scalar(select(func.count()).select_from(m.TriggerFiring))

    assert data.fire_triggers(crew.open("viewer"), 15.0) == []
    assert firings() == 0
    with refused("data scientist", crew.logins["viewer"], "viewer"):
        agent.run_agent(crew.open("viewer"), once=True)
    assert firings() == 0
    fired = data.fire_triggers(crew.open("scientist"), 15.0)
    assert [(name, error) for name, _run, error, _type in fired] == [("arrivals", None)]
    assert firings() == 1
