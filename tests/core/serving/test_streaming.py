"""Streaming scoring (``modelyard predict --stream``): JSON lines in, one prediction or error line
per event out, the same values as batch scoring; a followed file that grows, rotates and is
truncated loses and duplicates nothing."""

from __future__ import annotations

import json
import os
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
from factories import FEATURES, garden_frame, make_garden_store
from modelyard.core.jobs.runner import run_job
from modelyard.core.serving import scoring
from modelyard.core.serving.follow import FollowSource, PipeSource
from modelyard.core.serving.server import load_version
from modelyard.core.serving.streaming import StreamScorer, StreamStats, run_stream


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("streaming") / "store"
    store, info = make_garden_store(root)
    try:
        yield {"store": store, "root": root, "info": info, "loaded": load_version(store, "flowers@champion")}
    finally:
        store.close()


def events(n: int, *, seed: int = 0) -> pd.DataFrame:
    """``n`` garden rows, each a little different (ids from 1), with ISO text dates."""
    base = garden_frame()
    rng = np.random.default_rng(seed)
    rows = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    for col in FEATURES[:4]:
        rows[col] = (rows[col] + rng.normal(0, 0.3, n)).round(2)
    rows.loc[rng.random(n) < 0.02, "sepal width (cm)"] = np.nan
    rows["measured"] = rows["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    rows.insert(0, "id", np.arange(1, n + 1))
    return rows.drop(columns=["species", "plant_id"])


def json_lines(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True).encode() + b"\n"


def score(garden: dict[str, Any], lines: list[bytes], **kwargs: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out = _Sink()
    summary = run_stream(None, None, [lines], out, loaded=garden["loaded"], **kwargs)
    return [json.loads(x) for x in out.getvalue().splitlines()], summary


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


# --------------------------------------------------------------------------- the acceptance: 100,000 lines


def test_100000_lines_through_stdin_give_the_predictions_of_batch_scoring(garden: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    frame = events(100_000)
    path = tmp_path / "events.jsonl"
    path.write_bytes(json_lines(frame))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "modelyard", "--store", str(garden["root"]), "predict", "--stream",
                           "flowers@champion", "--json"], stdin=path.open("rb"), capture_output=True,
                          env=subprocess_env(), timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.decode()
    assert_no_traceback(["predict", "--stream"], proc.stderr.decode())
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = json.loads(proc.stderr.decode()[proc.stderr.decode().index("{"):])
    assert summary["predictions"] == 100_000 and summary["errors"] == 0 and summary["events"] == 100_000

    # batch scoring of the same file (imported as a dataset version, as `modelyard predict` does)
    outcome = run_job(garden["store"], scoring.score_spec("flowers@champion", path=path))
    assert outcome.ok, outcome.error
    from modelyard.core.datasets.service import load_frame

    batch = load_frame(garden["store"], outcome.result["output"]["dataset_version_id"])
    assert len(out) == len(batch) == 100_000
    assert [o["id"] for o in out] == batch["id"].tolist()  # in order, one each
    assert [o["prediction"] for o in out] == batch["prediction"].tolist()
    for col in ("proba_setosa", "proba_versicolor", "proba_virginica"):
        got = np.array([o[col] for o in out])
        np.testing.assert_array_equal(got, batch[col].to_numpy())
    assert took < 60, f"100,000 events took {took:.1f} s"


# --------------------------------------------------------------------------- bad lines


def test_bad_lines_give_error_lines_naming_line_and_field_and_the_stream_goes_on(garden: dict[str, Any]) -> None:
    good = [json.dumps(r).encode() for r in events(6).to_dict("records")]
    bad_type = json.loads(good[2])
    bad_type["petal length (cm)"] = "long"
    missing = json.loads(good[3])
    del missing["region"]
    lines = [good[0], b"{not json", good[1], b"", json.dumps(bad_type).encode(), b"[1, 2]",
             json.dumps(missing).encode(), good[4], good[5]]
    out, summary = score(garden, lines)
    assert summary["predictions"] == 4 and summary["errors"] == 4 and summary["lines"] == 9
    assert len(out) == 8  # the blank line is skipped, every other line answered in order
    assert [o.get("id") for o in out] == [1, None, 2, 3, None, 4, 5, 6]
    assert out[1]["line"] == 2 and "not JSON" in out[1]["error"] and out[1]["field"] is None
    wrong = out[3]
    assert wrong["line"] == 5 and wrong["field"] == "petal length (cm)"
    assert "row 5" in wrong["error"] and "'long'" in wrong["error"]  # the row named is the line
    assert out[4]["line"] == 6 and "array" not in out[4]["error"] and "list" in out[4]["error"]
    assert out[5] == {"line": 7, "id": 4, "field": "region", "error": out[5]["error"], "hint": out[5]["hint"]}
    assert "'region'" in out[5]["error"]
    assert {"prediction", "proba_setosa"} <= set(out[6]) and out[6]["id"] == 5


def test_the_output_does_not_depend_on_how_lines_were_batched(garden: dict[str, Any]) -> None:
    frame = events(700, seed=3)
    lines = json_lines(frame).splitlines()
    lines[10] = b'{"id": 11, "region": "north"}'  # an event that misses columns, among good ones
    lines[300] = lines[300].replace(b'"greenhouse":true', b'"greenhouse":"maybe"').replace(
        b'"greenhouse":false', b'"greenhouse":"maybe"')
    one, _ = score(garden, lines, batch=1)
    many, summary = score(garden, lines, batch=256)
    assert len(one) == len(many) == 700
    for a, b in zip(one, many, strict=True):
        # the same answer; a probability may differ in its last bits (BLAS takes another path for one row)
        assert a.keys() == b.keys() and a.get("prediction") == b.get("prediction") and a.get("error") == b.get("error")
        for k in a:
            if k.startswith("proba_"):
                assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15)
    assert summary["errors"] == 2 and summary["batches"] == 3
    assert many[300]["field"] == "greenhouse" and many[10]["field"] == "sepal length (cm)"


def test_an_event_without_the_id_field_is_answered_with_its_line(garden: dict[str, Any]) -> None:
    rec = events(2).to_dict("records")
    rec[1].pop("id")
    rec[0]["event_id"] = "a-1"
    out, _ = score(garden, [json.dumps(r).encode() for r in rec], id_field="event_id")
    assert out[0]["id"] == "a-1" and "line" not in out[0]
    assert out[1]["id"] is None and out[1]["line"] == 2


def test_memory_holds_only_a_window_of_latencies(garden: dict[str, Any]) -> None:
    stats = StreamStats()
    lines = json_lines(events(3000)).splitlines()
    run_stream(None, None, (lines[i:i + 7] for i in range(0, 3000, 7)), _Sink(), loaded=garden["loaded"],
               stats=stats)
    snap = stats.snapshot(series=True)
    assert snap["events"] == 3000 and snap["latency_ms"]["window"] == 3000 and snap["batches"] == 429
    for _ in range(3):
        stats.record(lines=5000, events=5000, predictions=5000, errors=0, latencies=[0.001] * 5000)
    assert stats.snapshot()["latency_ms"]["window"] == 10_000  # bounded
    assert sum(n for _s, n, _m, _x in stats.snapshot(series=True)["series"]) == 18_000


# --------------------------------------------------------------------------- following a file


def _collect(source: Any) -> tuple[list[bytes], threading.Thread]:
    got: list[bytes] = []

    def run() -> None:
        for chunk in source:
            got.extend(chunk)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return got, t


def _wait(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_followed_file_appended_to_and_rotated_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    source = FollowSource(path)  # the file does not exist yet: waited for
    got, t = _collect(source)
    written: list[bytes] = []
    n = 0

    def write(k: int, *, partial_end: bool = False) -> None:
        nonlocal n
        with path.open("ab") as fh:
            for _ in range(k):
                n += 1
                line = b'{"id": %d}' % n
                written.append(line)
                fh.write(line + b"\n")
            fh.flush()

    time.sleep(0.05)
    write(50)
    _wait(lambda: len(got) >= 50)
    # a line written in two parts arrives once, whole
    n += 1
    written.append(b'{"id": %d}' % n)
    with path.open("ab") as fh:
        fh.write(b'{"id": ')
    time.sleep(0.15)
    with path.open("ab") as fh:
        fh.write(b'%d}\n' % n)
    for rotation in range(3):
        write(200)
        os.replace(path, tmp_path / f"events.jsonl.{rotation}")  # rotated away with lines not yet read...
        with (tmp_path / f"events.jsonl.{rotation}").open("ab") as fh:  # ...and the writer's last lines
            n += 1
            written.append(b'{"id": %d}' % n)
            fh.write(written[-1] + b"\n")
        if rotation == 1:
            time.sleep(0.3)  # for a while there is no file at the path
        write(100)  # the new file
        # the next rotation comes later (a file rotated twice within one poll, 0.1 s, would be
        # skipped whole, as tail -F skips it: the follower only ever sees the path)
        _wait(lambda: len(got) >= len(written))
    time.sleep(0.3)
    source.stop()
    t.join(5)
    assert got == written  # every line once, in order
    assert source.rotations == 3


def test_a_truncated_file_is_read_again_from_its_beginning(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(b'{"id": %d}\n' % i for i in range(1, 101)))
    source = FollowSource(path)
    got, t = _collect(source)
    _wait(lambda: len(got) >= 100)
    path.write_bytes(b"")  # copytruncate
    _wait(lambda: source.truncations == 1)
    with path.open("ab") as fh:
        fh.write(b"".join(b'{"id": %d}\n' % i for i in range(101, 111)))
    _wait(lambda: len(got) >= 110)
    time.sleep(0.2)
    source.stop()
    t.join(5)
    assert got == [b'{"id": %d}' % i for i in range(1, 111)]


def test_from_end_and_idle_exit(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n')
    source = FollowSource(path, from_end=True, idle_exit=0.5)
    got, t = _collect(source)
    time.sleep(0.1)
    with path.open("ab") as fh:
        fh.write(b'{"id": 3}\n{"id": 4}')  # the last line never ends: handed on when the source ends
    t.join(5)
    assert not t.is_alive()
    assert got == [b'{"id": 3}', b'{"id": 4}']


def test_a_pipe_source_stops_when_asked_and_keeps_a_last_unended_line() -> None:
    r, w = os.pipe()
    stop = threading.Event()
    source = PipeSource(r, stop=stop)
    got, t = _collect(source)
    os.write(w, b'{"id": 1}\n{"id"')
    _wait(lambda: len(got) == 1)
    stop.set()
    t.join(2)
    assert not t.is_alive()
    assert got == [b'{"id": 1}']  # a line being written when the stream stops is not a line yet
    os.close(w)
    os.close(r)
    r, w = os.pipe()
    os.write(w, b'{"id": 1}\r\n{"id": 2}')
    os.close(w)
    assert list(PipeSource(r)) == [[b'{"id": 1}'], [b'{"id": 2}']]  # the end hands on the unended line
    os.close(r)


def test_cli_follows_a_file_that_is_appended_to_and_rotated(garden: dict[str, Any], tmp_path: Path) -> None:
    frame = events(900, seed=5)
    lines = json_lines(frame).splitlines()
    path = tmp_path / "live.jsonl"
    path.write_bytes(b"\n".join(lines[:300]) + b"\n")
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--store", str(garden["root"]), "predict",
                             "--stream", "flowers@champion", "--follow", str(path), "--idle-exit", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        _wait(lambda: len(got) >= 300, timeout=60)  # the stream has started and read what was there
        with path.open("ab") as fh:
            for line in lines[300:600]:
                fh.write(line + b"\n")
                fh.flush()
        os.replace(path, tmp_path / "live.jsonl.1")  # at once: lines the stream has not read yet go with it
        path.write_bytes(b"\n".join(lines[600:]) + b"\n")
        proc.wait(60)
        reader.join(10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    out = b"".join(got)
    assert proc.returncode == 0, err.decode()
    ids = [json.loads(x)["id"] for x in out.splitlines()]
    assert ids == list(range(1, 901))
    assert "900 predictions, 0 error lines" in err.decode()


# --------------------------------------------------------------------------- command line


def test_cli_refuses_what_a_stream_cannot_do(garden: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import cli

    code, _, err = cli(capsys, "--store", str(garden["root"]), "predict", "--stream", "flowers@champion",
                       "march.csv")
    assert code == 2 and "--follow march.csv" in err
    code, _, err = cli(capsys, "--store", str(garden["root"]), "predict", "flowers@champion", "x.csv",
                       "--follow", "y")
    assert code == 2 and "--follow is for streaming" in err
    code, _, err = cli(capsys, "--store", str(garden["root"]), "predict", "--stream", "flowers@champion",
                       "--lookup", "garden")
    assert code == 2 and "--key" in err
    code, _, err = cli(capsys, "--store", str(garden["root"]), "predict", "flowers@champion")
    assert code == 2 and "DATA" in err


def test_each_event_needs_the_model_columns(garden: dict[str, Any]) -> None:
    assert StreamScorer(garden["loaded"]).needed == FEATURES


def test_the_logistic_head_is_used_only_when_it_equals_the_estimator(garden: dict[str, Any]) -> None:
    from modelyard.core.serving.linear_head import logistic_head
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    assert StreamScorer(garden["loaded"]).head is not None  # the garden model: a logistic regression
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    for y in (X[:, 0] > 0, np.digitize(X[:, 1], [-0.5, 0.5])):  # two classes, three
        est = LogisticRegression().fit(X, np.where(y, "yes", "no") if y.dtype == bool else y)
        head = logistic_head(est, 5)
        assert head is not None
        pred, probs = head.predict_both(X)
        assert np.array_equal(pred, est.predict(X)) and np.array_equal(probs, est.predict_proba(X))

    class Tempered(LogisticRegression):  # behaves otherwise: not a LogisticRegression the head knows
        def predict_proba(self, X):  # type: ignore[no-untyped-def]
            return super().predict_proba(X) ** 2

    assert logistic_head(Tempered().fit(X, X[:, 0] > 0), 5) is None
    assert logistic_head(RidgeClassifier().fit(X, X[:, 0] > 0), 5) is None
    assert logistic_head(LogisticRegression().fit(X, X[:, 0] > 0), 4) is None  # another width


def test_a_stream_logs_each_event_to_the_prediction_log(garden: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from modelyard.core.serving.predlog import PredictionLog, log_files

    lines = json_lines(events(500, seed=9)).splitlines()
    lines[7] = b"{broken"
    lines[8] = b'{"id": 9, "region": "north"}'
    plog = PredictionLog(garden["store"], "flowers", key_column="id")
    try:
        summary = run_stream(None, None, [lines[:200], lines[200:]], _Sink(), loaded=garden["loaded"], batch=64,
                             prediction_log=plog)
    finally:
        plog.close()
    assert summary["predictions"] == 498 and summary["errors"] == 2
    counts = plog.counts()
    assert counts["rows"] == 500 and counts["logged_rows"] == 500 and counts["dropped_rows"] == 0
    table = pq.read_table([f["path"] for f in log_files(garden["store"], "flowers")][-1]).to_pandas()
    assert len(table) == 500
    ok = table[table["status"] == 200]
    assert sorted(ok["key"].astype(int)) == [i for i in range(1, 501) if i not in (8, 9)]
    assert set(table.loc[table["status"] == 400, "key"].dropna()) == {"9"}  # the line that is not JSON has no id
    assert set(ok["version_ref"]) == {"flowers@v1"} and ok["prediction"].notna().all()
    # a share of the events (not of the batches) is logged
    plog = PredictionLog(garden["store"], "flowers", sample=0.5, seed=1)
    try:
        run_stream(None, None, [lines], _Sink(), loaded=garden["loaded"], batch=500, prediction_log=plog)
    finally:
        plog.close()
    counts = plog.counts()
    assert counts["logged_rows"] + counts["sampled_out_rows"] == 500 and 150 < counts["logged_rows"] < 350


def test_following_a_folder_or_an_unreadable_file_is_an_error_naming_it(garden: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    from modelyard.core.common.errors import ModelyardError

    with pytest.raises(ModelyardError, match="is a folder"):
        list(FollowSource(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "modelyard", "--store", str(garden["root"]), "predict", "--stream",
                           "flowers@champion", "--follow", str(tmp_path)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert proc.returncode == 1 and f"{tmp_path} is a folder" in proc.stderr
    assert_no_traceback(["predict", "--stream"], proc.stderr)
