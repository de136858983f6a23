"""Live monitoring over a prediction log: a stream whose inputs shift at a known time drifts in the
first window after the shift and in none before (by the hour and by N rows), the "N of the last M
windows" rule alerts once, labels joined later give each window the accuracy a direct computation
gives, and champion vs challenger is compared on the same traffic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backends import backend_params, module_db_url, module_store, use_module_database
from cli_helpers import cli
from factories import train_drift_model
from modelyard.core.monitoring import live
from modelyard.core.monitoring.windows import alert_rule, parse_window
from modelyard.core.registry import versions as registry
from modelyard.core.serving.predlog import PredictionLog

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, on an hour boundary
PER_HOUR = 400
FEATURES = ["x0", "x1", "x2", "colour"]


def stream_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(0, 1, n) + shift
    x1 = rng.normal(5, 2, n) + 2 * shift
    frame = pd.DataFrame({"x0": x0, "x1": x1, "x2": rng.uniform(0, 1, n),
                          "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])})
    frame["label"] = np.where(x0 + rng.normal(0, 0.7, n) > 0.2, "yes", "no")
    return frame


@pytest.fixture(scope="module", params=backend_params())
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A model trained on an unshifted stream, and 8 logged hours whose inputs shift from hour 5 on."""
    root = tmp_path_factory.mktemp("live")
    with module_store(request, root / "store") as store:
        info = train_drift_model(store, stream_frame(3000, 0), "stream")
        registry.set_alias(store, info.ref, "champion", comment="serve it")
        model = registry.load_model(store, info.ref)
        hours = []
        with PredictionLog(store, "stream", segment_rows=1000) as plog:
            for h in range(8):
                frame = stream_frame(PER_HOUR, 100 + h, shift=1.5 if h >= 5 else 0.0)
                frame["id"] = [f"h{h}-{i}" for i in range(PER_HOUR)]
                preds = np.asarray(model.predict(frame[FEATURES]))
                # requests of 4 rows, spread over the hour
                for r in range(0, PER_HOUR, 4):
                    part = frame.iloc[r:r + 4]
                    plog.submit(inputs=part[FEATURES], outputs=preds[r:r + 4], version_id=info.id,
                                version_ref=info.ref, latency_s=0.002 + 0.001 * (r % 3), status=200,
                                keys=part["id"].tolist(), at=T0 + h * 3600 + r * 3600 / PER_HOUR)
                frame["prediction"] = preds
                hours.append(frame)
            assert plog.flush()
            assert plog.counts()["logged_rows"] == 8 * PER_HOUR
        yield {"store": store, "root": root, "info": info, "hours": hours, "db_url": module_db_url(store)}


@pytest.fixture(autouse=True)
def _lab_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    use_module_database(request, monkeypatch, "lab")


def _verdicts(report: dict[str, Any]) -> list[str | None]:
    return [(w["drift"] or {}).get("verdict") for w in report["windows"]]


def test_hourly_windows_drift_from_the_first_hour_after_the_shift(lab: dict[str, Any]) -> None:
    report = live.live_report(lab["store"], "stream", window="hour")
    assert [w["rows"] for w in report["windows"]] == [PER_HOUR] * 8
    assert [w["start"] for w in report["windows"]][:2] == ["2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"]
    verdicts = _verdicts(report)
    assert all(v != "drift" for v in verdicts[:5]), verdicts
    assert verdicts[5:] == ["drift"] * 3, verdicts
    assert set(report["windows"][5]["drift"]["drifted"]) >= {"x0", "x1"}
    w = report["windows"][0]
    assert w["requests"] == PER_HOUR // 4 and w["error_rate"] == 0
    assert w["requests_per_s"] == pytest.approx(100 / 3600, rel=1e-6)
    assert 1.8 <= w["latency_ms"]["p50"] <= 3.3 and 3.6 <= w["latency_ms"]["p99"] <= 4.4
    assert w["versions"] == {lab["info"].ref: PER_HOUR}
    # 2 of the last 3: the rule holds from the second drifted window on
    assert report["alert"]["first"] == 6 and report["alert"]["alerting"]


def test_row_windows_drift_from_the_first_window_after_the_shift(lab: dict[str, Any]) -> None:
    report = live.live_report(lab["store"], "stream", window=500)
    # the shift is at row 2000: windows 0-3 before it, 4 on
    assert len(report["windows"]) == 7 and [w["rows"] for w in report["windows"]][:6] == [500] * 6
    verdicts = _verdicts(report)
    assert all(v != "drift" for v in verdicts[:4]) and verdicts[4:] == ["drift"] * 3, verdicts


def test_labels_joined_later_give_each_window_its_accuracy(lab: dict[str, Any], tmp_path: Path) -> None:
    store = lab["store"]
    rng = np.random.default_rng(7)
    frames = []
    for frame in lab["hours"]:
        some = frame.iloc[np.sort(rng.choice(len(frame), 150, replace=False))]
        frames.append(some)
    labelled = pd.concat(frames)
    path = tmp_path / "outcomes.csv"
    labelled[["id", "label"]].sample(frac=1.0, random_state=1).to_csv(path, index=False)
    out = live.add_labels(store, path, key="id")
    assert out["labels"] == 8 * 150 and out["matched_rows"] == 8 * 150 and out["label"] == "label"
    report = live.live_report(store, "stream", window="hour")
    for h, (w, some) in enumerate(zip(report["windows"], frames, strict=True)):
        expected = float((some["prediction"] == some["label"]).mean())
        assert w["performance"]["labelled"] == 150, h
        assert w["performance"]["accuracy"] == pytest.approx(expected, abs=1e-6), h
    assert report["labels"]["matched_rows"] == 8 * 150


def test_the_cli_joins_labels_and_reads_windows(lab: dict[str, Any], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = str(lab["root"] / "store")
    path = tmp_path / "late.csv"
    pd.DataFrame({"id": ["h0-0", "h0-1", "nope"], "label": ["yes", "no", "yes"]}).to_csv(path, index=False)
    code, out, err = cli(capsys, "monitor", "labels", str(path), "--key", "id", "--store", store_dir)
    assert code == 0, err
    assert "Stored 3 labels of stream" in out and "match 2 logged predictions" in out
    code, out, err = cli(capsys, "monitor", "labels", str(path), "--key", "order", "--store", store_dir)
    assert code == 1 and "late.csv has no key column 'order'" in err
    code, out, err = cli(capsys, "monitor", "live", "stream", "--window", "hour", "--store", store_dir, "--json")
    assert code == 3  # the alert rule holds at the newest window
    doc = json.loads(out)
    assert len(doc["windows"]) == 8 and doc["alert"]["alerting"]
    code, out, err = cli(capsys, "monitor", "live", "stream", "--window", "fortnight", "--store", store_dir)
    assert code == 1 and "--window must be hour, day or a number of rows" in err
    code, out, err = cli(capsys, "monitor", "live", "stream", "--alert", "4/3", "--store", store_dir)
    assert code == 2 and "--alert must be N/M" in err


def test_an_alert_is_recorded_and_notified_once_per_window(lab: dict[str, Any]) -> None:
    from modelyard.core import notify
    from notify_servers import WebhookServer

    store = lab["store"]
    with WebhookServer() as hook:
        notify.set_webhook(store, url=hook.url)
        try:
            first = live.check_alerts(store, "stream", window="hour")
            assert first is not None and first["key"] == "hour:" + str(int(T0 // 3600) + 7)
            assert set(first["drifted"]) >= {"x0", "x1"}
            assert live.check_alerts(store, "stream", window="hour") is None  # the same window: once
        finally:
            notify.clear(store, "webhook")
    [body] = hook.bodies
    assert body["event"] == "live.drift" and body["model"] == "stream" and body["alert_id"] == first["alert_id"]
    assert body["subject"] == "stream: live input drift in 3 of the last 3 windows (1 hour each)"
    assert "modelyard monitor live stream --window hour" in body["text"]


def test_champion_and_challenger_are_compared_on_the_same_traffic(lab: dict[str, Any]) -> None:
    store = lab["store"]
    info = lab["info"]
    other = train_drift_model(store, stream_frame(3000, 5).assign(x0=lambda d: d["x0"] * 0.5), "stream")
    champ = registry.load_model(store, info.ref)
    chall = registry.load_model(store, other.ref)
    frame = stream_frame(600, 42)
    frame["id"] = [f"s{i}" for i in range(len(frame))]
    a = np.asarray(champ.predict(frame[FEATURES]))
    b = np.asarray(chall.predict(frame[FEATURES]))
    start = T0 + 20 * 3600
    with PredictionLog(store, "stream") as plog:
        for i in range(len(frame)):
            row = frame.iloc[i:i + 1]
            at = start + i
            plog.submit(inputs=row[FEATURES], outputs=a[i:i + 1], version_id=info.id, version_ref=info.ref,
                        latency_s=0.002, status=200, keys=[row["id"].iloc[0]], at=at)
            plog.submit(inputs=row[FEATURES], outputs=b[i:i + 1], version_id=other.id, version_ref=other.ref,
                        latency_s=0.008, status=200, route="shadow", keys=[row["id"].iloc[0]], at=at + 0.003)
        assert plog.flush()
    report = live.live_report(store, "stream", window="hour")
    w = report["windows"][-1]
    assert w["rows"] == 600 and w["versions"] == {info.ref: 600}  # what clients got: the champion's
    assert w["agreement"]["pairs"] == 600
    assert w["agreement"]["share"] == pytest.approx(float((a == b).mean()), abs=1e-9)
    assert w["routes"]["shadow"]["latency_ms"]["p50"] > 3 * w["routes"]["champion"]["latency_ms"]["p50"]
    assert set(report["routes"]) == {"champion", "shadow"}


def test_window_sizes_and_the_rule_are_checked() -> None:
    assert parse_window("day").size == 86400 and parse_window("10k").size == 10_000
    assert parse_window(250).kind == "rows"
    flags = [{"drift": {"verdict": v}} for v in ["ok", "drift", "ok", "drift", "drift", "ok"]]
    rule = alert_rule(flags, n=2, m=3)
    assert rule["windows"] == [3, 4, 5] and rule["first"] == 3 and rule["alerting"]
    assert alert_rule(flags, n=3, m=3)["windows"] == []


def test_a_live_drift_alert_starts_a_pipeline_bound_to_the_model(lab: dict[str, Any], tmp_path: Path) -> None:
    from modelyard.core.pipelines import catalog
    from modelyard.core.pipelines.agent import run_agent

    store, info = lab["store"], lab["info"]
    live.check_alerts(store, "stream")  # whatever holds now is recorded before the pipeline is listed
    (tmp_path / "react.yaml").write_text(
        "name: react\nparams: {alert: 0}\ntriggers:\n  - on: live_drift\n    model: stream\n    param: alert\n"
        "steps:\n  say:\n    kind: shell\n    params: {command: 'echo alert ${params.alert}'}\n")
    catalog.add_pipeline_file(store, tmp_path / "react.yaml")
    assert run_agent(store, once=True)["claimed"] == 0  # the alert recorded before the pipeline was listed
    with PredictionLog(store, "stream") as plog:  # two more hours, shifted: the rule holds at a new window
        for h in (30, 31):
            frame = stream_frame(PER_HOUR, 300 + h, shift=1.5)
            for r in range(0, PER_HOUR, 8):
                plog.submit(inputs=frame.iloc[r:r + 8][FEATURES], outputs=["yes"] * 8, version_id=info.id,
                            version_ref=info.ref, latency_s=0.002, status=200, at=T0 + h * 3600 + r)
    counts = run_agent(store, once=True)
    assert counts["claimed"] == 1 and counts["failed"] == 0, counts
    [summary] = catalog.list_runs(store)
    run = catalog.get_run(store, summary.id)
    assert run.status == "succeeded", run.error
    assert run.trigger["type"] == "live_drift" and run.params["alert"] > 0
    assert run_agent(store, once=True)["claimed"] == 0  # once per alert
