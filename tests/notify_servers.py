"""Real receivers for notification tests: an SMTP server (aiosmtpd) and a webhook server (http.server),
both on 127.0.0.1, started and stopped by the tests (use them as context managers)."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A TCP port nothing listens on (for a 'closed port' and for starting a server there later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Any  # email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class _Collector:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.logins: list[tuple[str, str]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        self.arrived.set()
        return "250 Message accepted for delivery"


class SMTPServer:
    """``with SMTPServer() as smtp:`` an SMTP server on 127.0.0.1:``smtp.port``; ``smtp.messages`` what arrived.

    ``auth=True`` requires a login (accepted when the password is ``password``), over plain text."""

    def __init__(self, port: int | None = None, *, auth: bool = False, password: str = "s3cret") -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.handler = _Collector()
        self.port = port or free_port()
        self.password = password
        kwargs: dict[str, Any] = {}
        if auth:
            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                login = data.login.decode() if isinstance(data.login, bytes) else data.login
                pw = data.password.decode() if isinstance(data.password, bytes) else data.password
                self.handler.logins.append((login, pw))
                return AuthResult(success=pw == self.password, handled=False)

            kwargs = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WebhookServer:
    """``with WebhookServer() as hook:`` an HTTP server on 127.0.0.1 receiving POSTs at ``hook.url``;
    ``hook.bodies`` the parsed JSON bodies; ``hook.status`` the status it answers (set 500 to fail)."""

    def __init__(self, port: int | None = None, *, status: int = 200) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                owner.headers.append(dict(self.headers))
                owner.bodies.append(json.loads(raw.decode("utf-8")))
                self.send_response(owner.status)
                if 300 <= owner.status < 400:
                    self.send_header("Location", owner.url)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/modelyard/T0KEN"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-server")

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

