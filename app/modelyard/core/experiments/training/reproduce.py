"""Reproduce a recorded run: retrain it from its recorded spec and data, and compare.

::

    outcome = run_job(store, reproduce_spec(run_id))      # a child process, like training
    outcome.result == {"run_id", "new_run_id", "matches": bool,
                       "metrics": [{"key", "recorded", "reproduced", "equal", "abs_diff"}],
                       "differences": [{"fact", "recorded", "now"}], "summary": "..."}

The new run is recorded in the same experiment, tagged ``reproduces=<run id>`` (and
``reproduce_matches=true|false``), with the comparison as its ``reproduction.json`` artifact.
Metrics must be exactly equal (a model trained with a seed on the same data, split and
packages gives bit-identical results); ``fit_time_s`` is not compared.

Which data: the recorded spec names the dataset as the user did. ``churn@v3`` is that version
for ever; ``churn`` (or ``churn@latest``) means the dataset's latest version, so reproducing a
run after new data was imported trains on the new data — exactly what re-running the same spec
file from git would do — and the report says so: the "data hash" and "dataset version" facts
differ, which explains the metrics that moved. ``data="recorded"`` pins the version the run
actually used instead. Either way the data read is hashed again, so a snapshot file that was
changed on disk also shows as a "data hash" difference.

Facts compared (each reported only when it differs): ``data hash``, ``dataset version``,
``split``, ``python``, every recorded package (``scikit-learn``, ``numpy``...), ``modelyard``,
``platform``, ``threads``, ``git commit``. When the metrics differ but no fact does, the summary
says the training is not deterministic.

Trials of a search have no spec of their own: reproduce the search (their parent) instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.experiments.tracking.queries import run_artifact_json
from modelyard.core.experiments.training.spec import TrainSpec, reproduce_spec_job
from modelyard.core.jobs.runner import JobContext, JobSpec

__all__ = ["reproduce", "reproduce_spec", "compare_facts", "compare_metrics"]


def reproduce_spec(run_id: str, *, data: str = "spec", source: str = "api", cwd: str | None = None) -> JobSpec:
    """The job that reproduces ``run_id`` (``process=True``). ``data``: "spec" or "recorded"."""
    return reproduce_spec_job(run_id, data=data, source=source, cwd=cwd)


def compare_metrics(recorded: Mapping[str, float], reproduced: Mapping[str, float]) -> list[dict[str, Any]]:
    """Metric by metric: exactly equal or not (NaN equals NaN), with the absolute difference."""
    from modelyard.core.experiments.training.metrics import NONDETERMINISTIC_METRICS

    out = []
    for key in sorted(recorded):
        if key in NONDETERMINISTIC_METRICS:
            continue
        a = recorded[key]
        b = reproduced.get(key)
        if b is None:
            out.append({"key": key, "recorded": a, "reproduced": None, "equal": False, "abs_diff": None})
            continue
        both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        equal = both_nan or a == b
        diff = None if both_nan else abs(float(a) - float(b))
        out.append({"key": key, "recorded": a, "reproduced": b, "equal": bool(equal),
                    "abs_diff": diff if diff is None or math.isfinite(diff) else None})
    return out


def _split_fact(rec: Mapping[str, Any] | None) -> str | None:
    if not rec:
        return None
    counts = rec.get("counts") or {}
    shown = ", ".join(f"{k} {counts[k]}" for k in ("train", "validation", "test") if k in counts)
    return f"{rec.get('name')} ({shown})" if shown else str(rec.get("name"))


def compare_facts(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recorded facts (reproducibility records) that differ: ``[{"fact", "recorded", "now"}]``."""
    out: list[dict[str, Any]] = []

    def add(fact: str, a: Any, b: Any) -> None:
        if a != b:
            out.append({"fact": fact, "recorded": a, "now": b})

    rd, nd = recorded.get("dataset") or {}, now.get("dataset") or {}
    add("data hash", rd.get("data_hash") or rd.get("content_hash"), nd.get("data_hash") or nd.get("content_hash"))
    add("dataset version", rd.get("ref"), nd.get("ref"))
    add("split", _split_fact(recorded.get("split")), _split_fact(now.get("split")))
    add("python", recorded.get("python"), now.get("python"))
    rp, np_ = recorded.get("packages") or {}, now.get("packages") or {}
    for name in sorted(set(rp) | set(np_)):
        add(name, rp.get(name), np_.get(name))
    add("modelyard", recorded.get("modelyard"), now.get("modelyard"))
    add("platform", recorded.get("platform"), now.get("platform"))
    add("threads", recorded.get("threads"), now.get("threads"))
    rg, ng = recorded.get("git") or {}, now.get("git") or {}
    add("git commit", rg.get("commit"), ng.get("commit"))
    return out


def _describe(matches: bool, metrics: list[dict[str, Any]], differences: list[dict[str, Any]]) -> str:
    n = len(metrics)
    if matches:
        return f"Reproduced: all {n} metrics are identical."
    bad = [m["key"] for m in metrics if not m["equal"]]
    head = f"Not reproduced: {len(bad)} of {n} metrics differ ({', '.join(bad[:6])}{', ...' if len(bad) > 6 else ''})."
    if differences:
        facts = "; ".join(f"{d['fact']}: recorded {_short(d['recorded'])}, now {_short(d['now'])}"
                          for d in differences[:6])
        return f"{head} What differs: {facts}."
    return f"{head} No recorded fact differs: the training is not deterministic (a model without a seed?)."


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def reproduce(ctx: JobContext, *, run_id: str, data: str = "spec", source: str = "api",
              cwd: str | None = None) -> dict[str, Any]:
    """Job: retrain ``run_id`` from its recorded spec into a new run and compare (module docstring)."""
    from modelyard.core.datasets.service import get_version
    from modelyard.core.experiments import tracking
    from modelyard.core.experiments.training.recording import clean
    from modelyard.core.experiments.training.train import run_training

    store = ctx.store
    ctx.progress(0.0, f"Reading run {run_id[:12]}")
    info = tracking.get_run(run_id, store=store)
    spec = info.spec
    if not spec or "model" not in spec:
        if info.parent_id is not None and "search_trial" in info.tags:
            raise ModelyardError(f"Run {info.id[:12]} is trial {info.tags['search_trial']} of the search "
                                 f"{info.parent_id[:12]}; a trial is not reproduced on its own.",
                                 hint=f"Reproduce the search: modelyard run reproduce {info.parent_id[:12]}.")
        raise ModelyardError(f"Run {info.id[:12]} has no training spec: it was not trained by Modelyard's trainer "
                             "(perhaps logged from a script), so it cannot be retrained.")
    if info.status == "running":
        raise ModelyardError(f"Run {info.id[:12]} is still running; reproduce it once it has finished.")
    recorded = run_artifact_json(store, info, "reproducibility.json") or {}
    ts = TrainSpec.from_json(spec)
    extra: list[dict[str, Any]] = []
    if data == "recorded" or not ts.dataset:
        v = get_version(store, int(ts.dataset_version_id or 0))
        ts.dataset = v.ref
    else:
        try:
            get_version(store, ts.dataset)
        except NotFoundError as exc:
            if ts.dataset_version_id is None:
                raise
            v = get_version(store, int(ts.dataset_version_id))
            extra.append({"fact": "dataset", "recorded": ts.dataset, "now": f"not found ({exc.message}); "
                          f"used the recorded version {v.ref}"})
            ts.dataset = v.ref
    # the same seed, split parameters, params and preprocessing; a new run that says what it is
    ts.source = source
    ts.cwd = cwd or ts.cwd
    ts.experiment = info.experiment
    ts.run_name = f"reproduce {info.name or info.id[:8]}"
    ts.tags = {**ts.tags, "reproduces": info.id}
    ts.dataset_version_id = None
    ts.content_hash = None
    box: dict[str, Any] = {}

    def compare(run: Any) -> None:  # inside the new run, before it ends: record the verdict on it
        new = run.info
        now = run_artifact_json(store, new, "reproducibility.json") or {}
        metrics = compare_metrics(info.metrics, new.metrics)
        differences = extra + compare_facts(recorded, now)
        matches = bool(metrics) and all(m["equal"] for m in metrics)
        summary = _describe(matches, metrics, differences)
        box["report"] = clean({"run_id": info.id, "new_run_id": run.id, "matches": matches, "metrics": metrics,
                               "differences": differences, "summary": summary, "data": data})
        run.set_tag("reproduce_matches", "true" if matches else "false")
        run.log_bytes(json.dumps(box["report"], indent=1, allow_nan=False).encode(), "reproduction.json",
                      kind="reproduction", media_type="application/json")

    run_training(ctx, ts, progress=ctx.sub(0.02, 0.97), before_end=compare)
    report = box["report"]
    ctx.log(report["summary"])
    ctx.progress(1.0, "Reproduced" if report["matches"] else "Not reproduced")
    return report
