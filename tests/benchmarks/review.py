"""The evidence job at 100,000 held-out rows x 20 features, against the naive way of computing it.

    python tests/benchmarks/review.py [--rows 100000] [--resamples 1000] [--repeats 5] [--keep DIR]
                                      [--naive-resamples 5]

Generates a table of ``--rows / 0.8`` rows x 20 features (14 numeric, 4 categorical, and the two
sensitive columns ``sex`` (2 groups) and ``region`` (5 groups), which the models use too) whose
label noise differs by group, imports it, and trains (beforehand, not timed) a logistic
regression (``bench@v1``, the champion) and a histogram gradient boosting (``bench@v2``) through
the real training job with an 80 % TEST split, so the held-out part is exactly ``--rows`` rows.
Then, each in its own child process (peak memory, ``ru_maxrss``, is that process's own):

* ``ours``: the real job, ``run_job(store, evidence_spec("bench@v2", sensitive=["sex", "region"]))``,
  which itself runs in a child process (kind ``registry.evidence``): held-out rows read, both
  models loaded and run, a paired bootstrap of ``--resamples`` resamples for every metric of both
  models and every group of both columns, fairlearn's MetricFrame per column, permutation
  importance with ``--repeats`` repeats, near copies, partial dependence, calibration, and the
  document stored. ``peak_rss_mb`` is the larger of the parent and the job's child (both are
  listed; the process tree's peak is at most their sum, ``tree_peak_rss_mb``). ``cpu_seconds`` is
  the CPU time of both (the job predicts on one thread): on a busy machine, what the job would
  take alone; ``load_average`` says how busy the machine was.
* ``naive`` (the peer, measured in the same run on the same predictions of the same rows): the
  bootstrap the usual way, a Python loop over resamples calling scikit-learn's metric functions
  for both models and fairlearn's ``MetricFrame`` (the same group metrics) for each sensitive
  column on the resampled rows. It runs ``--naive-resamples`` resamples and is EXTRAPOLATED
  linearly to ``--resamples`` (labelled so); the same child also times our vectorised bootstrap
  alone (:func:`modelyard.core.registry.review.stats.run_bootstrap`, all scorers) on those arrays,
  so ``bootstrap_speedup`` compares like with like.

Prints one JSON object: rows, features, resamples, repeats, ours {seconds, peak_rss_mb, ...},
naive {measured_resamples, seconds_measured, seconds_extrapolated, ...}, bootstrap {ours_seconds,
naive_seconds_extrapolated, speedup}, load_average, cpus.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

NUMERIC = [f"n{i}" for i in range(14)]
CATEGORICAL = [f"c{i}" for i in range(4)]
SENSITIVE = ["sex", "region"]


def frame(n: int, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    d = {name: rng.normal(0, 1 + i / 7, n) for i, name in enumerate(NUMERIC)}
    for i, name in enumerate(CATEGORICAL):
        d[name] = rng.choice([f"k{j}" for j in range(3 + 2 * i)], n)
    d["sex"] = rng.choice(["F", "M"], n)
    d["region"] = rng.choice(["north", "south", "east", "west", "centre"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    z = 1.2 * d["n0"] - 0.8 * d["n1"] / 1.14 + 0.5 * d["n2"] + (d["c0"] == "k1") * 0.7 + rng.normal(0, 0.3, n)
    flip = rng.random(n) < np.where(d["sex"] == "F", 0.12, 0.04)
    d["label"] = np.where((z > 0) ^ flip, "yes", "no")
    return pd.DataFrame(d)


def child_setup(work: Path) -> None:
    from modelyard.core.datasets.service import import_spec
    from modelyard.core.experiments.training.spec import TrainSpec
    from modelyard.core.experiments.training.train import train_and_wait
    from modelyard.core.jobs.runner import run_job
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import Store

    with Store.open(work / "store") as store:
        out = run_job(store, import_spec(str(work / "data.parquet"), {"name": "bench", "target": "label"}))
        assert out.ok, out.error
        refs = []
        for model in ("logistic_regression", "hist_gradient_boosting"):
            spec = TrainSpec(dataset="bench", model=model, split={"test": 0.8, "seed": 0}, curves=False)
            out = train_and_wait(store, spec)
            assert out.ok, out.error
            refs.append(registry.register(store, out.result["run_id"], "bench").ref)
        registry.set_alias(store, refs[0], "champion", comment="the benchmark's champion")
    print(json.dumps({"champion": refs[0], "candidate": refs[1]}))


def _peaks() -> dict[str, float]:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(max(me, children), 1), "parent_peak_rss_mb": round(me, 1),
            "job_child_peak_rss_mb": round(children, 1), "tree_peak_rss_mb": round(me + children, 1)}


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children (the job's child)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def child_ours(work: Path, resamples: int, repeats: int) -> None:
    import time

    from modelyard.core.jobs.runner import run_job
    from modelyard.core.registry.review.compute import evidence_spec
    from modelyard.core.registry.review.evidence import latest_evidence
    from modelyard.core.store import Store

    with Store.open(work / "store") as store:
        cpu0 = _cpu()
        t0 = time.perf_counter()
        out = run_job(store, evidence_spec("bench@v2", sensitive=SENSITIVE, n_boot=resamples, repeats=repeats))
        seconds = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        assert out.ok, out.error
        doc = latest_evidence(store, "bench@v2").payload
    acc = next(e for e in doc["metrics"] if e["metric"] == "accuracy")
    print(json.dumps({"seconds": round(seconds, 2), "job_seconds": doc["seconds"], "cpu_seconds": round(cpu, 2),
                      **_peaks(),
                      "rows": doc["rows"]["n"], "accuracy": acc,
                      "sex_accuracy_gap": doc["groups"][0]["gaps"]["accuracy"],
                      "top_features": [f["feature"] for f in doc["importance"]["features"][:3]],
                      "importance_rows": doc["importance"]["rows"]}))


def child_naive(work: Path, resamples: int, measured: int) -> None:
    import time
    import warnings
    from functools import partial

    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.review import fairness, stats
    from modelyard.core.registry.review.heldout import load_heldout
    from modelyard.core.store import Store
    from sklearn import metrics as skm

    warnings.simplefilter("ignore")
    with Store.open(work / "store") as store:
        cand = registry.get_version(store, "bench@v2")
        held = load_heldout(store, cand.ref, cand.id, also=SENSITIVE)
        X = held.frame[held.features]
        y = held.frame["label"].to_numpy()
        models = {"candidate": registry.load_model(store, "bench@v2"), "champion": registry.load_model(store, "bench@v1")}
    preds = {k: np.asarray(mdl.predict(X)) for k, mdl in models.items()}
    probas = {k: mdl.predict_proba(X) for k, mdl in models.items()}
    n = len(y)
    overall = {"accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
               "precision_macro": partial(skm.precision_score, average="macro", zero_division=0),
               "recall_macro": partial(skm.recall_score, average="macro", zero_division=0),
               "f1_macro": partial(skm.f1_score, average="macro", zero_division=0)}
    group_fns = {**overall, "selection_rate": partial(selection_rate, pos_label="yes"),
                 "true_positive_rate": partial(true_positive_rate, pos_label="yes"),
                 "false_positive_rate": partial(false_positive_rate, pos_label="yes")}
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(measured):
        idx = rng.integers(0, n, n)
        for k in models:
            for fn in overall.values():
                fn(y[idx], preds[k][idx])
            skm.roc_auc_score(y[idx] == "yes", probas[k][idx, 1])
            skm.log_loss(y[idx], probas[k][idx], labels=["no", "yes"])
        for col in SENSITIVE:
            MetricFrame(metrics=group_fns, y_true=y[idx], y_pred=preds["candidate"][idx],
                        sensitive_features=held.frame[col].to_numpy()[idx])
    naive = time.perf_counter() - t0
    # ours on the same arrays: the vectorised bootstrap alone (all scorers), full resample count
    labels = ["no", "yes"]
    code = {v: i for i, v in enumerate(labels)}
    yc = np.array([code[v] for v in y])
    score = probas["candidate"][:, 1]
    order = np.argsort(score, kind="stable")
    scorers = {}
    for k in models:
        pc = np.array([code[v] for v in preds[k]])
        loss = -np.log(np.clip(probas[k][np.arange(n), yc], 1e-15, 1))
        scorers[k] = stats.ClassificationScorer(yc[order], pc[order], 3, 2, 1, score=probas[k][order, 1],
                                                loss=loss[order])
    pc = np.array([code[v] for v in preds["candidate"]])
    for col in SENSITIVE:
        g, names = fairness.encode_groups(held.frame[col], col)
        scorers[col] = stats.ClassificationScorer(yc[order], pc[order], 3, 2, 1, groups=g[order], n_groups=len(names))
    t0 = time.perf_counter()
    stats.run_bootstrap(scorers, n, resamples, 0)
    ours = time.perf_counter() - t0
    import resource

    print(json.dumps({"measured_resamples": measured, "seconds_measured": round(naive, 2),
                      "seconds_extrapolated": round(naive / measured * resamples, 1),
                      "ours_bootstrap_seconds": round(ours, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def _child(args: list[str]) -> dict:  # type: ignore[type-arg]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "app")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:3]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="held-out rows (the table has rows / 0.8)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-resamples", type=int, default=5, dest="naive")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (data, store)")
    parser.add_argument("--child", choices=("setup", "ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "setup":
        return child_setup(args.work)
    if args.child == "ours":
        return child_ours(args.work, args.resamples, args.repeats)
    if args.child == "naive":
        return child_naive(args.work, args.resamples, args.naive)

    tmp = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="modelyard-review-bench-")
        work = Path(tmp.name)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not (work / "store").exists():
            print("Generating the data, importing it and training two models (not timed)...", file=sys.stderr)
            pq.write_table(pa.Table.from_pandas(frame(round(args.rows / 0.8), 1), preserve_index=False),
                           work / "data.parquet")
            print(f"  {_child([__file__, '--child', 'setup', '--work', str(work)])}", file=sys.stderr)
        print("Running the evidence job...", file=sys.stderr)
        common = ["--work", str(work), "--resamples", str(args.resamples), "--repeats", str(args.repeats),
                  "--naive-resamples", str(args.naive)]
        ours = _child([__file__, "--child", "ours", *common])
        print("Running the naive bootstrap (extrapolated)...", file=sys.stderr)
        naive = _child([__file__, "--child", "naive", *common])
        out = {
            "rows": ours["rows"], "features": len(NUMERIC) + len(CATEGORICAL) + len(SENSITIVE),
            "resamples": args.resamples, "repeats": args.repeats, "sensitive": SENSITIVE,
            "ours": ours,
            "naive": {**naive, "what": (f"a Python loop of {args.naive} resamples (sklearn metrics for both models, "
                                        "fairlearn MetricFrame per sensitive column), extrapolated linearly to "
                                        f"{args.resamples}")},
            "bootstrap": {"ours_seconds": naive["ours_bootstrap_seconds"],
                          "naive_seconds_extrapolated": naive["seconds_extrapolated"],
                          "speedup": round(naive["seconds_extrapolated"] / naive["ours_bootstrap_seconds"], 1)},
            "targets": {"seconds": 30, "peak_rss_mb": 2048,
                        "met_wall": ours["seconds"] < 30 and ours["tree_peak_rss_mb"] < 2048,
                        "met_cpu": ours["cpu_seconds"] < 30 and ours["tree_peak_rss_mb"] < 2048},
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        }
        print(json.dumps(out, indent=1))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
