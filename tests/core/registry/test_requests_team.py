"""Promotion requests on a team store with a login per role (issue 16): a data scientist requests, an
approver approves and the alias moves; the author never decides their own request; a viewer can do
neither; the audit trail shows request, approval and move with their comments; and the database
refuses the same through a plain SQL client. PostgreSQL only (tests/backends.py POSTGRESQL_ONLY).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
import pytest
from modelyard.core.common.errors import PermissionRefused, ReviewRequired
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import evidence
from modelyard.core.registry.review import requests as rq
from modelyard.core.store import models as m
from review_helpers import evidence_doc, give_evidence, make_versions, ready
from sqlalchemy import select
from team_helpers import Team, team_store


@pytest.fixture
def crew(backend: str, db_url: str, tmp_path: Path, pg_server_session) -> Team:
    with team_store(pg_server_session, db_url, tmp_path / "store") as t:
        yield t


@contextlib.contextmanager
def sql_as(crew: Team, role: str):
    """A plain SQL client (psycopg, autocommit) logged in as the member holding ``role``."""
    with psycopg.connect(host="127.0.0.1", port=crew.server.port, user=crew.logins[role], dbname=crew.database,
                         autocommit=True, connect_timeout=5) as conn:
        yield conn


@pytest.fixture
def churn(crew: Team) -> list[str]:
    """churn@v1 champion (put there by the approver), v2 and v3 ready for a request (card and evidence)."""
    sci, appr = crew.open("scientist"), crew.open("approver")
    refs = make_versions(sci, [0.8, 0.9, 0.92])
    registry.set_alias(appr, refs[0], "champion", comment="first champion")  # an approver moves directly
    registry.set_gates(appr, "churn", {"min_metrics": {"accuracy": 0.85}}, comment="policy")
    ready(sci, refs[1], 0.9)
    ready(sci, refs[2], 0.92)
    return refs


def test_a_scientist_requests_an_approver_approves_and_the_trail_shows_each_step(crew: Team,
                                                                                 churn: list[str]) -> None:
    sci, appr, viewer = crew.open("scientist"), crew.open("approver"), crew.open("viewer")
    login = crew.logins
    _, v2, _ = churn
    assert rq.review_required(sci) is True and rq.review_required(appr) is False
    assert rq.review_required(viewer) is False  # a viewer may do neither: refused naming the approver role
    with pytest.raises(ReviewRequired, match=rf"you \({login['scientist']}\) are a data scientist"):
        registry.set_alias(sci, v2, "champion", comment="mine")
    req = rq.request_promotion(sci, v2, reason="better recall on March")
    assert req.requested_by == login["scientist"]
    with pytest.raises(PermissionRefused, match=rf"Approving a promotion request needs the approver role; you "
                                                rf"\({login['scientist']}\) are a data scientist"):
        rq.approve(sci, req.id, comment="me")
    with pytest.raises(PermissionRefused, match=rf"Requesting a promotion needs the data scientist role; you "
                                                rf"\({login['viewer']}\) are a viewer"):
        rq.request_promotion(viewer, v2, reason="x")
    with pytest.raises(PermissionRefused, match=r"Approving a promotion request needs the approver role"):
        rq.approve(viewer, req.id, comment="x")
    assert [r.id for r in rq.list_requests(viewer, status="open")] == [req.id]  # a viewer reads them
    # what the Review tab asks to enable its buttons (and says in their tooltips)
    assert rq.may(sci, req, "approve") == (False, f"Approving a promotion request needs the approver role; you "
                                                  f"({login['scientist']}) are a data scientist on this store.")
    assert rq.may(sci, req, "withdraw") == (True, "") and rq.may(appr, req, "approve") == (True, "")
    assert rq.may(appr, req, "withdraw")[1] == f"Request {req.id} is {login['scientist']}'s; only its author can withdraw it."
    assert rq.may(viewer, req, "reject")[0] is False
    done = rq.approve(appr, req.id, comment="group gap within policy")
    assert done.decided_by == login["approver"] and done.status == "approved"
    assert registry.get_model(viewer, "churn").aliases["champion"] == 2
    trail = [(e["action"], e["actor"], e["comment"]) for e in reversed(registry.timeline(viewer, "churn"))
             if (e["details"] or {}).get("request") == req.id]
    assert trail == [("request_promotion", login["scientist"], "better recall on March"),
                     ("approve_request", login["approver"], "group gap within policy"),
                     ("set_alias", login["approver"], "group gap within policy")]
    assert rq.request_snapshot(viewer, req.id)["by"] == login["approver"]
    _, _, v3 = churn
    give_evidence(sci, v3, 0.92, 0.9)  # against the new champion
    later = rq.request_promotion(sci, v3, reason="even better")
    with pytest.raises(PermissionRefused, match=rf"Rejecting a promotion request needs the approver role; you "
                                                rf"\({login['scientist']}\) are a data scientist"):
        rq.reject(sci, later.id, comment="no")
    assert rq.withdraw(sci, later.id, comment="retraining first").status == "withdrawn"
    assert rq.get_request(viewer, later.id).decided_by == login["scientist"]


def test_an_approver_who_needs_a_review_never_approves_their_own_request(crew: Team, churn: list[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_USER")  # the admin acts as their login (else their tool's name is recorded)
    appr, admin = crew.open("approver"), crew.open("admin")
    rq.set_review_required(admin, True, comment="everyone is reviewed")
    assert rq.review_required(appr) is True
    _, v2, _ = churn
    with pytest.raises(ReviewRequired, match=r"this store requires a review of every promotion"):
        registry.set_alias(appr, v2, "champion", comment="mine")
    req = rq.request_promotion(appr, v2, reason="mine")
    with pytest.raises(PermissionRefused, match=rf"You \({crew.logins['approver']}\) made request {req.id}; its "
                                                r"author cannot approve it"):
        rq.approve(appr, req.id, comment="self")
    assert rq.approve(admin, req.id, comment="reviewed").decided_by == crew.logins["admin"]


def test_the_database_refuses_decisions_by_the_wrong_member_through_plain_sql(crew: Team, churn: list[str]) -> None:
    sci = crew.open("scientist")
    _, v2, v3 = churn
    mine = rq.request_promotion(sci, v2, reason="mine").id
    other = rq.request_promotion(crew.open("approver"), v3, reason="the approver's").id
    login = crew.logins
    approve = "UPDATE promotion_requests SET status = '{status}', decided_by = '{who}', decided_at = now() WHERE id = {id}"
    with sql_as(crew, "scientist") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs the approver role"):
            conn.execute(approve.format(status="approved", who=login["scientist"], id=other))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs the approver role"):
            conn.execute(approve.format(status="rejected", who=login["approver"], id=mine))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Withdrawing someone else's promotion"):
            conn.execute(approve.format(status="withdrawn", who=login["scientist"], id=other))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Changing what a promotion request asks"):
            conn.execute(f"UPDATE promotion_requests SET reason = 'rewritten' WHERE id = {other}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Deleting a promotion request"):
            conn.execute(f"DELETE FROM promotion_requests WHERE id = {other}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Changing or deleting stored evidence"):
            conn.execute("UPDATE model_evidence SET settings = NULL")
    with sql_as(crew, "approver") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="author of a promotion request cannot"):
            conn.execute(approve.format(status="approved", who=login["approver"], id=other))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="in someone else's name"):
            conn.execute(approve.format(status="approved", who=login["admin"], id=mine))
    with sql_as(crew, "viewer") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(approve.format(status="approved", who=login["viewer"], id=mine))
    with sql_as(crew, "scientist") as conn:  # what a scientist may: withdraw their own open request
        conn.execute(approve.format(status="withdrawn", who=login["scientist"], id=mine))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Changing a decided promotion request"):
            conn.execute(f"UPDATE promotion_requests SET status = 'open', decided_by = NULL WHERE id = {mine}")
    statuses = {r.id: r.status for r in rq.list_requests(crew.owner)}
    assert statuses == {mine: "withdrawn", other: "open"}


def test_requests_and_evidence_name_the_login_whatever_the_client_wrote(crew: Team, churn: list[str]) -> None:
    sci = crew.open("scientist")
    _, v2, _ = churn
    info = registry.get_version(sci, v2)
    evidence.store_evidence(sci, info.id, evidence_doc(v2, "churn@v1", 0.9, 0.8), settings={},
                            champion_version_id=registry.get_version(sci, "churn@v1").id)
    assert evidence.latest_evidence(crew.owner, v2).created_by == crew.logins["scientist"]
    with sql_as(crew, "scientist") as conn:
        conn.execute(f"INSERT INTO promotion_requests (model_id, version_id, target, reason, requested_by, "
                     f"requested_at, model_revision, status) VALUES ({info.model_id}, {info.id}, 'champion', 'sql', "
                     f"'somebody-else', now(), 0, 'open')")
    with crew.owner.session() as s:
        who = s.scalar(select(m.PromotionRequest.requested_by).where(m.PromotionRequest.reason == "sql"))
    assert who == crew.logins["scientist"]


def test_an_existing_team_store_gets_the_guards_when_it_is_upgraded(db_url: str, tmp_path: Path) -> None:
    from modelyard.core.store import KNOWN_REVISIONS, Store, migrate
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        migrate.upgrade(engine, "0006")  # a team store from before promotion requests
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO store_meta (key, value) VALUES ('store_id', 'old')"))
    finally:
        engine.dispose()
    assert KNOWN_REVISIONS.index("0006") < KNOWN_REVISIONS.index("0007")
    with Store.open(tmp_path / "store", db_url=db_url) as store:  # upgrades it, then installs the roles again
        with store.session() as s:
            guards = set(s.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    assert {"modelyard_guard_request", "modelyard_guard_evidence", "modelyard_guard_alias"} <= guards
