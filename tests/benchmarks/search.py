"""A hyperparameter search sequentially, on a local Dask cluster, and with scikit-learn's own
``RandomizedSearchCV(n_jobs=2)``; the overhead of trivial trials; peak memory of the client.

    python tests/benchmarks/search.py [--rows 100000] [--features 20] [--trials 24] [--trees 40]
                                      [--trivial 100] [--workers 2]

Measures, on the same data and the same 24 parameter sets (a random search over a space of
exactly 24 points, so every side fits the same candidates; random forests of ``--trees`` trees,
scored on one holdout split of the training rows):

- ``sequential``: Modelyard's search with ``cluster="serial"`` (one fit after the other);
- ``cluster``: the same search on a local Dask cluster of ``--workers`` worker processes;
- ``sklearn``: ``RandomizedSearchCV(n_jobs=2, refit=False)`` on the same pipeline and space, with a
  holdout of the same size (its own rows: the dataset's stored split is Modelyard's);
- ``trivial``: ``--trivial`` trials of a logistic regression on 60 rows, end to end (each
  recorded as a child run), serially and on the local cluster.

Each Modelyard side runs the training job in this process's child (a fresh interpreter per
scenario, so its peak RSS is the client's own: the job, the Dask client and, for a local cluster,
its scheduler; the workers are separate processes). ``search_s`` is the search itself (from the
log line that starts it to the one naming the best trial: every fit and every child run recorded);
``job_s`` adds loading the data, starting the cluster, the final refit and the evaluation.

The machine may be shared: the JSON carries the load average before and after, and the cores.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))

SEED = 7
SPACE = {"max_depth": [6, 8, 10, 12], "min_samples_leaf": [1, 5, 20], "max_features": ["sqrt", 0.5]}  # 24 points


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Clock:
    """A reporter that timestamps the job's log lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def progress(self, fraction: float | None, message: str) -> None:
        pass

    def log(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    def at(self, prefix: str) -> float | None:
        return next((t for t, line in self.lines if line.startswith(prefix)), None)

    def line(self, part: str) -> str | None:
        return next((line for _, line in self.lines if part in line), None)


def make_store(folder: Path, rows: int, features: int) -> None:
    import numpy as np
    import pandas as pd
    from modelyard.core.datasets.service import import_frame
    from modelyard.core.store import Store

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    signal = X[:, 0] + 0.5 * X[:, 1] - 0.7 * X[:, 2] * X[:, 3] + rng.normal(scale=0.8, size=rows)
    df["label"] = np.where(signal > 0, "yes", "no")
    small = df.iloc[:60].copy()
    store = Store.open(folder)
    try:
        import_frame(store, df, "big", target="label")
        import_frame(store, small, "tiny", target="label")
    finally:
        store.close()


def scenario(folder: Path, name: str, trials: int, trees: int, trivial: int, workers: int) -> dict[str, Any]:
    """One Modelyard search, its job in this process (run as a fresh interpreter per scenario)."""
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    from modelyard.core.jobs.runner import JobSpec, run_job
    from modelyard.core.store import Store

    cluster = "serial" if name.endswith("sequential") else f"local:{workers}"
    if name.startswith("trivial"):
        spec = TrainSpec(dataset="tiny", model="logistic_regression", seed=SEED,
                         search={"method": "random", "trials": trivial,
                                 "space": {"C": {"type": "float", "low": 0.01, "high": 100, "log": True}}})
    else:
        spec = TrainSpec(dataset="big", model="random_forest", seed=SEED, params={"n_estimators": trees},
                         search={"method": "random", "trials": trials, "space": SPACE})
    job = train_spec_job(spec, cluster=cluster)
    job = JobSpec(job.func, job.title, job.params, process=False, kind=job.kind)  # the client is this process
    store = Store.open(folder)
    clock = Clock()
    try:
        t0 = time.monotonic()
        outcome = run_job(store, job, reporter=clock)
        job_s = time.monotonic() - t0
    finally:
        store.close()
    if outcome.status != "succeeded":
        return {"error": outcome.error}
    start, end = clock.at("Random search:"), clock.at("Best: trial")
    ready = clock.line("ready in")
    search = outcome.result["search"]
    return {"cluster": cluster, "search_s": round(end - start, 3), "job_s": round(job_s, 3),
            "cluster_ready": ready, "trials": len(search["trials"]),
            "failed": sum(t["status"] != "succeeded" for t in search["trials"]),
            "best": {"params": search["best"]["params"], "score": search["best"]["score"]},
            "scores": [t["score"] for t in sorted(search["trials"], key=lambda t: t["trial"])],
            "peak_client_rss_mb": round(peak_rss_mb(), 1)}


def sklearn_side(folder: Path, trees: int, jobs: int) -> dict[str, Any]:
    """RandomizedSearchCV(n_jobs) on the same pipeline and 24-point space, a holdout of the same size."""
    import numpy as np
    from modelyard.core.datasets.service import get_version, snapshot_path
    from modelyard.core.experiments.training import preprocess
    from modelyard.core.experiments.training.data import _target_values
    from modelyard.core.experiments.training.trials import PipeSpec, build_pipeline
    from modelyard.core.store import Store
    from sklearn.model_selection import RandomizedSearchCV, train_test_split

    store = Store.open(folder)
    try:
        version = get_version(store, "big")
        plan = preprocess.describe_preprocessing(version.schema or {}, target="label", model_key="random_forest")
        import pyarrow.parquet as pq

        frame = pq.read_table(snapshot_path(store, version.id)).to_pandas()
    finally:
        store.close()
    features = preprocess.feature_columns(plan)
    X, y = frame[features], _target_values(frame["label"], "classification")
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    tr, va = train_test_split(np.arange(len(y_train)), test_size=0.2, random_state=SEED, stratify=y_train)
    pipe = build_pipeline(PipeSpec("random_forest", "classification", plan, SEED), {"n_estimators": trees}, 1)
    search = RandomizedSearchCV(pipe, {f"model__{k}": v for k, v in SPACE.items()}, n_iter=24, cv=[(tr, va)],
                                n_jobs=jobs, refit=False, random_state=SEED, scoring="accuracy")
    t0 = time.monotonic()
    search.fit(X_train.reset_index(drop=True), y_train)
    return {"n_jobs": jobs, "search_s": round(time.monotonic() - t0, 3),
            "best_score": float(search.best_score_), "peak_rss_mb": round(peak_rss_mb(), 1)}


def run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["?"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--trees", type=int, default=40)
    p.add_argument("--trivial", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scenario", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scenario:  # a child: one scenario, one JSON line
        folder = Path(args.store)
        if args.scenario == "sklearn":
            out = sklearn_side(folder, args.trees, 2)
        else:
            out = scenario(folder, args.scenario, args.trials, args.trees, args.trivial, args.workers)
        print(json.dumps(out))
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="modelyard-search-bench-") as tmp:
        folder = Path(tmp) / "store"
        t0 = time.monotonic()
        make_store(folder, args.rows, args.features)
        setup_s = time.monotonic() - t0
        common = ["--store", str(folder), "--trials", str(args.trials), "--trees", str(args.trees),
                  "--trivial", str(args.trivial), "--workers", str(args.workers)]
        results = {name: run_child(["--scenario", name, *common])
                   for name in ("sequential", "cluster", "sklearn", "trivial-sequential", "trivial-cluster")}
    seq, clu, skl = results["sequential"], results["cluster"], results["sklearn"]
    same = {"search": seq.get("scores") == clu.get("scores") is not None,
            "trivial": results["trivial-sequential"].get("scores") == results["trivial-cluster"].get("scores")}
    for r in results.values():
        r.pop("scores", None)
    ratios: dict[str, Any] = {}
    if all("search_s" in r for r in (seq, clu, skl)):
        ratios = {"cluster_vs_sklearn": round(clu["search_s"] / skl["search_s"], 3),
                  "sequential_vs_cluster_speedup": round(seq["search_s"] / clu["search_s"], 3)}
    ratios["same_scores_serial_and_cluster"] = same
    print(json.dumps({
        "rows": args.rows, "features": args.features, "trials": args.trials, "trees": args.trees,
        "workers": args.workers, "cpu_count": os.cpu_count(), "setup_s": round(setup_s, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "targets": {"cluster_within_10pct_of_sklearn": "cluster_vs_sklearn <= 1.10",
                    "speedup_on_2_cores": "sequential_vs_cluster_speedup >= 1.7",
                    "trivial_100_trials_end_to_end_s": "< 3 (Ray Tune's published figure: 22.7 s)"},
        **results, "ratios": ratios,
    }, indent=1))


if __name__ == "__main__":
    main()
