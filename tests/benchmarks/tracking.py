"""Tracking throughput and query speed, against MLflow's client on a SQLite backend.

    python tests/benchmarks/tracking.py [--runs 1000] [--points 1000000] [--mlflow-points 100000]
                                        [--mlflow-runs 1000] [--history 100000] [--table-runs 100000]

Measures, in one process and on the same disk:

- run creation: N runs x 10 params x 5 metrics (start_run, log_params, log_metrics, end) against
  MLflow's ``create_run`` + ``log_batch`` + ``set_terminated``;
- batched metric logging: one metric logged point by point with ``run.log_metrics`` (1,000,000
  points) against MLflow's ``log_batch`` in batches of 1,000 (its maximum), on
  ``--mlflow-points`` points (MLflow at ~12,000 points/s would need minutes for a million;
  the JSON says how many points each side logged);
- reading a 100,000-point metric history: ``metric_history`` against ``get_metric_history``;
- the runs table over ``--table-runs`` runs x (10 params, 5 metrics, 2 tags), written with bulk
  SQL (the setup is not timed): ``query_runs`` load (and its first page, ``limit=200``, which
  a view can show while the whole table loads), in-memory sort by a metric and a param,
  in-memory filter on a metric + a param, ``RunsTable.refresh()`` after a new run (what a live
  view does), and a SQL-filtered ``search_runs`` page.

Prints one JSON object. MLflow is only needed here (``pip install mlflow``); without it the
"mlflow" entries are null.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))

from modelyard.core.experiments import tracking  # noqa: E402
from modelyard.core.experiments.runquery import available_columns, query_runs  # noqa: E402
from modelyard.core.store import Store  # noqa: E402
from modelyard.core.store import models as m  # noqa: E402

PARAMS = 10
METRICS = 5


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- ours


def ours_runs(store: Store, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        with tracking.start_run("bench-runs", store=store) as run:
            run.log_params({f"p{k}": i * k for k in range(PARAMS)})
            run.log_metrics({f"m{k}": i / (k + 1) for k in range(METRICS)})
    return n / (time.perf_counter() - t)


def ours_points(store: Store, n: int) -> tuple[float, str]:
    run = tracking.start_run("bench-points", store=store)
    log = run.log_metrics
    t = time.perf_counter()
    for i in range(n):
        log({"loss": 1.0 / (i + 1)}, step=i)
    run.end()
    return n / (time.perf_counter() - t), run.id


def ours_history(store: Store, run_id: str, n: int) -> float:
    tracking.metric_history(run_id, "loss", store=store)  # warm
    t = time.perf_counter()
    frame = tracking.metric_history(run_id, "loss", store=store)
    elapsed = time.perf_counter() - t
    assert len(frame) == n, len(frame)
    return elapsed


def bulk_runs(store: Store, n: int) -> float:
    """Write n runs with params, metrics and tags straight into the tables (setup, not timed)."""
    t = time.perf_counter()
    rng = random.Random(0)
    models = ["random_forest", "logreg", "gbm", "svm"]
    now = m.utcnow()
    with store.write() as s:
        exp = m.Experiment(name="bench-table")
        s.add(exp)
        s.flush()
        exp_id = exp.id
        first = (s.scalar(m.func.max(m.Run.id)) if hasattr(m, "func") else None) or 0
    from sqlalchemy import func, select

    with store.session() as s:
        first = s.scalar(select(func.max(m.Run.id))) or 0
    batch = 20_000
    for b0 in range(0, n, batch):
        ids = range(first + b0 + 1, first + min(n, b0 + batch) + 1)
        runs, params, metrics, latest, tags = [], [], [], [], []
        for rid in ids:
            start = now - dt.timedelta(seconds=n - (rid - first))
            runs.append((rid, uuid.uuid4().hex, exp_id, f"run-{rid}", "succeeded",
                         start.replace(tzinfo=None).isoformat(" "), (start + dt.timedelta(seconds=30)).replace(
                             tzinfo=None).isoformat(" "), "bench", "script", "train.py"))
            params.append((rid, "model", rng.choice(models)))
            for k in range(1, PARAMS):
                params.append((rid, f"p{k}", str(rng.randint(1, 500))))
            for k in range(METRICS):
                v = rng.random()
                metrics.append((rid, f"m{k}", 0, 1_700_000_000_000, v))
                latest.append((rid, f"m{k}", 0, 1_700_000_000_000, v))
            tags.append((rid, "team", rng.choice(["risk", "growth"])))
            tags.append((rid, "owner", rng.choice(["ana", "ben", "chen"])))
        with store.write() as s:
            c = s.connection()
            c.exec_driver_sql("INSERT INTO runs (id, uuid, experiment_id, name, status, start_time, end_time, user, "
                              "source_type, source_name) VALUES (?,?,?,?,?,?,?,?,?,?)", runs)
            c.exec_driver_sql("INSERT INTO params (run_id, key, value) VALUES (?,?,?)", params)
            c.exec_driver_sql("INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (?,?,?,?,?)", metrics)
            c.exec_driver_sql("INSERT INTO latest_metrics (run_id, key, step, timestamp, value) VALUES (?,?,?,?,?)",
                              latest)
            c.exec_driver_sql("INSERT INTO tags (run_id, key, value) VALUES (?,?,?)", tags)
    with store.write() as s:
        s.connection().exec_driver_sql("ANALYZE")
    return time.perf_counter() - t


def median_ms(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return round(times[len(times) // 2], 1)


def ours_table(store: Store, n: int) -> dict[str, object]:
    setup_s = bulk_runs(store, n)
    query_runs(store, ["bench-table"])  # warm the page cache, as an app that has just opened the store
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        table = query_runs(store, ["bench-table"])
        loads.append(time.perf_counter() - t)
    assert len(table) == n
    cols_ms = median_ms(lambda: available_columns(store, ["bench-table"]))
    first_page_ms = median_ms(lambda: query_runs(store, ["bench-table"], limit=200))
    expr = 'metrics.m0 > 0.8 and params.model = "random_forest"'
    matches = len(table.filter(expr))
    filter_ms = median_ms(lambda: table.filter(expr))
    sort_metric_ms = median_ms(lambda: table.sort("metrics.m1", ascending=False))
    sort_param_ms = median_ms(lambda: table.sort("params.p3"))
    filter_sort_ms = median_ms(lambda: table.filter(expr).sort("metrics.m1", ascending=False))
    search_page_ms = median_ms(lambda: tracking.search_runs("bench-table", filter=expr, order_by="metrics.m1 DESC",
                                                            max_results=100, store=store), repeat=3)
    with tracking.start_run("bench-table", store=store) as live:  # a new run, as from a running script
        live.log_params({"model": "svm"})
        live.log_metrics({"m0": 0.99, "m1": 0.5})
    refresh_ms = median_ms(lambda: table.refresh(), repeat=3)
    assert len(table.refresh()) == n + 1
    t = time.perf_counter()
    frame = tracking.search_runs("bench-table", store=store)
    search_all_s = time.perf_counter() - t
    assert len(frame) == n + 1
    return {
        "runs": n, "columns": len(table.columns), "setup_bulk_insert_s": round(setup_s, 1),
        "load_s": round(sorted(loads)[1], 3), "load_runs_s": [round(x, 3) for x in loads],
        "first_page_200_runs_ms": first_page_ms, "available_columns_ms": cols_ms, "filter_ms": filter_ms, "filter_matches": matches,
        "sort_metric_ms": sort_metric_ms, "sort_param_ms": sort_param_ms, "filter_then_sort_ms": filter_sort_ms,
        "refresh_after_a_new_run_ms": refresh_ms, "search_runs_sql_filter_page_ms": search_page_ms, "search_runs_all_s": round(search_all_s, 3),
        "filter": expr,
    }


# --------------------------------------------------------------------------- MLflow


def mlflow_bench(tmp: Path, n_runs: int, n_points: int, history: int, uri: str | None = None) -> dict[str, object] | None:
    """MLflow's client on ``uri`` (default: a SQLite file in ``tmp``; team_store.py passes a PostgreSQL URL)."""
    try:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import mlflow
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = uri or f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench-runs", artifact_location=str(tmp / "mlruns"))  # migrations: not timed
    t = time.perf_counter()
    for i in range(n_runs):
        run = client.create_run(exp)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric(f"m{k}", i / (k + 1), ts, 0) for k in range(METRICS)],
                         params=[Param(f"p{k}", str(i * k)) for k in range(PARAMS)])
        client.set_terminated(rid)
    runs_per_s = n_runs / (time.perf_counter() - t)

    exp2 = client.create_experiment("bench-points", artifact_location=str(tmp / "mlruns"))
    run = client.create_run(exp2)
    rid = run.info.run_id
    t = time.perf_counter()
    for b0 in range(0, n_points, 1000):
        ts = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), ts, i)
                                       for i in range(b0, min(n_points, b0 + 1000))])
    points_per_s = n_points / (time.perf_counter() - t)
    client.set_terminated(rid)

    hist_s = None
    if n_points >= history:
        client.get_metric_history(rid, "loss")  # warm
        t = time.perf_counter()
        hist = client.get_metric_history(rid, "loss")
        hist_s = time.perf_counter() - t
        assert len(hist) == n_points
    return {"version": mlflow.__version__, "runs": n_runs, "runs_per_s": round(runs_per_s, 1),
            "points": n_points, "points_per_s": round(points_per_s), "metric_history_points": n_points,
            "metric_history_s": None if hist_s is None else round(hist_s, 3)}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--table-runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=1000)
    parser.add_argument("--mlflow-points", type=int, default=100_000)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = Store.open(tmp / "store")
        runs_per_s = ours_runs(store, args.runs)
        points_per_s, _ = ours_points(store, args.points)
        hrun = tracking.start_run("bench-history", store=store)
        for i in range(args.history):
            hrun.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        hrun.end()
        history_s = ours_history(store, hrun.id, args.history)
        ours_rss_before_table = peak_rss_mb()
        table = ours_table(store, args.table_runs)
        store.close()
        ours_rss = peak_rss_mb()
        ml = None
        if not args.no_mlflow:
            with contextlib.redirect_stderr(open(os.devnull, "w")):
                ml = mlflow_bench(tmp, args.mlflow_runs, args.mlflow_points, args.history)
    ours = {"runs": args.runs, "runs_per_s": round(runs_per_s, 1), "points": args.points,
            "points_per_s": round(points_per_s), "metric_history_points": args.history,
            "metric_history_s": round(history_s, 4), "table": table,
            "peak_rss_mb_before_table": round(ours_rss_before_table), "peak_rss_mb": round(ours_rss)}
    result: dict[str, object] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "sqlite": __import__("sqlite3").sqlite_version},
        "ours": ours, "mlflow": ml,
    }
    if ml is not None:
        result["ratios"] = {
            "runs_per_s": round(runs_per_s / ml["runs_per_s"], 1),
            "batched_points_per_s": round(points_per_s / ml["points_per_s"], 1),
            "metric_history_speedup": None if ml["metric_history_s"] is None else
            round(ml["metric_history_s"] / history_s, 1),
        }
        result["targets"] = {"runs_per_s >= 10x": result["ratios"]["runs_per_s"] >= 10,
                             "batched_points_per_s >= 20x": result["ratios"]["batched_points_per_s"] >= 20,
                             "metric_history >= 20x": (result["ratios"]["metric_history_speedup"] or 0) >= 20,
                             "table load < 1 s": table["load_s"] < 1.0,
                             "table filter and sort < 200 ms": max(table["filter_ms"], table["sort_metric_ms"],
                                                                   table["sort_param_ms"]) < 200}
        result["peak_rss_mb_with_mlflow"] = round(peak_rss_mb())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
