"""Canary and shadow: a challenger version of the same model answers its share of the requests
(10 % +- 1 % over 10,000), a shadow scores every request after the champion answered, and
changing or ending a route under concurrent load fails no request (Python API and
``POST /admin/route``)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.serving import ServerProcess
from modelyard.core.serving.routing import parse_canary, parse_share
from modelyard.core.serving.server import ModelServer
from modelyard.core.store import Store

BODY = json.dumps({"dataframe_split": {"columns": ["x", "kind"], "data": [[1.0, "a"]]}}).encode()


def _constant_version(store: Store, label: str) -> registry.ModelVersionInfo:
    from sklearn.dummy import DummyClassifier

    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    model = DummyClassifier(strategy="constant", constant=label).fit(X, ["a", "b", "c", label])
    with tracking.start_run("constants", store=store) as run:
        run.log_model(model, input_example=X)
    return registry.register(store, run.id, "const")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store = Store.open(tmp_path_factory.mktemp("canary") / "store")
    v1, v2, v3 = (_constant_version(store, label) for label in ("first", "second", "third"))
    registry.set_alias(store, v1.ref, "champion", comment="the one serving")
    registry.set_alias(store, v2.ref, "challenger", comment="the one to try")
    try:
        yield {"store": store, "v1": v1, "v2": v2, "v3": v3}
    finally:
        store.close()


def pipelined(url: str, n: int, body: bytes = BODY) -> list[tuple[int, str, str, str | None]]:
    """Send ``n`` POST /invocations on one connection without waiting for the answers (HTTP/1.1
    pipelining: a sender thread writes, this thread reads), so that 10,000 requests take about
    a second; returns (status, prediction, X-Modelyard-Model, X-Modelyard-Route) per request."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def send() -> None:
        chunk = request * 100
        for _ in range(n // 100):
            sock.sendall(chunk)
        sock.sendall(request * (n % 100))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    out = []
    f = sock.makefile("rb")
    try:
        for _ in range(n):
            status = int(f.readline().split()[1])
            headers = {}
            while (line := f.readline()) not in (b"\r\n", b""):
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            doc = json.loads(f.read(int(headers["content-length"])))
            out.append((status, (doc.get("predictions") or [None])[0], headers.get("x-modelyard-model", ""),
                        headers.get("x-modelyard-route")))
    finally:
        sender.join(30)
        f.close()
        sock.close()
    return out


class Client:
    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def request(self, method: str, path: str, doc: Any = None) -> tuple[int, dict[str, str], Any]:
        body = BODY if doc is None and method == "POST" else json.dumps(doc).encode() if doc is not None else None
        self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data)

    def close(self) -> None:
        self.conn.close()


def test_shares_and_canary_options_are_parsed() -> None:
    assert parse_share("10%") == pytest.approx(0.1) and parse_share("0.25") == 0.25 and parse_share("100%") == 1.0
    assert parse_canary("challenger=10%") == ("challenger", pytest.approx(0.1))
    for bad in ("ten", "150%", "2", "-1%"):
        with pytest.raises(ModelyardError, match="share"):
            parse_share(bad)
    with pytest.raises(ModelyardError, match="VERSION=SHARE"):
        parse_canary("challenger")


def test_a_canary_at_10_percent_over_10000_requests(lab: dict[str, Any]) -> None:
    server = ModelServer(lab["store"], "const@champion", port=0, record=False, canary=("challenger", 0.10)).start()
    try:
        t0 = time.monotonic()
        answers = pipelined(server.url, 10_000)
        took = time.monotonic() - t0
        assert all(status == 200 for status, *_ in answers)
        by_model = Counter(model for _, _, model, _ in answers)
        assert set(by_model) == {"const@v1", "const@v2"}
        assert 900 <= by_model["const@v2"] <= 1100, by_model  # 10 % +- 1 %
        # the answer, the header naming the version and the route agree on every request
        for _, prediction, model, route in answers:
            assert (prediction, route) == (("second", "challenger") if model == "const@v2" else ("first", "champion"))
        deadline = time.monotonic() + 10  # (a request is counted just after its answer is written)
        while server.stats()["requests"] < 10_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = server.stats()
        assert stats["route"]["mode"] == "canary" and stats["route"]["served"] == "const@v2"
        assert stats["by_version"]["const@v2"] == {"route": "challenger", "requests": by_model["const@v2"],
                                                   "errors": 0}
        assert took < 30, took
    finally:
        server.shutdown()


def test_shadow_answers_with_the_champion_and_scores_with_both(lab: dict[str, Any]) -> None:
    server = ModelServer(lab["store"], "const@champion", port=0, record=False, shadow="challenger").start()
    try:
        answers = pipelined(server.url, 200)
        assert {(s, p, m, r) for s, p, m, r in answers} == {(200, "first", "const@v1", "champion")}
        # every request was scored by the challenger too, after its answer was written
        deadline = time.monotonic() + 10
        while server.route.shadow_scored < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.stats()["route"] == {"mode": "shadow", "challenger": "challenger", "ref": "const@challenger",
                                           "served": "const@v2", "model_version_id": lab["v2"].id,
                                           "shadow_scored": 200, "shadow_errors": 0}
    finally:
        server.shutdown()


def _load(url: str, stop: threading.Event, log: list[tuple[float, str]], failures: list[str]) -> None:
    client = Client(url)
    try:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status, headers, doc = client.request("POST", "/invocations")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failures.append(repr(exc))
                return
            expected = {"const@v1": "first", "const@v2": "second", "const@v3": "third"}.get(headers.get(
                "x-modelyard-model", ""))
            if status != 200 or doc["predictions"] != [expected]:
                failures.append(f"{status} {headers} {doc}")
            log.append((sent, headers.get("x-modelyard-model", "")))
    finally:
        client.close()


def test_changing_and_ending_a_canary_under_load_fails_no_request(lab: dict[str, Any]) -> None:
    store = lab["store"]
    server = ModelServer(store, "const@champion", port=0, poll_interval=0.05, canary=("challenger", 0.5)).start()
    stop, log, failures = threading.Event(), [], []
    clients = [threading.Thread(target=_load, args=(server.url, stop, log, failures)) for _ in range(4)]
    admin = Client(server.url)
    try:
        for t in clients:
            t.start()
        time.sleep(0.4)
        server.set_route(share="20%")  # the Python API
        time.sleep(0.3)
        status, _, doc = admin.request("POST", "/admin/route", {"canary": "v3", "share": "30%"})  # from outside
        assert status == 200 and doc["route"]["served"] == "const@v3" and doc["route"]["share"] == 0.3
        time.sleep(0.3)
        status, _, doc = admin.request("GET", "/admin/route")
        assert status == 200 and doc["route"]["challenger"] == "v3"
        status, _, doc = admin.request("POST", "/admin/route", {"end": True})
        ended_at = time.monotonic()
        assert status == 200 and doc == {"route": None, "ended": doc["ended"]} and doc["ended"]["served"] == "const@v3"
        time.sleep(0.4)
        server.set_route("challenger", "10%")
        time.sleep(0.3)
        assert server.end_route()["served"] == "const@v2"
        second_end = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in clients:
            t.join(30)
        admin.close()
        server.shutdown()
    assert not failures, failures[:5]
    assert len(log) > 200
    seen = Counter(model for _, model in log)
    assert seen["const@v2"] > 0 and seen["const@v3"] > 0 and seen["const@v1"] > 0
    # after the end (its answer received), every request went to the champion
    assert {m for sent, m in log if ended_at < sent < ended_at + 0.35} == {"const@v1"}
    assert {m for sent, m in log if sent > second_end} == {"const@v1"}
    actions = [e for e in registry.timeline(store, "const") if e["action"] == "serve_route"]
    assert len(actions) == 5  # 20 %, v3 at 30 %, ended, challenger at 10 %, ended
    assert actions[0]["from_value"] == "canary const@v2 0.1" and actions[0]["to_value"] is None


def test_admin_route_refuses_bad_changes(lab: dict[str, Any]) -> None:
    server = ModelServer(lab["store"], "const@champion", port=0, record=False).start()
    client = Client(server.url)
    try:
        status, _, doc = client.request("POST", "/admin/route", {"share": "20%"})
        assert status == 400 and "no canary" in doc["message"]
        status, _, doc = client.request("POST", "/admin/route", {"canary": "challenger"})
        assert status == 400 and "needs a share" in doc["message"]
        status, _, doc = client.request("POST", "/admin/route", {"canary": "other@v1", "share": 0.1})
        assert status == 400 and "not of the served model" in doc["message"]
        status, _, doc = client.request("POST", "/admin/route", {"canary": "nosuch", "share": 0.1})
        assert status == 400 and "nosuch" in doc["message"]
        status, _, doc = client.request("POST", "/admin/route", {"percent": 3})
        assert status == 400 and doc["field"] == "body"
        assert client.request("GET", "/admin/route")[2] == {"route": None}
        assert client.request("POST", "/admin/route", {"end": True})[2] == {"route": None, "ended": None}
        # the server still answers, all with the champion
        assert client.request("POST", "/invocations")[1]["x-modelyard-model"] == "const@v1"
        # without a token, only a server on this machine takes route changes (others get 403)
        assert server.loopback and server.token is None
        assert not ModelServer(lab["store"], "const@champion", host="0.0.0.0", record=False).loopback
    finally:
        client.close()
        server.shutdown()


def test_the_challenger_follows_its_alias(lab: dict[str, Any]) -> None:
    store = lab["store"]
    server = ModelServer(store, "const@champion", port=0, poll_interval=0.05, record=False,
                         canary=("challenger", 1.0)).start()
    try:
        assert {m for *_, m, _ in pipelined(server.url, 20)} == {"const@v2"}
        registry.set_alias(store, lab["v3"].ref, "challenger", comment="a newer challenger")
        deadline = time.monotonic() + 10
        while server.route.model.ref != "const@v3" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {m for *_, m, _ in pipelined(server.url, 20)} == {"const@v3"}
    finally:
        registry.set_alias(store, lab["v2"].ref, "challenger", comment="back")
        server.shutdown()


def test_serve_command_with_a_canary(lab: dict[str, Any], tmp_path: Path) -> None:
    proc = ServerProcess("const@champion", store=lab["store"].root, port=0, canary="challenger=10%")
    try:
        proc.start()
        assert proc.info is not None and proc.info["route"]["share"] == 0.1
        answers = pipelined(proc.url, 100)
        assert Counter(m for *_, m, _ in answers) == {"const@v1": 90, "const@v2": 10}
        client = Client(proc.url)
        assert client.request("POST", "/admin/route", {"end": True})[0] == 200
        client.close()
        assert {m for *_, m, _ in pipelined(proc.url, 50)} == {"const@v1"}
        assert proc.stats()["route"] is None
    finally:
        assert proc.stop() == 0
        proc.cleanup()
    events = [e["event"] for e in proc.events]
    assert "route_ended" in events
