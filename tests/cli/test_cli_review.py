"""``modelyard store review``, ``modelyard model request | requests | approve | reject | withdraw`` on a store that
requires a review (issue 16), and their exit codes: 0 done, 1 refused, 2 a bad command line, 3 gates blocked.
On SQLite and PostgreSQL (tests/backends.py); ``MODELYARD_USER`` names who acts. The team flow with three
logins: test_cli_review_team.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from review_helpers import make_versions, ready


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``--store`` of a store with churn@v1 champion, v2 (0.9, ready for a request) and gates min accuracy 0.95."""
    root = tmp_path / "store"
    with Store.open(root) as store:
        v1, v2 = make_versions(store, [0.8, 0.9])
        registry.set_alias(store, v1, "champion", comment="first")
        registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.95}}, comment="strict")
        ready(store, v2)
    return ["--store", str(root)]


def test_a_review_is_required_requested_blocked_by_gates_and_forced(churn: list[str], capsys, monkeypatch) -> None:
    code, data, _ = cli_json(capsys, "store", "review", *churn)
    assert code == 0 and data == {"review_required": False, "you_need_review": False}
    code, _, err = cli(capsys, "store", "review", "--require", *churn)
    assert code == 1 and "needs a short comment" in err
    code, out, _ = cli(capsys, "store", "review", "--require", "--comment", "auditors", *churn)
    assert code == 0 and out.startswith("Review: every move of champion or into Production needs an approved request.")

    monkeypatch.setenv("MODELYARD_USER", "alice")
    code, _, err = cli(capsys, "model", "alias", "churn@v2", "champion", "--comment", "mine", *churn)
    assert code == 1
    assert err.splitlines()[0] == ("error: Moving 'champion' needs an approved request: this store requires a review "
                                   "of every promotion (review.required); request it with 'modelyard model request "
                                   "churn@v2 --reason \"why\"'.")
    code, req, _ = cli_json(capsys, "model", "request", "churn@v2", "--reason", "better on March", *churn)
    assert code == 0 and req["status"] == "open" and req["replaces"] == "churn@v1"
    rid = str(req["id"])
    code, out, _ = cli(capsys, "model", "requests", *churn)
    assert code == 0 and out.splitlines()[0].split()[:4] == ["ID", "STATUS", "CANDIDATE", "TARGET"]
    assert out.splitlines()[1].split()[:5] == [rid, "open", "churn@v2", "champion", "churn@v1"]
    code, _, err = cli(capsys, "model", "approve", rid, "--comment", "mine", *churn)
    assert code == 1 and f"error: You (alice) made request {rid}; its author cannot approve it." in err

    monkeypatch.setenv("MODELYARD_USER", "bob")
    code, data, err = cli_json(capsys, "model", "approve", rid, "--comment", "ok", *churn)
    assert code == 3 and "accuracy 0.9 of churn@v2 is below the minimum 0.95" in data["error"]["message"]
    code, out, _ = cli(capsys, "model", "approve", rid, "--force", "--comment", "accepted for March", *churn)
    assert code == 0 and out.strip() == (f"Approved request {rid}: churn@v2 as champion, replacing churn@v1: "
                                         "churn@v2 is now champion.")
    code, out, _ = cli(capsys, "model", "requests", rid, *churn)
    assert code == 0
    assert "status:    approved by bob at" in out and "accepted for March" in out
    assert "gates: failed (min accuracy >= 0.95)" in out and "accuracy 0.9 of churn@v2 is below" in out
    assert "accuracy  0.9 [0.88, 0.92]  0.8 [0.78, 0.82]" in out and "accuracy by sex: gap 0.02, ratio 0.98 (worst F, best M)" in out
    code, shown, _ = cli_json(capsys, "model", "requests", rid, "--which", "request", *churn)
    assert shown["request"]["status"] == "approved" and shown["snapshot"]["kind"] == "request"
    assert shown["snapshot"]["by"] == "alice" and shown["snapshot"]["gates"] == {"min_metrics": {"accuracy": 0.95}}
    code, out, _ = cli(capsys, "model", "requests", *churn)
    assert code == 0 and out.strip() == "No open promotion requests. ('--status all' lists every one.)"
    code, data, _ = cli_json(capsys, "model", "requests", "--status", "all", "--model", "churn", *churn)
    assert [r["status"] for r in data["requests"]] == ["approved"]


def test_reject_withdraw_and_usage_errors(churn: list[str], capsys, monkeypatch) -> None:
    with Store.open(Path(churn[1])) as store:
        v3 = make_versions(store, [0.97])[0]
        ready(store, v3, 0.97)
    monkeypatch.setenv("MODELYARD_USER", "alice")
    _, one, _ = cli_json(capsys, "model", "request", "churn@v2", "--reason", "r", *churn)
    _, two, _ = cli_json(capsys, "model", "request", v3, "--target", "Production", "--reason", "go live", *churn)
    code, _, err = cli(capsys, "model", "reject", str(one["id"]), "--comment", "no", *churn)
    assert code == 1 and "its author cannot reject it" in err and f"modelyard model withdraw {one['id']}" in err
    code, out, _ = cli(capsys, "model", "withdraw", str(one["id"]), "--comment", "later", *churn)
    assert code == 0 and out.strip() == f"Withdrew request {one['id']}: churn@v2 as champion, replacing churn@v1."
    monkeypatch.setenv("MODELYARD_USER", "bob")
    code, out, _ = cli(capsys, "model", "reject", str(two["id"]), "--comment", "not yet", *churn)
    assert code == 0 and out.strip() == f"Rejected request {two['id']}: churn@v3 as Production."
    code, _, err = cli(capsys, "model", "approve", str(two["id"]), "--comment", "changed my mind", *churn)
    assert code == 1 and f"Request {two['id']} is rejected already (by bob at" in err
    for args in (["model", "approve", str(two["id"])], ["model", "requests", "--status", "closed"],
                 ["model", "request", "churn@v2", "--target", "Staging", "--reason", "x"],
                 ["model", "request", "churn@v2"], ["model", "reject", "zero", "--comment", "x"]):
        code, _, _ = cli(capsys, *args, *churn)
        assert code == 2, args
    code, _, err = cli(capsys, "model", "requests", "999", *churn)
    assert code == 1 and "There is no promotion request 999." in err
