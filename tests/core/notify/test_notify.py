"""Notifications delivered to real servers on 127.0.0.1: an aiosmtpd SMTP server and an http.server webhook;
failures recorded and retried, never raised."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from modelyard.core import notify as nt
from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import models as m
from notify_servers import SMTPServer, WebhookServer, free_port
from sqlalchemy import select


def _email(store, port: int, **extra):
    return nt.set_email(store, host="127.0.0.1", port=port, security="none", sender="modelyard@example.com",
                        recipients=["ops@example.com", "lead@example.com"], **extra)


def _rows(store) -> list[m.Notification]:
    with store.session() as s:
        return list(s.scalars(select(m.Notification).order_by(m.Notification.id)))


def _later(minutes: float) -> dt.datetime:
    return m.utcnow() + dt.timedelta(minutes=minutes)


def test_email_reaches_a_real_smtp_server(store) -> None:
    with SMTPServer() as smtp:
        _email(store, smtp.port)
        ids = nt.notify(store, "pipeline.failed", subject="churn-nightly failed at step train",
                        body="The step train failed: the dataset has no column 'churned'.\nResume it: modelyard pipeline resume 4",
                        payload={"pipeline": "churn-nightly", "run_id": 4})
    assert len(ids) == 1
    [got] = smtp.messages
    assert got.subject == "churn-nightly failed at step train"
    assert got.mail_from == "modelyard@example.com"
    assert got.rcpt_tos == ["ops@example.com", "lead@example.com"]
    assert "the dataset has no column 'churned'" in got.body
    assert "modelyard pipeline resume 4" in got.body
    assert got.message.get_content_type() == "text/plain"
    [row] = nt.list_notifications(store)
    assert (row.id, row.channel, row.status, row.attempts, row.last_error) == (ids[0], "email", "sent", 1, None)
    assert row.target == "ops@example.com, lead@example.com"
    assert row.sent_at is not None and row.next_attempt_at is None
    assert row.to_json()["payload"] == {"pipeline": "churn-nightly", "run_id": 4}


def test_recipients_given_replace_the_stores(store) -> None:
    with SMTPServer() as smtp:
        _email(store, smtp.port)
        nt.notify(store, "pipeline.succeeded", subject="ok", body="done", recipients=["owner@example.com"])
    assert smtp.messages[0].rcpt_tos == ["owner@example.com"]
    assert nt.list_notifications(store)[0].target == "owner@example.com"


def test_webhook_receives_json_with_the_payload(store) -> None:
    with WebhookServer() as hook:
        nt.set_webhook(store, url=hook.url)
        ids = nt.notify(store, "check.drift", subject="Drift in churn@v1", body="age drifts",
                        payload={"check_id": 7, "drifted": ["age"], "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
                        check_id=None)
    assert len(ids) == 1
    [body] = hook.bodies
    assert body == {"event": "check.drift", "subject": "Drift in churn@v1", "text": "age drifts", "check_id": 7,
                    "drifted": ["age"], "at": "2026-01-02 00:00:00+00:00"}
    assert hook.headers[0]["Content-Type"].startswith("application/json")
    row = nt.list_notifications(store)[0]
    assert row.status == "sent" and row.channel == "webhook"
    assert "T0KEN" not in (row.target or "")  # the path of a webhook is its secret: not recorded


def test_webhook_slack_body(store) -> None:
    with WebhookServer() as hook:
        nt.set_webhook(store, url=hook.url, format="slack")
        nt.notify(store, "pipeline.blocked", subject="churn-nightly blocked by the gate",
                  body="auc 0.71 < 0.80 <required>", payload={"run_id": 3})
    [body] = hook.bodies
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "churn-nightly blocked by the gate"
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert texts == ["*churn-nightly blocked by the gate*", "auc 0.71 &lt; 0.80 &lt;required&gt;"]
    assert body["blocks"][-1]["type"] == "context"


def test_one_row_per_channel_and_channels_narrow(store) -> None:
    with SMTPServer() as smtp, WebhookServer() as hook:
        _email(store, smtp.port)
        nt.set_webhook(store, url=hook.url)
        both = nt.notify(store, "pipeline.failed", subject="s", body="b")
        only = nt.notify(store, "pipeline.failed", subject="s2", body="b", channels=["webhook"])
    assert len(both) == 2 and len(only) == 1
    assert [(r.channel, r.status) for r in _rows(store)] == [("email", "sent"), ("webhook", "sent"), ("webhook", "sent")]
    assert len(smtp.messages) == 1 and len(hook.bodies) == 2


def test_nothing_set_up_records_nothing(store) -> None:
    assert nt.notify(store, "pipeline.failed", subject="s", body="b") == []
    assert _rows(store) == []


def test_smtp_closed_port_is_retried_recorded_and_never_raised(store) -> None:
    port = free_port()
    _email(store, port)
    t0 = time.monotonic()
    [nid] = nt.notify(store, "pipeline.failed", subject="churn failed", body="b")
    took = time.monotonic() - t0
    assert 0.6 < took < 10  # three attempts, 0.2 s and 0.5 s apart
    [row] = _rows(store)
    assert row.status == "pending" and row.attempts == nt.INLINE_ATTEMPTS
    assert f"127.0.0.1:{port}" in row.last_error and "refused" in row.last_error
    assert row.next_attempt_at is not None and row.sent_at is None
    # not due yet: nothing happens
    assert nt.deliver_pending(store) == {"sent": 0, "failed": 0, "pending": 1}
    # the later attempts fail too, then it is given up: failed, with the last error
    assert nt.deliver_pending(store, now=_later(2)) == {"sent": 0, "failed": 0, "pending": 1}
    assert nt.deliver_pending(store, now=_later(10)) == {"sent": 0, "failed": 1, "pending": 0}
    [row] = _rows(store)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", nt.MAX_ATTEMPTS, None)
    assert "refused" in row.last_error
    assert nt.deliver_pending(store, now=_later(60)) == {"sent": 0, "failed": 0, "pending": 0}


def test_a_pending_email_is_delivered_once_the_server_is_back(store) -> None:
    port = free_port()
    _email(store, port)
    [nid] = nt.notify(store, "check.drift", subject="Drift in churn@v1", body="age drifts")
    assert _rows(store)[0].status == "pending"
    with SMTPServer(port) as smtp:
        assert nt.deliver_pending(store, now=_later(2)) == {"sent": 1, "failed": 0, "pending": 0}
    assert [msg.subject for msg in smtp.messages] == ["Drift in churn@v1"]
    [row] = _rows(store)
    assert (row.status, row.attempts) == ("sent", nt.INLINE_ATTEMPTS + 1)
    assert row.sent_at is not None and row.next_attempt_at is None


def test_webhook_500_then_back(store) -> None:
    with WebhookServer(status=500) as hook:
        nt.set_webhook(store, url=hook.url)
        [nid] = nt.notify(store, "pipeline.failed", subject="s", body="b")
        assert len(hook.bodies) == nt.INLINE_ATTEMPTS  # each attempt reached the server
        [row] = _rows(store)
        assert row.status == "pending" and "HTTP 500" in row.last_error
        assert "T0KEN" not in row.last_error
        hook.status = 200
        assert nt.deliver_pending(store, now=_later(2)) == {"sent": 1, "failed": 0, "pending": 0}
    assert _rows(store)[0].status == "sent"


def test_webhook_closed_port_fails_after_the_last_attempt(store) -> None:
    nt.set_webhook(store, url=f"http://127.0.0.1:{free_port()}/hook")
    assert nt.notify(store, "pipeline.failed", subject="s", body="b")
    for minutes in (2, 10):
        nt.deliver_pending(store, now=_later(minutes))
    [row] = _rows(store)
    assert (row.status, row.attempts) == ("failed", nt.MAX_ATTEMPTS)
    assert "cannot reach the webhook http://127.0.0.1" in row.last_error


def test_a_webhook_that_does_not_answer_is_cut_off(store) -> None:
    """An accepted connection that never answers is bounded by the timeout, not waited on forever."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        nt.set_webhook(store, url=f"http://127.0.0.1:{silent.getsockname()[1]}/hook", timeout=0.3)
        t0 = time.monotonic()
        nt.notify(store, "pipeline.failed", subject="s", body="b")
        assert time.monotonic() - t0 < 5
    [row] = _rows(store)
    assert row.status == "pending" and "did not answer within 0.3 s" in row.last_error


def test_deliver_false_leaves_rows_for_deliver_pending(store) -> None:
    with WebhookServer() as hook:
        nt.set_webhook(store, url=hook.url)
        [nid] = nt.notify(store, "pipeline.succeeded", subject="s", body="b", deliver=False)
        assert hook.bodies == [] and _rows(store)[0].status == "pending"
        assert nt.deliver_pending(store) == {"sent": 1, "failed": 0, "pending": 0}
    assert len(hook.bodies) == 1


def test_two_processes_delivering_at_once_send_a_row_once(store) -> None:
    """Two deliverers (the agent and the window) racing over the same due rows: each row is sent once."""
    with WebhookServer() as hook:
        nt.set_webhook(store, url=hook.url)
        for i in range(6):
            nt.notify(store, "pipeline.succeeded", subject=f"s{i}", body="b", deliver=False)
        results: list[dict[str, int]] = []
        workers = [threading.Thread(target=lambda: results.append(nt.deliver_pending(store))) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
    assert sum(r["sent"] for r in results) == 6
    assert sorted(b["subject"] for b in hook.bodies) == [f"s{i}" for i in range(6)]


def test_notify_never_raises_even_when_the_store_cannot_be_written(store, monkeypatch) -> None:
    nt.set_webhook(store, url=f"http://127.0.0.1:{free_port()}/hook")
    nt.notify(store, "pipeline.failed", subject="waiting", body="b", deliver=False)

    def broken_write():
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "write", broken_write)
    assert nt.notify(store, "pipeline.failed", subject="s", body="b") == []
    assert nt.deliver_pending(store) == {"sent": 0, "failed": 0, "pending": 0}


def test_a_channel_removed_after_recording_fails_with_a_reason(store) -> None:
    nt.set_webhook(store, url=f"http://127.0.0.1:{free_port()}/hook")
    nt.notify(store, "pipeline.failed", subject="s", body="b")
    nt.clear(store, "webhook")
    nt.deliver_pending(store, now=_later(2))
    nt.deliver_pending(store, now=_later(10))
    [row] = _rows(store)
    assert row.status == "failed" and "no longer set up" in row.last_error


def test_send_test_reports_delivery(store) -> None:
    with SMTPServer() as smtp:
        nt.set_email(store, host="127.0.0.1", port=smtp.port, security="none", sender="m@example.com",
                     recipients="a@example.com, b@example.com")
        [info] = nt.send_test(store, "email")
    assert info.status == "sent" and info.event == "test"
    assert smtp.messages[0].subject == "Modelyard test notification"
    # a test that cannot be delivered fails at once: it is not retried later
    _email(store, free_port())
    [info] = nt.send_test(store, "email")
    assert info.status == "failed" and info.attempts == nt.INLINE_ATTEMPTS and info.next_attempt_at is None
    with pytest.raises(ModelyardError, match="webhook are not set up"):
        nt.send_test(store, "webhook")



def test_a_refusal_that_trying_again_cannot_fix_is_not_retried_at_once(store) -> None:
    """A 4xx answer (a wrong address) is tried once now; the later attempts still come (it may be fixed)."""
    with WebhookServer(status=404) as hook:
        nt.set_webhook(store, url=hook.url)
        nt.notify(store, "pipeline.failed", subject="s", body="b")
        assert len(hook.bodies) == 1
    [row] = _rows(store)
    assert (row.status, row.attempts) == ("pending", 1) and "HTTP 404" in row.last_error
    assert row.next_attempt_at is not None


def test_non_ascii_subject_and_body_arrive_intact(store) -> None:
    with SMTPServer() as smtp:
        _email(store, smtp.port)
        nt.notify(store, "check.drift", subject="Drift in café@v2: batch März — ß",
                  body="Spalten: größe, straße\nnext line", payload={})
    [got] = smtp.messages
    assert got.subject == "Drift in café@v2: batch März — ß"
    assert got.body.splitlines() == ["Spalten: größe, straße", "next line"]


def test_a_subject_is_one_short_line(store) -> None:
    with SMTPServer() as smtp:
        _email(store, smtp.port)
        nt.notify(store, "pipeline.failed", subject="first\r\nBcc: evil@example.com\n" + "x" * 400, body="b")
    [got] = smtp.messages
    assert got.rcpt_tos == ["ops@example.com", "lead@example.com"] and got.message["Bcc"] is None
    assert got.subject.startswith("first Bcc: evil@example.com x") and len(got.subject) <= 200


@pytest.mark.parametrize(("security", "words"), [
    ("starttls", "does not support STARTTLS; use --security ssl or none"),
    ("ssl", "TLS with the SMTP server 127.0.0.1:"),
])
def test_tls_against_a_plain_server_says_what_to_change(store, security, words) -> None:
    with SMTPServer() as smtp:
        nt.set_email(store, host="127.0.0.1", port=smtp.port, security=security, sender="m@example.com",
                     recipients=["ops@example.com"])
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    assert smtp.messages == []
    [row] = _rows(store)
    assert row.status == "pending" and words in row.last_error


def test_a_redirect_is_not_a_delivery(store) -> None:
    with WebhookServer(status=302) as hook:
        nt.set_webhook(store, url=hook.url)
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    [row] = _rows(store)
    assert row.status == "pending" and "HTTP 302" in row.last_error
