"""Import speed and peak memory of a 1,000,000 x 20 CSV, against plain pyarrow.

    python tests/benchmarks/import_csv.py [--rows 1000000] [--runs 1] [--keep DIR]

Generates a CSV (12 float columns, 2 integer columns, 6 categorical text columns, about 2 %
missing values in each) in a temporary folder, then measures, each in its own child process
so that peak memory (``ru_maxrss`` of that child) is the measurement's own:

* ``import``: the real import job (``run_job(store, import_spec(csv))`` on a fresh store):
  sniffing, streaming parse, normalising, hashing, writing the Parquet snapshot, profiling and
  the database transaction;
* ``baseline``: ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table`` of the same file.

The clock starts after each child's imports. Prints one JSON object: rows, cols, file_mb,
seconds, mb_per_s, peak_rss_mb, baseline_seconds, baseline_peak_rss_mb, ratio_to_baseline
(baseline_seconds / seconds; target >= 0.6) and peak_over_file_size (peak_rss_mb / file_mb,
the whole process including the interpreter; target < 3). With --runs N each side is measured
N times and the medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))


def generate(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    chunk = 250_000
    writer = None
    with path.open("wb") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            cols = {}
            for i in range(12):
                values = np.round(rng.normal(loc=i, scale=1 + i, size=n), 4)
                cols[f"x{i}"] = pa.array(values, mask=rng.random(n) < 0.02)
            for i in range(2):
                cols[f"n{i}"] = pa.array(rng.integers(0, 1000 * (i + 1), size=n), mask=rng.random(n) < 0.02)
            for i in range(6):
                cats = np.array([f"group_{chr(65 + i)}{j}" for j in range(5 + 10 * i)], dtype=object)
                cols[f"c{i}"] = pa.array(cats[rng.integers(0, len(cats), size=n)], pa.string(),
                                         mask=rng.random(n) < 0.02)
            table = pa.table(cols)
            if writer is None:
                writer = pacsv.CSVWriter(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


# --------------------------------------------------------------------------- child side


def _gui_child(csv_path: str, work: str, *, cold: bool = False) -> dict[str, float]:
    """The import as the window runs it (a job on a worker thread, started as a drop starts it),
    while a 5 ms timer on the main thread records the largest gap between its ticks.

    By default the app has been open long enough for its background warm-up of pandas, pyarrow
    and pyqtgraph to finish (ui/warmup.py, started 0.6 s after the window shows); ``cold``
    drops the file before any of them is loaded, the worst case."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from modelyard.core.datasets.specs import import_spec
    from modelyard.core.store import Store
    from modelyard.ui.app import create_application
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = create_application()
    store = Store.open(Path(work) / "store")
    window = MainWindow(store, open_settings())
    window.show()
    for _ in range(20):  # let the window settle before measuring
        app.processEvents()
    if not cold:
        from modelyard.ui.common import warmup

        thread = warmup.start()
        while thread.is_alive():  # the warm-up waits for the main thread's event loop (Qt's classes first)
            app.processEvents()
            thread.join(0.005)
        idle = time.perf_counter() + 1.0  # and the app has sat idle a moment since (as a user's would)
        while time.perf_counter() < idle:
            app.processEvents()
            time.sleep(0.005)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    start = time.perf_counter()
    # the import job a drop starts once its Import dialog is accepted (the dialog itself is not timed)
    handle = window.datasets_panel.start_job(import_spec(Path(csv_path)))
    last[0] = time.perf_counter()
    while handle.running:
        app.processEvents()
        time.sleep(0.001)
    seconds = time.perf_counter() - start
    during = list(gaps)
    gaps.clear()
    last[0] = time.perf_counter()
    end = time.perf_counter() + 0.5  # the panel refreshes with the new version right after
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    after = list(gaps)
    timer.stop()
    if not handle.outcome.ok:
        raise SystemExit(f"import failed: {handle.outcome.error}")
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.close()
    store.close()
    QApplication.processEvents()
    during.sort()
    return {"gui_seconds": seconds, "max_gap_ms": during[-1] * 1000 if during else 0.0,
            "p99_gap_ms": during[int(len(during) * 0.99) - 1] * 1000 if during else 0.0,
            "ticks": len(during), "max_gap_after_ms": max(after) * 1000 if after else 0.0}


def _child(kind: str, csv_path: str, work: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if kind in ("gui", "gui-cold"):
        extra = _gui_child(csv_path, work, cold=kind == "gui-cold")
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"seconds": extra["gui_seconds"], "peak_rss_mb": peak_kb / 1024, **extra}))
        return
    if kind == "import":
        from modelyard.core.datasets import service
        from modelyard.core.jobs.runner import run_job
        from modelyard.core.store import Store

        store = Store.open(Path(work) / "store")
        spec = service.import_spec(csv_path)
        start = time.perf_counter()
        outcome = run_job(store, spec)
        seconds = time.perf_counter() - start
        if not outcome.ok:
            raise SystemExit(f"import failed: {outcome.error}")
        extra = {"n_rows": outcome.result["n_rows"], "n_cols": outcome.result["n_cols"]}
        store.close()
    else:
        start = time.perf_counter()
        table = pacsv.read_csv(csv_path)
        pq.write_table(table, str(Path(work) / "baseline.parquet"))
        seconds = time.perf_counter() - start
        extra = {"n_rows": table.num_rows, "n_cols": table.num_columns}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, **extra}))


def _measure(kind: str, csv_path: Path, work: Path) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "app") + os.pathsep + env.get("PYTHONPATH", "")
    env["MODELYARD_CONFIG_DIR"] = str(work / "config")
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(csv_path), str(work)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    parser.add_argument("--no-gui", action="store_true", help="skip the event-loop measurement in the window")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv_path = work / "bench.csv"
        t0 = time.perf_counter()
        generate(csv_path, args.rows)
        gen_s = time.perf_counter() - t0
        file_mb = csv_path.stat().st_size / 1e6
        imports, baselines, guis, colds = [], [], [], []
        for i in range(args.runs):
            baselines.append(_measure("baseline", csv_path, work / f"baseline-{i}"))
            imports.append(_measure("import", csv_path, work / f"import-{i}"))
            if not args.no_gui:
                guis.append(_measure("gui", csv_path, work / f"gui-{i}"))
                colds.append(_measure("gui-cold", csv_path, work / f"gui-cold-{i}"))
        seconds = statistics.median(r["seconds"] for r in imports)
        peak = statistics.median(r["peak_rss_mb"] for r in imports)
        base_s = statistics.median(r["seconds"] for r in baselines)
        base_peak = statistics.median(r["peak_rss_mb"] for r in baselines)
        result = {
            "rows": imports[0]["n_rows"], "cols": imports[0]["n_cols"], "file_mb": round(file_mb, 1),
            "seconds": round(seconds, 3), "mb_per_s": round(file_mb / seconds, 1), "peak_rss_mb": round(peak, 1),
            "baseline_seconds": round(base_s, 3), "baseline_peak_rss_mb": round(base_peak, 1),
            "ratio_to_baseline": round(base_s / seconds, 3), "peak_over_file_size": round(peak / file_mb, 3),
            "runs": args.runs, "generate_seconds": round(gen_s, 1), "cpus": os.cpu_count(),
        }
        if guis:
            result.update({
                "gui_import_seconds": round(statistics.median(g["gui_seconds"] for g in guis), 3),
                "gui_max_event_loop_gap_ms": round(max(g["max_gap_ms"] for g in guis), 1),
                "gui_p99_event_loop_gap_ms": round(statistics.median(g["p99_gap_ms"] for g in guis), 1),
                "gui_max_gap_after_import_ms": round(max(g["max_gap_after_ms"] for g in guis), 1),
                "gui_target_max_gap_ms": 50,
                "gui_cold_max_event_loop_gap_ms": round(max(g["max_gap_ms"] for g in colds), 1),
                "gui_cold_max_gap_after_import_ms": round(max(g["max_gap_after_ms"] for g in colds), 1),
            })
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
