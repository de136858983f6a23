"""The prediction log's and the live view's parts of the streaming benchmark (tests/benchmarks/streaming.py
imports them; this file also runs alone and prints one JSON object):

    python tests/benchmarks/_live_parts.py [--requests 3000] [--rows 10000000] [--skip-cost] [--skip-drift]

* :func:`measure_log_cost`: the request path's p50 latency with and without the prediction log. Two
  real :class:`ModelServer` s of the same model run side by side in this process, one with a
  :class:`PredictionLog` (every request logged) and one without; one client sends single-row
  requests to them in alternating rounds (so both see the same machine load) on keep-alive
  connections. Target: p50 up by at most 10 %.
* :func:`measure_windowed_drift`: ``rows`` logged rows (Parquet segments of 500,000 rows over ten days,
  written directly) read by :func:`modelyard.core.monitoring.live.live_report` in hourly windows with
  input drift against the training reference: seconds, and the peak memory of the process that
  reads them (a child process: its peak RSS before and after, and Arrow's peak allocation).
"""

from __future__ import annotations

import argparse
import http.client
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "tests"))


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure_log_cost(requests: int = 3000, rounds: int = 10, store_dir: str | Path | None = None) -> dict[str, Any]:
    """p50/p99 (ms) of single-row requests to a server with and without the prediction log."""
    from factories import FEATURES, garden_frame, make_garden_store
    from modelyard.core.serving.predlog import PredictionLog
    from modelyard.core.serving.server import ModelServer

    if "prediction_log" not in inspect.signature(ModelServer.__init__).parameters:
        return {"error": "this ModelServer takes no prediction_log (the serving hook is not here yet)"}
    root = Path(store_dir or tempfile.mkdtemp(prefix="live-bench-")) / "store"
    store, _info = make_garden_store(root)
    frame = garden_frame()
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    bodies = [json.dumps({"dataframe_split": json.loads(frame.iloc[[i]][FEATURES].to_json(orient="split",
                                                                                          index=False))}).encode()
              for i in range(len(frame))]
    plog = PredictionLog(store, "flowers")
    servers = {"without_log": ModelServer(store, "flowers@champion", port=0, record=False).start(),
               "with_log": ModelServer(store, "flowers@champion", port=0, record=False, prediction_log=plog).start()}
    conns = {}
    for key, server in servers.items():
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        conns[key] = http.client.HTTPConnection(host, int(port), timeout=30)
    latency: dict[str, list[float]] = {k: [] for k in servers}

    def send(key: str, body: bytes) -> float:
        conn = conns[key]
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        took = time.perf_counter() - t0
        assert resp.status == 200, resp.status
        return took

    try:
        for key in servers:  # warm up
            for i in range(200):
                send(key, bodies[i % len(bodies)])
        per_round = max(1, requests // rounds)
        for r in range(rounds):
            order = list(servers) if r % 2 == 0 else list(servers)[::-1]
            for key in order:
                for i in range(per_round):
                    latency[key].append(send(key, bodies[(r * per_round + i) % len(bodies)]))
        plog.flush()
        counts = plog.counts()
    finally:
        for c in conns.values():
            c.close()
        for s in servers.values():
            s.shutdown()
        plog.close()
        store.close()
    out: dict[str, Any] = {"requests_each": len(latency["with_log"]), "rounds": rounds}
    for key, values in latency.items():
        out[key] = {"p50_ms": round(_p(values, 0.5) * 1000, 4), "p99_ms": round(_p(values, 0.99) * 1000, 4)}
    out["p50_increase"] = round(out["with_log"]["p50_ms"] / out["without_log"]["p50_ms"] - 1, 4)
    out["target_p50_increase"] = 0.10
    out["log_counts"] = counts
    return out


# --------------------------------------------------------------------------- windowed drift

SEGMENT_ROWS = 500_000
DAYS = 10


def _write_log(store: Any, info: Any, rows: int) -> None:
    """``rows`` logged rows of the garden model over :data:`DAYS` days, as segments of
    :data:`SEGMENT_ROWS` rows, the sepal lengths shifting in the last two days."""
    import numpy as np
    import pyarrow as pa
    from factories import garden_frame
    from modelyard.core.serving import predlog

    base = garden_frame()
    rng = np.random.default_rng(0)
    start = 1_767_225_600.0
    span = DAYS * 86400.0
    written = 0
    seq = 0
    while written < rows:
        n = min(SEGMENT_ROWS, rows - written)
        pick = rng.integers(0, len(base), n)
        at = start + (written + np.arange(n)) * span / rows
        sepal = base["sepal length (cm)"].to_numpy()[pick] + rng.normal(0, 0.1, n)
        sepal = np.where(at > start + span - 2 * 86400, sepal + 1.5, sepal)
        cols = {
            "at": pa.array(at), "request": pa.array(seq + np.arange(n, dtype=np.int64)),
            "row": pa.array(np.zeros(n, dtype=np.int32)), "key": pa.nulls(n, pa.string()),
            "version_id": pa.array(np.full(n, info.id, dtype=np.int64)),
            "version_ref": pa.array([info.ref] * n), "route": pa.array(["champion"] * n),
            "status": pa.array(np.full(n, 200, dtype=np.int32)),
            "latency_s": pa.array(rng.lognormal(np.log(0.002), 0.3, n)),
            "prediction": pa.array(base["species"].to_numpy()[pick].astype(str)),
            "prediction_value": pa.array(np.full(n, np.nan)),
            "in.sepal length (cm)": pa.array(sepal),
        }
        for name in ("sepal width (cm)", "petal length (cm)", "petal width (cm)"):
            cols[f"in.{name}"] = pa.array(base[name].to_numpy()[pick] + rng.normal(0, 0.05, n))
        cols["in.region"] = pa.array(base["region"].to_numpy()[pick].astype(object), from_pandas=True)
        cols["in.greenhouse"] = pa.array(base["greenhouse"].to_numpy()[pick])
        table = pa.table(cols)
        predlog.write_log_file(store, info.model_id, predlog.KIND_PREDICTIONS, table,
                               {"versions": {info.ref: n}, "first_at": float(at[0]), "last_at": float(at[-1])})
        written += n
        seq += n


def _peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM, which starts afresh at exec (ru_maxrss
    keeps the parent's peak across fork and exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _read_child(store_dir: str) -> None:
    """In a child process: read the log in hourly windows; print seconds and memory as JSON."""
    from collections import Counter

    import pyarrow as pa
    from modelyard.core.monitoring import live
    from modelyard.core.store import Store

    with Store.open(store_dir) as store:
        before = _peak_rss_mb()
        t0 = time.perf_counter()
        report = live.live_report(store, "flowers", window="hour", last=48)
        seconds = time.perf_counter() - t0
        after = _peak_rss_mb()
    verdicts = dict(Counter(str((w.get("drift") or {}).get("verdict")) for w in report["windows"]))
    print(json.dumps({"seconds": round(seconds, 2), "rows": report["rows"], "windows": report["windows_total"],
                      "peak_rss_mb_before": before, "peak_rss_mb": after,
                      "arrow_peak_mb": round(pa.default_memory_pool().max_memory() / 2**20, 1),
                      "rows_per_s": round(report["rows"] / seconds), "verdicts_shown": verdicts,
                      "alerting": report["alert"]["alerting"]}))


def measure_windowed_drift(rows: int = 10_000_000, store_dir: str | Path | None = None) -> dict[str, Any]:
    """Seconds and peak memory of reading ``rows`` logged rows in hourly windows with input drift."""
    from factories import make_garden_store

    root = Path(store_dir or tempfile.mkdtemp(prefix="live-drift-bench-")) / "store"
    store, info = make_garden_store(root)
    t0 = time.perf_counter()
    _write_log(store, info, rows)
    write_s = time.perf_counter() - t0
    store.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")])}
    proc = subprocess.run([sys.executable, __file__, "--read-child", str(root)], capture_output=True, text=True,
                          env=env, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "the reader failed"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["generate_and_write_s"] = round(write_s, 1)
    out["segments"] = -(-rows // SEGMENT_ROWS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-drift", action="store_true")
    ap.add_argument("--read-child", metavar="STORE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read_child:
        _read_child(args.read_child)
        return
    out: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    if not args.skip_cost:
        out["prediction_log_cost"] = measure_log_cost(args.requests)
    if not args.skip_drift:
        out["windowed_drift"] = measure_windowed_drift(args.rows)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
