"""Time from process start to the Modelyard main window shown and responsive.

    python tests/benchmarks/startup.py [--runs 7]

Each run starts ``python -m modelyard`` (a new user: the default store, in a temporary XDG_DATA_HOME,
created by the first run) with MODELYARD_STARTUP_PROBE=1: the app
prints a timestamp from a zero-delay timer once the window is shown, i.e. when the event loop
first turns and the window answers input, then quits. The clock starts just before the
process is spawned, so interpreter start-up and every import are counted. Measured on an
empty store and on one holding a profiled dataset and 200 runs (the window then opens on a
real profile). A bare PySide6
window (import QtWidgets, show a QMainWindow, same probe) is measured in the same run as the
floor no Qt app can beat. Prints one JSON object; the target is median_s < 1.5 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE_QT = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1]); w = QMainWindow(); w.resize(1200, 780); w.show()
def probe():
    print(f"MODELYARD_RESPONSIVE {time.time():.6f}", flush=True); w.close()
QTimer.singleShot(0, probe); app.exec()
"""


SEED = """
import sys
import numpy as np, pandas as pd
from modelyard.core.store import Store
from modelyard.core.experiments import tracking
from modelyard.core.datasets.service import import_frame
store = Store.open(sys.argv[1])
rng = np.random.default_rng(0)
import_frame(store, pd.DataFrame({f"x{i}": rng.normal(size=5000) for i in range(12)} | {"y": rng.choice(["a", "b"], 5000)}), "churn", target="y")
for i in range(200):
    with tracking.start_run("churn", store=store, name=f"run-{i}") as run:
        run.log_params({"model": "rf", "depth": i % 10})
        run.log_metrics({"f1": float(rng.random()), "auc": float(rng.random())})
"""


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM=env.get("QT_QPA_PLATFORM", "offscreen"), MODELYARD_STARTUP_PROBE="1",
               MODELYARD_CONFIG_DIR=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"))
    env.pop("MODELYARD_STORE", None)  # the first run is a new user's: the default store, created on first use
    env.pop("MODELYARD_DB_URL", None)
    env["PYTHONPATH"] = str(ROOT / "app") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _one(cmd: list[str], env: dict[str, str]) -> float:
    start = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("MODELYARD_RESPONSIVE "):
            return float(line.split()[1]) - start
    raise RuntimeError(f"no probe line from {cmd}: rc={out.returncode}\n{out.stdout}\n{out.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = _env(tmp)
        app_cmd = [sys.executable, "-m", "modelyard"]
        first = _one(app_cmd, env)  # creates the default store (runs the migrations) and warms caches
        app_times = [_one(app_cmd, env) for _ in range(args.runs)]
        # the same over a store with data in it: a profiled dataset and 200 tracked runs
        subprocess.run([sys.executable, "-c", SEED, str(tmp / "full")], env=env, check=True, timeout=300)
        full_cmd = [sys.executable, "-m", "modelyard", "--store", str(tmp / "full")]
        full_times = [_one(full_cmd, env) for _ in range(args.runs)]
        bare_times = [_one([sys.executable, "-c", BARE_QT], env) for _ in range(args.runs)]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    median = statistics.median(app_times)
    bare = statistics.median(bare_times)
    print(json.dumps({
        "benchmark": "startup",
        "runs": args.runs,
        "first_run_new_store_s": round(first, 3),
        "median_s": round(median, 3),
        "min_s": round(min(app_times), 3),
        "max_s": round(max(app_times), 3),
        "populated_store_median_s": round(statistics.median(full_times), 3),
        "baseline": "bare PySide6 QMainWindow",
        "baseline_median_s": round(bare, 3),
        "ratio_to_baseline": round(median / bare, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "target_s": 1.5,
        "meets_target": median < 1.5 and statistics.median(full_times) < 1.5,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
