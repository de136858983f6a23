"""``modelyard notify email|webhook|show|clear|test|list|deliver``: settings, a test message to real servers
on 127.0.0.1, exit codes and --json."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import cli, cli_json, run_modelyard, subprocess_env
from notify_servers import SMTPServer, WebhookServer, free_port

PASSWORD = "cli-pw-9d2e-never-stored"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _email_args(store_dir: Path, port: int, *extra: str) -> list[str]:
    return ["notify", "email", "--host", "127.0.0.1", "--port", str(port), "--security", "none",
            "--sender", "modelyard@example.com", "--to", "ops@example.com", "--to", "lead@example.com",
            *extra, "--store", str(store_dir)]


@pytest.mark.sqlite_only("reads store_meta from the SQLite file directly")
def test_email_settings_and_a_test_message(capsys, store_dir, monkeypatch) -> None:
    monkeypatch.setenv("MODELYARD_SMTP_PASSWORD", PASSWORD)
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        code, out, err = cli(capsys, *_email_args(store_dir, smtp.port, "--username", "bot"))
        assert code == 0, err
        assert f"go to ops@example.com, lead@example.com from modelyard@example.com through 127.0.0.1:{smtp.port}" \
               in out
        assert "read from $MODELYARD_SMTP_PASSWORD when sending (set)" in out
        code, out, err = cli(capsys, "notify", "test", "--store", str(store_dir))
        assert code == 0, err
        assert out.strip() == "e-mail: sent to ops@example.com, lead@example.com"
    [mail] = smtp.messages
    assert mail.subject == "Modelyard test notification" and mail.rcpt_tos == ["ops@example.com", "lead@example.com"]
    assert smtp.handler.logins == [("bot", PASSWORD)]
    code, data, _ = cli_json(capsys, "notify", "show", "--store", str(store_dir))
    assert code == 0 and data["channels"] == ["email"] and data["email"]["username"] == "bot"
    assert data["email"]["password"] == "read from $MODELYARD_SMTP_PASSWORD when sending (set)"
    assert PASSWORD not in json.dumps(data)
    with sqlite3.connect(store_dir / "modelyard.db") as db:
        meta = dict(db.execute("SELECT key, value FROM store_meta").fetchall())
    assert PASSWORD not in json.dumps(meta)
    code, data, _ = cli_json(capsys, "notify", "list", "--store", str(store_dir))
    assert code == 0 and [(r["event"], r["channel"], r["status"]) for r in data] == [("test", "email", "sent")]


def test_a_test_that_cannot_be_delivered_exits_1_saying_why(capsys, store_dir) -> None:
    port = free_port()
    assert cli(capsys, *_email_args(store_dir, port))[0] == 0
    code, out, err = cli(capsys, "notify", "test", "--channel", "email", "--store", str(store_dir))
    assert code == 1 and out == ""
    assert f"error: the test e-mail was not delivered after 3 attempts: cannot send through the SMTP server " \
           f"127.0.0.1:{port}: the connection was refused" in err
    code, data, _ = cli_json(capsys, "notify", "test", "--store", str(store_dir))
    assert code == 1 and data["delivered"] is False and data["notifications"][0]["status"] == "failed"
    code, out, _ = cli(capsys, "notify", "list", "--status", "failed", "--store", str(store_dir))
    assert code == 0 and out.count("failed") == 2 and "connection was refused" in out


def test_webhook_settings_slack_and_clear(capsys, store_dir) -> None:
    with WebhookServer() as hook:
        code, out, err = cli(capsys, "notify", "webhook", "--url", hook.url, "--format", "slack",
                             "--store", str(store_dir))
        assert code == 0, err
        assert "T0KEN" not in out and f"127.0.0.1:{hook.port}/hooks/…" in out
        code, data, _ = cli_json(capsys, "notify", "test", "--channel", "webhook", "--store", str(store_dir))
        assert code == 0 and data["delivered"] is True
    assert hook.bodies[0]["text"] == "Modelyard test notification" and hook.bodies[0]["blocks"]
    code, out, _ = cli(capsys, "notify", "show", "--store", str(store_dir))
    assert "e-mail: not set up (modelyard notify email)" in out and "format:  slack" in out
    code, data, _ = cli_json(capsys, "notify", "clear", "webhook", "--store", str(store_dir))
    assert code == 0 and data == {"channel": "webhook", "cleared": True}
    code, out, _ = cli(capsys, "notify", "clear", "webhook", "--store", str(store_dir))
    assert code == 0 and out.strip() == "Notifications by webhook were not set up."
    code, out, err = cli(capsys, "notify", "test", "--channel", "webhook", "--store", str(store_dir))
    assert code == 1 and "error: Notifications by webhook are not set up for this store." in err
    assert "modelyard notify webhook --url URL" in err


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "70000"], "notify.email.port must be a port number from 1 to 65535"),
    (["--sender", "nobody"], "notify.email.sender is not an e-mail address: 'nobody'"),
])
def test_bad_email_settings_are_usage_errors(capsys, store_dir, args, words) -> None:
    base = {"--host": "smtp.example.com", "--sender": "m@example.com", "--to": "a@example.com"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    code, out, err = cli(capsys, "notify", "email", *[x for kv in base.items() for x in kv], "--store", str(store_dir))
    assert code == 2 and words in err
    code, data, _ = cli_json(capsys, "notify", "show", "--store", str(store_dir))
    assert data["email"] is None


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_password_file_others_can_read_is_refused(capsys, store_dir, tmp_path) -> None:
    path = tmp_path / "pw"
    path.write_text(PASSWORD)
    path.chmod(0o644)
    code, _, err = cli(capsys, *_email_args(store_dir, 2525, "--username", "bot", "--password-file", str(path)))
    assert code == 2
    assert err.splitlines()[0] == f"error: The SMTP password file {path} can be read by other users; " \
                                  f"run 'chmod 600 {path}' first."
    path.chmod(0o600)
    code, out, _ = cli(capsys, *_email_args(store_dir, 2525, "--username", "bot", "--password-file", str(path)))
    assert code == 0 and f"read from the file {path} when sending" in out
    code, _, err = cli(capsys, *_email_args(store_dir, 2525, "--password-env", "X", "--password-file", str(path)))
    assert code == 2 and "not allowed with argument" in err


def test_list_and_deliver_with_nothing(capsys, store_dir) -> None:
    code, out, _ = cli(capsys, "notify", "list", "--store", str(store_dir))
    assert code == 0 and out.strip() == "No notifications."
    code, data, _ = cli_json(capsys, "notify", "deliver", "--store", str(store_dir))
    assert code == 0 and data == {"sent": 0, "failed": 0, "pending": 0}


def test_deliver_sends_what_waits_when_the_server_is_back(capsys, store_dir) -> None:
    """A notification that could not be sent waits; 'notify deliver' in another process sends it once due."""
    from modelyard.core import notify as nt
    from modelyard.core.store import Store
    from modelyard.core.store import models as m
    from sqlalchemy import update

    port = free_port()
    with Store.open(store_dir, create=False) as store:
        nt.set_email(store, host="127.0.0.1", port=port, security="none", sender="m@example.com",
                     recipients=["ops@example.com"])
        [nid] = nt.notify(store, "pipeline.failed", subject="churn-nightly failed", body="b")
        with store.write() as s:  # its next attempt is due now
            s.execute(update(m.Notification).values(next_attempt_at=m.utcnow()))
    with SMTPServer(port) as smtp:
        proc = run_modelyard("notify", "deliver", "--json", "--store", str(store_dir), env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"sent": 1, "failed": 0, "pending": 0}
    assert [msg.subject for msg in smtp.messages] == ["churn-nightly failed"]
