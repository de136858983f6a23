"""The Monitoring panel's Live tab over a running server: requests to a real ModelServer are logged
by a PredictionLog (by the server itself once it takes one; until then the test logs what the
server answered), and the tab shows the rate, latency, error rate and a drift window, and the
champion vs challenger comparison."""

from __future__ import annotations

import http.client
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import FEATURES, garden_frame, make_garden_store, train_registered
from factories import settle_panel as settle
from modelyard.core.registry import versions as registry
from modelyard.core.serving.predlog import PredictionLog
from modelyard.core.serving.server import ModelServer
from modelyard.ui.common import warmup
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow
from modelyard.ui.monitoring.panel import MonitoringPanel
from PySide6.QtCore import Qt

SERVER_LOGS = "prediction_log" in inspect.signature(ModelServer.__init__).parameters
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acceptance"))
from fit import GapWatch  # noqa: E402 - tests/ui/acceptance: the 5 ms main-thread timer of test_no_block


def _post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    return resp.status, data, time.perf_counter() - t0


def serve_traffic(store: Any, champion: Any, challenger: Any) -> dict[str, int]:
    """60 requests of 5 rows (and 6 bad ones) to a running server, logged with a shadow challenger."""
    frame = garden_frame()
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    plog = PredictionLog(store, "flowers", segment_rows=100)
    extra = {"prediction_log": plog, "shadow": "challenger"} if SERVER_LOGS else {}
    server = ModelServer(store, "flowers@champion", port=0, **extra).start()
    shadow_model = None if SERVER_LOGS else registry.load_model(store, challenger.ref)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    rng = np.random.default_rng(0)
    try:
        for i in range(66):
            rows = frame.iloc[rng.choice(len(frame), 5, replace=False)][FEATURES]
            if i % 11 == 10:  # a bad request: a column the model needs is missing
                body = json.dumps({"dataframe_split": json.loads(rows.drop(columns=["region"]).to_json(
                    orient="split", index=False))}).encode()
            else:
                body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
            status, data, took = _post(conn, body)
            if SERVER_LOGS:
                continue
            at = time.time()
            out = np.asarray(data["predictions"]) if status == 200 else None
            plog.submit(inputs=rows if status == 200 else None, outputs=out, version_id=champion.id,
                        version_ref=champion.ref, latency_s=took, status=status, at=at)
            if status == 200:
                t0 = time.perf_counter()
                other = np.asarray(shadow_model.predict(rows.assign(measured=lambda d: d["measured"].astype(
                    "datetime64[ns]"))))
                plog.submit(inputs=rows, outputs=other, version_id=challenger.id, version_ref=challenger.ref,
                            latency_s=time.perf_counter() - t0, status=200, route="shadow", at=at)
    finally:
        conn.close()
        server.shutdown()
        plog.close()
    return plog.counts()


@pytest.fixture
def lab(tmp_path: Any) -> Any:
    store, champion = make_garden_store(tmp_path / "store")
    challenger = train_registered(store, "flowers", model="random_forest", params={"n_estimators": 5})
    registry.set_alias(store, challenger.ref, "challenger", comment="try it")
    counts = serve_traffic(store, champion, challenger)
    try:
        yield store, champion, challenger, counts
    finally:
        store.close()


def test_the_live_tab_shows_rate_latency_errors_a_drift_window_and_champion_vs_challenger(qtbot, lab) -> None:
    store, champion, challenger, counts = lab
    assert counts["logged_rows"] + counts["dropped_rows"] == counts["rows"] and counts["dropped_rows"] == 0
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    qtbot.waitExposed(window)
    panel = next(p for p in window.panels if isinstance(p, MonitoringPanel))
    window.show_panel(window.panels.index(panel))
    panel.refresh()
    settle(panel)
    assert panel.model_name == "flowers"
    live = panel.live_tab
    bar = panel.tabs.tabBar()
    index = [panel.tabs.tabText(i) for i in range(panel.tabs.count())].index("Live")
    # what the app does once its window is up (ui/app.py): the heavy modules imported on a thread
    loader = warmup.start()
    qtbot.waitUntil(lambda: not loader.is_alive(), timeout=60_000)
    with GapWatch() as gaps:  # showing the tab, making and drawing its charts holds the window under 100 ms
        gaps.mark("show the Live tab and draw its charts")
        with qtbot.waitSignal(live.drawn, timeout=30_000):
            qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
        qtbot.wait(200)
    gaps.assert_under(100, "the Live tab")
    assert panel.tabs.currentWidget() is live
    report = live.report
    assert report is not None and report["rows"] > 0
    [w] = report["windows"]  # one hour of traffic
    assert w["requests"] == 66 and w["error_rate"] == pytest.approx(6 / 66)
    assert w["requests_per_s"] > 0 and w["latency_ms"]["p50"] > 0
    assert w["drift"]["verdict"] in ("ok", "warning", "drift") and w["drift"]["features"]

    def ys(key: str) -> list[list[float]]:
        return [list(item.getData()[1]) for item in live.charts[key].getPlotItem().listDataItems()]

    assert ys("rate")[0][0] == pytest.approx(w["requests_per_s"])
    p50, p99 = ys("latency")
    assert p50[0] == pytest.approx(w["latency_ms"]["p50"]) and p99[0] >= p50[0]
    assert ys("errors")[0][0] == pytest.approx(100 * 6 / 66)
    for key in ("rate", "latency", "errors"):  # never below 0 (one window's auto-range went to -0.2 requests/s)
        low, high = live.charts[key].getPlotItem().viewRange()[1]
        assert -0.06 * high <= low <= 0 and high > max(max(c) for c in ys(key)), (key, low, high)
    bars = [i for i in live.charts["drift"].getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 1  # the window's drift share, coloured by its verdict
    assert "logged rows in 1 windows" in live.summary.text() or "logged rows in 1 window" in live.summary.text()
    assert "No alert" in live.alert.text() or "Alert" in live.alert.text()

    # champion vs challenger on the same traffic
    rm = live.routes_model
    routes = {rm.data(rm.index(r, 0)): [rm.data(rm.index(r, c)) for c in range(rm.columnCount())]
              for r in range(rm.rowCount())}
    assert set(routes) == {"champion", "shadow"}
    assert routes["champion"][1] == f"{5 * 60 + 6:,}"  # a refused request is one row without output
    assert routes["shadow"][1] == f"{5 * 60:,}"
    assert "agrees with the champion" in live.agreement.text()
    assert f"{5 * 60:,} rows answered by both" in live.agreement.text()

    # another window size is read again, off the main thread
    with qtbot.waitSignal(live.drawn, timeout=30_000):
        live.window_box.setCurrentIndex(2)  # per 1,000 rows
    assert live.report["window"] == "1000"

    # the timer's refresh reads the log again only when it has a new file
    shown = live.report
    live.refresh(force=False)
    qtbot.waitUntil(lambda: not live._reading, timeout=10_000)
    assert live.report is shown
    with PredictionLog(store, "flowers") as plog:
        plog.submit(inputs=None, outputs=None, version_id=champion.id, version_ref=champion.ref, latency_s=0.01,
                    status=500)
    with qtbot.waitSignal(live.drawn, timeout=30_000):
        live.refresh(force=False)
    assert live.report is not shown and live.report["rows"] == shown["rows"] + 1
    window.close()
