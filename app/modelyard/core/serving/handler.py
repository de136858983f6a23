"""The HTTP side of the model server: the threading server that caps its connections and the
request handler that speaks MLflow's scoring protocol (see :mod:`modelyard.core.serving.server`
for the endpoints and the limits, and :mod:`.payloads` for the request formats). The handler
reads everything it serves from its :class:`~modelyard.core.serving.server.ModelServer`
(``server.app``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.serving import hooks, payloads
from modelyard.core.serving.auth import OPEN_PATHS, authorized
from modelyard.core.serving.payloads import PayloadError
from modelyard.core.serving.routing import CANARY, SHADOW

if TYPE_CHECKING:
    from modelyard.core.serving.server import ModelServer

log = logging.getLogger("modelyard.serving")

DEFAULT_MAX_BODY = 32 * 1024 * 1024  # bytes; ``modelyard serve --max-body``
MIN_BODY_RATE = 16 * 1024  # bytes/s: a body must arrive at least this fast on average, after idle_timeout
_DRAIN_S = 2.0  # after refusing a body, how long to read and discard what the client still sends
DEFAULT_IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed; ``--idle-timeout``
DEFAULT_MAX_CONNECTIONS = 128  # open connections (one thread each); ``--max-connections``
ENDPOINTS = ("/invocations", "/ping", "/health", "/version", "/metadata", "/stats", "/metrics", "/admin/route")
_SMALL_BODY = 64 * 1024  # a refused (401) request's body up to this size is read, so the connection stays usable
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


# =========================================================================== HTTP


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def predictions_json(values: Any) -> bytes:
    """``{"predictions": [...]}`` as bytes; NaN and infinities become null."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        obj = arr.astype(object)
        obj[~np.isfinite(arr)] = None
        data = obj.tolist()
    elif arr.dtype.kind == "M":
        data = [None if np.isnat(x) else str(x) for x in arr]
    else:
        data = arr.tolist()
    return json.dumps({"predictions": data}, default=_json_default, allow_nan=False).encode()


def _column(data: Any, name: str) -> list[Any] | None:
    """The values of column ``name`` in parsed request data (a mapping of columns or a DataFrame),
    or None when it has none."""
    if isinstance(data, dict):
        col = data.get(name)
        return list(col) if col is not None else None
    columns = getattr(data, "columns", None)
    if columns is not None and name in columns:
        return data[name].tolist()
    return None


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, bytes]:
    return status, json.dumps({"error_code": code, "message": message, **extra}, default=str).encode()


class _Conn:
    """An open connection: its thread, and since when it waits for a request (None: in one)."""

    __slots__ = ("thread", "waiting_since", "evicted")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.waiting_since: float | None = time.monotonic()
        self.evicted = False


class _HTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``app.max_connections`` of them: a new connection
    beyond that closes the connection that has waited longest for its next request (an idle
    keep-alive one, or one that never sent a complete request), or, when every connection is in
    the middle of a request, is answered 503 and closed."""

    daemon_threads = True  # idle keep-alive connections are closed by shutdown(), not waited for
    block_on_close = False
    request_queue_size = 128
    app: ModelServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: ModelServer) -> None:
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conn_lock = threading.Lock()
        self._connections: dict[Any, _Conn] = {}
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        context = self.app.ssl_context
        if context is not None:  # the TLS handshake happens in the connection's own thread (setup)
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    @property
    def open_connections(self) -> int:
        with self._conn_lock:
            return sum(1 for c in self._connections.values() if not c.evicted)

    def process_request(self, request: Any, client_address: Any) -> None:
        victim, since = None, 0.0
        with self._conn_lock:
            live = [(sock, c) for sock, c in self._connections.items() if not c.evicted]
            admitted = len(live) < self.app.max_connections
            if not admitted:
                waiting = [(c.waiting_since, id(sock), sock, c) for sock, c in live if c.waiting_since is not None]
                if waiting:
                    since, _, victim, conn = min(waiting)
                    conn.evicted = admitted = True
            if admitted:
                self._connections[request] = _Conn()
        if not admitted:  # (the answer is written outside the lock the connections' threads share)
            self._refuse_busy(request)
            return
        if victim is not None:
            log.debug("closing a connection idle for %.1f s to make way for %s", time.monotonic() - since,
                      client_address)
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its thread reads the end of the stream and ends
            except OSError:
                pass
        super().process_request(request, client_address)

    def _refuse_busy(self, request: Any) -> None:
        status, body = _error(503, "SERVER_BUSY", f"The server is answering {self.app.max_connections} requests "
                                                  "(its --max-connections); try again in a moment.")
        head = (f"HTTP/1.1 {status} Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
        try:
            request.settimeout(1.0)
            request.sendall(head + body)
            request.setblocking(False)
            request.recv(65536)  # what the request sent so far: closing with it unread would reset the connection
        except OSError:
            pass
        self.shutdown_request(request)

    def mark(self, request: Any, *, waiting: bool) -> None:
        with self._conn_lock:
            conn = self._connections.get(request)
            if conn is not None:
                conn.waiting_since = time.monotonic() if waiting else None

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            conn = self._connections.get(request)
            if conn is not None:
                conn.thread = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.pop(request, None)

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection (idle keep-alive ones return from their read at once)."""
        with self._conn_lock:
            items = [(sock, c.thread) for sock, c in self._connections.items()]
        threads = []
        for sock, thread in items:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if thread is not None:
                threads.append(thread)
        return threads

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client went away mid-request
        log.debug("connection error from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"modelyard/{__version__}"
    timeout = DEFAULT_IDLE_TIMEOUT_S  # per read and write; set from the server's idle_timeout in setup()
    server: _HTTPServer
    _unread_body = False  # a refused body is still arriving: finish() drains it
    _body_t0: float | None = None  # when this request's body started to be read

    def setup(self) -> None:
        self.timeout = self.server.app.idle_timeout
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.server.app.ssl_context is not None:
            self.connection.do_handshake()  # within the idle timeout; a failure closes the connection

    # ------------------------------------------------------------------ the bearer token
    def _authorized(self) -> bool:
        """True when the server needs no token or the request carries it; else answers 401."""
        app = self.server.app
        header = self.headers.get("Authorization")
        if authorized(header, app.token):  # type: ignore[arg-type]
            return True
        length = self.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) <= _SMALL_BODY:
            try:
                self._read_body()  # read and dropped: the keep-alive connection stays usable
            except PayloadError:
                self.close_connection = True
        elif length is not None or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # not read from a client without the token
            self._unread_body = True
        message = ("This server needs the header 'Authorization: Bearer <token>' with the token of its --token-file."
                   if not header else "The bearer token in the Authorization header is not this server's; send the "
                                      "token of its --token-file.")
        status, body = _error(401, "UNAUTHORIZED", message)
        app.stats_.refused(401)
        self._respond(status, body, headers=(("WWW-Authenticate", 'Bearer realm="modelyard"'),))
        return False

    def handle_one_request(self) -> None:
        self._body_t0 = None
        self.server.mark(self.request, waiting=True)
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.server.mark(self.request, waiting=False)  # a request came: this connection is not idle
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ responses
    def _respond(self, status: int, body: bytes, content_type: str = "application/json",
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
                 f"Server: {self.server_version}"]
        if self.close_connection or self.server.app.stopping:
            self.close_connection = True
            lines.append("Connection: close")
        lines.extend(f"{k}: {v}" for k, v in headers)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head + body if self.command != "HEAD" else head)

    def _not_found(self) -> None:
        status, body = _error(404, "NOT_FOUND", f"There is no endpoint {self.path.split('?')[0]!r}; the endpoints are "
                                                f"{', '.join(ENDPOINTS)}.")
        self._respond(status, body)

    def _wrong_method(self, allowed: str) -> None:
        status, body = _error(405, "METHOD_NOT_ALLOWED", f"{self.command} is not allowed on "
                                                         f"{self.path.split('?')[0]}; use {allowed}.")
        self._respond(status, body, headers=(("Allow", allowed),))

    def _refuse(self) -> None:
        """404 for a path that is no endpoint, else 405 naming the methods the path takes; any
        body is read first so that the keep-alive connection stays usable."""
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            try:
                self._read_body()
            except PayloadError:
                self.close_connection = True
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/invocations":
            self._wrong_method("POST")
        elif path == "/admin/route":
            self._wrong_method("GET, HEAD, POST")
        elif path in ENDPOINTS:
            self._wrong_method("GET, HEAD")
        else:
            self._not_found()

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up do_<METHOD> and answers an HTML 501 when there is none:
        # every method other than GET, HEAD and POST gets the JSON 404/405 instead
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (a malformed request line, too many headers, ...) as JSON."""
        self.close_connection = True
        reason = self.responses.get(code, ("Error",))[0]
        text = message or reason
        if explain and explain != text:
            text = f"{text}: {explain}"
        status, body = _error(code, reason.upper().replace(" ", "_").replace("-", "_"), text.rstrip(".") + ".")
        try:
            self._respond(status, body)
        except OSError:
            pass

    # ------------------------------------------------------------------ GET
    def do_GET(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path in OPEN_PATHS:
            self._respond(200, json.dumps({"status": "ok", "model": app.current.ref}).encode())
        elif app.token is not None and not self._authorized():
            return
        elif path == "/metrics":
            from modelyard.core.serving.metrics import prometheus_text

            self._respond(200, prometheus_text(app).encode(), PROMETHEUS_TEXT)
        elif path == "/admin/route":
            self._respond(200, json.dumps({"route": app.route.describe() if app.route else None}).encode())
        elif path == "/version":
            self._respond(200, __version__.encode(), "text/plain; charset=utf-8")
        elif path == "/metadata":
            self._respond(200, json.dumps(app.metadata(), default=_json_default).encode())
        elif path == "/stats":
            self._respond(200, json.dumps(app.stats(), default=_json_default).encode())
        elif path == "/invocations":
            self._wrong_method("POST")
        else:
            self._not_found()

    def do_HEAD(self) -> None:
        self.do_GET()

    # ------------------------------------------------------------------ POST
    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        app = self.server.app
        if path != "/invocations":
            if path == "/admin/route" and (app.token is None or self._authorized()):
                self._admin_route()
            elif path != "/admin/route":
                self._refuse()
            return
        if app.token is not None and not self._authorized():
            return
        t0 = time.perf_counter()
        app.enter()
        status, rows, timed = 500, 0, False
        headers: tuple[tuple[str, str], ...] = ()
        route = app.route  # this request finishes on this route and model, whatever changes meanwhile
        served, role = app.current, "champion"
        if route is not None and route.mode == CANARY and route.to_challenger():
            served, role = route.model, "challenger"
        keep = route is not None and route.mode == SHADOW  # the challenger scores the same input afterwards
        plog = app.prediction_log
        at = time.time() if plog is not None else None  # the champion's and a shadow's log rows share it
        v = values = keys = data = None
        method = "predict"
        try:
            try:
                # the body is handed over (no name here keeps it), so that parse_body can let it go
                # once decoded; the parsed values are let go once converted
                data, params = payloads.parse_body(self._read_body(), self.headers.get("Content-Type"),
                                                   served.predictor.spec)
                if app.lookup is not None:
                    data = hooks.enrich(app, data)
                if plog is not None and app.log_key is not None:
                    keys = _column(data, app.log_key)
                v = served.predictor.validate(data)
                if not keep:
                    data = None
                method = params.get("predict_method", "predict")
                values = served.predict(v, method)
                status, out, rows = 200, predictions_json(values), v.n_rows
                headers = (("X-Modelyard-Model", served.ref),)
                if route is not None:
                    headers += (("X-Modelyard-Route", role),)
                if v.warnings:
                    text = " ".join(w["message"] for w in v.warnings if w["kind"] != "extra_columns")
                    if text:
                        headers += (("X-Modelyard-Warnings", text.encode("ascii", "backslashreplace").decode()[:2000]),)
            except PayloadError as exc:
                status, out = exc.status, json.dumps(exc.to_json()).encode()
            except ModelyardError as exc:
                fields = list(getattr(exc, "fields", []) or [])
                extra: dict[str, Any] = {"field": fields[0]} if fields else {}
                if fields:
                    extra["fields"] = fields
                if exc.hint:
                    extra["hint"] = exc.hint
                status, out = _error(400, "BAD_REQUEST", exc.message, **extra)
            except Exception as exc:  # a bug: 500, logged with its traceback
                log.exception("error while scoring")
                status, out = _error(500, "INTERNAL_ERROR", f"Unexpected error: {type(exc).__name__}: {exc}")
            try:
                self._respond(status, out, headers=headers)
            except OSError:  # the client went away
                self.close_connection = True
            elapsed = time.perf_counter() - t0
            app.stats_.record(elapsed, status, rows, served.ref, role)
            timed = True
            # after the answer: nothing here delays it
            if plog is not None:
                hooks.log_request(app, plog, served, role, v, values, elapsed, status, keys, at)
            if keep and status == 200:
                hooks.shadow_score(app, route, data, method, keys, at)
        finally:
            app.leave()
            if not timed:
                app.stats_.record(time.perf_counter() - t0, status, rows, served.ref, role)

    def _admin_route(self) -> None:
        """``POST /admin/route`` with ``{"canary": "challenger", "share": "10%"}``, ``{"share": 0.2}``,
        ``{"shadow": "challenger"}`` or ``{"end": true}``: change the route (see ModelServer.set_route)."""
        app = self.server.app
        try:
            if app.token is None and not app.loopback:
                raise PayloadError("Routes can be changed from outside only on a server with a token: start it "
                                   "with --token-file, or listen on 127.0.0.1.", "Authorization", status=403,
                                   error_code="FORBIDDEN")
            doc = json.loads(bytes(self._read_body()) or b"{}")
            if not isinstance(doc, dict) or set(doc) - {"canary", "share", "shadow", "end"}:
                raise PayloadError("The body must be a JSON object with 'canary' and 'share', 'share', 'shadow', or "
                                   "'end': true.", "body")
            if doc.get("end"):
                ended = app.end_route()
                status, out = 200, json.dumps({"route": None, "ended": ended}).encode()
            else:
                desc = app.set_route(canary=doc.get("canary"), share=doc.get("share"), shadow=doc.get("shadow"))
                status, out = 200, json.dumps({"route": desc}).encode()
        except PayloadError as exc:
            status, out = exc.status, json.dumps(exc.to_json()).encode()
        except ValueError as exc:
            status, out = _error(400, "BAD_REQUEST", f"The body is not valid JSON: {exc}.", field="body")
        except ModelyardError as exc:
            status, out = _error(400, "BAD_REQUEST", exc.message, field="route")
        self._respond(status, out)

    def _too_large(self, message: str) -> PayloadError:
        self.close_connection = True
        self._unread_body = True
        return PayloadError(f"{message} (start the server with a larger --max-body to allow more).", "body",
                            status=413, error_code="PAYLOAD_TOO_LARGE")

    def _content_length(self) -> int | None:
        """The Content-Length (None without one); refuses one over the server's ``max_body``."""
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        try:
            n = int(length)
            if n < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            raise PayloadError(f"Content-Length {length!r} is not a size in bytes.", "Content-Length") from None
        limit = self.server.app.max_body
        if n > limit:
            raise self._too_large(f"The body is {n:,} bytes; this server takes at most {limit:,}")
        return n

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: refuse a body over the limit before the client sends it."""
        try:
            self._content_length()
        except PayloadError as exc:
            self._unread_body = False  # the client waits for this answer instead of sending the body
            self._respond(exc.status, json.dumps(exc.to_json()).encode())
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytearray:
        n = self._content_length()
        if n is None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked()
            self.close_connection = True
            raise PayloadError("The request needs a Content-Length header (or chunked transfer encoding).",
                               "Content-Length", status=411, error_code="LENGTH_REQUIRED")
        body = bytearray()
        got = self._read_append(body, n)
        if got < n:
            self.close_connection = True
            raise PayloadError(f"The body ended after {got:,} of the {n:,} bytes its Content-Length announced.",
                               "body")
        return body

    def _read_append(self, body: bytearray, n: int) -> int:
        """Append up to ``n`` bytes from the connection to ``body`` (fewer only at the end of the
        stream) as they arrive, so that memory follows what was sent, not what was announced. A
        body must keep coming: a read waits at most ``idle_timeout``, and the whole body may take
        ``idle_timeout`` plus one second per :data:`MIN_BODY_RATE` bytes, so a client that
        trickles it in cannot hold a connection."""
        app = self.server.app
        if self._body_t0 is None:
            self._body_t0 = time.monotonic()
        got = 0
        try:
            while got < n:
                allowed = app.idle_timeout + len(body) / MIN_BODY_RATE - (time.monotonic() - self._body_t0)
                if allowed <= 0:
                    raise TimeoutError
                self.connection.settimeout(min(app.idle_timeout, allowed))
                chunk = self.rfile.read1(min(n - got, 1 << 20))
                if not chunk:
                    break
                body += chunk
                got += len(chunk)
        except TimeoutError:
            self.close_connection = True
            self._unread_body = True
            raise PayloadError(f"The body stopped arriving: {len(body):,} bytes in "
                               f"{time.monotonic() - self._body_t0:.1f} s (a body must arrive at "
                               f"{MIN_BODY_RATE // 1024} KB/s or more, with no pause over {app.idle_timeout:g} s).",
                               "body", status=408, error_code="REQUEST_TIMEOUT") from None
        finally:
            try:
                self.connection.settimeout(app.idle_timeout)
            except OSError:
                pass
        return got

    def _read_chunked(self) -> bytearray:
        body = bytearray()
        limit = self.server.app.max_body
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if size < 0:
                    raise ValueError(line)
            except ValueError:
                self.close_connection = True
                raise PayloadError("The chunked body is malformed.", "body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return body
            if len(body) + size > limit:  # refused before the chunk is read
                raise self._too_large(f"The chunked body is over {limit:,} bytes, the most this server takes")
            if self._read_append(body, size) < size:
                self.close_connection = True
                raise PayloadError("The chunked body ended in the middle of a chunk.", "body")
            self.rfile.readline(8)

    def finish(self) -> None:
        """After refusing a body the client is still sending: stop writing, then read and discard
        what arrives for up to :data:`_DRAIN_S` s before closing, so that the client reads the
        413 instead of a connection reset (a close with unread data resets the connection)."""
        if getattr(self, "_unread_body", False):
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + _DRAIN_S
                buf = bytearray(65536)
                while (left := deadline - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    if not self.connection.recv_into(buf):
                        break
            except OSError:
                pass
        super().finish()
