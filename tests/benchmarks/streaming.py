"""Streaming scoring against MLflow's server called once per event, and the stream's memory over time.

    python tests/benchmarks/streaming.py [--seconds 8] [--memory-seconds 600] [--rate 2000] [--no-mlflow]

The model is the one of tests/benchmarks/serve.py (logistic regression behind a ColumnTransformer,
trained by Modelyard on the tests' garden table), also saved with ``mlflow.sklearn.save_model``.

* **single events** — ``modelyard predict --stream flowers@champion`` in a child process; one
  event (a JSON line) is written to its standard input, its prediction line read back, then the
  next: events per second and p50/p99 of that round trip, for ``--seconds`` after 200 warm-up
  events. The same for ``mlflow models serve`` (``--env-manager local``, uvicorn), one
  ``dataframe_split`` request of one row per event on a keep-alive connection. Both answer the
  same first events with the same predictions (checked). Target: ours ≥ 20× MLflow's events/s;
* **micro-batched** — 100,000 lines piped in at once: events per second (the stream's own count);
* **memory** — the stream fed ``--rate`` events per second for ``--memory-seconds`` (in lines
  written every 10 ms): its resident memory every second (``VmRSS``), first minute against the
  last, and the peak (``VmHWM``);
* the prediction log's request-path cost and windowed drift over 10,000,000 logged rows, from
  ``tests/benchmarks/_live_parts.py`` (helper "live") when that module exists (else null).

Prints one JSON object. The clients run in this process; on a shared machine the figures move with
the load (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import serve as serve_bench  # noqa: E402 - the model and MLflow's server, as the serving benchmark has them

WARMUP = 200


def event_lines(frame: Any, n: int) -> list[bytes]:
    import pandas as pd

    part = pd.concat([frame] * (n // len(frame) + 1)).head(n).copy()
    part["measured"] = part["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    part.insert(0, "id", range(1, len(part) + 1))
    return part.to_json(orient="records", lines=True).encode().splitlines()


def stream_cmd(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "modelyard", "--store", str(store), "predict", "--stream", "flowers@champion",
            *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "app"), os.environ.get("PYTHONPATH", "")])}


def pct(values: list[float], q: float) -> float:
    return round(serve_bench.pct(values, q) * 1000, 3)


# --------------------------------------------------------------------------- ours


def ours_single(store: Path, lines: list[bytes], seconds: float) -> tuple[dict[str, Any], list[Any]]:
    proc = subprocess.Popen(stream_cmd(store, "--json"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(), bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    out = io.BufferedReader(proc.stdout)  # bufsize=0 gives a raw pipe, whose readline reads a byte at a time
    first: list[Any] = []
    try:
        for i in range(WARMUP):
            proc.stdin.write(lines[i % len(lines)] + b"\n")
            answer = json.loads(out.readline())
            if i < 20:
                first.append(answer.get("prediction"))
        lat: list[float] = []
        i = 0
        began = time.perf_counter()
        stop_at = began + seconds
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            proc.stdin.write(lines[i % len(lines)] + b"\n")
            line = out.readline()
            lat.append(time.perf_counter() - t0)
            i += 1
            if not line:
                raise RuntimeError("the stream ended early: " + proc.stderr.read().decode()[-2000:])
        elapsed = time.perf_counter() - began
    finally:
        proc.stdin.close()
        proc.wait(60)
    return ({"events": len(lat), "events_per_s": round(len(lat) / elapsed, 1), "p50_ms": pct(lat, 0.5),
             "p99_ms": pct(lat, 0.99), "seconds": round(elapsed, 2)}, first)


def ours_batched(store: Path, lines: list[bytes], n: int = 100_000) -> dict[str, Any]:
    body = b"\n".join((lines * (n // len(lines) + 1))[:n]) + b"\n"
    t0 = time.perf_counter()
    proc = subprocess.run(stream_cmd(store, "--json"), input=body, capture_output=True, env=env(), timeout=600)
    wall = time.perf_counter() - t0
    err = proc.stderr.decode()
    summary = json.loads(err[err.index("{"):])
    assert summary["predictions"] == n, summary
    return {"events": n, "events_per_s": summary["events_per_s"], "latency_ms": summary["latency_ms"],
            "wall_s_including_start": round(wall, 2), "batches": summary["batches"]}


def _status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def ours_memory(store: Path, lines: list[bytes], seconds: float, rate: int) -> dict[str, Any]:
    proc = subprocess.Popen(stream_cmd(store, "--json"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env(), bufsize=0)
    assert proc.stdin is not None
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(1.0):
            rss = _status(proc.pid).get("VmRSS")
            if rss:
                samples.append((time.monotonic() - t0, rss))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    per_tick = max(1, rate // 100)
    sent = 0
    began = time.monotonic()
    tick = began
    while time.monotonic() - began < seconds:
        chunk = [lines[(sent + j) % len(lines)] for j in range(per_tick)]
        proc.stdin.write(b"\n".join(chunk) + b"\n")
        sent += per_tick
        tick += 0.01
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    hwm = _status(proc.pid).get("VmHWM")
    proc.stdin.close()
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.wait(60)
    done.set()
    sampler.join(5)
    summary = json.loads(err[err.index("{"):]) if "{" in err else {}
    minute = [r for t, r in samples if t <= 60] or [r for _, r in samples[:1]]
    last = [r for t, r in samples if t >= samples[-1][0] - 60] if samples else []
    mb = 1024 * 1024
    return {"seconds": seconds, "rate_asked": rate, "events": summary.get("events"), "sent": sent,
            "rss_first_minute_mb": round(max(minute) / mb, 1) if minute else None,
            "rss_last_minute_mb": round(max(last) / mb, 1) if last else None,
            "rss_growth_mb": round((max(last) - max(minute)) / mb, 1) if minute and last else None,
            "peak_rss_mb": round(hwm / mb, 1) if hwm else None,
            "latency_ms": summary.get("latency_ms")}


# --------------------------------------------------------------------------- MLflow


def mlflow_single(port: int, frame: Any, seconds: float) -> tuple[dict[str, Any], list[Any]]:
    bodies = [serve_bench.payload(frame.iloc[[i]], 1) for i in range(len(frame))]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    first: list[Any] = []
    for i in range(WARMUP):
        status, data = serve_bench.post(conn, bodies[i % len(bodies)])
        if status != 200:
            raise RuntimeError(f"MLflow answered {status}: {data[:300]!r}")
        if i < 20:
            first.append(json.loads(data)["predictions"][0])
    lat: list[float] = []
    i = 0
    began = time.perf_counter()
    stop_at = began + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= stop_at:
            break
        serve_bench.post(conn, bodies[i % len(bodies)])
        lat.append(time.perf_counter() - t0)
        i += 1
    elapsed = time.perf_counter() - began
    conn.close()
    return ({"events": len(lat), "events_per_s": round(len(lat) / elapsed, 1), "p50_ms": pct(lat, 0.5),
             "p99_ms": pct(lat, 0.99), "seconds": round(elapsed, 2)}, first)


# --------------------------------------------------------------------------- main


def live_parts() -> dict[str, Any] | None:
    try:
        import _live_parts  # type: ignore[import-not-found]
    except ImportError:
        return None
    out: dict[str, Any] = {}
    for name in ("measure_log_cost", "measure_windowed_drift"):
        fn = getattr(_live_parts, name, None)
        try:
            out[name] = fn() if fn is not None else None
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the figures stand
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each single-event phase")
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="length of the memory phase (0: skip)")
    parser.add_argument("--rate", type=int, default=2000, help="events per second fed in the memory phase")
    parser.add_argument("--no-mlflow", action="store_true", help="measure only the stream")
    parser.add_argument("--no-live", action="store_true", help="skip the prediction-log and drift parts")
    args = parser.parse_args()
    try:
        import mlflow

        mlflow_version = None if args.no_mlflow else mlflow.__version__
    except ImportError:
        mlflow_version = None
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "python": platform.python_version(),
                               "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
                               "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                               "mlflow_version": mlflow_version, "seconds_per_phase": args.seconds}
    with tempfile.TemporaryDirectory(prefix="modelyard-stream-bench-") as tmp:
        tmpdir = Path(tmp)
        data = serve_bench.build(tmpdir / "store", tmpdir / "mlflow-model" if mlflow_version else None)
        frame = data["rows"]
        lines = event_lines(frame, len(frame))
        results["model"] = type(data["model"][-1]).__name__ + " behind a ColumnTransformer"
        results["ours_single_event"], ours_first = ours_single(tmpdir / "store", lines, args.seconds)
        results["ours_micro_batched"] = ours_batched(tmpdir / "store", lines)
        results["mlflow_single_event"] = None
        if mlflow_version:
            proc, port = serve_bench.start_mlflow(tmpdir / "mlflow-model", tmpdir / "mlflow.log")
            try:
                results["mlflow_single_event"], mlflow_first = mlflow_single(port, frame, args.seconds)
                results["same_predictions"] = ours_first == mlflow_first
            finally:
                serve_bench.stop_group(proc)
        if args.memory_seconds > 0:
            results["ours_memory"] = ours_memory(tmpdir / "store", lines, args.memory_seconds, args.rate)
    results["live"] = None if args.no_live else live_parts()
    if results["mlflow_single_event"]:
        ratio = results["ours_single_event"]["events_per_s"] / results["mlflow_single_event"]["events_per_s"]
        results["ratio_single_event_ours_over_mlflow"] = round(ratio, 1)
        results["target_20x_mlflow"] = ratio >= 20
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
