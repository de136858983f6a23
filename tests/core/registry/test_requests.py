"""Promotion requests (issue 16): with the store's ``review.required`` setting, a move of champion or into
Production is requested, approved by someone else in one transaction with its gates, and replayable.
On SQLite and PostgreSQL (tests/backends.py); ``MODELYARD_USER`` names who acts (on PostgreSQL the
test's login owns the store, an admin whose tool may name the actor). The team roles: test_requests_team.py.
"""

from __future__ import annotations

import re

import pytest
from modelyard.core import notify as nt
from modelyard.core.common.errors import (
    GateFailed,
    ModelyardError,
    NotFoundError,
    PermissionRefused,
    ReviewRequired,
    StaleEditError,
)
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import evidence
from modelyard.core.registry.review import requests as rq
from modelyard.core.registry.review.snapshot import current_snapshot
from modelyard.core.store import Store
from modelyard.core.store import models as m
from notify_servers import SMTPServer, WebhookServer, free_port
from review_helpers import (
    CARD,
    evidence_doc,
    fill_card,
    give_evidence,
    make_versions,
    ready,
)
from sqlalchemy import select

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def as_user(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    monkeypatch.setenv("MODELYARD_USER", who)


@pytest.fixture
def churn(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """churn@v1 champion (accuracy 0.8), v2 (0.9) and v3 (0.92), gates min accuracy 0.85; then the store
    requires a review. alice is acting."""
    refs = make_versions(store, [0.8, 0.9, 0.92])
    registry.set_alias(store, refs[0], "champion", comment="first champion")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.85}}, comment="policy")
    rq.set_review_required(store, True, comment="the auditors ask for it")
    as_user(monkeypatch, "alice")
    return refs


def test_the_setting_is_off_by_default_audited_and_refuses_direct_moves(store: Store,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2 = make_versions(store, [0.8, 0.9])
    assert rq.review_required(store) is False
    registry.set_alias(store, v1, "champion", comment="no review needed yet")
    assert rq.set_review_required(store, True, comment="auditors") is False
    assert rq.set_review_required(store, True, comment="again") is True  # unchanged: not audited twice
    assert rq.review_required(store) is True
    with pytest.raises(ReviewRequired) as err:
        registry.set_alias(store, v2, "champion", comment="mine")
    assert err.value.message == (
        "Moving 'champion' needs an approved request: this store requires a review of every promotion "
        "(review.required); request it with 'modelyard model request churn@v2 --reason \"why\"'.")
    assert isinstance(err.value, PermissionRefused) and err.value.command.startswith("modelyard model request")
    with pytest.raises(ReviewRequired, match=r"request it with 'modelyard model request churn@v2 --target "
                                             r"Production --reason \"why\"'"):
        registry.set_stage(store, v2, "Production", comment="ship")
    with pytest.raises(ReviewRequired, match="request the version that replaces it"):
        registry.remove_alias(store, "churn", "champion", comment="off")
    registry.set_alias(store, v2, "challenger", comment="other aliases move freely")
    registry.set_stage(store, v2, "Staging", comment="and other stages")
    with pytest.raises(ModelyardError, match="needs a short comment"):
        rq.set_review_required(store, False, comment=" ")
    with store.session() as s:
        events = s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "set_review_required")).all()
    assert [(e.from_value, e.to_value, e.comment) for e in events] == [("false", "true", "auditors")]
    assert registry.get_model(store, "churn").aliases["champion"] == 1


def test_a_request_approved_by_someone_else_moves_champion_and_every_step_is_audited(
        store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, v2, _ = churn
    ready(store, v2)
    req = rq.request_promotion(store, v2, reason="better accuracy on March")
    assert (req.status, req.candidate, req.target, req.replaces, req.requested_by) == \
        ("open", "churn@v2", "champion", "churn@v1", "alice")
    assert [r.id for r in rq.list_requests(store, status="open")] == [req.id]
    with pytest.raises(PermissionRefused, match=rf"You \(alice\) made request {req.id}; its author cannot approve"):
        rq.approve(store, req.id, comment="looks fine to me")
    as_user(monkeypatch, "bob")
    with pytest.raises(ModelyardError, match="Approving a request needs a short text"):
        rq.approve(store, req.id, comment="")
    done = rq.approve(store, req.id, comment="checked the group table")
    assert (done.status, done.decided_by, done.decision_comment) == ("approved", "bob", "checked the group table")
    assert registry.get_model(store, "churn").aliases["champion"] == 2
    assert rq.list_requests(store, status="open") == [] and len(rq.list_requests(store, status="approved")) == 1
    with pytest.raises(ModelyardError, match=rf"Request {req.id} is approved already \(by bob at {WHEN}\)"):
        rq.approve(store, req.id, comment="twice")
    trail = [(e["action"], e["actor"], e["comment"], e["details"].get("request")) for e in
             reversed(registry.timeline(store, "churn")) if e["action"] in
             ("request_promotion", "approve_request", "set_alias")][1:]  # the first champion aside
    assert trail == [("request_promotion", "alice", "better accuracy on March", req.id),
                     ("approve_request", "bob", "checked the group table", req.id),
                     ("set_alias", "bob", "checked the group table", req.id)]
    shown = rq.request_snapshot(store, req.id)
    assert (shown["kind"], shown["by"], shown["candidate"], shown["champion"]) == \
        ("decision", "bob", "churn@v2", "churn@v1")
    assert shown["request"]["status"] == "approved" and shown["card"] == CARD
    assert rq.request_snapshot(store, req.id, "request")["by"] == "alice"


def test_production_is_requested_and_approved_the_same_way(store: Store, churn: list[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2, _ = churn
    ready(store, v2)
    req = rq.request_promotion(store, v2, "production", reason="go live")
    assert req.target == "Production" and req.replaces is None
    as_user(monkeypatch, "bob")
    rq.approve(store, req.id, comment="ok")
    assert registry.get_version(store, v2).stage == "Production"
    event = registry.timeline(store, "churn")[0]
    assert (event["action"], event["to_value"], event["details"]["request"]) == ("set_stage", "Production", req.id)
    with pytest.raises(ModelyardError, match="churn@v2 is already in Production; there is nothing to request"):
        rq.request_promotion(store, v2, "Production", reason="again")
    with pytest.raises(ModelyardError, match="'Staging' is not something a promotion can be requested to"):
        rq.request_promotion(store, v1, "Staging", reason="x")


def test_a_request_needs_the_cards_review_fields_and_evidence_against_the_current_champion(
        store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2, v3 = churn
    with pytest.raises(ModelyardError) as err:
        rq.request_promotion(store, v2, reason="better")
    assert err.value.message == ("The model card of churn@v2 leaves Intended use, Out-of-scope uses, Known "
                                 "limitations and Ethical considerations empty; reviewers need them before a "
                                 "promotion can be requested.")
    assert "modelyard model card churn@v2" in err.value.hint and "--out-of-scope-uses" in err.value.hint
    fill_card(store, v2, {"intended_use": "x", "out_of_scope_uses": "y", "known_limitations": "z"})
    with pytest.raises(ModelyardError, match="leaves Ethical considerations empty"):
        rq.request_promotion(store, v2, reason="better")
    fill_card(store, v2)
    with pytest.raises(ModelyardError, match="churn@v2 has no evidence yet") as err:
        rq.request_promotion(store, v2, reason="better")
    assert "modelyard model evidence churn@v2" in err.value.hint
    with pytest.raises(ModelyardError, match="A promotion request needs a short text"):
        rq.request_promotion(store, v2, reason="  ")
    give_evidence(store, v2)
    with pytest.raises(ModelyardError, match="churn@v1 is already champion"):
        rq.request_promotion(store, v1, reason="x")
    first = rq.request_promotion(store, v2, reason="better")
    with pytest.raises(ModelyardError, match=rf"Request {first.id} by alice already asks for churn@v2 as champion"):
        rq.request_promotion(store, v2, reason="again")

    as_user(monkeypatch, "bob")
    rq.approve(store, first.id, comment="ok")  # champion is v2 now: v3's evidence against v1 is out of date
    as_user(monkeypatch, "alice")
    fill_card(store, v3)
    v3_id, v1_id = registry.get_version(store, v3).id, registry.get_version(store, v1).id
    # evidence computed while v1 was champion
    evidence.store_evidence(store, v3_id, evidence_doc(v3, v1, 0.92, 0.8), settings={}, champion_version_id=v1_id)
    with pytest.raises(ModelyardError) as err:
        rq.request_promotion(store, v3, reason="best")
    assert err.value.message == ("The evidence of churn@v3 was computed against churn@v1, but the champion is now "
                                 "churn@v2; a request compares with the current champion.")
    give_evidence(store, v3, 0.92, 0.9)
    assert rq.request_promotion(store, v3, reason="best").replaces == "churn@v2"
    with pytest.raises(NotFoundError, match="There is no promotion request 999"):
        rq.get_request(store, 999)


def test_an_approval_after_the_champion_moved_is_stale_and_names_who_moved_it(
        store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, v2, v3 = churn
    ready(store, v3, 0.92)
    req = rq.request_promotion(store, v3, reason="best so far")
    as_user(monkeypatch, "carol")
    rq.set_review_required(store, False, comment="a quick fix")
    registry.set_alias(store, v2, "champion", comment="hotfix")
    rq.set_review_required(store, True, comment="back to reviews")
    as_user(monkeypatch, "bob")
    with pytest.raises(StaleEditError) as err:
        rq.approve(store, req.id, comment="ok")
    assert re.fullmatch(rf"Not changed: carol moved champion to churn@v2 at {WHEN}, after request {req.id} was made\.",
                        err.value.message), err.value.message
    assert err.value.who == "carol" and f"modelyard model reject {req.id}" in err.value.hint
    assert rq.get_request(store, req.id).status == "open"
    assert registry.get_model(store, "churn").aliases["champion"] == 2
    assert rq.reject(store, req.id, comment="champion moved; request again").status == "rejected"


def test_failing_gates_block_an_approval_unless_forced(store: Store, churn: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    as_user(monkeypatch, "admin")
    rq.set_review_required(store, False, comment="edit the gates")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.95}}, comment="stricter")
    rq.set_review_required(store, True, comment="reviews again")
    as_user(monkeypatch, "alice")
    _, v2, _ = churn
    ready(store, v2)
    req = rq.request_promotion(store, v2, reason="better")
    as_user(monkeypatch, "bob")
    with pytest.raises(GateFailed, match=r"The gates of 'churn' block churn@v2 as champion: accuracy 0.9 of "
                                         r"churn@v2 is below the minimum 0.95\.") as err:
        rq.approve(store, req.id, comment="ok")
    assert err.value.exit_code == 3
    assert rq.get_request(store, req.id).status == "open" and registry.get_model(store, "churn").aliases["champion"] == 1
    done = rq.approve(store, req.id, comment="the business accepts 0.90 for March", force=True)
    assert done.status == "approved" and registry.get_model(store, "churn").aliases["champion"] == 2
    override = next(e for e in registry.timeline(store, "churn") if e["action"] == "gate_override")
    assert override["actor"] == "bob" and override["comment"] == "the business accepts 0.90 for March"
    assert rq.request_snapshot(store, req.id)["gate_report"]["passed"] is False


def test_reject_and_withdraw(store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, v2, v3 = churn
    ready(store, v2)
    ready(store, v3, 0.92)
    one = rq.request_promotion(store, v2, reason="better")
    two = rq.request_promotion(store, v3, reason="best")
    with pytest.raises(PermissionRefused, match="its author cannot reject it") as err:
        rq.reject(store, one.id, comment="no")
    assert f"modelyard model withdraw {one.id}" in err.value.hint
    as_user(monkeypatch, "bob")
    with pytest.raises(PermissionRefused, match=f"Request {two.id} is alice's; only its author can withdraw it"):
        rq.withdraw(store, two.id, comment="mine now")
    rejected = rq.reject(store, one.id, comment="the F group is worse")
    assert (rejected.status, rejected.decided_by) == ("rejected", "bob")
    assert rq.request_snapshot(store, one.id)["kind"] == "decision"
    as_user(monkeypatch, "alice")
    withdrawn = rq.withdraw(store, two.id, comment="retraining first")
    assert (withdrawn.status, withdrawn.decision_comment) == ("withdrawn", "retraining first")
    assert rq.request_snapshot(store, two.id)["kind"] == "request"  # no decision was made on it
    with pytest.raises(ModelyardError, match=f"Request {two.id} is withdrawn already"):
        rq.withdraw(store, two.id, comment="again")
    assert registry.get_model(store, "churn").aliases["champion"] == 1
    actions = [e["action"] for e in registry.timeline(store, "churn")][:4]
    assert actions == ["withdraw_request", "reject_request", "request_promotion", "request_promotion"]
    assert {r.status for r in rq.list_requests(store)} == {"rejected", "withdrawn"}
    assert rq.list_requests(store, name="churn", status="all") == rq.list_requests(store)
    with pytest.raises(ModelyardError, match="'closed' is not a request status"):
        rq.list_requests(store, status="closed")


def test_an_old_decision_replays_its_thresholds_and_numbers_after_they_changed(
        store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, v2, _ = churn
    ready(store, v2, 0.9)
    req = rq.request_promotion(store, v2, reason="better")
    as_user(monkeypatch, "bob")
    rq.approve(store, req.id, comment="ok")
    rq.set_review_required(store, False, comment="edit the gates")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.99}}, comment="stricter now")
    give_evidence(store, v2, 0.5)  # the evidence computed again, worse
    fill_card(store, v2, {"known_limitations": "Now also: not for 2027."})
    old = rq.request_snapshot(store, req.id)
    assert old["gates"] == {"min_metrics": {"accuracy": 0.85}}
    assert old["gate_report"]["checked"] == ["min accuracy >= 0.85"] and old["gate_report"]["passed"] is True
    assert old["evidence"]["metrics"][0]["candidate"]["value"] == 0.9
    assert old["card"]["known_limitations"] == CARD["known_limitations"]
    now = current_snapshot(store, v2)
    assert now["kind"] == "current" and now["gates"] == {"min_metrics": {"accuracy": 0.99}}
    assert now["gate_report"]["checked"] == ["min accuracy >= 0.99"]
    assert now["evidence"]["metrics"][0]["candidate"]["value"] == 0.5
    assert now["card"]["known_limitations"] == "Now also: not for 2027." and now["card_revision"] == 0


def test_approvers_are_told_by_email_and_webhook_and_a_failed_send_never_fails_the_request(
        store: Store, churn: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, v2, v3 = churn
    ready(store, v2)
    ready(store, v3, 0.92)
    as_user(monkeypatch, "admin")
    with SMTPServer() as smtp, WebhookServer() as hook:
        nt.set_email(store, host="127.0.0.1", port=smtp.port, security="none", sender="modelyard@example.com",
                     recipients=["approvers@example.com"])
        nt.set_webhook(store, url=hook.url)
        as_user(monkeypatch, "alice")
        req = rq.request_promotion(store, v2, reason="better recall")
        assert smtp.handler.arrived.wait(10)
    mail = smtp.messages[0]
    assert mail.rcpt_tos == ["approvers@example.com"] and mail.subject == "Review requested: churn@v2 as champion"
    assert "alice asks for churn@v2 as champion, replacing churn@v1." in mail.body
    assert f"modelyard model approve {req.id} --comment" in mail.body
    body = hook.bodies[0]
    assert (body["event"], body["request"], body["candidate"], body["requested_by"]) == \
        ("review.requested", req.id, "churn@v2", "alice")
    as_user(monkeypatch, "admin")
    nt.clear(store, "email")
    nt.set_webhook(store, url=f"http://127.0.0.1:{free_port()}/nobody-listens")
    as_user(monkeypatch, "alice")
    late = rq.request_promotion(store, v3, reason="best")  # the webhook is down: the request is made all the same
    assert rq.get_request(store, late.id).status == "open"
    failed = [n for n in nt.list_notifications(store) if n.event == "review.requested" and n.status != "sent"]
    assert len(failed) == 1 and failed[0].last_error


def test_two_approvals_at_once_move_champion_once_and_the_other_is_stale(store: Store, churn: list[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    _, v2, v3 = churn
    ready(store, v2)
    ready(store, v3, 0.92)
    ids = [rq.request_promotion(store, v2, reason="v2").id, rq.request_promotion(store, v3, reason="v3").id]
    as_user(monkeypatch, "bob")
    go = threading.Barrier(2, timeout=30)
    outcome: dict[int, object] = {}

    def decide(rid: int) -> None:
        go.wait()
        try:
            outcome[rid] = rq.approve(store, rid, comment="ok").status
        except StaleEditError as exc:
            outcome[rid] = exc

    threads = [threading.Thread(target=decide, args=(rid,)) for rid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(str(type(o).__name__) for o in outcome.values()) == ["StaleEditError", "str"], outcome
    (won,) = [rid for rid, o in outcome.items() if o == "approved"]
    (lost,) = [rid for rid, o in outcome.items() if isinstance(o, StaleEditError)]
    assert re.fullmatch(rf"Not changed: bob moved champion to churn@v{2 if won == ids[0] else 3} at {WHEN}, after "
                        rf"request {lost} was made\.", outcome[lost].message)
    assert registry.get_model(store, "churn").aliases["champion"] == (2 if won == ids[0] else 3)
    assert rq.get_request(store, lost).status == "open"
