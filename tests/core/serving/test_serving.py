"""Serving over real HTTP on 127.0.0.1: MLflow's payload formats, 400s that name the field, the
GET endpoints and statistics, the fast path's agreement with the pipeline, swapping models when
the champion moves (without failing a request), and ``modelyard serve`` in a child process."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli
from factories import FEATURES, garden_frame, make_garden_store, train_registered
from modelyard._version import __version__
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.serving import ServerProcess
from modelyard.core.serving.server import ModelServer, load_version
from modelyard.core.store import Store
from modelyard.core.store import models as m
from procfs import memory
from sqlalchemy import select


class Client:
    """One keep-alive HTTP connection to a server."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = "application/json") -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closed the kept-alive connection after its idle timeout: what every HTTP
            # client does then is to send the request again on a new connection
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def post(self, doc: Any, content_type: str = "application/json") -> tuple[int, dict[str, str], Any]:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        status, headers, data = self.request("POST", "/invocations", body, content_type)
        return status, headers, json.loads(data)

    def get(self, path: str) -> tuple[int, bytes]:
        status, _, data = self.request("GET", path, content_type=None)
        return status, data

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store, info = make_garden_store(tmp_path_factory.mktemp("serving") / "store")
    server = ModelServer(store, "flowers@champion", port=0, poll_interval=0.1).start()
    client = Client(server.url)
    try:
        yield {"store": store, "info": info, "server": server, "client": client,
               "model": registry.load_model(store, info.ref)}
    finally:
        client.close()
        server.shutdown()
        store.close()


def pick(n: int) -> pd.DataFrame:
    """``n`` garden rows spread over the table (so over the species), with the gaps of rows 3 and 7."""
    frame = garden_frame()
    return frame.iloc[sorted({3, 7, *np.linspace(0, len(frame) - 1, n).astype(int).tolist()})[:n]][FEATURES]


def json_frame(n: int = 20) -> pd.DataFrame:
    """The rows of :func:`pick` as a client would send them: dates as ISO text."""
    frame = pick(n).copy()
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame


def payloads(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    split = json.loads(frame.to_json(orient="split"))  # with "index"
    records = json.loads(frame.to_json(orient="records"))
    columnar = {c: list(v.values()) for c, v in json.loads(frame.to_json(orient="columns")).items()}
    rows = split["data"]
    buf = io.BytesIO()
    frame.assign(measured=pd.to_datetime(frame["measured"])).to_parquet(buf, index=False)
    js = "application/json"
    return {
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), js),
        "dataframe_split without columns": (json.dumps({"dataframe_split": {"data": rows}}).encode(), js),
        "dataframe_records": (json.dumps({"dataframe_records": records}).encode(), js + "; charset=utf-8"),
        "instances as records": (json.dumps({"instances": records}).encode(), js),
        "instances as rows": (json.dumps({"instances": rows}).encode(), js),
        "instances as columns": (json.dumps({"instances": columnar}).encode(), js),
        "inputs": (json.dumps({"inputs": columnar, "params": {"predict_method": "predict"}}).encode(), js),
        "csv": (frame.to_csv(index=False).encode(), "text/csv"),
        "parquet": (buf.getvalue(), "application/vnd.apache.parquet"),
    }


# --------------------------------------------------------------------------- formats


def test_every_payload_format_gets_the_pipelines_predictions(served: dict[str, Any]) -> None:
    frame = json_frame(20)
    expected = list(served["model"].predict(pick(20)))
    assert len(set(expected)) > 1  # the answer depends on the rows
    client = served["client"]
    for name, (body, ctype) in payloads(frame).items():
        status, headers, doc = client.post(body, ctype)
        assert status == 200, (name, doc)
        assert doc == {"predictions": expected}, name
        assert headers["x-modelyard-model"] == "flowers@v1"


def test_one_row_and_class_probabilities(served: dict[str, Any]) -> None:
    row = json.loads(json_frame(1).to_json(orient="records"))
    model = served["model"]
    status, _, doc = served["client"].post({"dataframe_records": row})
    assert status == 200 and doc["predictions"] == list(model.predict(pick(1)))
    status, _, doc = served["client"].post({"dataframe_records": row, "params": {"predict_method": "predict_proba"}})
    assert status == 200
    np.testing.assert_allclose(doc["predictions"], model.predict_proba(pick(1)))
    # an unseen category is scored and reported in a header
    row[0]["region"] = "west"
    status, headers, doc = served["client"].post({"dataframe_records": row})
    warning = headers["x-modelyard-warnings"]
    assert status == 200 and "'region'" in warning and "'west'" in warning


RECORD = json.loads(json_frame(1).to_json(orient="records"))[0]


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in RECORD.items() if k != key}


BAD = [
    # (body, content type, status, field, words in the message)
    (b"{not json", "application/json", 400, "body", "not valid JSON"),
    (b"[1, 2]", "application/json", 400, "body", "got a list"),
    ({"data": [[1]]}, "application/json", 400, "body", "exactly one of the fields"),
    ({"dataframe_records": [RECORD], "instances": [RECORD]}, "application/json", 400, "instances", "more than one"),
    ({"dataframe_split": {"columns": FEATURES}}, "application/json", 400, "dataframe_split.data", "needs a 'data'"),
    ({"dataframe_split": {"columns": FEATURES, "data": [[1, 2]]}}, "application/json", 400, "dataframe_split.data",
     "has 2 value(s)"),
    ({"dataframe_split": {"columns": FEATURES, "data": [], "orient": "x"}}, "application/json", 400,
     "dataframe_split.orient", "unknown field"),
    ({"dataframe_split": {"data": [[1, 2, 3]]}}, "application/json", 400, "dataframe_split.columns",
     "signature's column order"),
    ({"dataframe_records": [1, 2]}, "application/json", 400, "dataframe_records", "must be a record"),
    ({"dataframe_records": []}, "application/json", 400, "dataframe_records", "no rows"),
    ({"instances": "all"}, "application/json", 400, "instances", "must be a list"),
    ({"dataframe_records": [_without("greenhouse")]}, "application/json", 400, "greenhouse",
     "Missing column(s) the model needs: 'greenhouse'"),
    ({"dataframe_records": [{**RECORD, "petal width (cm)": "wide"}]}, "application/json", 400, "petal width (cm)",
     "should hold numbers (float64), but row 1 holds 'wide'"),
    ({"dataframe_records": [{**RECORD, "measured": "someday"}]}, "application/json", 400, "measured",
     "not a date or time"),
    ({"dataframe_records": [RECORD], "params": [1]}, "application/json", 400, "params", "must be an object"),
    ({"dataframe_records": [RECORD], "params": {"predict_method": "explain"}}, "application/json", 400,
     "params.predict_method", "predict_proba"),
    ({"dataframe_records": [RECORD]}, "text/plain", 415, "Content-Type", "not supported"),
    ({"dataframe_records": [RECORD]}, "application/json; charset=latin-1", 415, "Content-Type", "UTF-8"),
    ({"dataframe_records": [RECORD]}, "application/json; format=pandas-split", 415, "Content-Type", "format"),
    (b"", "text/csv", 400, "body", "empty"),
    (b"sepal length (cm)\n5.1\n", "text/csv", 400, "sepal width (cm)", "Missing column(s)"),
    (b"not parquet", "application/vnd.apache.parquet", 400, "body", "Parquet"),
]


@pytest.mark.parametrize(("body", "ctype", "status", "field", "words"), BAD,
                         ids=[f"{i}-{b[3]}" for i, b in enumerate(BAD)])
def test_bad_payloads_are_refused_naming_the_field(served: dict[str, Any], body: Any, ctype: str, status: int,
                                                   field: str, words: str) -> None:
    got, _, doc = served["client"].post(body if isinstance(body, bytes) else json.dumps(body).encode(), ctype)
    assert got == status, doc
    assert doc["error_code"] == ("BAD_REQUEST" if status == 400 else "UNSUPPORTED_MEDIA_TYPE")
    assert doc["field"] == field, doc
    assert words in doc["message"], doc["message"]
    # the connection and the server carry on
    ok, _, _ = served["client"].post({"dataframe_records": [RECORD]})
    assert ok == 200


def test_get_endpoints_and_statistics(served: dict[str, Any]) -> None:
    client, server = served["client"], served["server"]
    for path in ("/ping", "/health"):
        status, data = client.get(path)
        assert status == 200 and json.loads(data)["status"] == "ok"
    assert client.get("/version") == (200, __version__.encode())
    status, data = client.get("/metadata")
    meta = json.loads(data)
    assert status == 200 and (meta["name"], meta["version"], meta["alias"]) == ("flowers", 1, "champion")
    assert [i["name"] for i in meta["signature"]["inputs"]] == FEATURES
    assert meta["classes"] == ["setosa", "versicolor", "virginica"] and meta["fast_path"] is True
    before = json.loads(client.get("/stats")[1])
    frame = json_frame(7)
    for _ in range(5):
        assert client.post({"dataframe_split": json.loads(frame.to_json(orient="split"))})[0] == 200
    assert client.post({"dataframe_records": [_without("region")]})[0] == 400
    stats = json.loads(client.get("/stats")[1])
    assert stats["requests"] - before["requests"] == 6
    assert stats["errors"] - before["errors"] == 1 and stats["client_errors"] - before["client_errors"] == 1
    assert stats["rows"] - before["rows"] == 35
    lat = stats["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] and lat["window"] == stats["requests"]
    assert stats["served"] == "flowers@v1" and stats["url"] == server.url and stats["swaps"] == 0
    assert client.get("/nowhere")[0] == 404
    status, headers, _ = client.request("GET", "/invocations", content_type=None)
    assert status == 405 and headers["allow"] == "POST"
    assert client.request("POST", "/ping", b"{}")[0] == 405


def test_binds_to_loopback_and_reports_a_busy_port(served: dict[str, Any]) -> None:
    server = served["server"]
    assert server.host == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    assert server._httpd is not None and server._httpd.socket.getsockname()[0] == "127.0.0.1"
    with pytest.raises(ModelyardError, match="the port is in use") as err:
        ModelServer(served["store"], "flowers@v1", port=server.port, record=False).start()
    assert "--port" in (err.value.hint or "")


def test_fast_path_gives_the_pipelines_answers(served: dict[str, Any]) -> None:
    store = served["store"]
    trees = train_registered(store, "trees", "random_forest", {"n_estimators": 10})  # ordinal codes, no scaling
    frame = garden_frame()
    frame.loc[::7, "region"] = "west"  # unseen
    frame.loc[::5, "measured"] = pd.NaT
    frame["greenhouse"] = frame["greenhouse"].astype(object)
    frame.loc[::6, "greenhouse"] = None
    frame.loc[::4, "petal length (cm)"] = np.nan
    for ref in ("flowers@v1", trees.ref):
        lm = load_version(store, ref)
        assert lm.fast is not None, lm.fast_note
        model = registry.load_model(store, ref)
        v = lm.predictor.validate(frame)
        assert list(lm.predict(v)) == list(model.predict(frame[FEATURES])), ref
        np.testing.assert_allclose(lm.predict(v, "predict_proba"), model.predict_proba(frame[FEATURES]),
                                   rtol=1e-9, atol=1e-12)
        for i in (0, 7, 35):  # one row at a time, as a server mostly sees them
            one = lm.predictor.validate(frame.iloc[[i]])
            assert list(lm.predict(one)) == list(model.predict(frame[FEATURES].iloc[[i]]))


# --------------------------------------------------------------------------- swapping


def _constant_version(store: Store, label: str) -> registry.ModelVersionInfo:
    from sklearn.dummy import DummyClassifier

    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    model = DummyClassifier(strategy="constant", constant=label).fit(X, ["a", "b", "c", label])
    with tracking.start_run("constants", store=store) as run:
        run.log_model(model, input_example=X)
    return registry.register(store, run.id, "const")


def _stream(url: str, stop: threading.Event, log: list[tuple[str, str]], failures: list[str]) -> None:
    client = Client(url)
    body = {"dataframe_split": {"columns": ["x", "kind"], "data": [[float(i), "a"] for i in range(50)]}}
    try:
        while not stop.is_set():
            try:
                status, headers, doc = client.post(body)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failures.append(repr(exc))
                client.close()
                client = Client(url)
                continue
            if status != 200 or len(set(doc["predictions"])) != 1:
                failures.append(f"{status} {doc}")
                continue
            log.append((doc["predictions"][0], headers["x-modelyard-model"]))
    finally:
        client.close()


def test_moving_the_champion_swaps_models_without_failing_a_request(store: Store) -> None:
    v1, v2 = _constant_version(store, "first"), _constant_version(store, "second")
    registry.set_alias(store, v1.ref, "champion", comment="start")
    events: list[dict[str, Any]] = []
    server = ModelServer(store, "const@champion", port=0, poll_interval=0.05, on_event=events.append).start()
    stop = threading.Event()
    logs: list[list[tuple[str, str]]] = [[] for _ in range(3)]
    failures: list[str] = []
    threads = [threading.Thread(target=_stream, args=(server.url, stop, log, failures)) for log in logs]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while min(len(log) for log in logs) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        registry.set_alias(store, v2.ref, "champion", comment="better")
        while time.monotonic() < deadline and not all(sum(1 for p, _ in log if p == "second") >= 20 for log in logs):
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        stats = server.stats()
        server.shutdown()
    assert failures == []
    for log in logs:
        answers = [p for p, _ in log]
        assert answers[0] == "first" and answers[-1] == "second"
        switch = answers.index("second")
        assert set(answers[switch:]) == {"second"}, "an old model answered after the new one"
        assert all((p, h) in {("first", "const@v1"), ("second", "const@v2")} for p, h in log)
    assert stats["swaps"] == 1 and stats["served"] == "const@v2" and stats["errors"] == 0
    assert [(e["event"], e["from"], e["to"]) for e in events] == [("swapped", "const@v1", "const@v2")]
    served = [(e["action"], e["version"], (e["details"] or {}).get("url")) for e in registry.timeline(store, "const")
              if e["action"].startswith("serve_")]
    assert served == [("serve_stop", 2, server.url), ("serve_start", 2, server.url), ("serve_stop", 1, server.url),
                      ("serve_start", 1, server.url)]
    with store.session() as s:
        edges = s.execute(select(m.LineageEdge.src_id, m.LineageEdge.dst_id, m.LineageEdge.details)
                          .where(m.LineageEdge.relation == "served_by")).all()
    assert sorted(src for src, _, _ in edges) == sorted([str(v1.id), str(v2.id)])
    assert {dst for _, dst, _ in edges} == {f"127.0.0.1:{server.port}"}
    assert all(d["url"] == server.url and d["pid"] and d["started_at"] for _, _, d in edges)


def test_a_version_that_cannot_load_is_not_swapped_in(store: Store) -> None:
    v1, broken = _constant_version(store, "first"), _constant_version(store, "broken")
    registry.set_alias(store, v1.ref, "champion", comment="start")
    assert broken.model_sha256 is not None
    store.artifacts.path(broken.model_sha256).unlink()  # its model file is gone
    with ModelServer(store, "const@champion", port=0, poll_interval=0.05) as server:
        client = Client(server.url)
        registry.set_alias(store, broken.ref, "champion", comment="oops")
        deadline = time.monotonic() + 10
        while server.stats()["swap_error"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = server.stats()
        status, headers, doc = client.post({"dataframe_records": [{"x": 1.0, "kind": "a"}]})
        client.close()
    assert "could not load const@v2" in stats["swap_error"] and stats["served"] == "const@v1"
    assert status == 200 and doc == {"predictions": ["first"]} and headers["x-modelyard-model"] == "const@v1"


# --------------------------------------------------------------------------- the command, in a child process


def test_serve_command_in_a_child_process(served: dict[str, Any]) -> None:
    store = served["store"]
    proc = ServerProcess("flowers@champion", store=store.root, port=0, poll_interval=0.2)
    try:
        proc.start()
        assert proc.info is not None and proc.info["host"] == "127.0.0.1" and proc.info["version"] == 1
        client = Client(proc.url)
        status, _, doc = client.post({"dataframe_records": [RECORD]})
        client.close()
        assert status == 200 and doc["predictions"] == list(served["model"].predict(pick(1)))
        stats = proc.stats()
        assert stats["requests"] == 1 and stats["pid"] == proc.pid and stats["latency_ms"]["p50"] > 0
        assert proc.metadata()["ref"] == "flowers@v1"
    finally:
        code = proc.stop()
        proc.cleanup()
    assert code == 0
    assert proc.events[-1]["event"] == "stopped" and proc.events[-1]["requests"] == 1
    mine = [e for e in registry.timeline(store, "flowers") if e["action"].startswith("serve_")
            and (e["details"] or {}).get("pid") == proc.pid]
    assert [e["action"] for e in mine] == ["serve_stop", "serve_start"]
    assert mine[0]["details"]["requests"] == 1 and mine[1]["details"]["url"] == proc.url


def test_serve_command_errors(served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = str(served["store"].root)
    code, _, err = cli(capsys, "serve", "nothing@champion", "--port", "0", "--store", root)
    assert code == 1 and "There is no registered model 'nothing'" in err
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "70000", "--store", root)
    assert code == 2 and "0 to 65535" in err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        code, _, err = cli(capsys, "serve", "flowers@v1", "--port", str(busy.getsockname()[1]), "--store", root)
    finally:
        busy.close()
    assert code == 1 and "the port is in use" in err


def test_server_process_reports_a_child_that_cannot_start(tmp_path: Path) -> None:
    Store.open(tmp_path / "store").close()
    proc = ServerProcess("ghost@champion", store=tmp_path / "store", port=0)
    with pytest.raises(ModelyardError, match="exited .*before it was ready.*no registered model 'ghost'"):
        proc.start()
    assert not proc.alive()
    proc.cleanup()


# --------------------------------------------------------------------------- hostile requests


def _raw(url: str, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` on a fresh socket and read one response (status, headers, body)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_deeply_nested_json_body_is_a_400_naming_the_problem(served: dict[str, Any], depth: int) -> None:
    client = served["client"]
    for body in (b"[" * depth + b"]" * depth,
                 b'{"dataframe_records": [{"x": ' + b"[" * depth + b"]" * depth + b"}]}"):
        status, _, doc = client.post(body)
        assert status == 400, doc
        assert doc["error_code"] == "BAD_REQUEST" and doc["field"] == "body"
        assert "nested too deeply" in doc["message"], doc["message"]
    assert client.post({"dataframe_records": [RECORD]})[0] == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW"])
def test_other_methods_get_a_json_405_with_allow(served: dict[str, Any], method: str) -> None:
    client = served["client"]
    for path, allowed in (("/invocations", "POST"), ("/ping", "GET, HEAD"), ("/stats", "GET, HEAD")):
        status, headers, data = client.request(method, path, b'{"dataframe_records": []}')
        assert status == 405, (path, data)
        assert headers["content-type"] == "application/json" and headers["allow"] == allowed
        doc = json.loads(data)
        assert doc["error_code"] == "METHOD_NOT_ALLOWED" and method in doc["message"] and allowed in doc["message"]
    status, headers, data = client.request(method, "/nowhere", b"{}")
    assert status == 404 and json.loads(data)["error_code"] == "NOT_FOUND"
    # the keep-alive connection carries on
    assert client.post({"dataframe_records": [RECORD]})[0] == 200


def test_malformed_requests_get_json_errors(served: dict[str, Any]) -> None:
    url = served["server"].url
    cases = [
        (b"GET /ping HTTP/1.1 extra\r\n\r\n", 400),                                 # a bad request line
        (b"GET /ping HTTP/9.9\r\n\r\n", 505),                                       # an HTTP version we do not speak
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),                     # a request line too long
        (b"GET /ping HTTP/1.1\r\n" + b"X-A: b\r\n" * 120 + b"\r\n", 431),           # too many headers
    ]
    for data, want in cases:
        status, headers, body = _raw(url, data)
        assert status == want, (data[:40], body[:200])
        assert headers["content-type"] == "application/json", body[:200]
        doc = json.loads(body)
        assert doc["error_code"] and doc["message"], doc


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_body_over_the_default_cap_is_refused_before_it_is_sent(served: dict[str, Any]) -> None:
    # only the headers are sent: the server must answer without waiting for 40 MB that never come
    t0 = time.monotonic()
    status, headers, body = _raw(served["server"].url, _head("/invocations", {
        "Content-Type": "application/json", "Content-Length": str(40 * 2**20)}), timeout=5)
    doc = json.loads(body)
    assert status == 413 and doc["error_code"] == "PAYLOAD_TOO_LARGE" and doc["field"] == "body"
    assert "41,943,040 bytes" in doc["message"] and "33,554,432" in doc["message"] and "--max-body" in doc["message"]
    assert headers["connection"] == "close" and time.monotonic() - t0 < 5


def test_max_body_is_configurable_and_chunked_bodies_are_cut_off(served: dict[str, Any]) -> None:
    limit = 64 * 1024
    with ModelServer(served["store"], "flowers@v1", port=0, record=False, max_body=limit) as server:
        ok = json.dumps({"dataframe_records": [RECORD] * 50}).encode()
        assert len(ok) < limit
        client = Client(server.url)
        assert client.post(ok)[0] == 200
        client.close()
        over = json.dumps({"dataframe_records": [RECORD] * 500}).encode()
        assert len(over) > limit
        # Content-Length over the limit: refused from the headers
        status, _, body = _raw(server.url, _head("/invocations", {"Content-Length": str(len(over))}) + over)
        assert status == 413 and json.loads(body)["error_code"] == "PAYLOAD_TOO_LARGE"
        # Expect: 100-continue over the limit: refused instead of "100 Continue", so no body is sent
        status, _, body = _raw(server.url, _head("/invocations", {"Content-Length": str(len(over)),
                                                                    "Expect": "100-continue"}))
        assert status == 413 and json.loads(body)["error_code"] == "PAYLOAD_TOO_LARGE"
        # chunked: refused once what arrived passes the limit, whatever the chunks say
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(over[i:i + 8192]), over[i:i + 8192])
                          for i in range(0, len(over), 8192)) + b"0\r\n\r\n"
        status, _, body = _raw(server.url, _head("/invocations", {"Transfer-Encoding": "chunked"}) + chunks)
        doc = json.loads(body)
        assert status == 413 and doc["error_code"] == "PAYLOAD_TOO_LARGE" and "65,536" in doc["message"]
        small = b"".join(b"%x\r\n%s\r\n" % (len(ok[i:i + 999]), ok[i:i + 999]) for i in range(0, len(ok), 999))
        status, _, body = _raw(server.url, _head("/invocations", {"Transfer-Encoding": "chunked"}) + small
                               + b"0\r\n\r\n")
        assert status == 200 and len(json.loads(body)["predictions"]) == 50
        assert server.stats()["max_body"] == limit


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _ping(sock: socket.socket) -> int:
    """GET /ping on an open keep-alive socket; the response is read whole, the socket stays open."""
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
    resp = http.client.HTTPResponse(sock, method="GET")
    resp.begin()
    resp.read()
    resp.fp = None  # leave the socket to us (HTTPResponse would close its file)
    return resp.status


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes ``sock`` (None if it stays open ``seconds``)."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return None
    except ConnectionResetError:
        data = b""
    assert data == b"", data
    return time.monotonic() - t0


def test_an_idle_connection_is_closed_after_the_idle_timeout(served: dict[str, Any]) -> None:
    assert 5 <= served["server"].stats()["idle_timeout_s"] <= 15  # the default
    with ModelServer(served["store"], "flowers@v1", port=0, record=False, idle_timeout=0.5) as server:
        kept, silent = _connect(server.url), _connect(server.url)
        try:
            assert _ping(kept) == 200
            waited = _closed_within(kept, 5)
            assert waited is not None and 0.3 < waited < 3, waited
            waited = _closed_within(silent, 5)  # connected, never sent a byte
            assert waited is not None and waited < 3, waited
            assert server.stats()["idle_timeout_s"] == 0.5
        finally:
            kept.close()
            silent.close()


def test_idle_connections_cannot_keep_a_new_client_out(served: dict[str, Any]) -> None:
    with ModelServer(served["store"], "flowers@v1", port=0, record=False, idle_timeout=60,
                     max_connections=4) as server:
        idle: list[socket.socket] = []
        try:
            for _ in range(6):  # keep-alive connections that sent one request and wait
                idle.append(_connect(server.url))
                assert _ping(idle[-1]) == 200
            idle += [_connect(server.url) for _ in range(6)]  # and connections that never send a byte
            time.sleep(0.2)
            assert server.stats()["connections"] <= 4
            for _ in range(3):  # each new client is served at once (the longest idle connection makes way)
                client = Client(server.url)
                t0 = time.monotonic()
                status, _, doc = client.post({"dataframe_records": [RECORD]})
                client.close()
                assert status == 200 and time.monotonic() - t0 < 5, doc
            closed = [s for s in idle if _closed_within(s, 0.2) is not None]
            assert len(closed) >= 9  # 12 idle plus 3 clients over 4 slots: the oldest were closed
            assert server.stats()["connections"] <= 4
        finally:
            for sock in idle:
                sock.close()


def test_a_new_client_gets_a_json_503_when_every_connection_is_mid_request(served: dict[str, Any]) -> None:
    with ModelServer(served["store"], "flowers@v1", port=0, record=False, idle_timeout=60,
                     max_connections=2) as server:
        stuck = [_connect(server.url) for _ in range(2)]
        try:
            for sock in stuck:  # a request whose body is still coming
                sock.sendall(_head("/invocations", {"Content-Length": "1000"}) + b'{"dataframe_')
            time.sleep(0.3)
            status, headers, body = _raw(server.url, b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n", timeout=5)
            doc = json.loads(body)
            assert status == 503 and headers["retry-after"] == "1"
            assert doc["error_code"] == "SERVER_BUSY" and "--max-connections" in doc["message"]
        finally:
            for sock in stuck:
                sock.close()
        time.sleep(0.3)  # the stuck requests end when their clients go away
        client = Client(server.url)
        assert client.get("/ping")[0] == 200
        client.close()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc to read peak memory")
def test_serve_max_body_option_and_the_memory_a_body_near_it_takes(served: dict[str, Any]) -> None:
    limit = 8 * 2**20
    rows = json.loads(json_frame(150).to_json(orient="split"))
    one = len(json.dumps(rows["data"]))
    body = json.dumps({"dataframe_split": {"columns": rows["columns"],
                                           "data": rows["data"] * int(0.97 * limit / one)}}).encode()
    assert 0.9 * limit < len(body) <= limit
    proc = ServerProcess("flowers@v1", store=served["store"].root, port=0, max_body=limit, idle_timeout=30,
                         max_connections=8)
    try:
        proc.start()
        assert proc.info is not None
        assert (proc.info["max_body"], proc.info["idle_timeout_s"], proc.info["max_connections"]) == (limit, 30, 8)
        status, _, doc = _raw(proc.url, _head("/invocations", {"Content-Length": str(limit + 1)}))
        assert status == 413 and "8,388,608" in json.loads(doc)["message"]
        client = Client(proc.url)
        assert client.post({"dataframe_records": [RECORD]})[0] == 200  # warm
        assert proc.pid is not None
        try:
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # restart the peak (VmHWM) from now
        except OSError:
            pytest.skip("cannot reset the peak memory of the child")
        before = memory(proc.pid)
        status, _, doc = client.post(body)
        after = memory(proc.pid)
        client.close()
        assert status == 200 and len(doc["predictions"]) == len(rows["data"]) * int(0.97 * limit / one)
        growth = after["VmHWM"] - before["VmRSS"]
        # measured 8.8x the body for this payload (it was 15x); the parsed JSON values alone take ~6x
        assert growth < 10 * len(body), f"peak memory grew {growth / len(body):.1f}x the body"
    finally:
        proc.stop()
        proc.cleanup()


def test_serve_limit_options_are_checked(served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = str(served["store"].root)
    for option, value, words in (("--max-body", "12X", "a size such as 32M"), ("--max-body", "0", "at least 1 byte"),
                                 ("--idle-timeout", "0", "above 0"), ("--idle-timeout", "soon", "expected a number"),
                                 ("--max-connections", "0", "at least 1")):
        code, _, err = cli(capsys, "serve", "flowers@v1", "--port", "0", "--store", root, option, value)
        assert code == 2 and option in err and words in err, err
        assert "Traceback" not in err
    from modelyard.core.serving import server as server_module

    code, out, _ = cli(capsys, "serve", "--help")
    text = " ".join(out.split())
    assert code == 0
    # the help's defaults are the server's
    assert server_module.DEFAULT_MAX_BODY == 32 * 2**20 and "default 32M" in text
    assert server_module.DEFAULT_IDLE_TIMEOUT_S == 10 and "(default 10)" in text
    assert server_module.DEFAULT_MAX_CONNECTIONS == 128 and "(default 128)" in text


def test_a_large_request_is_predicted_in_blocks_with_the_same_answers(served: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.core.serving import server as server_module

    lm = load_version(served["store"], "flowers@v1")
    frame = garden_frame()
    v = lm.predictor.validate(frame)
    whole, whole_proba = lm.predict(v), lm.predict(v, "predict_proba")
    monkeypatch.setattr(server_module, "PREDICT_BATCH_ROWS", 7)  # 150 rows: 22 blocks, the last of 3 rows
    assert list(lm.predict(v)) == list(whole) == list(served["model"].predict(frame[FEATURES]))
    np.testing.assert_array_equal(lm.predict(v, "predict_proba"), whole_proba)


def test_a_body_that_trickles_in_is_cut_off(served: dict[str, Any]) -> None:
    import select

    with ModelServer(served["store"], "flowers@v1", port=0, record=False, idle_timeout=0.5) as server:
        sock = _connect(server.url)
        try:
            sock.sendall(_head("/invocations", {"Content-Length": "100000"}))
            t0 = time.monotonic()
            while time.monotonic() - t0 < 8:  # a byte every 0.2 s: each read is within the idle timeout
                if select.select([sock], [], [], 0.2)[0]:
                    break
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
            waited = time.monotonic() - t0
            resp = http.client.HTTPResponse(sock, method="POST")
            resp.begin()
            doc = json.loads(resp.read())
        finally:
            sock.close()
    assert resp.status == 408 and doc["error_code"] == "REQUEST_TIMEOUT" and doc["field"] == "body", doc
    assert waited < 4, waited
