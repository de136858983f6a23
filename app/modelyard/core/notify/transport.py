"""Sending one message once: e-mail through SMTP (smtplib) and a webhook POST (urllib).

Each send is bounded in time (socket timeouts) and raises :class:`DeliveryError` with a one-line
reason on any failure; retrying and recording are :mod:`modelyard.core.notify.service`'s job.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.notify.settings import (
    EmailSettings,
    WebhookSettings,
    read_password,
    redact_url,
)

SMTP_TIMEOUT = 5.0
MAX_SUBJECT = 200
SLACK_SECTION_LIMIT = 2900  # Slack refuses a section text over 3000 characters


class DeliveryError(Exception):
    """One attempt to deliver a message failed; ``str(err)`` says why in one line. ``permanent``: trying
    again at once cannot help (a missing password, a refused password file, a 4xx answer); later
    attempts still happen, as the settings may be fixed meanwhile."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --------------------------------------------------------------------------- e-mail


def build_email(settings: EmailSettings, subject: str, body: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = one_line(subject)
    msg["From"] = settings.sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[-1])
    msg["X-Mailer"] = f"Modelyard {__version__}"
    msg.set_content(body if body.endswith("\n") else body + "\n")
    return msg


def send_email(settings: EmailSettings, subject: str, body: str, recipients: list[str] | None = None) -> None:
    """Send a plain-text e-mail to ``recipients`` (default: the settings') once; DeliveryError on failure."""
    to = list(recipients or settings.recipients)
    where = f"the SMTP server {settings.host}:{settings.port}"
    try:
        password = read_password(settings) if settings.username else None
    except ModelyardError as exc:
        raise DeliveryError(exc.message, permanent=True) from exc
    if settings.username and password is None:
        raise DeliveryError(f"No SMTP password for {settings.username}: set the environment variable "
                            f"{settings.password_env} or give a password file (modelyard notify email --password-file).",
                            permanent=True)
    msg = build_email(settings, subject, body, to)
    try:
        context = ssl.create_default_context()
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SMTP_TIMEOUT,
                                                    context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT)
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, password or "")
            refused = client.send_message(msg, from_addr=settings.sender, to_addrs=to)
        if refused:
            raise DeliveryError(f"{where} refused the recipient(s) {', '.join(sorted(refused))}")
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{where} refused the login of {settings.username} ({exc.smtp_code}); "
                            f"check the user name and password", permanent=True) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"{where} does not support STARTTLS; use --security ssl or none",
                            permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"{where} answered {exc.smtp_code} {_decode(exc.smtp_error)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where} refused every recipient ({', '.join(sorted(exc.recipients))})") from exc
    except (TimeoutError, socket.timeout) as exc:
        raise DeliveryError(f"{where} did not answer within {SMTP_TIMEOUT:g} s") from exc
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS with {where} failed: {exc.reason or exc}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot send through {where}: {_os_reason(exc)}") from exc


def _decode(data: Any) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return one_line(text, 160)


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (is the server running and the port right?)"
    if isinstance(exc, socket.gaierror):
        return "the host name cannot be found"
    return one_line(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, 160)


# --------------------------------------------------------------------------- webhook


def webhook_body(settings: WebhookSettings, event: str, subject: str, body: str,
                 payload: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON posted: ``{"event", "subject", "text", ...payload}`` or, for ``format: slack``,
    ``{"text", "blocks"}`` (Slack's incoming-webhook shape; Mattermost and Teams' Slack mode read it too)."""
    if settings.format == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(one_line(subject))}*"}}]
        if body.strip():
            text = _slack_escape(body.strip())
            if len(text) > SLACK_SECTION_LIMIT:
                text = text[: SLACK_SECTION_LIMIT - 1] + "…"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Modelyard · {event}"}]})
        return {"text": one_line(subject), "blocks": blocks}
    data = dict(payload or {})
    data.update(event=event, subject=one_line(subject), text=body)
    return data


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would repeat a POST as a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send_webhook(settings: WebhookSettings, event: str, subject: str, body: str,
                 payload: dict[str, Any] | None = None) -> None:
    """POST the message once; DeliveryError unless the server answers 2xx within the timeout."""
    where = f"the webhook {redact_url(settings.url)}"
    data = json.dumps(webhook_body(settings, event, subject, body, payload), default=str).encode("utf-8")
    request = urllib.request.Request(settings.url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"Modelyard/{__version__}"})
    try:
        with _OPENER.open(request, timeout=settings.timeout) as response:  # http(s) only (validated)
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{where} answered HTTP {exc.code} {one_line(exc.reason or '', 80)}".rstrip(),
                            permanent=400 <= exc.code < 500 and exc.code not in (408, 429)) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            raise DeliveryError(f"{where} did not answer within {settings.timeout:g} s") from exc
        raise DeliveryError(f"cannot reach {where}: "
                            f"{_os_reason(reason) if isinstance(reason, BaseException) else reason}") from exc
    except (TimeoutError, socket.timeout) as exc:
        raise DeliveryError(f"{where} did not answer within {settings.timeout:g} s") from exc
    except OSError as exc:
        raise DeliveryError(f"cannot reach {where}: {_os_reason(exc)}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"{where} answered HTTP {status}")
