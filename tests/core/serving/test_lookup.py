"""Hybrid serving: features looked up by key in a registered dataset version (FeatureLookup), in a
stream; predictions equal batch scoring of the joined table; an unknown key is an error naming
it (or the default row); a newer version is swapped in during a stream without failing an event;
the lineage edge model_version -looks_up-> dataset_version is recorded."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_no_traceback, subprocess_env
from factories import make_garden_store
from modelyard.core.common.errors import ModelyardError
from modelyard.core.datasets.service import import_frame, load_frame
from modelyard.core.serving.lookup import FeatureLookup, UnknownKeyError
from modelyard.core.serving.scoring import Predictor
from modelyard.core.serving.server import load_version
from modelyard.core.serving.streaming import run_stream
from modelyard.core.store import models as m
from sqlalchemy import select

LOOKED_UP = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)", "greenhouse"]
SENT = ["plant_id", "region", "measured"]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lookup") / "store"
    store, info = make_garden_store(root)
    garden = load_frame(store, "garden@v1")
    import_frame(store, garden[["plant_id", *LOOKED_UP]], "plant-features")
    try:
        yield {"store": store, "root": root, "info": info, "garden": garden,
               "loaded": load_version(store, "flowers@champion")}
    finally:
        store.close()


class _Sink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.lines.extend(data.splitlines())
        return len(data)

    def flush(self) -> None:
        pass


def event_lines(frame: pd.DataFrame) -> list[bytes]:
    part = frame[SENT].copy()
    part["measured"] = part["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    part.insert(0, "id", part["plant_id"])
    return part.to_json(orient="records", lines=True).encode().splitlines()


def test_predictions_with_a_lookup_equal_batch_scoring_of_the_joined_table(hybrid: dict[str, Any]) -> None:
    store, garden = hybrid["store"], hybrid["garden"]
    lookup = FeatureLookup(store, "plant-features@v1", "plant_id")
    assert lookup.columns == LOOKED_UP and lookup.ref == "plant-features@v1"
    out = _Sink()
    summary = run_stream(store, None, [event_lines(garden)], out, loaded=hybrid["loaded"], lookup=lookup)
    assert summary["errors"] == 0 and summary["predictions"] == len(garden)
    got = [json.loads(x) for x in out.lines]

    joined = garden[SENT].merge(load_frame(store, "plant-features@v1"), on="plant_id", how="left")
    batch = Predictor(hybrid["loaded"].predictor.model, hybrid["info"].signature).predict_frame(joined)
    assert [g["id"] for g in got] == garden["plant_id"].tolist()
    assert [g["prediction"] for g in got] == batch["prediction"].tolist()
    for col in ("proba_setosa", "proba_versicolor", "proba_virginica"):
        np.testing.assert_allclose([g[col] for g in got], batch[col], rtol=1e-12, atol=1e-15)
    # the lookup's features win over columns a request sends with the same name
    sent = garden[SENT].assign(**{"petal width (cm)": 99.0})
    enriched = lookup.enrich(sent)
    assert enriched["petal width (cm)"].tolist() == garden["petal width (cm)"].tolist()
    assert enriched["plant_id"].tolist() == garden["plant_id"].tolist()  # the key stays


def test_an_unknown_key_is_an_error_naming_the_key_or_gets_the_default_row(hybrid: dict[str, Any]) -> None:
    store, garden = hybrid["store"], hybrid["garden"]
    lookup = FeatureLookup(store, "plant-features", "plant_id")
    frame = garden[SENT].head(3).copy()
    frame.loc[1, "plant_id"] = 424242
    with pytest.raises(UnknownKeyError) as err:
        lookup.enrich(frame)
    assert err.value.fields == ["plant_id"] and err.value.keys == [424242]
    assert "424242" in err.value.message and "plant_id" in err.value.message
    assert isinstance(err.value, ModelyardError)

    lines = event_lines(garden.head(3))
    lines[1] = lines[1].replace(b'"plant_id":1001', b'"plant_id":424242')
    out = _Sink()
    summary = run_stream(store, None, [lines], out, loaded=hybrid["loaded"], lookup=lookup)
    got = [json.loads(x) for x in out.lines]
    assert summary["errors"] == 1 and summary["predictions"] == 2
    assert got[1]["field"] == "plant_id" and got[1]["line"] == 2 and "424242" in got[1]["error"]
    assert "prediction" in got[0] and "prediction" in got[2]

    with_default = FeatureLookup(store, "plant-features", "plant_id",
                                 default={"sepal length (cm)": 5.0, "greenhouse": True})
    row = with_default.enrich(frame).iloc[1]
    assert row["sepal length (cm)"] == 5.0 and row["greenhouse"] is True and np.isnan(row["petal width (cm)"])
    out = _Sink()
    summary = run_stream(store, None, [lines], out, loaded=hybrid["loaded"], lookup=with_default)
    assert summary["errors"] == 0 and summary["predictions"] == 3
    # keys are values: "1000" and 1000.0 find plant 1000
    assert (lookup.positions(["1000", 1000.0, 1000]) == 0).all()


def test_a_lookup_refuses_a_missing_key_column_duplicate_keys_and_a_bad_default(hybrid: dict[str, Any]) -> None:
    store = hybrid["store"]
    with pytest.raises(ModelyardError, match="no column 'customer_id'"):
        FeatureLookup(store, "plant-features", "customer_id")
    import_frame(store, pd.DataFrame({"k": [1, 2, 2], "x": [0.1, 0.2, 0.3]}), "dupes")
    with pytest.raises(ModelyardError, match="holds 2 more than once"):
        FeatureLookup(store, "dupes", "k")
    with pytest.raises(ModelyardError, match="'visits'"):
        FeatureLookup(store, "plant-features", "plant_id", default={"visits": 0})


def _edges(store: Any, model_version_id: int) -> list[tuple[str, dict[str, Any]]]:
    with store.session() as s:
        rows = s.execute(select(m.LineageEdge.dst_id, m.LineageEdge.details).where(
            m.LineageEdge.src_type == "model_version", m.LineageEdge.src_id == str(model_version_id),
            m.LineageEdge.relation == "looks_up")).all()
    return [(r[0], dict(r[1] or {})) for r in rows]


def test_a_newer_version_swapped_in_during_a_stream_fails_no_event(tmp_path: Path) -> None:
    store, info = make_garden_store(tmp_path / "store")
    try:
        garden = load_frame(store, "garden@v1")
        v1 = import_frame(store, garden[["plant_id", *LOOKED_UP]], "features")
        lookup = FeatureLookup(store, "features", "plant_id")  # follows the latest version
        loaded = load_version(store, "flowers@champion")
        lines = event_lines(garden)
        waiting: queue.Queue[list[bytes] | None] = queue.Queue()

        def source() -> Iterator[list[bytes]]:
            while (chunk := waiting.get()) is not None:
                yield chunk

        out = _Sink()
        result: dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(run_stream(
            store, None, source(), out, loaded=loaded, lookup=lookup, refresh_lookup_s=0.05)), daemon=True)
        t.start()
        changed = garden[["plant_id", *LOOKED_UP]].copy()
        changed["petal length (cm)"] = changed["petal length (cm)"][::-1].to_numpy()  # other features
        sent = 0
        v2 = None
        for round_ in range(40):  # events keep coming, one or a few at a time, while v2 is published
            for _ in range(1 + round_ % 3):
                waiting.put([lines[sent % len(lines)]])
                sent += 1
            if round_ == 10:
                v2 = import_frame(store, changed, "features")
            time.sleep(0.02)
        deadline = time.monotonic() + 10
        while lookup.version_id != v2["dataset_version_id"] and time.monotonic() < deadline:
            time.sleep(0.02)
        after = lines[:30]
        waiting.put(after)
        waiting.put(None)
        t.join(20)
        assert not t.is_alive()
        assert result["errors"] == 0 and result["predictions"] == sent + 30
        assert lookup.swaps == 1 and lookup.version_id == v2["dataset_version_id"]
        # the events after the swap were scored with v2's features
        joined = garden[SENT].head(30).merge(changed, on="plant_id", how="left")
        batch = Predictor(loaded.predictor.model, info.signature).predict_frame(joined)
        tail = [json.loads(x) for x in out.lines[-30:]]
        assert [x["prediction"] for x in tail] == batch["prediction"].tolist()
        np.testing.assert_allclose([x["proba_setosa"] for x in tail], batch["proba_setosa"], rtol=1e-12)
        # lineage: the model version looked features up in both versions
        edges = _edges(store, info.id)
        assert sorted(int(d) for d, _ in edges) == sorted([v1["dataset_version_id"], v2["dataset_version_id"]])
        assert all(det["key"] == "plant_id" and det["used_by"] == "stream" for _, det in edges)
    finally:
        store.close()


def test_cli_stream_with_a_lookup_and_a_default(hybrid: dict[str, Any]) -> None:
    lines = event_lines(hybrid["garden"].head(5))
    lines[2] = lines[2].replace(b'"plant_id":1002', b'"plant_id":7')
    body = b"\n".join(lines) + b"\n"
    base = [sys.executable, "-m", "modelyard", "--store", str(hybrid["root"]), "predict", "--stream",
            "flowers@champion", "--lookup", "plant-features", "--key", "plant_id"]
    proc = subprocess.run(base, input=body, capture_output=True, env=subprocess_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_no_traceback(base, proc.stderr.decode())
    got = [json.loads(x) for x in proc.stdout.splitlines()]
    assert got[2]["field"] == "plant_id" and "Unknown plant_id 7" in got[2]["error"]
    assert "4 predictions, 1 error line " in proc.stderr.decode()
    proc = subprocess.run([*base, "--lookup-default", '{"greenhouse": false}'], input=body, capture_output=True,
                          env=subprocess_env(), timeout=60)
    got = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 0 and all("prediction" in g for g in got) and len(got) == 5
