"""``GET /metrics``: the server's statistics in Prometheus' text exposition format (0.0.4),
parsed here line by line as Prometheus reads it, and checked against the requests sent."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from factories import make_garden_store
from modelyard.core.serving.server import ModelServer

RECORD = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2,
          "region": "north", "measured": "2024-03-01T10:00:00", "greenhouse": True}

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text: str) -> dict[str, dict[str, Any]]:
    """Families ``{name: {"type", "help", "samples": [(sample name, labels, value)]}}``; fails on
    anything Prometheus' text parser would refuse (a sample before its TYPE, a bad label, a value
    that is not a number, a family declared twice, a line without its newline)."""
    assert text.endswith("\n")
    families: dict[str, dict[str, Any]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{name} declared twice"
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name]["type"] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            sample, _, labels_text, value = m.groups()
            assert current is not None and families[current]["type"] is not None, line
            allowed = {current} | ({f"{current}_bucket", f"{current}_sum", f"{current}_count"}
                                   if families[current]["type"] == "histogram" else set())
            assert sample in allowed, f"{sample} outside its family {current}"
            labels: dict[str, str] = {}
            rest = labels_text or ""
            while rest:
                lm = _LABEL.match(rest)
                assert lm, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                rest = rest[lm.end():]
            families[current]["samples"].append((sample, labels, float(value)))
    return families


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store, info = make_garden_store(tmp_path_factory.mktemp("metrics") / "store")
    server = ModelServer(store, "flowers@champion", port=0, record=False).start()
    try:
        yield {"store": store, "server": server}
    finally:
        server.shutdown()
        store.close()


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_metrics_in_prometheus_text_format(served: dict[str, Any]) -> None:
    server = served["server"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    good = json.dumps({"dataframe_records": [RECORD, RECORD]}).encode()
    bad = json.dumps({"dataframe_records": [{"region": "north"}]}).encode()
    for body in [good] * 7 + [bad] * 2:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    status, headers, body = _get(conn, "/metrics")
    conn.close()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    fam = parse(body.decode())

    requests = fam["modelyard_requests_total"]
    assert requests["type"] == "counter"
    by = {(s[1]["status"], s[1]["version"], s[1]["route"]): s[2] for s in requests["samples"]}
    assert by == {("200", "flowers@v1", "champion"): 7, ("400", "flowers@v1", "champion"): 2}
    assert all(s[1]["model"] == "flowers" for s in requests["samples"])

    hist = fam["modelyard_request_duration_seconds"]
    assert hist["type"] == "histogram"
    buckets = [(s[1]["le"], s[2]) for s in hist["samples"] if s[0].endswith("_bucket")]
    counts = [n for _, n in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == "+Inf"  # cumulative, ending at +Inf
    total = {s[0]: s[2] for s in hist["samples"] if not s[0].endswith("_bucket")}
    assert total["modelyard_request_duration_seconds_count"] == 9 == buckets[-1][1]
    assert 0 < total["modelyard_request_duration_seconds_sum"] < 9 * 5
    bounds = [float(le) for le, _ in buckets[:-1]]
    assert bounds == sorted(bounds) and bounds[0] < 0.001  # from under a millisecond

    assert fam["modelyard_requests_in_flight"]["samples"][0][2] == 0
    assert fam["modelyard_requests_in_flight"]["type"] == "gauge"
    assert fam["modelyard_rows_total"]["samples"][0][2] == 14
    assert fam["modelyard_open_connections"]["samples"][0][2] >= 0
    assert fam["modelyard_route_share"]["samples"][0][2] == 0
    assert "modelyard_prediction_log_rows_total" not in fam  # no prediction log on this server


def test_metrics_count_versions_and_routes_of_a_canary(served: dict[str, Any]) -> None:
    from factories import train_registered
    from modelyard.core.registry import versions as registry

    store = served["store"]
    v2 = train_registered(store, "flowers", "random_forest", {"n_estimators": 5})
    registry.set_alias(store, v2.ref, "challenger", comment="try it")
    server = ModelServer(store, "flowers@champion", port=0, record=False, canary=("challenger", 0.25)).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(40):
            conn.request("POST", "/invocations", body=json.dumps({"dataframe_records": [RECORD]}).encode(),
                         headers={"Content-Type": "application/json"})
            conn.getresponse().read()
        fam = parse(_get(conn, "/metrics")[2].decode())
        conn.close()
    finally:
        server.shutdown()
    by = {(s[1]["version"], s[1]["route"]): s[2] for s in fam["modelyard_requests_total"]["samples"]}
    assert by == {("flowers@v1", "champion"): 30, (v2.ref, "challenger"): 10}
    share = fam["modelyard_route_share"]["samples"][0]
    assert share[2] == 0.25 and share[1]["challenger"] == v2.ref
