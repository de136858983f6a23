"""The prediction log: submit never blocks, what a full queue drops is counted (dropped + logged +
sampled out = rows submitted), segments are Parquet files under the artifact folder with one
store record each, and their rows say what was asked and answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from factories import make_garden_store
from modelyard.core.serving.predlog import (
    INPUT_PREFIX,
    PredictionLog,
    log_files,
    logged_models,
    value_texts,
)
from modelyard.core.store import Store


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Any]]:
    store, info = make_garden_store(tmp_path_factory.mktemp("predlog") / "store")
    try:
        yield store, info
    finally:
        store.close()


def _frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(start, start + n), "x": np.linspace(0, 1, n), "colour": ["red"] * n})


def _read(files: list[dict[str, Any]]) -> dict[str, list[Any]]:
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f["path"]) for f in files]).to_pydict()


def test_an_overflowing_queue_counts_every_dropped_row(garden: tuple[Store, Any]) -> None:
    store, info = garden
    before = sum(f["rows"] for f in log_files(store, "flowers"))
    plog = PredictionLog(store, "flowers", queue_size=4, segment_rows=200, segment_seconds=30)
    frame = _frame(3)
    out = np.array(["setosa"] * 3)
    accepted = []
    slowest = [0.0]

    def hammer() -> None:
        ok = 0
        for _ in range(400):
            t0 = time.perf_counter()
            ok += plog.submit(inputs=frame, outputs=out, version_id=info.id, version_ref=info.ref,
                              latency_s=0.001, status=200)
            slowest[0] = max(slowest[0], time.perf_counter() - t0)
        accepted.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert plog.flush(timeout=60)
    counts = plog.counts()
    plog.close()
    assert counts["requests"] == 2400 and counts["rows"] == 7200
    assert counts["dropped_rows"] > 0, counts  # the queue of 4 overflowed
    assert counts["logged_rows"] == 3 * sum(accepted)
    assert counts["logged_rows"] + counts["dropped_rows"] + counts["sampled_out_rows"] == counts["rows"]
    assert counts["pending_rows"] == 0 and counts["write_errors"] == 0
    # what the counts say is on disk, and in the store
    files = log_files(store, "flowers")
    assert sum(f["rows"] for f in files) - before == counts["logged_rows"]
    assert sum(pq.read_metadata(f["path"]).num_rows for f in files) - before == counts["logged_rows"]
    assert all(f["path"].is_relative_to(store.artifacts.root / "predlog") for f in files)
    assert slowest[0] < 0.5  # never waited for the writer (a queue put; generous for a loaded machine)


def test_segments_hold_inputs_outputs_errors_and_keys(garden: tuple[Store, Any]) -> None:
    store, info = garden
    seen = {f["id"] for f in log_files(store, "flowers")}
    with PredictionLog(store, "flowers", segment_rows=1000, key_column="id") as plog:
        plog.submit(inputs=_frame(2, 10), outputs=np.array([1.0, 2.5]), version_id=info.id, version_ref=info.ref,
                    latency_s=0.002, status=200, at=1_700_000_000.0)
        plog.submit(inputs={"x": np.array([0.5]), "colour": np.array(["blue"], dtype=object)},
                    outputs=np.array([[0.25, 0.75]]), version_id=info.id, version_ref=info.ref, latency_s=0.004,
                    status=200, route="challenger", keys=["k-1"], at=1_700_000_001.0)
        plog.submit(inputs=None, outputs=None, version_id=info.id, version_ref=info.ref, latency_s=0.0005,
                    status=400, at=1_700_000_002.0)
        assert plog.flush()
        assert plog.counts()["logged_rows"] == 4
    files = [f for f in log_files(store, "flowers") if f["id"] not in seen]
    assert len(files) == 1 and files[0]["rows"] == 4
    assert files[0]["details"]["versions"] == {info.ref: 4}
    assert files[0]["details"]["routes"] == {"champion": 3, "challenger": 1}
    assert files[0]["details"]["errors"] == 1
    assert files[0]["first_at"].timestamp() == pytest.approx(1_700_000_000.0)
    rows = _read(files)
    assert rows["key"] == ["10", "11", "k-1", None]
    assert rows["prediction"] == ["1", "2.5", "[0.25, 0.75]", None]
    assert rows["prediction_value"][:2] == [1.0, 2.5]
    assert rows["status"] == [200, 200, 200, 400]
    assert len(set(rows["request"])) == 3 and rows["row"] == [0, 1, 0, 0]
    assert rows[INPUT_PREFIX + "colour"] == ["red", "red", "blue", None]
    assert rows[INPUT_PREFIX + "id"] == [10, 11, None, None]
    assert rows["route"] == ["champion", "champion", "challenger", "champion"]
    assert "flowers" in logged_models(store)


def test_a_sampled_share_is_counted_and_segments_roll_by_time(garden: tuple[Store, Any]) -> None:
    store, info = garden
    seen = {f["id"] for f in log_files(store, "flowers")}
    plog = PredictionLog(store, "flowers", sample=0.25, seed=3, segment_rows=10_000, segment_seconds=0.3)
    for i in range(400):
        plog.submit(inputs=_frame(1, i), outputs=[0], version_id=info.id, version_ref=info.ref, latency_s=0.001,
                    status=200)
    # no flush: the writer writes what waited segment_seconds on its own
    deadline = time.monotonic() + 20
    while plog.counts()["pending_rows"] and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = plog.counts()
    plog.close()
    assert counts["pending_rows"] == 0
    assert 60 < counts["logged_rows"] < 140, counts  # about a quarter
    assert counts["logged_rows"] + counts["sampled_out_rows"] == 400 and counts["dropped_rows"] == 0
    assert sum(f["rows"] for f in log_files(store, "flowers") if f["id"] not in seen) == counts["logged_rows"]
    # after close, a submit is counted as dropped, not lost
    assert not plog.submit(inputs=_frame(2), outputs=[0, 1], version_id=info.id, version_ref=info.ref,
                           latency_s=0.0, status=200)
    assert plog.counts()["dropped_rows"] == 2


def test_values_read_the_same_as_text_however_typed() -> None:
    assert value_texts(np.array([1.0, 2.0, 2.5, np.nan])) == ["1", "2", "2.5", None]
    assert value_texts([1, 0]) == ["1", "0"]
    assert value_texts(np.array([True, False])) == ["1", "0"]
    assert value_texts(np.array(["yes", None], dtype=object)) == ["yes", None]


def test_a_bad_share_is_refused(garden: tuple[Store, Any]) -> None:
    from modelyard.core.common.errors import ModelyardError

    store, _ = garden
    with pytest.raises(ModelyardError, match="between 0 and 1"):
        PredictionLog(store, "flowers", sample=1.5)


def test_a_shadow_answer_takes_the_time_of_the_request_its_thread_just_logged(garden: tuple[Store, Any]) -> None:
    store, info = garden
    seen = {f["id"] for f in log_files(store, "flowers")}
    with PredictionLog(store, "flowers") as plog:
        for i in range(3):
            plog.submit(inputs=_frame(1, i), outputs=[0], version_id=info.id, version_ref=info.ref, latency_s=0.001,
                        status=200)
            time.sleep(0.01)
            plog.submit(inputs=_frame(1, i), outputs=[1], version_id=info.id, version_ref=info.ref, latency_s=0.002,
                        status=200, route="shadow")
        assert plog.flush()
    rows = _read([f for f in log_files(store, "flowers") if f["id"] not in seen])
    assert rows["route"] == ["champion", "shadow"] * 3
    assert rows["at"][0::2] == rows["at"][1::2] and len(set(rows["at"])) == 3


def test_a_server_whose_log_overflows_keeps_answering_and_counts_every_row(garden: tuple[Store, Any]) -> None:
    import http.client
    import json

    from factories import FEATURES, garden_frame
    from modelyard.core.serving.server import ModelServer

    store, _info = garden
    frame = garden_frame()
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    body = json.dumps({"dataframe_split": json.loads(frame.iloc[:3][FEATURES].to_json(orient="split",
                                                                                      index=False))}).encode()
    plog = PredictionLog(store, "flowers", queue_size=2)
    server = ModelServer(store, "flowers@champion", port=0, record=False, prediction_log=plog).start()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    statuses: list[int] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            for _ in range(150):
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # the server hands a request to the log after its answer is sent: wait for the last ones
        deadline = time.monotonic() + 10
        while plog.counts()["requests"] < 1200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert plog.flush()
        counts = plog.counts()
        served = server.stats()["requests"]
    finally:
        server.shutdown()
        plog.close()
    assert statuses == [200] * 1200 and served == 1200  # the server kept answering
    assert counts["rows"] == 3 * 1200
    assert counts["dropped_rows"] > 0, counts  # a queue of 2 drained every 0.2 s overflowed
    assert counts["logged_rows"] + counts["dropped_rows"] == 3 * 1200 and counts["sampled_out_rows"] == 0
