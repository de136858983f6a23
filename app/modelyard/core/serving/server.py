"""The model server: one registered model version behind MLflow's REST scoring protocol.

::

    from modelyard.core.serving.server import ModelServer

    with ModelServer(store, "churn@champion", port=0) as server:    # 127.0.0.1, a free port
        print(server.url)                                           # http://127.0.0.1:50123
        ...                                                         # POST {url}/invocations
        server.stats()                                              # requests, errors, p50/p99 ms

Endpoints: ``POST /invocations`` (see :mod:`.payloads`; answers ``{"predictions": [...]}``),
``GET /ping`` and ``/health`` (200 once the model is loaded), ``/version`` (Modelyard's
version, as text), ``/metadata`` (name, version, alias, signature, classes, ...) and ``/stats``
(request count, errors, latency percentiles: what the Registry panel shows). A refused request
is ``{"error_code": "BAD_REQUEST", "message": "...", "field": "..."}`` with status 400 (415 for
a content type, 404/405 for a path or method, 413 for a body over ``max_body``: see *Limits* below).

The model is loaded once; a request reads one reference to it at its start and finishes on
that model. When the reference is an alias (``NAME@champion``) or the latest version
(``NAME``), a watcher thread asks the store every ``poll_interval`` seconds (one indexed query)
which version it points to; when that changes it loads the new version fully, off to the side,
checks it on its example rows, and then swaps the one reference, so no request is dropped or
fails. If the new version cannot be loaded the server keeps serving the old one and says so in
``/stats`` (``swap_error``). ``NAME@vN`` never changes.

Recorded in the store (``record=True``): the lineage edge ``model_version -served_by->
server("<host>:<port>")`` with ``{url, started_at, pid}``, and the audit events ``serve_start``
and ``serve_stop`` of the registered model (a swap is the old version's ``serve_stop`` and the
new one's ``serve_start``, in one transaction).

Requests are served by the standard library's threading HTTP server (one thread per
connection, HTTP/1.1 keep-alive, Nagle off). Small requests to models trained by Modelyard go
through :mod:`.fastpath`, which redoes the fitted preprocessing in numpy (checked against the
pipeline when the model is loaded).

Limits (``modelyard serve`` options in brackets), so that no client can exhaust the server:

* ``max_body`` (``--max-body``, :data:`DEFAULT_MAX_BODY` = 32 MiB): a larger Content-Length is
  answered 413 from the headers (before ``100 Continue``, so such a client sends nothing), and a
  chunked body as soon as what arrived passes it. A body within it peaks at about 9x its size
  in memory as ``dataframe_split`` JSON (the parsed values; 4x as records, 7x as CSV: see
  ``tests/benchmarks/serve_memory.py``): the body is let go once decoded, rows become columns
  one at a time, and more than :data:`PREDICT_BATCH_ROWS` rows are predicted a block at a time;
* ``idle_timeout`` (``--idle-timeout``, 10 s): a connection on which nothing arrives for that
  long (waiting for its next request, or for the rest of one) is closed; a body may take that
  long plus a second per :data:`MIN_BODY_RATE` bytes, else 408 (a trickled body cannot hold a
  connection); a body is kept as it arrives, so an announced size costs no memory;
* ``max_connections`` (``--max-connections``, 128): at most that many connections (threads)
  are open; a new one closes the one that has waited longest for its next request, or gets a
  JSON 503 (``Retry-After: 1``) when every one is in the middle of a request.

Every answer is JSON, errors too: a method other than GET, HEAD and POST gets 405 with
``Allow``; a malformed request line or too many headers get the standard library's status
(400, 414, 431, 505) with ``{"error_code", "message"}``; a JSON body nested too deeply to read
is a 400 naming ``body``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.registry.versions import ModelVersionInfo
from modelyard.core.serving import payloads
from modelyard.core.serving.payloads import PayloadError
from modelyard.core.store import Store

log = logging.getLogger("modelyard.serving")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_POLL_S = 0.5
DEFAULT_MAX_BODY = 32 * 1024 * 1024  # bytes; ``modelyard serve --max-body``
MIN_BODY_RATE = 16 * 1024  # bytes/s: a body must arrive at least this fast on average, after idle_timeout
PREDICT_BATCH_ROWS = 8192  # a large request is predicted in blocks of rows, so its features never exist at once
_DRAIN_S = 2.0  # after refusing a body, how long to read and discard what the client still sends
LATENCY_WINDOW = 4096
DEFAULT_IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed; ``--idle-timeout``
DEFAULT_MAX_CONNECTIONS = 128  # open connections (one thread each); ``--max-connections``
ENDPOINTS = ("/invocations", "/ping", "/health", "/version", "/metadata", "/stats")


# =========================================================================== the loaded model


@dataclass
class LoadedModel:
    """One model version ready to answer requests (immutable once built)."""

    info: ModelVersionInfo
    predictor: Any  # scoring.Predictor
    fast: Any | None  # fastpath.FastPipeline
    fast_note: str
    loaded_at: dt.datetime
    load_s: float
    _fast_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ref(self) -> str:
        return self.info.ref

    def predict(self, v: Any, method: str = "predict") -> Any:
        """Predictions (or class probabilities) of validated input, as a numpy array; more than
        :data:`PREDICT_BATCH_ROWS` rows are predicted a block at a time (a row's prediction does
        not depend on the others), so the model's intermediate arrays stay small."""
        if v.n_rows <= PREDICT_BATCH_ROWS:
            return self._predict(v, method)
        import numpy as np

        from modelyard.core.serving.scoring import Validated

        parts = [self._predict(Validated({k: a[i:i + PREDICT_BATCH_ROWS] for k, a in v.columns.items()},
                                         min(PREDICT_BATCH_ROWS, v.n_rows - i)), method)
                 for i in range(0, v.n_rows, PREDICT_BATCH_ROWS)]
        return np.concatenate([np.asarray(p) for p in parts])

    def _predict(self, v: Any, method: str) -> Any:
        want_proba = method == "predict_proba"
        if want_proba and not self.predictor.has_proba:
            raise PayloadError(f"{self.ref} gives no class probabilities; leave out 'params.predict_method' or use "
                               "'predict'.", "params.predict_method")
        fast = self.fast
        if fast is not None:
            try:
                return fast.predict_proba(v.columns, v.n_rows) if want_proba else fast.predict(v.columns, v.n_rows)
            except Exception as exc:  # noqa: BLE001 - the pipeline decides (below) whether the input is bad
                fast_error = exc
            else:
                fast_error = None
            if fast_error is not None:
                pred, probs = self.predictor.predict_validated(v, proba=want_proba)
                with self._fast_lock:  # the pipeline took what the fast path refused: stop using it
                    self.fast = None
                    self.fast_note = f"disabled after {type(fast_error).__name__}: {fast_error}"
                log.warning("%s: the fast path is disabled (%s)", self.ref, self.fast_note)
                return probs if want_proba else pred
        pred, probs = self.predictor.predict_validated(v, proba=want_proba)
        return probs if want_proba else pred

    def metadata(self, *, alias: str | None) -> dict[str, Any]:
        p = self.predictor
        return {"name": self.info.name, "version": self.info.version, "ref": self.info.ref, "alias": alias,
                "model_version_id": self.info.id, "run_id": self.info.run_id, "stage": self.info.stage,
                "signature": self.info.signature, "inputs": p.spec.to_json(), "classes": p.classes,
                "output": {"prediction": True, "proba": p.has_proba}, "loaded_at": self.loaded_at.isoformat(),
                "fast_path": self.fast is not None, "fast_path_note": self.fast_note or None,
                "modelyard_version": __version__}


def load_version(store: Store, ref: str) -> LoadedModel:
    """Load ``ref`` for serving: the model, its input checks, and the fast path when it is exact."""
    from modelyard.core.registry import versions as registry
    from modelyard.core.serving import scoring
    from modelyard.core.serving.fastpath import compile_pipeline

    t0 = time.perf_counter()
    info = registry.get_version(store, ref)
    model = registry.load_model(store, info.ref)
    predictor = scoring.Predictor(model, info.signature)
    examples = []
    example = (info.signature or {}).get("example") if isinstance(info.signature, dict) else None
    if isinstance(example, dict) and example.get("rows") and example.get("columns"):
        try:
            cols = example["columns"]
            rows = example["rows"]
            examples.append(predictor.validate({c: [r[i] for r in rows] for i, c in enumerate(cols)}))
        except (ModelyardError, IndexError, TypeError, ValueError):
            examples = []
    fast, note = compile_pipeline(model, predictor.spec, examples) if examples else (None, "no example rows")
    if examples:  # warm up: the first request should not pay for lazy imports and caches
        predictor.predict_validated(examples[0])
    return LoadedModel(info=info, predictor=predictor, fast=fast, fast_note=note,
                       loaded_at=dt.datetime.now(dt.UTC), load_s=time.perf_counter() - t0)


# =========================================================================== statistics


class Stats:
    """Request counts and the latency of the last :data:`LATENCY_WINDOW` scoring requests."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.client_errors = 0
        self.server_errors = 0
        self.rows = 0
        self._latency: deque[float] = deque(maxlen=window)
        self.started = time.monotonic()

    def record(self, seconds: float, status: int, rows: int) -> None:
        with self._lock:
            self.requests += 1
            if 400 <= status < 500:
                self.client_errors += 1
            elif status >= 500:
                self.server_errors += 1
            else:
                self.rows += rows
            self._latency.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            lat = sorted(self._latency)
            out = {"requests": self.requests, "errors": self.client_errors + self.server_errors,
                   "client_errors": self.client_errors, "server_errors": self.server_errors, "rows": self.rows}
        uptime = time.monotonic() - self.started

        def pct(q: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3)

        out["latency_ms"] = {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                             "mean": round(sum(lat) / len(lat) * 1000, 3) if lat else None,
                             "max": round(lat[-1] * 1000, 3) if lat else None, "window": len(lat)}
        out["uptime_s"] = round(uptime, 3)
        out["requests_per_s"] = round(out["requests"] / uptime, 2) if uptime > 0 else None
        return out


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
        if path in ("/ping", "/health"):
            self._respond(200, json.dumps({"status": "ok", "model": app.current.ref}).encode())
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
        if self.path.split("?", 1)[0].rstrip("/") != "/invocations":
            self._refuse()
            return
        app = self.server.app
        t0 = time.perf_counter()
        app.enter()
        status, rows = 500, 0
        headers: tuple[tuple[str, str], ...] = ()
        try:
            served = app.current  # this request finishes on this model, whatever the watcher does
            try:
                # the body is handed over (no name here keeps it), so that parse_body can let it go
                # once decoded; the parsed values are let go once converted
                data, params = payloads.parse_body(self._read_body(), self.headers.get("Content-Type"),
                                                   served.predictor.spec)
                v = served.predictor.validate(data)
                del data
                values = served.predict(v, params.get("predict_method", "predict"))
                status, out, rows = 200, predictions_json(values), v.n_rows
                headers = (("X-Modelyard-Model", served.ref),)
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
        finally:
            app.leave()
            app.stats_.record(time.perf_counter() - t0, status, rows)

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


# =========================================================================== the server


class ModelServer:
    """Serve a registered model version over HTTP in background threads (see the module docstring).

    ``on_event(event: dict)`` is called (from the watcher thread) with ``{"event": "swapped",
    "from", "to", ...}`` or ``{"event": "swap_failed", "to", "error"}``.
    """

    def __init__(self, store: Store, ref: str, *, host: str = DEFAULT_HOST, port: int = 0,
                 poll_interval: float = DEFAULT_POLL_S, record: bool = True,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 max_body: int = DEFAULT_MAX_BODY, idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        from modelyard.core.registry.versions import parse_ref

        if int(max_body) < 1:
            raise ModelyardError(f"The largest request body must be at least 1 byte, not {max_body}.",
                                 hint="Give --max-body as a size such as 32M.")
        if not float(idle_timeout) > 0:
            raise ModelyardError(f"The idle timeout must be more than 0 seconds, not {idle_timeout}.",
                                 hint="Give --idle-timeout in seconds, such as 10.")
        if int(max_connections) < 1:
            raise ModelyardError(f"The server needs at least 1 connection, not {max_connections}.",
                                 hint="Give --max-connections as a number such as 128.")

        self.store = store
        self.ref = ref
        self.name, self.number, self.alias = parse_ref(ref)
        self.host = host
        self.requested_port = int(port)
        self.poll_interval = max(0.05, float(poll_interval))
        self.record = record
        self.on_event = on_event
        self.max_body = int(max_body)
        self.idle_timeout = float(idle_timeout)
        self.max_connections = int(max_connections)
        self.stats_ = Stats()
        self.stopping = False
        self.swaps = 0
        self.swap_error: str | None = None
        self.last_swap_at: dt.datetime | None = None
        self.started_at: dt.datetime | None = None
        self._current: LoadedModel | None = None
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._flight_lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Event()
        self._idle.set()
        self._failed_version_id: int | None = None
        self._shutdown_lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def current(self) -> LoadedModel:
        cur = self._current
        if cur is None:
            raise RuntimeError("the server has not loaded its model yet")
        return cur

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else self.requested_port

    @property
    def url(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def watching(self) -> bool:
        return self.number is None

    # ------------------------------------------------------------------ life
    def start(self) -> ModelServer:
        """Load the model, bind the socket, start serving and watching; returns self."""
        self._current = load_version(self.store, self.ref)
        try:
            self._httpd = _HTTPServer((self.host, self.requested_port), _Handler, self)
        except OSError as exc:
            in_use = getattr(exc, "errno", None) in (98, 48, 10048)
            raise ModelyardError(
                f"Cannot listen on {self.host}:{self.requested_port}: "
                + ("the port is in use." if in_use else f"{exc.strerror or exc}."),
                hint="Pick another port with --port (0 picks a free one)." if in_use
                else "Check the --host address.") from None
        self.started_at = dt.datetime.now(dt.UTC)
        self.stats_ = Stats()
        self._serve_thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                              name=f"modelyard-serve-{self.port}", daemon=True)
        self._serve_thread.start()
        if self.record:
            try:
                self._record_start(self.current, reason="start")
            except BaseException:
                self._httpd.shutdown()
                self._httpd.server_close()
                self._httpd = None
                raise
        if self.watching:
            self._watch_thread = threading.Thread(target=self._watch, name=f"modelyard-serve-watch-{self.port}",
                                                  daemon=True)
            self._watch_thread.start()
        log.info("serving %s at %s", self.current.ref, self.url)
        return self

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`shutdown` has finished (True) or ``timeout`` passes (False)."""
        return self._stopped.wait(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop: no new connections, let requests in flight finish (up to ``timeout`` s), close
        idle connections, record ``serve_stop``. Safe to call more than once."""
        with self._shutdown_lock:
            if self._httpd is None or self._stopped.is_set():
                return
            self.stopping = True
            self._stop.set()
            if self._watch_thread is not None:
                self._watch_thread.join(timeout)
            self._httpd.shutdown()  # the accept loop ends; connections already open keep going
            self._idle.wait(timeout)
            threads = self._httpd.close_connections()
            self._httpd.server_close()
            deadline = time.monotonic() + timeout
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            if self._serve_thread is not None:
                self._serve_thread.join(max(0.0, deadline - time.monotonic()))
            if self.record and self._current is not None:
                try:
                    self._record_stop(self._current, reason="stop")
                except Exception:  # stopping must not fail on a busy store
                    log.exception("could not record serve_stop")
            self._stopped.set()
            log.info("stopped serving %s", self.ref)

    # ------------------------------------------------------------------ requests in flight
    def enter(self) -> None:
        with self._flight_lock:
            self._in_flight += 1
            self._idle.clear()

    def leave(self) -> None:
        with self._flight_lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    # ------------------------------------------------------------------ reading
    def metadata(self) -> dict[str, Any]:
        return {**self.current.metadata(alias=self.alias), "served_ref": self.ref, "url": self.url}

    def stats(self) -> dict[str, Any]:
        cur = self._current
        with self._flight_lock:
            in_flight = self._in_flight
        return {"url": self.url, "ref": self.ref, "alias": self.alias,
                "model": cur.info.name if cur else self.name, "version": cur.info.version if cur else None,
                "model_version_id": cur.info.id if cur else None, "served": cur.ref if cur else None,
                "started_at": self.started_at.isoformat() if self.started_at else None, "pid": os.getpid(),
                "fast_path": bool(cur and cur.fast is not None), "in_flight": in_flight, "swaps": self.swaps,
                "last_swap_at": self.last_swap_at.isoformat() if self.last_swap_at else None,
                "swap_error": self.swap_error, "max_body": self.max_body,
                "idle_timeout_s": self.idle_timeout, "max_connections": self.max_connections,
                "connections": self._httpd.open_connections if self._httpd is not None else 0,
                **self.stats_.snapshot()}

    # ------------------------------------------------------------------ watching the alias
    def _target(self) -> tuple[int, int] | None:
        """(model version id, version number) the served reference points to now."""
        from sqlalchemy import select

        from modelyard.core.store import models as m

        cur = self.current
        with self.store.session() as s:
            if self.alias is not None:
                row = s.execute(select(m.ModelVersion.id, m.ModelVersion.version)
                                .join(m.ModelAlias, m.ModelAlias.version_id == m.ModelVersion.id)
                                .where(m.ModelAlias.model_id == cur.info.model_id,
                                       m.ModelAlias.alias == self.alias)).first()
            else:
                row = s.execute(select(m.ModelVersion.id, m.ModelVersion.version)
                                .where(m.ModelVersion.model_id == cur.info.model_id)
                                .order_by(m.ModelVersion.version.desc()).limit(1)).first()
        return (int(row[0]), int(row[1])) if row is not None else None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.check_for_swap()
            except Exception:  # a busy store: try again next time
                log.exception("checking %s for a new version failed", self.ref)

    def check_for_swap(self) -> bool:
        """Swap to the version the reference points to now, if it moved (the watcher calls this)."""
        target = self._target()
        cur = self.current
        if target is None:
            if self.swap_error is None or "no longer" not in self.swap_error:
                self.swap_error = f"{self.ref} no longer points to a version; still serving {cur.ref}"
                self._emit({"event": "swap_failed", "to": None, "error": self.swap_error})
            return False
        version_id, number = target
        if version_id == cur.info.id:
            if self.swap_error is not None and self._failed_version_id is None:
                self.swap_error = None
            return False
        if version_id == self._failed_version_id:
            return False
        new_ref = f"{self.name}@v{number}"
        try:
            new = load_version(self.store, new_ref)
        except Exception as exc:  # noqa: BLE001 - keep serving the old model
            self._failed_version_id = version_id
            self.swap_error = f"could not load {new_ref}: {exc}"
            log.error("%s: %s", self.ref, self.swap_error)
            self._emit({"event": "swap_failed", "to": new_ref, "error": self.swap_error})
            return False
        if self._stop.is_set():
            return False
        old = cur
        self._current = new  # the swap: one reference; requests in flight keep the model they read
        self._failed_version_id = None
        self.swap_error = None
        self.swaps += 1
        self.last_swap_at = dt.datetime.now(dt.UTC)
        if self.record:
            try:
                self._record_swap(old, new)
            except Exception:  # serving goes on
                log.exception("could not record the swap to %s", new.ref)
        log.info("%s now serves %s (was %s)", self.ref, new.ref, old.ref)
        self._emit({"event": "swapped", "from": old.ref, "to": new.ref, "model_version_id": new.info.id,
                    "load_s": round(new.load_s, 3), "fast_path": new.fast is not None})
        return True

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a listener's bug
                log.exception("on_event failed")

    # ------------------------------------------------------------------ recording
    def _edge_details(self) -> dict[str, Any]:
        return {"url": self.url, "started_at": self.started_at.isoformat() if self.started_at else None,
                "pid": os.getpid(), "ref": self.ref}

    def _add_start(self, s: Any, lm: LoadedModel, reason: str) -> None:
        from modelyard.core.registry.versions import ENTITY
        from modelyard.core.store import records

        records.link(s, "model_version", lm.info.id, "server", self.endpoint, "served_by", self._edge_details())
        records.audit(s, ENTITY, lm.info.model_id, "serve_start", to_value=self.url,
                      details={"version": lm.info.version, "url": self.url, "pid": os.getpid(),
                               "ref": self.ref, "reason": reason})

    def _add_stop(self, s: Any, lm: LoadedModel, reason: str) -> None:
        from modelyard.core.registry.versions import ENTITY
        from modelyard.core.store import records

        snap = self.stats_.snapshot()
        records.audit(s, ENTITY, lm.info.model_id, "serve_stop", from_value=self.url,
                      details={"version": lm.info.version, "url": self.url, "pid": os.getpid(), "ref": self.ref,
                               "reason": reason, "requests": snap["requests"], "errors": snap["errors"]})

    def _record_start(self, lm: LoadedModel, *, reason: str) -> None:
        with self.store.write() as s:
            self._add_start(s, lm, reason)

    def _record_stop(self, lm: LoadedModel, *, reason: str) -> None:
        with self.store.write() as s:
            self._add_stop(s, lm, reason)

    def _record_swap(self, old: LoadedModel, new: LoadedModel) -> None:
        with self.store.write() as s:
            self._add_stop(s, old, f"{self.ref} moved to v{new.info.version}")
            self._add_start(s, new, f"{self.ref} moved from v{old.info.version}")
