"""Where notifications go: the store's e-mail (SMTP) and webhook settings, and the SMTP password.

The settings are JSON in ``store_meta`` (keys ``notify.email`` and ``notify.webhook``), so every
machine that opens the store (the window, ``modelyard agent``, CI) sends to the same places::

    notify.email   {"host", "port", "security": "starttls" | "ssl" | "none", "sender",
                    "recipients": [...], "username", "password_env", "password_file"}
    notify.webhook {"url", "format": "json" | "slack", "timeout"}

**The SMTP password is never in the database.** It is read when a message is sent, from the
environment variable ``password_env`` names (default ``MODELYARD_SMTP_PASSWORD``) or from the
file ``password_file`` names, which only its owner may read (``chmod 600``); a file others can
read is refused. Every change is an audit event (``notify`` / ``email`` | ``webhook``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import Store, records, team
from modelyard.core.store import models as m

CHANNELS = ("email", "webhook")
SECURITY = ("starttls", "ssl", "none")
FORMATS = ("json", "slack")
DEFAULT_PASSWORD_ENV = "MODELYARD_SMTP_PASSWORD"
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_WEBHOOK_TIMEOUT = 5.0
MAX_WEBHOOK_TIMEOUT = 60.0
META_KEYS = {"email": "notify.email", "webhook": "notify.webhook"}
AUDIT_ENTITY = "notify"

_ADDRESS = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotifySettingsError(ModelyardError):
    """A notification setting is missing or not valid (the message names the field)."""

    exit_code = 2


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    security: str
    sender: str
    recipients: list[str]
    username: str | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    password_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def target(self) -> str:
        return ", ".join(self.recipients)


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    format: str = "json"
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def target(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class NotifySettings:
    """The store's channels; a channel not set up is None. ``problems`` names settings that could not be read."""

    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        return [c for c in CHANNELS if getattr(self, c) is not None]

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email.to_json() if self.email else None,
                "webhook": self.webhook.to_json() if self.webhook else None,
                "channels": self.channels, "problems": dict(self.problems)}


# --------------------------------------------------------------------------- validation


def _bad(field_name: str, problem: str, hint: str) -> NotifySettingsError:
    return NotifySettingsError(f"The notification setting {field_name} {problem}.", hint=hint)


def _text(data: dict[str, Any], key: str, prefix: str, hint: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _bad(f"{prefix}.{key}", "is missing", hint)
        return None
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise _bad(f"{prefix}.{key}", f"must be one line of text, not {value!r}", hint)
    return value.strip()


def _address(value: Any, field_name: str, hint: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
        raise _bad(field_name, f"is not an e-mail address: {value!r}", hint)
    return value.strip()


def validate_email(data: dict[str, Any], *, check_file: bool = True) -> EmailSettings:
    """Check ``data`` (the ``notify.email`` JSON) and return it as settings; raises NotifySettingsError
    naming the field and what to do. With ``check_file`` the password file must exist and be readable by
    its owner only (reading stored settings leaves that to the moment of sending, which records why)."""
    if not isinstance(data, dict):
        raise _bad("notify.email", "is not a JSON object", "Set it again with 'modelyard notify email'.")
    unknown = sorted(set(data) - {f for f in EmailSettings.__dataclass_fields__})
    if unknown:
        raise _bad(f"notify.email.{unknown[0]}", "is not a setting of e-mail notifications",
                   "Known settings: host, port, security, sender, recipients, username, password_env, password_file.")
    host = _text(data, "host", "notify.email", "Give the SMTP server's name with --host.")
    security = data.get("security") or "starttls"
    if security not in SECURITY:
        raise _bad("notify.email.security", f"must be one of {', '.join(SECURITY)}, not {security!r}",
                   "Use --security starttls (port 587), ssl (port 465) or none (a local relay).")
    port = data.get("port") if data.get("port") is not None else DEFAULT_PORTS[security]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _bad("notify.email.port", f"must be a port number from 1 to 65535, not {port!r}",
                   "Give the SMTP server's port with --port (587 for starttls, 465 for ssl).")
    sender = _address(_text(data, "sender", "notify.email", "Give the From address with --sender."),
                      "notify.email.sender", "Give the From address with --sender, e.g. --sender modelyard@example.com.")
    recipients = data.get("recipients")
    if isinstance(recipients, str):
        recipients = [r for r in re.split(r"[,;\s]+", recipients) if r]
    if not isinstance(recipients, list) or not recipients:
        raise _bad("notify.email.recipients", "is empty", "Give at least one recipient with --to.")
    to = list(dict.fromkeys(_address(r, "notify.email.recipients", "Give each recipient as --to name@example.com.")
                            for r in recipients))
    username = _text(data, "username", "notify.email", "Give the SMTP login with --username.", required=False)
    password_env = _text(data, "password_env", "notify.email", "Give a variable name with --password-env.",
                         required=False) or DEFAULT_PASSWORD_ENV
    if not _ENV_NAME.match(password_env):
        raise _bad("notify.email.password_env", f"is not an environment variable name: {password_env!r}",
                   "Give a name of letters, digits and _ with --password-env, e.g. MODELYARD_SMTP_PASSWORD.")
    password_file = _text(data, "password_file", "notify.email", "Give a file path with --password-file.",
                          required=False)
    if password_file is not None:
        password_file = str(Path(password_file).expanduser().absolute())
        if check_file:
            check_password_file(password_file)
    return EmailSettings(host=str(host), port=int(port), security=str(security), sender=sender, recipients=to,
                         username=username, password_env=password_env, password_file=password_file)


def validate_webhook(data: dict[str, Any]) -> WebhookSettings:
    """Check ``data`` (the ``notify.webhook`` JSON) and return it as settings (NotifySettingsError names the field)."""
    if not isinstance(data, dict):
        raise _bad("notify.webhook", "is not a JSON object", "Set it again with 'modelyard notify webhook'.")
    unknown = sorted(set(data) - {"url", "format", "timeout"})
    if unknown:
        raise _bad(f"notify.webhook.{unknown[0]}", "is not a setting of webhook notifications",
                   "Known settings: url, format, timeout.")
    url = _text(data, "url", "notify.webhook", "Give the address to POST to with --url.")
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad("notify.webhook.url", f"is not an http(s) address: {redact_url(str(url))!r}",
                   "Give a full address such as --url https://hooks.example.com/modelyard.")
    fmt = data.get("format") or "json"
    if fmt not in FORMATS:
        raise _bad("notify.webhook.format", f"must be json or slack, not {fmt!r}",
                   "Use --format json (a JSON object) or --format slack (a Slack-compatible body).")
    timeout = data.get("timeout") if data.get("timeout") is not None else DEFAULT_WEBHOOK_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_WEBHOOK_TIMEOUT:
        raise _bad("notify.webhook.timeout", f"must be a number of seconds above 0 and at most "
                                             f"{MAX_WEBHOOK_TIMEOUT:g}, not {timeout!r}",
                   "Use --timeout 5 (seconds).")
    return WebhookSettings(url=str(url), format=str(fmt), timeout=float(timeout))


def redact_url(url: str) -> str:
    """``url`` safe to show and record: no user, password or query, and only the first part of the path
    (a Slack webhook's path is its secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an address that cannot be read)"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" + ("/…" if len(segments) > 1 else "") if segments else ""
    return f"{parts.scheme}://{host}{port}{path}"


# --------------------------------------------------------------------------- the password


def check_password_file(path: str | os.PathLike[str]) -> None:
    """Refuse a password file that is missing, not a file, or readable by anyone but its owner."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise NotifySettingsError(f"Cannot read the SMTP password file {p}: {exc.strerror}.",
                                  hint="Give an existing file with --password-file.") from exc
    if not stat.S_ISREG(st.st_mode):
        raise NotifySettingsError(f"The SMTP password file {p} is not a file.",
                                  hint="Give a file holding only the password with --password-file.")
    if os.name != "nt":
        if st.st_mode & 0o077:
            raise NotifySettingsError(
                f"The SMTP password file {p} can be read by other users; run 'chmod 600 {p}' first.",
                hint="Only its owner may read a password file.")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise NotifySettingsError(f"The SMTP password file {p} belongs to another user.",
                                      hint="Use a password file of your own, readable only by you (chmod 600).")


def read_password(settings: EmailSettings) -> str | None:
    """The SMTP password: from ``password_file`` when set (checked: only its owner may read it), else the
    environment variable ``password_env``; None when there is none (then no login is tried without a username)."""
    if settings.password_file:
        check_password_file(settings.password_file)
        try:
            text = Path(settings.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NotifySettingsError(f"Cannot read the SMTP password file {settings.password_file}: {exc}.",
                                      hint="Check the file with --password-file.") from exc
        return text.rstrip("\r\n")
    value = os.environ.get(settings.password_env)
    return value if value else None


# --------------------------------------------------------------------------- reading and writing


def get_settings(store: Store) -> NotifySettings:
    """The store's notification channels (a stored setting that no longer validates is left out and named
    in ``problems``)."""
    with store.session() as s:
        rows = {r.key: r.value for r in s.scalars(select(m.StoreMeta).where(m.StoreMeta.key.in_(META_KEYS.values())))}
    found: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for channel, key in META_KEYS.items():
        if key not in rows:
            continue
        try:
            data = json.loads(rows[key])
            found[channel] = (validate_email(data, check_file=False) if channel == "email"
                              else validate_webhook(data))
        except (ValueError, ModelyardError) as exc:
            problems[channel] = getattr(exc, "message", None) or f"{key} is not valid JSON"
    return NotifySettings(email=found.get("email"), webhook=found.get("webhook"), problems=problems)


def _save(store: Store, channel: str, value: dict[str, Any] | None, summary: str | None) -> None:
    key = META_KEYS[channel]
    team.require(store, "manage", "Changing where notifications go")  # the store's settings: admins
    with store.write() as s:
        row = s.get(m.StoreMeta, key)
        before = None if row is None else "set"
        if value is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(m.StoreMeta(key=key, value=json.dumps(value, sort_keys=True)))
        else:
            row.value = json.dumps(value, sort_keys=True)
        records.audit(s, AUDIT_ENTITY, channel, "notify_settings" if value is not None else "notify_cleared",
                      from_value=before, to_value=summary, details=value)


def set_email(store: Store, *, host: str, sender: str, recipients: list[str] | str, port: int | None = None,
              security: str = "starttls", username: str | None = None, password_env: str | None = None,
              password_file: str | os.PathLike[str] | None = None) -> EmailSettings:
    """Validate and save the e-mail channel (audited). Never takes a password: it is read when sending."""
    if password_env and password_file:
        raise NotifySettingsError("Give either a password environment variable or a password file, not both.",
                                  hint="Use --password-env NAME or --password-file PATH.")
    data = {"host": host, "port": port, "security": security, "sender": sender, "recipients": recipients,
            "username": username, "password_env": password_env,
            "password_file": os.fspath(password_file) if password_file else None}
    settings = validate_email(data)
    _save(store, "email", settings.to_json(), f"{settings.host}:{settings.port} to {settings.target}")
    return settings


def set_webhook(store: Store, *, url: str, format: str = "json", timeout: float | None = None) -> WebhookSettings:
    """Validate and save the webhook channel (audited)."""
    settings = validate_webhook({"url": url, "format": format, "timeout": timeout})
    _save(store, "webhook", settings.to_json(), f"{settings.format} to {settings.target}")
    return settings


def clear(store: Store, channel: str) -> bool:
    """Forget a channel's settings (audited); False when it was not set up."""
    if channel not in CHANNELS:
        raise NotifySettingsError(f"There is no notification channel {channel!r}.",
                                  hint=f"Use one of {', '.join(CHANNELS)}.")
    with store.session() as s:
        present = s.get(m.StoreMeta, META_KEYS[channel]) is not None
    if present:
        _save(store, channel, None, None)
    return present
