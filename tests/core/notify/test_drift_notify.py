"""A drift check that finds drift notifies (event check.drift) through the store's channels; an ok check
does not; a broken channel never fails the check."""

from __future__ import annotations

from factories import (
    check_file,
    churn_frame,
    drifted_batch,
    train_churn_model,
    write_batch,
)
from modelyard.core import notify as nt
from modelyard.core.jobs.runner import run_job
from modelyard.core.monitoring import drift
from modelyard.core.monitoring.drift.check import notify_drift
from notify_servers import SMTPServer, WebhookServer, free_port


def test_a_drifting_batch_notifies_and_an_ok_one_does_not(store, tmp_path) -> None:
    info = train_churn_model(store)
    with SMTPServer() as smtp, WebhookServer() as hook:
        nt.set_email(store, host="127.0.0.1", port=smtp.port, security="none", sender="modelyard@example.com",
                     recipients=["ops@example.com"])
        nt.set_webhook(store, url=hook.url)
        ok = check_file(store, write_batch(tmp_path, churn_frame(300, seed=7), "calm.csv"))
        assert ok["verdict"] == "ok"
        assert smtp.messages == [] and hook.bodies == []
        assert nt.list_notifications(store) == []
        found = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    assert found["verdict"] == "drift"
    [mail] = smtp.messages
    assert mail.subject == f"Drift in {info.ref}: batch {found['batch_ref']}"
    assert mail.rcpt_tos == ["ops@example.com"]
    assert f"Drift check {found['check_id']} of {info.ref}" in mail.body
    assert "Drifted columns: " + ", ".join(found["drifted"]) in mail.body
    assert f"modelyard monitor show {found['check_id']}" in mail.body
    [body] = hook.bodies
    assert body["event"] == "check.drift" and body["check_id"] == found["check_id"]
    assert body["drifted"] == found["drifted"] and body["ref"] == info.ref
    rows = nt.list_notifications(store)
    assert sorted(r.channel for r in rows) == ["email", "webhook"]
    assert all(r.check_id == found["check_id"] and r.status == "sent" for r in rows)


def test_a_broken_channel_never_fails_the_check(store, tmp_path) -> None:
    train_churn_model(store)
    nt.set_webhook(store, url=f"http://127.0.0.1:{free_port()}/hook")
    outcome = run_job(store, drift.check_spec("churn@champion", batch_path=write_batch(tmp_path, drifted_batch())))
    assert outcome.status == "succeeded" and outcome.result["verdict"] == "drift"
    [row] = nt.list_notifications(store)
    assert row.status == "pending" and row.check_id == outcome.result["check_id"] and row.last_error


def test_the_hook_survives_a_summary_it_cannot_read(store) -> None:
    lines: list[str] = []
    assert notify_drift(store, {"verdict": "drift"}, log=lines.append) == []
    assert lines and lines[0].startswith("Could not send the drift notification")
