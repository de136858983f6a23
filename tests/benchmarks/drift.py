"""Drift check speed, peak memory and verdicts at 1,000,000 x 20, against Evidently's data-drift report.

    python tests/benchmarks/drift.py [--rows 1000000] [--keep DIR] [--no-evidently]

Generates a reference and a batch of ``--rows`` rows x 20 columns (15 numeric, 5 categorical),
writes them to Parquet once, and measures, each in its own child process (so peak memory,
``ru_maxrss``, is that process's own, interpreter and libraries included; the clock starts after
the imports):

* ``ours``: the real job, ``run_job(store, drift.check_spec("bench", batch_path=batch.parquet))``
  on a store where ``bench`` is a logistic regression trained (beforehand, not timed) on the
  reference through the real training job: the batch file is imported as a dataset version
  (parse, hash, Parquet snapshot, profile), the reference is read from the training rows of the
  model's split (exactly ``--rows`` rows), every column is tested, the model is run on samples of
  both, the domain classifier is trained, and the check is recorded. ``check_seconds`` is the
  check alone (``run_check``), without the import.
* ``evidently``: Evidently 0.7's ``Report([DataDriftPreset()])`` on the same reference rows and
  the same batch (read from Parquet with pandas, then the report run and its result read), with
  the column types given explicitly. Evidently 0.7 does not import with pandas 3, so it runs in a
  virtualenv of its own (``~/.cache/modelyard-bench/evidently-venv``: ``evidently==0.7.*``,
  ``pandas<3``, ``pyarrow``), created with pip on first use.

What the batch holds: n1 shifted by half a standard deviation, n6's spread x1.6, a new category
on 15 % of c1 (clear drift); n8 shifted by 0.1 standard deviation and c3's shares moved to a
Jensen-Shannon distance near 0.1 (deliberately borderline: both tools sit on their threshold, so
their verdicts are not compared); n12 and n13 with their correlation flipped (marginals unchanged:
no column drifts, our domain classifier sees it); every other column unchanged.

Prints one JSON object: rows, ours {seconds, check_seconds, peak_rss_mb, verdict, drifted,
multivariate_auc}, evidently {seconds, peak_rss_mb, drifted, version} (null with --no-evidently),
columns {name: {ours: {drift, test, statistic}, evidently: {drift, method, value}, borderline}},
same_verdicts (every column not deliberately borderline), speedup (evidently / ours seconds) and
memory_ratio (ours / evidently peak).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
BORDERLINE = ("n8", "c3")
VENV = Path(os.environ.get("MODELYARD_BENCH_CACHE", Path.home() / ".cache" / "modelyard-bench")) / "evidently-venv"
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.*", "pandas<3", "pyarrow")


# --------------------------------------------------------------------------- data


def frame(n: int, seed: int, batch: bool):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    d = {}
    d["n0"] = rng.normal(0, 1, n)
    d["n1"] = rng.normal(50, 10, n) + (5.0 if batch else 0.0)
    d["n2"] = rng.lognormal(1, 0.5, n)
    d["n3"] = rng.uniform(0, 100, n)
    d["n4"] = rng.poisson(3, n).astype(float)
    d["n5"] = rng.exponential(2, n)
    d["n6"] = rng.normal(10, 2 * (1.6 if batch else 1.0), n)
    d["n7"] = rng.gamma(2.0, 3.0, n)
    d["n8"] = rng.normal(100, 15, n) + (1.5 if batch else 0.0)  # 0.1 sd: borderline
    for i in range(9, 12):
        d[f"n{i}"] = rng.normal(i, 1 + i / 10, n)
    z1, z2 = rng.normal(size=n), rng.normal(size=n)
    rho = -0.8 if batch else 0.8
    d["n12"] = z1
    d["n13"] = rho * z1 + np.sqrt(1 - rho ** 2) * z2
    d["n14"] = rng.integers(0, 1000, n).astype(float)
    d["c0"] = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    c1 = rng.choice(["north", "south", "east", "west", "centre"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    d["c1"] = np.where(rng.random(n) < 0.15, "atlantis", c1) if batch else c1
    d["c2"] = rng.choice(["x", "y"], n, p=[0.7, 0.3])
    p3 = np.full(8, 1 / 8)
    if batch:  # borderline: Jensen-Shannon distance about 0.1
        p3 = p3 + 0.034 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    d["c3"] = rng.choice([f"k{i}" for i in range(8)], n, p=p3)
    d["c4"] = rng.choice([f"shop{i:02d}" for i in range(40)], n)
    df = pd.DataFrame(d)
    if not batch:
        logit = 0.8 * d["n0"] + (d["c0"] == "a") * 0.8 + 0.05 * (d["n1"] - 50) - 1.0
        df["label"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


# --------------------------------------------------------------------------- child: setup (not timed)


def child_setup(work: Path, rows: int) -> None:
    import pyarrow.parquet as pq
    from modelyard.core.datasets.service import import_spec
    from modelyard.core.experiments.training.spec import TrainSpec
    from modelyard.core.experiments.training.train import train_and_wait
    from modelyard.core.jobs.runner import run_job
    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.reference import load_reference_data
    from modelyard.core.store import Store

    with Store.open(work / "store") as store:
        out = run_job(store, import_spec(str(work / "reference_all.parquet"), {"name": "bench", "target": "label"}))
        assert out.ok, out.error
        spec = TrainSpec(dataset="bench", model="logistic_regression", split={"test": 0.2, "seed": 0}, curves=False)
        out = train_and_wait(store, spec)
        assert out.ok, out.error
        info = registry.register(store, out.result["run_id"], "bench")
        data = load_reference_data(store, info.id)
        assert data is not None
        ref = data.frame[NUMERIC + CATEGORICAL]
        import pyarrow as pa

        pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), work / "reference.parquet")
    print(json.dumps({"model": info.ref, "reference_rows": len(ref), "wanted": rows}))


# --------------------------------------------------------------------------- child: ours (timed)


def child_ours(work: Path, run: int) -> None:
    import resource
    import time

    import numpy as np  # noqa: F401 - imported before the clock starts, as Evidently's side does
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    from modelyard.core.datasets import service  # noqa: F401
    from modelyard.core.jobs.runner import run_job
    from modelyard.core.monitoring import drift
    from modelyard.core.monitoring.drift import check  # noqa: F401
    from modelyard.core.store import Store

    with Store.open(work / "store") as store:
        t0 = time.perf_counter()
        out = run_job(store, drift.check_spec("bench@latest", batch_path=work / "batch.parquet",
                                              dataset_name=f"bench-batches-{run}"))
        seconds = time.perf_counter() - t0
        assert out.ok, out.error
        full = drift.get_check(store, out.result["check_id"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cols = {r["name"]: {"drift": r["drift"], "test": r["test"], "statistic": r["statistic"],
                        "p_value": r.get("p_adjusted")} for r in full["features"]}
    mv = full.get("multivariate") or {}
    print(json.dumps({"seconds": round(seconds, 2), "check_seconds": full.get("seconds"),
                      "peak_rss_mb": round(peak, 1), "verdict": full["verdict"], "drifted": full["drifted"],
                      "multivariate_auc": mv.get("auc"),
                      "prediction_drift": (full.get("prediction") or {}).get("drift"),
                      "columns": cols}))


# --------------------------------------------------------------------------- child: Evidently (timed)

EVIDENTLY_SCRIPT = textwrap.dedent('''
    import json, resource, sys, time
    import pandas as pd
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    work, numeric, categorical = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
    t0 = time.perf_counter()
    ref = pd.read_parquet(f"{work}/reference.parquet")
    cur = pd.read_parquet(f"{work}/batch.parquet", columns=numeric + categorical)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                               Dataset.from_pandas(ref, data_definition=definition))
    result = snapshot.dict()
    seconds = time.perf_counter() - t0
    cols = {}
    for metric in result["metrics"]:
        cfg = metric.get("config") or {}
        if not cfg.get("type", "").endswith("ValueDrift"):
            continue
        method, value, threshold = cfg["method"], float(metric["value"]), float(cfg["threshold"])
        p_value = "p_value" in method.lower()
        cols[cfg["column"]] = {"drift": value < threshold if p_value else value >= threshold, "method": method,
                               "value": value, "threshold": threshold}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "columns": cols,
                      "version": evidently.__version__}))
''')


def evidently_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"Creating {VENV} for Evidently (once)...", file=sys.stderr)
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


# --------------------------------------------------------------------------- parent


def _child(args: list[str], python: str | None = None) -> dict:  # type: ignore[type-arg]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "app")
    proc = subprocess.run([python or sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (data, store)")
    parser.add_argument("--no-evidently", action="store_true", dest="no_evidently")
    parser.add_argument("--child", choices=("setup", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "setup":
        child_setup(args.work, args.rows)
        return
    if args.child == "ours":
        child_ours(args.work, args.run)
        return

    tmp = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="modelyard-drift-bench-")
        work = Path(tmp.name)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not (work / "batch.parquet").exists():
            print("Generating the data...", file=sys.stderr)
            n_all = round(args.rows / 0.8)  # the model's split keeps 80 % for training: the reference
            pq.write_table(pa.Table.from_pandas(frame(n_all, 1, batch=False), preserve_index=False),
                           work / "reference_all.parquet")
            pq.write_table(pa.Table.from_pandas(frame(args.rows, 2, batch=True), preserve_index=False),
                           work / "batch.parquet")
        if not (work / "reference.parquet").exists():
            print("Importing the reference and training the model (not timed)...", file=sys.stderr)
            setup = _child([__file__, "--child", "setup", "--work", str(work), "--rows", str(args.rows)])
            print(f"  {setup}", file=sys.stderr)
        print("Running our drift check job...", file=sys.stderr)
        runs = len(list(work.glob("ours-*.json")))
        ours = _child([__file__, "--child", "ours", "--work", str(work), "--run", str(runs)])
        (work / f"ours-{runs}.json").write_text(json.dumps(ours))
        evid = None
        if not args.no_evidently:
            python = evidently_python()
            script = work / "evidently_child.py"
            script.write_text(EVIDENTLY_SCRIPT)
            print("Running Evidently's DataDriftPreset...", file=sys.stderr)
            evid = _child([str(script), str(work), ",".join(NUMERIC), ",".join(CATEGORICAL)], python=str(python))
        columns = {}
        same = True
        for name in NUMERIC + CATEGORICAL:
            o = ours["columns"].get(name)
            e = (evid or {}).get("columns", {}).get(name)
            columns[name] = {"ours": o, "evidently": e, "borderline": name in BORDERLINE}
            if e is not None and name not in BORDERLINE and bool(o and o["drift"]) != bool(e["drift"]):
                same = False
        out = {
            "rows": args.rows, "cols": len(NUMERIC) + len(CATEGORICAL),
            "ours": {k: ours[k] for k in ("seconds", "check_seconds", "peak_rss_mb", "verdict", "drifted",
                                          "multivariate_auc", "prediction_drift")},
            "evidently": None if evid is None else {
                "version": evid["version"], "seconds": evid["seconds"], "peak_rss_mb": evid["peak_rss_mb"],
                "drifted": [c for c, v in evid["columns"].items() if v["drift"]]},
            "columns": columns,
            "same_verdicts": same if evid is not None else None,
            "speedup": round(evid["seconds"] / ours["seconds"], 1) if evid else None,
            "memory_ratio": round(ours["peak_rss_mb"] / evid["peak_rss_mb"], 2) if evid else None,
        }
        print(json.dumps(out, indent=1))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
