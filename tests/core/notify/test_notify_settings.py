"""The store's notification settings: validated with messages naming the field, audited, and never holding
the SMTP password (read from the environment or an owner-only file when sending)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from modelyard.core import notify as nt
from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import models as m
from notify_servers import SMTPServer
from sqlalchemy import select

PASSWORD = "pw-Zq81-never-stored"
# the test server takes a login over plain text (on 127.0.0.1); aiosmtpd warns about that
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _raw_meta(store) -> dict[str, str]:
    """store_meta read straight from the database file, not through the ORM."""
    with sqlite3.connect(store.sqlite_file) as db:
        return dict(db.execute("SELECT key, value FROM store_meta").fetchall())


def _database_bytes(store) -> bytes:
    """Every byte of the store's database (and its write-ahead log)."""
    data = b""
    for suffix in ("", "-wal"):
        path = Path(f"{store.sqlite_file}{suffix}")
        if path.exists():
            data += path.read_bytes()
    return data


def _email(store, port: int, **extra):
    return nt.set_email(store, host="127.0.0.1", port=port, security="none", sender="modelyard@example.com",
                        recipients=["ops@example.com"], username="modelyard", **extra)


def _password_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(mode)
    return path


def test_settings_round_trip_and_are_audited(store) -> None:
    nt.set_email(store, host="smtp.example.com", security="starttls", sender="modelyard@example.com",
                 recipients=["ops@example.com", "ops@example.com", "lead@example.com"], username="bot")
    nt.set_webhook(store, url="https://hooks.slack.com/services/T000/B000/XXXX", format="slack")
    got = nt.get_settings(store)
    assert got.channels == ["email", "webhook"]
    assert got.email.port == 587  # starttls's port when none is given
    assert got.email.recipients == ["ops@example.com", "lead@example.com"]
    assert got.email.password_env == "MODELYARD_SMTP_PASSWORD" and got.email.password_file is None
    assert got.webhook.format == "slack" and got.webhook.timeout == 5.0
    meta = _raw_meta(store)
    assert json.loads(meta["notify.email"])["host"] == "smtp.example.com"
    assert json.loads(meta["notify.webhook"])["url"].endswith("/XXXX")
    with store.session() as s:
        events = [(e.entity_type, e.entity_id, e.action) for e in s.scalars(
            select(m.AuditEvent).where(m.AuditEvent.entity_type == "notify").order_by(m.AuditEvent.id))]
    assert events == [("notify", "email", "notify_settings"), ("notify", "webhook", "notify_settings")]
    assert nt.clear(store, "webhook") is True
    assert nt.clear(store, "webhook") is False
    assert nt.get_settings(store).channels == ["email"]
    assert "notify.webhook" not in _raw_meta(store)
    with store.session() as s:
        last = s.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id.desc())).first()
    assert (last.entity_id, last.action) == ("webhook", "notify_cleared")


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"port": 0}, "notify.email.port", "1 to 65535"),
    ({"port": "25"}, "notify.email.port", "1 to 65535"),
    ({"security": "tls"}, "notify.email.security", "starttls, ssl, none"),
    ({"sender": "modelyard"}, "notify.email.sender", "not an e-mail address"),
    ({"recipients": []}, "notify.email.recipients", "is empty"),
    ({"recipients": ["ok@example.com", "nobody"]}, "notify.email.recipients", "'nobody'"),
    ({"host": " "}, "notify.email.host", "is missing"),
    ({"host": "smtp\nevil"}, "notify.email.host", "one line"),
    ({"password_env": "MY-PASSWORD"}, "notify.email.password_env", "environment variable name"),
])
def test_email_settings_are_validated_naming_the_field(store, change, field, words) -> None:
    data = {"host": "smtp.example.com", "sender": "m@example.com", "recipients": ["ops@example.com"]} | change
    with pytest.raises(nt.NotifySettingsError) as err:
        nt.set_email(store, **data)
    assert field in err.value.message and words in err.value.message
    assert err.value.hint and "\n" not in err.value.message
    assert nt.get_settings(store).email is None  # nothing written


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"url": "ftp://example.com/x"}, "notify.webhook.url", "http(s) address"),
    ({"url": "hooks.example.com/x"}, "notify.webhook.url", "http(s) address"),
    ({"format": "teams"}, "notify.webhook.format", "json or slack"),
    ({"timeout": 0}, "notify.webhook.timeout", "above 0"),
    ({"timeout": 600}, "notify.webhook.timeout", "at most 60"),
])
def test_webhook_settings_are_validated_naming_the_field(store, change, field, words) -> None:
    with pytest.raises(nt.NotifySettingsError) as err:
        nt.set_webhook(store, **({"url": "https://hooks.example.com/x"} | change))
    assert field in err.value.message and words in err.value.message
    assert nt.get_settings(store).webhook is None


def test_a_damaged_stored_setting_is_named_not_used(store) -> None:
    with store.write() as s:
        s.add(m.StoreMeta(key="notify.webhook", value=json.dumps({"url": "gopher://x"})))
    got = nt.get_settings(store)
    assert got.webhook is None and "notify.webhook.url" in got.problems["webhook"]
    with pytest.raises(ModelyardError, match="notify.webhook.url"):
        nt.send_test(store, "webhook")


def test_password_from_the_environment_logs_in_and_is_never_stored(store, monkeypatch) -> None:
    monkeypatch.setenv("MODELYARD_SMTP_PASSWORD", PASSWORD)
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        _email(store, smtp.port)
        nt.notify(store, "pipeline.failed", subject="churn failed", body="b")
    assert smtp.handler.logins == [("modelyard", PASSWORD)]
    assert [msg.subject for msg in smtp.messages] == ["churn failed"]
    assert nt.list_notifications(store)[0].status == "sent"
    assert all(PASSWORD not in v for v in _raw_meta(store).values())
    assert PASSWORD.encode() not in _database_bytes(store)


def test_a_named_environment_variable(store, monkeypatch) -> None:
    monkeypatch.setenv("TEAM_SMTP_PW", PASSWORD)
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        _email(store, smtp.port, password_env="TEAM_SMTP_PW")
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    assert smtp.handler.logins == [("modelyard", PASSWORD)]


def test_a_wrong_password_is_recorded_not_raised(store, monkeypatch) -> None:
    monkeypatch.setenv("MODELYARD_SMTP_PASSWORD", "wrong")
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        _email(store, smtp.port)
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    assert smtp.messages == []
    row = nt.list_notifications(store)[0]
    assert row.status == "pending" and "refused the login of modelyard" in row.last_error
    assert "wrong" not in row.last_error


def test_no_password_anywhere_says_where_to_put_it(store, monkeypatch) -> None:
    monkeypatch.delenv("MODELYARD_SMTP_PASSWORD", raising=False)
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        _email(store, smtp.port)
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    row = nt.list_notifications(store)[0]
    assert "set the environment variable MODELYARD_SMTP_PASSWORD" in row.last_error


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_password_from_an_owner_only_file(store, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MODELYARD_SMTP_PASSWORD", raising=False)
    path = _password_file(tmp_path, 0o600)
    with SMTPServer(auth=True, password=PASSWORD) as smtp:
        settings = _email(store, smtp.port, password_file=path)
        assert settings.password_file == str(path)
        assert nt.read_password(settings) == PASSWORD  # the line break at the end is not part of it
        nt.notify(store, "pipeline.failed", subject="s", body="b")
    assert smtp.handler.logins == [("modelyard", PASSWORD)]
    assert json.loads(_raw_meta(store)["notify.email"])["password_file"] == str(path)
    assert PASSWORD.encode() not in _database_bytes(store)


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_password_file_others_can_read_is_refused(store, tmp_path) -> None:
    path = _password_file(tmp_path, 0o644)
    with pytest.raises(nt.NotifySettingsError) as err:
        _email(store, 2525, password_file=path)
    assert str(path) in err.value.message and f"chmod 600 {path}" in err.value.message
    assert nt.get_settings(store).email is None
    # made readable by others after it was set up: refused when sending, and recorded
    path.chmod(0o600)
    _email(store, 2525, password_file=path)
    path.chmod(0o640)
    assert nt.notify(store, "pipeline.failed", subject="s", body="b")
    row = nt.list_notifications(store)[0]
    assert row.status == "pending" and "chmod 600" in row.last_error and str(path) in row.last_error


def test_a_missing_password_file_is_refused(store, tmp_path) -> None:
    with pytest.raises(nt.NotifySettingsError, match="Cannot read the SMTP password file"):
        _email(store, 2525, password_file=tmp_path / "nope")


def test_env_and_file_together_are_refused(store, tmp_path) -> None:
    with pytest.raises(nt.NotifySettingsError, match="not both"):
        _email(store, 2525, password_env="X", password_file=_password_file(tmp_path, 0o600))
