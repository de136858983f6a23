"""Model serving latency and throughput, against ``mlflow models serve`` with the same model.

    python tests/benchmarks/serve.py [--seconds 8] [--clients 4] [--rows 100] [--no-mlflow]

One fitted pipeline — logistic regression behind a ColumnTransformer (4 numeric columns scaled,
a one-hot category, a date as its parts, a yes/no column), trained by Modelyard's training job
on the garden table of the tests (iris with a category, a date and a flag) — is served twice,
each server in its own process on 127.0.0.1:

* ours: ``modelyard serve flowers@champion`` (through :class:`ServerProcess`);
* MLflow's: the same fitted pipeline saved with ``mlflow.sklearn.save_model`` (with a signature
  inferred from the training frame, so MLflow checks its input too), served by
  ``python -m mlflow models serve -m DIR --env-manager local`` (uvicorn, 1 worker: its default).

For each server and each payload (one row; ``--rows`` rows; ``dataframe_split`` JSON), after a
warm-up of 200 requests:

* latency: one client sending requests one after another for ``--seconds``: p50 / p99 of
  the request's round trip (client-side), and requests per second;
* throughput: ``--clients`` client threads, each on its own keep-alive connection, for
  ``--seconds``: requests per second and p50 / p99.

Both servers' answers are checked to be the same predictions first. Prints one JSON object;
without MLflow (or with ``--no-mlflow``) the "mlflow" entries are null. The clients run in this
process (one GIL): what they cost is the same for both servers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "tests"))

WARMUP = 200


# --------------------------------------------------------------------------- the model


def build(store_dir: Path, mlflow_dir: Path | None) -> dict[str, Any]:
    import numpy as np
    from factories import FEATURES, garden_frame, make_garden_store
    from modelyard.core.registry import versions as registry

    store, info = make_garden_store(store_dir)
    model = registry.load_model(store, info.ref)
    frame = garden_frame()
    full = frame[FEATURES].dropna()
    if mlflow_dir is not None:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(full, model.predict(full))
        mlflow.sklearn.save_model(model, str(mlflow_dir), signature=signature,  # a pickle, like ours
                                  serialization_format="cloudpickle")
    rng = np.random.default_rng(0)
    store.close()
    return {"features": FEATURES, "rows": full.iloc[rng.permutation(len(full))], "model": model}


def payload(frame: Any, n: int) -> bytes:
    import pandas as pd

    part = pd.concat([frame] * (n // len(frame) + 1)).head(n).copy()  # more rows than the table: repeat it
    part["measured"] = part["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    split = json.loads(part.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": split}).encode()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, timeout: float = 180.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no server on port {port} after {timeout:.0f} s")


def start_mlflow(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file:{model_dir.parent / 'mlruns'}",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}  # its uvicorn
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"), stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        wait_ready(port, proc=proc)
    except RuntimeError as exc:
        stop_group(proc)
        raise RuntimeError(f"{exc}; its log ends with:\n{log.read_text(errors='replace')[-3000:]}") from None
    return proc, port


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --------------------------------------------------------------------------- load


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def run_load(port: int, body: bytes, seconds: float, clients: int) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at: list[float] = [0.0]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start.wait()
        mine = latencies[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            status, _ = post(conn, body)
            mine.append(time.perf_counter() - t0)
            if status != 200:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [x for lat in latencies for x in lat]
    return {"requests": len(flat), "errors": sum(errors), "requests_per_s": round(len(flat) / elapsed, 1),
            "p50_ms": round(pct(flat, 0.5) * 1000, 3), "p99_ms": round(pct(flat, 0.99) * 1000, 3),
            "clients": clients, "seconds": round(elapsed, 2)}


def measure(port: int, bodies: dict[str, bytes], seconds: float, clients: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, body in bodies.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(WARMUP):
            status, data = post(conn, body)
            if status != 200:
                raise RuntimeError(f"warm-up request failed: {status} {data[:300]!r}")
        conn.close()
        out[name] = {"latency": run_load(port, body, seconds, 1), "throughput": run_load(port, body, seconds, clients)}
    return out


def predictions(port: int, body: bytes) -> list[Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, data = post(conn, body)
    conn.close()
    if status != 200:
        raise RuntimeError(f"{status}: {data[:500]!r}")
    return json.loads(data)["predictions"]


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured phase")
    parser.add_argument("--clients", type=int, default=4, help="client threads in the throughput phase")
    parser.add_argument("--rows", type=int, default=100, help="rows of the larger request")
    parser.add_argument("--no-mlflow", action="store_true", help="measure only our server")
    args = parser.parse_args()

    try:
        import mlflow
        mlflow_version = None if args.no_mlflow else mlflow.__version__
    except ImportError:
        mlflow_version = None

    from modelyard.core.serving import ServerProcess

    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "python": platform.python_version(),
                               "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
                               "mlflow_version": mlflow_version, "seconds_per_phase": args.seconds,
                               "clients": args.clients}
    with tempfile.TemporaryDirectory(prefix="modelyard-serve-bench-") as tmp:
        tmpdir = Path(tmp)
        data = build(tmpdir / "store", tmpdir / "mlflow-model" if mlflow_version else None)
        bodies = {"1 row": payload(data["rows"], 1), f"{args.rows} rows": payload(data["rows"], args.rows)}
        results["model"] = type(data["model"][-1]).__name__ + " behind a ColumnTransformer"

        ours = ServerProcess("flowers@champion", store=tmpdir / "store", port=0)
        t0 = time.perf_counter()
        ours.start()
        results["ours_ready_s"] = round(time.perf_counter() - t0, 2)
        try:
            port = int(ours.url.rsplit(":", 1)[1])
            reference = {k: predictions(port, b) for k, b in bodies.items()}
            results["fast_path"] = ours.info.get("fast_path") if ours.info else None
            results["ours"] = measure(port, bodies, args.seconds, args.clients)
            results["ours_server_stats"] = {k: ours.stats()[k] for k in ("requests", "errors", "latency_ms")}
        finally:
            ours.stop()
            ours.cleanup()

        results["mlflow"] = None
        if mlflow_version:
            t0 = time.perf_counter()
            proc, mport = start_mlflow(tmpdir / "mlflow-model", tmpdir / "mlflow.log")
            results["mlflow_ready_s"] = round(time.perf_counter() - t0, 2)
            try:
                same = {k: predictions(mport, b) == reference[k] for k, b in bodies.items()}
                results["same_predictions"] = same
                results["mlflow"] = measure(mport, bodies, args.seconds, args.clients)
            finally:
                stop_group(proc)

    if results["mlflow"]:
        ratios: dict[str, Any] = {}
        for name in results["ours"]:
            o, f = results["ours"][name], results["mlflow"][name]
            ratios[name] = {
                "p50_latency_mlflow_over_ours": round(f["latency"]["p50_ms"] / o["latency"]["p50_ms"], 2),
                "throughput_ours_over_mlflow": round(o["throughput"]["requests_per_s"]
                                                     / f["throughput"]["requests_per_s"], 2)}
        results["ratios"] = ratios
    one = results["ours"]["1 row"]["latency"]["p50_ms"]
    results["targets"] = {
        "p50_single_row_under_5ms": one < 5.0,
        "throughput_at_least_mlflow": None if not results["mlflow"] else all(
            r["throughput_ours_over_mlflow"] >= 1.0 for r in results["ratios"].values())}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
