"""The server's hooks: a feature lookup (hybrid serving: predictions equal batch scoring of the
joined table, an unknown key is a 400 naming it, a newer lookup version is swapped in under a
request stream without failing a request, lineage recorded) and the prediction log (every
request logged with the version and route that answered it; shadow and canary logged by route;
under a load that overflows its queue the server keeps answering and logged + dropped rows
equal the rows served)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli
from factories import make_garden_store, train_registered
from modelyard.core.datasets.service import import_frame, load_frame
from modelyard.core.registry import versions as registry
from modelyard.core.serving import ServerProcess
from modelyard.core.serving.lookup import FeatureLookup
from modelyard.core.serving.predlog import PredictionLog, log_files
from modelyard.core.serving.scoring import Predictor
from modelyard.core.serving.server import ModelServer
from modelyard.core.store import models as m
from sqlalchemy import select

LOOKED_UP = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)", "greenhouse"]
SENT = ["plant_id", "region", "measured"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store, info = make_garden_store(tmp_path_factory.mktemp("hooks") / "store")
    garden = load_frame(store, "garden@v1")
    import_frame(store, garden[["plant_id", *LOOKED_UP]], "plant-features")
    challenger = train_registered(store, "flowers", "random_forest", {"n_estimators": 5})
    registry.set_alias(store, challenger.ref, "challenger", comment="to try")
    try:
        yield {"store": store, "info": info, "garden": garden, "challenger": challenger}
    finally:
        store.close()


def sent_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    part = frame[SENT].copy()
    part["measured"] = part["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return json.loads(part.to_json(orient="records"))


def post(conn: http.client.HTTPConnection, doc: Any) -> tuple[int, dict[str, str], Any]:
    conn.request("POST", "/invocations", body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())


def read_log(store: Any, model: str) -> pd.DataFrame:
    files = log_files(store, model)
    return pd.concat([pq.read_table(f["path"]).to_pandas() for f in files], ignore_index=True) if files else \
        pd.DataFrame()


# --------------------------------------------------------------------------- feature lookup


def test_a_lookup_server_answers_as_batch_scoring_of_the_joined_table(lab: dict[str, Any]) -> None:
    store, garden = lab["store"], lab["garden"]
    lookup = FeatureLookup(store, "plant-features", "plant_id")
    server = ModelServer(store, "flowers@champion", port=0, lookup=lookup).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        status, headers, doc = post(conn, {"dataframe_records": sent_records(garden)})
        assert status == 200, doc
        joined = garden[SENT].merge(load_frame(store, "plant-features@v1"), on="plant_id", how="left")
        batch = Predictor(registry.load_model(store, "flowers@v1"), lab["info"].signature).predict_frame(joined)
        assert doc["predictions"] == batch["prediction"].tolist()
        # dataframe_split and CSV too
        split = pd.DataFrame(sent_records(garden.head(5)))
        status, _, doc = post(conn, {"dataframe_split": json.loads(split.to_json(orient="split", index=False))})
        assert status == 200 and doc["predictions"] == batch["prediction"].tolist()[:5]
        conn.request("POST", "/invocations", body=split.to_csv(index=False).encode(), headers={"Content-Type": "text/csv"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["predictions"] == batch["prediction"].tolist()[:5]
        # an unknown key: 400 naming the key column and the key
        bad = sent_records(garden.head(2))
        bad[1]["plant_id"] = 987654
        status, _, doc = post(conn, {"dataframe_records": bad})
        assert status == 400 and doc["field"] == "plant_id" and "987654" in doc["message"], doc
        # no key column at all
        status, _, doc = post(conn, {"dataframe_records": [{"region": "north"}]})
        assert status == 400 and doc["field"] == "plant_id", doc
        assert server.stats()["lookup"]["ref"] == "plant-features@v1"
    finally:
        conn.close()
        server.shutdown()
    with store.session() as s:
        edge = s.execute(select(m.LineageEdge).where(m.LineageEdge.src_type == "model_version",
                                                     m.LineageEdge.src_id == str(lab["info"].id),
                                                     m.LineageEdge.relation == "looks_up")).scalars().first()
        assert edge is not None and edge.dst_id == str(lookup.version_id)


def test_a_newer_lookup_version_is_swapped_in_under_load_without_failing_a_request(lab: dict[str, Any]) -> None:
    store, garden = lab["store"], lab["garden"]
    name = "plant-features-live"
    import_frame(store, garden[["plant_id", *LOOKED_UP]], name)
    lookup = FeatureLookup(store, name, "plant_id")
    server = ModelServer(store, "flowers@champion", port=0, poll_interval=0.05, record=False, lookup=lookup).start()
    stop, failures, answers = threading.Event(), [], []
    rows = sent_records(garden.iloc[::8])  # every species

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            while not stop.is_set():
                status, _, doc = post(conn, {"dataframe_records": rows})
                if status != 200:
                    failures.append(doc)
                else:
                    answers.append(tuple(doc["predictions"]))
        finally:
            conn.close()

    threads = [threading.Thread(target=load) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        changed = garden[["plant_id", *LOOKED_UP]].copy()  # every plant now measures like the last one
        for col in LOOKED_UP:
            changed[col] = changed[col].iloc[-1]
        import_frame(store, changed, name)
        deadline = time.monotonic() + 15
        while lookup.ref.endswith("@v1") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.shutdown()
    assert not failures, failures[:3]
    assert lookup.ref == f"{name}@v2"
    model = Predictor(registry.load_model(store, "flowers@v1"), lab["info"].signature)
    sent = pd.DataFrame(rows).assign(measured=lambda f: pd.to_datetime(f["measured"]))
    old, new = (tuple(model.predict_frame(sent.merge(load_frame(store, f"{name}@v{n}"), on="plant_id",
                                                     how="left"))["prediction"]) for n in (1, 2))
    assert old != new
    assert set(answers) == {old, new} and answers[-1] == new  # the old table's answers, then the new one's


# --------------------------------------------------------------------------- prediction log


def test_every_request_is_logged_with_the_version_and_route_that_answered(lab: dict[str, Any]) -> None:
    store, garden = lab["store"], lab["garden"]
    plog = PredictionLog(store, "flowers", segment_seconds=0.2)
    server = ModelServer(store, "flowers@champion", port=0, record=False, prediction_log=plog,
                         canary=("challenger", 0.25), log_key="plant_id",
                         lookup=FeatureLookup(store, "plant-features@v1", "plant_id")).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    records = sent_records(garden.head(3))
    try:
        served = Counter()
        for _ in range(40):
            status, headers, _ = post(conn, {"dataframe_records": records})
            assert status == 200
            served[(headers["x-modelyard-model"], headers["x-modelyard-route"])] += 1
        assert post(conn, {"dataframe_records": [{"plant_id": 5}, {"plant_id": -1}]})[0] == 400
        server.set_route(shadow="challenger")
        for _ in range(10):
            assert post(conn, {"dataframe_records": records})[1]["x-modelyard-model"] == "flowers@v1"
        deadline = time.monotonic() + 10
        while server.route.shadow_scored < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
    finally:
        conn.close()
        server.shutdown()  # closes the log: everything queued is written
    assert served == {("flowers@v1", "champion"): 30, (lab["challenger"].ref, "challenger"): 10}
    counts = plog.counts()
    assert counts["dropped_rows"] == 0 and counts["logged_rows"] == counts["rows"] == 40 * 3 + 1 + 10 * 3 * 2
    assert 'modelyard_prediction_log_rows_total{model="flowers",kind="logged"}' in metrics
    log = read_log(store, "flowers")
    by_route = log.groupby(["route", "version_ref"]).size().to_dict()
    assert by_route == {("champion", "flowers@v1"): 30 * 3 + 1 + 10 * 3, ("challenger", lab["challenger"].ref): 30,
                        ("shadow", lab["challenger"].ref): 30}
    # a shadow answer carries its request's time, so monitoring pairs it with the champion's
    assert set(log.loc[log["route"] == "shadow", "at"]) <= set(log.loc[log["route"] == "champion", "at"])
    ok = log[log["status"] == 200]
    assert sorted(set(ok["key"])) == sorted(str(r["plant_id"]) for r in records)
    assert (log["status"] == 400).sum() == 1
    assert "in.sepal length (cm)" in log.columns  # the looked-up features, as the model read them


def test_a_log_whose_queue_overflows_never_fails_the_server(lab: dict[str, Any]) -> None:
    store, garden = lab["store"], lab["garden"]
    # a segment (a Parquet file and a row in the store) per request: the writer is far slower than the server
    plog = PredictionLog(store, "flowers", queue_size=2, segment_rows=1, segment_seconds=3600)
    server = ModelServer(store, "flowers@champion", port=0, record=False, prediction_log=plog).start()
    record = json.loads(garden.head(1).assign(measured=garden["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
                        .to_json(orient="records"))[0]
    served, failures = [0], []

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for _ in range(150):
                status, _, doc = post(conn, {"dataframe_records": [record]})
                if status == 200:
                    served[0] += 1
                else:
                    failures.append(doc)
        finally:
            conn.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    server.shutdown()
    counts = plog.counts()
    assert not failures and served[0] == 600
    assert counts["dropped_rows"] > 0  # the queue of 2 overflowed...
    assert counts["logged_rows"] + counts["dropped_rows"] == 600  # ...and every row is accounted for


def test_serve_log_and_lookup_options(lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    store, garden = lab["store"], lab["garden"]
    root = str(store.root)
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root, "--lookup",
                       "plant-features")
    assert code == 2 and "--lookup-key COL" in err  # options that need each other: a usage error
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root, "--lookup",
                       "plant-features", "--lookup-key", "plant")
    assert code == 1 and "no column 'plant'" in err and "hint: Give --lookup-key" in err, err
    before = sum(f["rows"] for f in log_files(store, "flowers"))
    proc = ServerProcess("flowers@champion", store=store.root, port=0,
                         options=["--lookup", "plant-features@v1", "--lookup-key", "plant_id", "--log", "100%"])
    try:
        proc.start()
        assert proc.info is not None and proc.info["prediction_log"] is True
        assert proc.info["lookup"]["ref"] == "plant-features@v1"
        conn = http.client.HTTPConnection("127.0.0.1", int(proc.url.rsplit(":", 1)[1]), timeout=30)
        for _ in range(5):
            assert post(conn, {"dataframe_records": sent_records(garden.head(4))})[0] == 200
        status, _, doc = post(conn, {"dataframe_records": [{"plant_id": 424242, "region": "north"}]})
        assert status == 400 and doc["field"] == "plant_id" and "424242" in doc["message"]
        conn.close()
    finally:
        assert proc.stop() == 0
        proc.cleanup()
    assert proc.events[-1]["prediction_log"]["logged_rows"] == 21
    assert sum(f["rows"] for f in log_files(store, "flowers")) - before == 21


def test_a_lookup_default_answers_unknown_keys(lab: dict[str, Any]) -> None:
    store, garden = lab["store"], lab["garden"]
    default = {c: garden[c].iloc[-1].item() for c in LOOKED_UP}
    lookup = FeatureLookup(store, "plant-features@v1", "plant_id", default=default)
    server = ModelServer(store, "flowers@champion", port=0, record=False, lookup=lookup).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        known, unknown = sent_records(garden.tail(1)), sent_records(garden.tail(1))
        unknown[0]["plant_id"] = 555555
        status, _, doc = post(conn, {"dataframe_records": known + unknown})
    finally:
        conn.close()
        server.shutdown()
    assert status == 200 and doc["predictions"][0] == doc["predictions"][1]  # the default row: the last plant's
