"""The team store: SQLite and PostgreSQL side by side, and MLflow on the same PostgreSQL server.

    python tests/benchmarks/team_store.py [--runs 500] [--points 200000] [--table-runs 100000]
                                          [--mlflow-runs 200] [--mlflow-points 50000] [--live 12]

Starts a throwaway PostgreSQL server (tests/pg_server.py: the machine's binaries or the pgserver
wheel of the test extra), then measures, for a new SQLite store and a new store on that server,
in one process:

- run creation: N runs x 10 params x 5 metrics through the tracking API (start_run, log_params,
  log_metrics, end), as tests/benchmarks/tracking.py;
- batched metric logging: one metric logged point by point with ``run.log_metrics`` (the API
  buffers and writes in batches);
- the runs table the Experiments panel loads (``runquery.query_runs`` over ``--table-runs`` runs
  x 10 params, 5 metrics, 2 tags, written in bulk first: not timed), median of 3 loads after a
  warm-up, and a filtered search (``search_runs`` with a metric + param filter, ordered by a
  metric, first 100 runs), median of 3;
- live: the delay from a run committed in another process (a child writing ``--live`` runs at
  random 0.2-0.5 s intervals, each stamped when ``start_run`` returned) to its appearance in this
  one, through ``core.store.live.Watcher(store).poll()`` and a count of the experiment's runs. Until
  core/store/live.py exists the reader polls ``SELECT count(*)`` every 0.1 s instead (the JSON's
  ``live.method`` says which);

and MLflow's SQLAlchemy tracking store on a database of the same server: run creation
(``create_run`` + ``log_batch`` of 10 params and 5 metrics + ``set_terminated``) and batched
logging (``log_batch`` of 1,000 points, its maximum), as tests/benchmarks/tracking.py measures it
on SQLite. Prints one JSON object: both backends, MLflow, the ratios and the targets (PostgreSQL
within 3x of SQLite on each figure, >= 10x MLflow's run creation and >= 20x its batched logging on
the same server, live updates under 2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "tests"))

import pg_server  # noqa: E402
from modelyard.core.experiments import tracking  # noqa: E402
from modelyard.core.experiments.runquery import query_runs  # noqa: E402
from modelyard.core.store import Store  # noqa: E402
from modelyard.core.store import models as m  # noqa: E402
from sqlalchemy import func, select  # noqa: E402


def _load_tracking_bench() -> Any:
    """tests/benchmarks/tracking.py (its run creation, point logging and MLflow measures)."""
    spec = importlib.util.spec_from_file_location("bench_tracking", HERE / "tracking.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


bench = _load_tracking_bench()
PARAMS, METRICS = bench.PARAMS, bench.METRICS
FILTER = 'metrics.m0 > 0.8 and params.model = "random_forest"'
LIVE_POLL_S = 0.1  # the fallback reader's polling interval


# --------------------------------------------------------------------------- the runs table


def _bulk_rows(first: int, n: int, exp_id: int, rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    models = ["random_forest", "logreg", "gbm", "svm"]
    now = m.utcnow().replace(tzinfo=None)
    rows: dict[str, list[tuple[Any, ...]]] = {"runs": [], "params": [], "metrics": [], "latest_metrics": [], "tags": []}
    for rid in range(first + 1, first + n + 1):
        start = now - dt.timedelta(seconds=n - (rid - first))
        rows["runs"].append((rid, uuid.uuid4().hex, exp_id, f"run-{rid}", "succeeded", start,
                             start + dt.timedelta(seconds=30), "bench", "script", "train.py"))
        rows["params"].append((rid, "model", rng.choice(models)))
        rows["params"].extend((rid, f"p{k}", str(rng.randint(1, 500))) for k in range(1, PARAMS))
        for k in range(METRICS):
            v = rng.random()
            rows["metrics"].append((rid, f"m{k}", 0, 1_700_000_000_000, v))
            rows["latest_metrics"].append((rid, f"m{k}", 0, 1_700_000_000_000, v))
        rows["tags"].append((rid, "team", rng.choice(["risk", "growth"])))
        rows["tags"].append((rid, "owner", rng.choice(["ana", "ben", "chen"])))
    return rows


_COLUMNS = {"runs": 'id, uuid, experiment_id, name, status, start_time, end_time, "user", source_type, source_name',
            "params": 'run_id, "key", value', "metrics": 'run_id, "key", step, timestamp, value',
            "latest_metrics": 'run_id, "key", step, timestamp, value', "tags": 'run_id, "key", value'}


def bulk_runs(store: Store, n: int) -> float:
    """Write n runs with params, metrics and tags straight into the tables (setup, not timed):
    multi-row inserts on SQLite (as tests/benchmarks/tracking.py), COPY on PostgreSQL."""
    t = time.perf_counter()
    with store.write() as s:
        exp = m.Experiment(name="bench-table")
        s.add(exp)
        s.flush()
        exp_id = exp.id
    with store.session() as s:
        first = s.scalar(select(func.max(m.Run.id))) or 0
    rows = _bulk_rows(first, n, exp_id, random.Random(0))
    if store.is_sqlite:
        with store.write() as s:
            c = s.connection()
            for table, cols in _COLUMNS.items():
                marks = ",".join("?" * (cols.count(",") + 1))
                data = rows[table] if table != "runs" else [(*r[:5], r[5].isoformat(" "), r[6].isoformat(" "), *r[7:])
                                                            for r in rows[table]]
                c.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)
            c.exec_driver_sql("ANALYZE")
    else:
        raw = store.engine.raw_connection()
        try:
            conn = raw.driver_connection
            with conn.cursor() as cur:
                for table, cols in _COLUMNS.items():
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
                cur.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))")
                cur.execute("SELECT setval(pg_get_serial_sequence('metrics', 'id'), (SELECT max(id) FROM metrics))")
            conn.commit()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE")
            conn.autocommit = False
        finally:
            raw.close()
    return time.perf_counter() - t


def table_figures(store: Store, n: int) -> dict[str, Any]:
    setup_s = bulk_runs(store, n)
    query_runs(store, ["bench-table"])  # warm: the page cache, and on SQLite the block cache
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        table = query_runs(store, ["bench-table"])
        loads.append(time.perf_counter() - t)
    assert len(table) == n, len(table)
    matches = len(table.filter(FILTER))
    search_ms = bench.median_ms(lambda: tracking.search_runs("bench-table", filter=FILTER, order_by="metrics.m1 DESC",
                                                             max_results=100, store=store), repeat=3)
    first_page_ms = bench.median_ms(lambda: query_runs(store, ["bench-table"], limit=200), repeat=3)
    return {"runs": n, "setup_bulk_insert_s": round(setup_s, 1), "load_s": round(statistics.median(loads), 3),
            "load_runs_s": [round(x, 3) for x in loads], "first_page_200_runs_ms": first_page_ms,
            "filtered_search_page_ms": search_ms, "filter": FILTER, "filter_matches": matches}


# --------------------------------------------------------------------------- live: another process's write


def writer_main(root: str, db_url: str, count: int) -> None:
    """The child: write ``count`` runs at random intervals, printing when each was committed."""
    rng = random.Random(1)
    with Store.open(root, db_url=db_url or None) as store:
        print(json.dumps({"ready": True}), flush=True)
        for i in range(count):
            time.sleep(rng.uniform(0.2, 0.5))
            run = tracking.start_run("bench-live", name=f"live-{i}", store=store)
            print(json.dumps({"i": i, "t": time.time()}), flush=True)  # the run's row is committed
            run.end()


def _runs_in(store: Store, experiment: str) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(m.Run).join(m.Experiment)
                        .where(m.Experiment.name == experiment)) or 0


def live_delay(store: Store, count: int) -> dict[str, Any]:
    try:
        from modelyard.core.store import live  # type: ignore[attr-defined]
    except ImportError:
        live = None
    method = ("core.store.live.Watcher(store).poll(0.5), then a count of the experiment's runs" if live is not None else
              f"polling fallback (core/store/live.py not on this branch yet): SELECT count(*) every {LIVE_POLL_S} s")
    watcher = live.Watcher(store) if live is not None else None
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if watcher is not None:
                changes = watcher.poll(0.5)
                if changes is None or not (changes.everything or "runs" in changes.topics):
                    continue
            else:
                time.sleep(LIVE_POLL_S)
            seen.append((time.time(), _runs_in(store, "bench-live")))

    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"))
    child = subprocess.Popen([sys.executable, __file__, "--writer", str(store.root),
                              "" if store.is_sqlite else store.db_url, str(count)],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    committed: dict[int, float] = {}
    reader = None
    try:
        for line in child.stdout:
            msg = json.loads(line)
            if msg.get("ready"):
                reader = threading.Thread(target=watch, name="live-reader")
                reader.start()
            else:
                committed[msg["i"]] = msg["t"]
        child.wait(timeout=60)
        deadline = time.time() + 5
        while (not seen or seen[-1][1] < count) and time.time() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        if reader is not None:
            reader.join(timeout=10)
        if watcher is not None:
            watcher.close()
        if child.poll() is None:
            child.kill()
    delays = []
    for i, t in sorted(committed.items()):
        when = [ts for ts, n in seen if n >= i + 1]
        delays.append(round(min(when) - t, 3) if when else None)
    known = [d for d in delays if d is not None]
    return {"method": method, "writes": count, "delays_s": delays, "median_s": round(statistics.median(known), 3),
            "max_s": max(known), "missed": len(delays) - len(known)}


# --------------------------------------------------------------------------- one backend, MLflow


def backend_figures(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    runs_per_s = bench.ours_runs(store, args.runs)
    points_per_s, _ = bench.ours_points(store, args.points)
    return {"runs": args.runs, "runs_per_s": round(runs_per_s, 1), "points": args.points,
            "points_per_s": round(points_per_s), "table": table_figures(store, args.table_runs),
            "live": live_delay(store, args.live)}


def mlflow_figures(server: pg_server.PgServer, tmp: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    if importlib.util.find_spec("mlflow") is None:
        return None
    url = server.url(server.create_database())
    with contextlib.redirect_stderr(open(os.devnull, "w")):  # noqa: SIM115 - MLflow's migration chatter
        # its SQLAlchemy tracking store on the same server; history not measured (beyond the points)
        figures = bench.mlflow_bench(tmp, args.mlflow_runs, args.mlflow_points, args.mlflow_points + 1, uri=url)
    return figures | {"backend": "postgresql (SqlAlchemyStore, psycopg)"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--table-runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=200)
    parser.add_argument("--mlflow-points", type=int, default=50_000)
    parser.add_argument("--live", type=int, default=12)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--writer", nargs=3, metavar=("ROOT", "DB_URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer_main(args.writer[0], args.writer[1], int(args.writer[2]))
        return
    os.environ.setdefault("MODELYARD_USER", "bench")
    bindir = pg_server.find_binaries()
    if bindir is None:
        raise SystemExit(f"No PostgreSQL server binaries: {pg_server.INSTALL_HINT}.")
    started = time.perf_counter()
    server = pg_server.PgServer(bindir).start()
    try:
        with server.connect() as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            with Store.open(tmp / "sqlite") as store:
                sqlite_figures = backend_figures(store, args)
            with Store.open(tmp / "postgresql", db_url=server.url(server.create_database())) as store:
                pg_figures = backend_figures(store, args)
            ml = None if args.no_mlflow else mlflow_figures(server, tmp, args)
    finally:
        server.stop()
    s, p = sqlite_figures, pg_figures
    slower = {  # PostgreSQL's figure over SQLite's (time ratio: > 1 is slower)
        "run_creation": round(s["runs_per_s"] / p["runs_per_s"], 2),
        "batched_logging": round(s["points_per_s"] / p["points_per_s"], 2),
        "table_load": round(p["table"]["load_s"] / s["table"]["load_s"], 2),
        "filtered_search": round(p["table"]["filtered_search_page_ms"] / s["table"]["filtered_search_page_ms"], 2),
        "live_median": round(p["live"]["median_s"] / max(s["live"]["median_s"], 1e-3), 2),
    }
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "sqlite": sqlite3.sqlite_version, "postgresql": pg_version, "postgresql_binaries": str(bindir),
                    "postgresql_settings": "throwaway test server: fsync, full_page_writes, synchronous_commit off; "
                                           "127.0.0.1 TCP"},
        "sqlite": sqlite_figures, "postgresql": pg_figures, "postgresql_over_sqlite": slower, "mlflow": ml,
    }
    targets: dict[str, bool] = {f"postgresql {k} within 3x of sqlite": v <= 3 for k, v in slower.items()}
    targets["live under 2 s (sqlite, max)"] = s["live"]["max_s"] < 2 and not s["live"]["missed"]
    targets["live under 2 s (postgresql, max)"] = p["live"]["max_s"] < 2 and not p["live"]["missed"]
    if ml is not None:
        result["ratios_vs_mlflow_on_postgresql"] = {
            "runs_per_s": round(p["runs_per_s"] / ml["runs_per_s"], 1),
            "batched_points_per_s": round(p["points_per_s"] / ml["points_per_s"], 1)}
        targets["runs_per_s >= 10x mlflow"] = result["ratios_vs_mlflow_on_postgresql"]["runs_per_s"] >= 10
        targets["batched_points_per_s >= 20x mlflow"] = \
            result["ratios_vs_mlflow_on_postgresql"]["batched_points_per_s"] >= 20
    result["targets"] = targets
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
