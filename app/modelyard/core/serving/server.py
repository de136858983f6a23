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

Requests are served by the standard library's threading HTTP server (:mod:`.handler`; one thread per
connection, HTTP/1.1 keep-alive, Nagle off). Small requests to models trained by Modelyard go
through :mod:`.fastpath`, which redoes the fitted preprocessing in numpy (checked against the
pipeline when the model is loaded).

Limits (``modelyard serve`` options in brackets), so that no client can exhaust the server:

* ``max_body`` (``--max-body``, :data:`~.handler.DEFAULT_MAX_BODY` = 32 MiB): a larger Content-Length is
  answered 413 from the headers (before ``100 Continue``, so such a client sends nothing), and a
  chunked body as soon as what arrived passes it. A body within it peaks at about 9x its size
  in memory as ``dataframe_split`` JSON (the parsed values; 4x as records, 7x as CSV: see
  ``tests/benchmarks/serve_memory.py``): the body is let go once decoded, rows become columns
  one at a time, and more than :data:`PREDICT_BATCH_ROWS` rows are predicted a block at a time;
* ``idle_timeout`` (``--idle-timeout``, 10 s): a connection on which nothing arrives for that
  long (waiting for its next request, or for the rest of one) is closed; a body may take that
  long plus a second per :data:`~.handler.MIN_BODY_RATE` bytes, else 408 (a trickled body cannot hold a
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
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.registry.versions import ModelVersionInfo
from modelyard.core.serving.handler import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    _Handler,
    _HTTPServer,
)
from modelyard.core.serving.metrics import LATENCY_WINDOW, Stats  # noqa: F401 - re-exported
from modelyard.core.serving.payloads import PayloadError
from modelyard.core.serving.routing import CANARY, SHADOW, Route, challenger_ref
from modelyard.core.store import Store

if TYPE_CHECKING:
    import ssl

    from modelyard.core.serving.lookup import FeatureLookup
    from modelyard.core.serving.predlog import PredictionLog

log = logging.getLogger("modelyard.serving")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_POLL_S = 0.5
PREDICT_BATCH_ROWS = 8192  # a large request is predicted in blocks of rows, so its features never exist at once


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

        from modelyard.core.serving.inputs import Validated

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
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, token: bytes | str | None = None,
                 ssl_context: ssl.SSLContext | None = None, canary: tuple[str, float] | None = None,
                 shadow: str | None = None, lookup: FeatureLookup | None = None,
                 prediction_log: PredictionLog | None = None, log_key: str | None = None) -> None:
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
        # beyond this machine (auth.py): a bearer token, HTTPS
        self.token: bytes | None = token.encode("utf-8") if isinstance(token, str) else token
        self.ssl_context = ssl_context
        # canary / shadow (routing.py): one reference, replaced whole; requests read it once
        if canary is not None and shadow is not None:
            raise ModelyardError("A server takes either --canary or --shadow, not both.")
        self.route: Route | None = None
        self._initial_route = ({"canary": canary[0], "share": canary[1]} if canary is not None
                               else {"shadow": shadow} if shadow is not None else None)
        self._route_lock = threading.Lock()  # one route change at a time (the loading happens under it)
        # hybrid serving and the prediction log (lookup.py, predlog.py)
        self.lookup = lookup
        self.prediction_log = prediction_log
        self.log_key = log_key or (getattr(lookup, "key", None) if lookup is not None else None)

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
        return f"{'https' if self.ssl_context is not None else 'http'}://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

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
        if self._initial_route is not None:  # the challenger is loaded before the first request
            self._set_route(**self._initial_route, record=False)
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
                if self.route is not None:
                    self._record_start(self.route.model, reason=f"{self.route.mode} beside {self.current.ref}")
                self._link_lookup()
            except BaseException:
                self._httpd.shutdown()
                self._httpd.server_close()
                self._httpd = None
                raise
        if self.watching or self.route is not None or self.lookup is not None:
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
            if self.prediction_log is not None:
                try:
                    self.prediction_log.close()  # what is queued is written
                except Exception:
                    log.exception("could not close the prediction log")
            if self.record and self._current is not None:
                try:
                    self._record_stop(self._current, reason="stop")
                    if self.route is not None:
                        self._record_stop(self.route.model, reason="stop")
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
                "route": self.route.describe() if self.route is not None else None,
                "https": self.ssl_context is not None, "token": self.token is not None,
                "lookup": self.lookup.describe() if self.lookup is not None else None,
                "prediction_log": self.prediction_log.counts() if self.prediction_log is not None else None,
                **self.stats_.snapshot()}

    # ------------------------------------------------------------------ watching the alias
    def _target(self, alias: str | None | bool = False) -> tuple[int, int] | None:
        """(model version id, version number) the served reference (or the model's ``alias``)
        points to now."""
        from sqlalchemy import select

        from modelyard.core.store import models as m

        cur = self.current
        alias = self.alias if alias is False else alias
        with self.store.session() as s:
            if alias is not None:
                row = s.execute(select(m.ModelVersion.id, m.ModelVersion.version)
                                .join(m.ModelAlias, m.ModelAlias.version_id == m.ModelVersion.id)
                                .where(m.ModelAlias.model_id == cur.info.model_id,
                                       m.ModelAlias.alias == alias)).first()
            else:
                row = s.execute(select(m.ModelVersion.id, m.ModelVersion.version)
                                .where(m.ModelVersion.model_id == cur.info.model_id)
                                .order_by(m.ModelVersion.version.desc()).limit(1)).first()
        return (int(row[0]), int(row[1])) if row is not None else None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                if self.watching:
                    self.check_for_swap()
                self.check_route_swap()
                if self.lookup is not None and self.lookup.refresh():
                    self._link_lookup()
                    self._emit({"event": "lookup_refreshed", **self.lookup.describe()})
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
            self._link_lookup()
        log.info("%s now serves %s (was %s)", self.ref, new.ref, old.ref)
        self._emit({"event": "swapped", "from": old.ref, "to": new.ref, "model_version_id": new.info.id,
                    "load_s": round(new.load_s, 3), "fast_path": new.fast is not None})
        return True

    # ------------------------------------------------------------------ canary and shadow
    def set_route(self, canary: str | None = None, share: float | str | None = None, *,
                  shadow: str | None = None) -> dict[str, Any]:
        """Start or change a route (see :mod:`.routing`): ``set_route("challenger", 0.1)`` sends
        10 % of the requests to the model's ``challenger`` alias (or ``"v4"``); ``set_route(share=0.2)``
        changes the running canary's share; ``set_route(shadow="challenger")`` scores every request
        with the challenger too. The challenger is loaded first (off the request path), then the
        route is replaced in one assignment: no request fails. Recorded in the store (``serve_route``
        audit event of the model; the challenger's ``serve_start``). Returns the route's description."""
        with self._route_lock:
            return self._set_route(canary=canary, share=share, shadow=shadow, record=self.record)

    def end_route(self) -> dict[str, Any] | None:
        """End the canary or shadow: every request goes to the champion again (requests in flight
        finish on the route they read). Returns the ended route's description (None: there was none)."""
        with self._route_lock:
            old = self.route
            self.route = None
            if old is None:
                return None
            if self.record:
                self._record_route(old, None)
            log.info("%s: the %s of %s ended", self.ref, old.mode, old.model.ref)
            self._emit({"event": "route_ended", **old.describe()})
            return old.describe()

    def _set_route(self, canary: str | None = None, share: float | str | None = None,
                   shadow: str | None = None, *, record: bool) -> dict[str, Any]:
        from modelyard.core.serving.routing import parse_share

        old = self.route
        if canary is not None and shadow is not None:
            raise ModelyardError("A route is either a canary or a shadow, not both: give canary or shadow.")
        if shadow is not None:
            given, mode = shadow, SHADOW
        elif canary is not None:
            given, mode = canary, CANARY
        elif share is not None:
            if old is None or old.mode != CANARY:
                raise ModelyardError("There is no canary whose share to change; name the challenger too "
                                     "(canary=challenger, share=10%).")
            given, mode = old.given, CANARY
        else:
            raise ModelyardError("Name a canary challenger with its share, a new share for the running canary, "
                                 "or a shadow challenger.")
        value = 0.0
        if mode == CANARY:
            if share is None and (old is None or old.mode != CANARY):
                raise ModelyardError(f"The canary {given} needs a share, such as {given}=10%.")
            value = parse_share(share) if share is not None else old.share  # type: ignore[union-attr]
        ref = challenger_ref(self.name, given)
        given = ref.partition("@")[2]
        model = old.model if old is not None and old.given == given else load_version(self.store, ref)
        new = Route.canary(given, ref, model, value) if mode == CANARY else Route.shadow(given, ref, model)
        self.route = new  # the change: one reference; requests in flight keep the route they read
        if record:
            self._record_route(old, new)
            self._link_lookup()
        log.info("%s: %s", self.ref, new.describe())
        self._emit({"event": "route", **new.describe()})
        if self._watch_thread is None and self._httpd is not None and new.alias is not None:
            self._watch_thread = threading.Thread(target=self._watch, name=f"modelyard-serve-watch-{self.port}",
                                                  daemon=True)
            self._watch_thread.start()
        return new.describe()

    def check_route_swap(self) -> bool:
        """Load the challenger's new version when its alias moved (the watcher calls this)."""
        route = self.route
        if route is None or route.alias is None:
            return False
        target = self._target(route.alias)
        if target is None or target[0] == route.model.info.id:
            return False
        with self._route_lock:
            if self.route is not route:  # changed meanwhile
                return False
            try:
                model = load_version(self.store, f"{self.name}@v{target[1]}")
            except Exception as exc:  # noqa: BLE001 - keep the old challenger
                log.error("%s: could not load the challenger v%s: %s", self.ref, target[1], exc)
                return False
            new = route.with_model(model)
            self.route = new
            if self.record:
                try:
                    self._record_route(route, new)
                except Exception:
                    log.exception("could not record the challenger's swap")
        self._emit({"event": "route", **new.describe()})
        return True

    def _record_route(self, old: Route | None, new: Route | None) -> None:
        from modelyard.core.registry.versions import ENTITY
        from modelyard.core.store import records

        def text(r: Route | None) -> str | None:
            if r is None:
                return None
            return f"{r.mode} {r.model.ref}" + (f" {r.share:.4g}" if r.mode == CANARY else "")

        cur = self.current
        with self.store.write() as s:
            if old is not None and (new is None or new.model.info.id != old.model.info.id):
                self._add_stop(s, old.model, f"{old.mode} ended" if new is None else f"{old.mode} replaced")
            if new is not None and (old is None or old.model.info.id != new.model.info.id):
                self._add_start(s, new.model, f"{new.mode} beside {cur.ref}")
            records.audit(s, ENTITY, cur.info.model_id, "serve_route", from_value=text(old), to_value=text(new),
                          details={"url": self.url, "pid": os.getpid(), "ref": self.ref, "champion": cur.ref,
                                   "from": old.describe() if old else None, "to": new.describe() if new else None})

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

    def _link_lookup(self) -> None:
        """The lineage edge ``model_version -looks_up-> dataset_version`` of the served versions
        and the lookup's current table (once per pair; never fails serving)."""
        if self.lookup is None or not self.record:
            return
        versions = [self.current] + ([self.route.model] if self.route is not None else [])
        for lm in versions:
            try:
                self.lookup.record_link(lm.info.id, used_by="server")
            except Exception:
                log.exception("could not record the lookup's lineage for %s", lm.ref)

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
