"""The training job: one spec in, one tracked run (or a search: a parent and one child per trial) out.

Run it in a child process, so the window never waits on scikit-learn and a cancel kills it at
once::

    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    job = train_spec_job(TrainSpec(dataset="iris@v1", model="random_forest", cv=5, source="gui"))
    outcome = run_job(store, job, reporter=..., cancel_event=...)       # or the GUI's JobRunner
    # or all of it: train_and_wait(store, spec)

After a cancel or a crash the runner ends the runs the killed child left running: the training
kinds declare :func:`end_runs_of_job` as their clean-up (core/jobs/kinds.py).

The job (:func:`train`) loads the dataset version and its split (creating the split when the
spec gives its parameters), drops rows whose target is missing, builds the pipeline
(preprocessing from the schema, then the estimator), starts a run (``Run.job_id`` = the job, so
the caller finds it; its id is also the job's first log line), and records:

Params: ``model``, ``task``, ``dataset`` (NAME@vN), ``target``, ``split`` (its name), ``seed``,
``cv``, ``n_train``, ``n_validation``, ``n_test``, ``n_features``, the estimator's form
parameters by name (``n_estimators``, ``C``...), and for a search ``search``,
``search_trials``, ``search_metric``.

Metrics (the latest value of each is what run lists show):

* on the test rows: classification ``accuracy``, ``balanced_accuracy``, ``precision_macro``,
  ``recall_macro``, ``f1_macro``, ``roc_auc`` (binary, or one-vs-rest macro; from probabilities,
  else from the decision function), ``log_loss`` (only with probabilities); regression ``rmse``,
  ``mae``, ``r2``, ``mape``;
* on the validation rows (when the split has them): the same with a ``val_`` prefix;
* cross-validation: ``cv_<metric>`` as a series with step = fold (0-based), and
  ``cv_<metric>_mean``, ``cv_<metric>_std``;
* series: ``staged_<primary>`` (test score after each boosting iteration, step = iteration,
  histogram gradient boosting), ``train_score`` / ``validation_score`` (scikit-learn's own
  scores per iteration when early stopping ran, step = iteration), ``learning_curve_<primary>``
  (test score of the model refit on a growing share of the training rows, step = rows; other
  models, when the training part has at most 20,000 rows or the spec asks with ``curves``);
  ``<primary>`` is ``accuracy`` for classification and ``rmse`` for regression;
* ``slice_gap_<column>``: best minus worst group score of each slice column;
* a search's parent: ``best_score``; each trial (child run): ``score`` and its ``cv_*`` or
  ``val_*`` metrics;
* ``fit_time_s``: seconds the final fit took (not compared by reproduce).

Tags: ``git_commit`` (when the caller's folder is a git checkout), the spec's tags, and
``search_trial`` = N on a trial (and ``search_worker``, the Dask worker(s) that fitted it, when the
search ran on a cluster).

Where a search's trials and the cross-validation folds run (here, or as tasks on a Dask cluster)
is the job's ``cluster`` parameter, not part of the spec; see :mod:`.engine` and docs/scale.md.
The results are the same either way. A trial's child run is recorded when the trial finishes.

Artifacts (JSON unless said; ``label`` values are the target's values as JSON):

``model/model.joblib`` (kind ``model``)
    The fitted ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``; input:
    a DataFrame with the feature columns. ``model/input_example.json`` is tracking's example.
``model/signature.json`` (kind ``signature``)
    ``{"inputs": [{"name", "dtype", "type", "step"}], "target": {"name", "dtype", "task",
    "classes": [label] | null}, "output": {"kind": "label" | "number", "proba": bool},
    "example": {"columns": [name], "rows": [[value]]}}`` (5 training rows; dates ISO text).
``preprocessing.json`` (kind ``preprocessing``)
    The plan of :func:`~modelyard.core.experiments.training.preprocess.describe_preprocessing`.
``evaluation/confusion_matrix.json`` (classification, kind ``confusion_matrix``)
    ``{"labels": [label], "matrix": [[count]], "normalized": [[share]], "n": rows}``; rows are
    the true label, columns the predicted one; ``normalized`` divides each row by its total.
``evaluation/roc_curve.json`` (classification, kind ``roc_curve``)
    ``{"kind": "binary" | "one_vs_rest", "score": "probability" | "decision_function",
    "curves": [{"label", "fpr": [..], "tpr": [..], "thresholds": [..], "auc"}], "auc_macro"}``;
    one curve (the positive class, the second label) for binary targets, one per class
    otherwise; at most 200 points each; a threshold that is not finite is null.
``evaluation/pr_curve.json`` (classification, kind ``pr_curve``)
    ``{"kind", "score", "curves": [{"label", "precision": [..], "recall": [..],
    "thresholds": [..], "average_precision", "prevalence"}]}``, at most 200 points each.
``evaluation/residuals.json`` (regression, kind ``residuals``)
    ``{"n": rows, "shown": k, "points": {"actual": [..], "predicted": [..], "residual": [..]},
    "histogram": {"edges": [..], "counts": [..]}, "summary": {"mean", "std", "min", "max"}}``;
    residual = actual - predicted; at most 2,000 points (a seeded sample), the histogram of all.
``evaluation/permutation_importance.json`` (kind ``feature_importance``)
    ``{"metric", "greater_is_better", "baseline", "n_repeats": 5, "n_rows", "features":
    [{"name", "mean", "std"}]}``, most important first; importance = how much the test
    ``metric`` worsens when the column's values are shuffled (at most 5,000 test rows).
``evaluation/slices.json`` (kind ``slices``, when the spec names slice columns)
    ``{"metric", "greater_is_better", "columns": [{"column", "groups": [{"value", "n",
    "metrics": {..}}], "best": {"value", "score"}, "worst": {"value", "score"}, "gap"}]}``;
    groups are the column's values (missing as "(missing)"; numbers with many values as
    quartile ranges; beyond 20 groups the rest as "(other)"), each scored on its test rows.
``reproducibility.json`` (kind ``reproducibility``)
    ``{"dataset": {"requested", "ref", "name", "version", "dataset_version_id", "content_hash",
    "data_hash", "n_rows"}, "split": {"id", "name", "method", "seed", "test", "validation",
    "column", "counts"}, "seed", "target", "task", "features", "spec", "python",
    "python_implementation", "platform", "system", "machine", "packages": {name: version},
    "modelyard", "threads", "git": {"commit", "dirty", "root"} | null}``; ``data_hash`` is the
    hash of the data actually read (equal to ``content_hash`` unless the snapshot was altered).
``search/trials.json`` (a search's parent, kind ``search``)
    ``{"method", "metric", "greater_is_better", "evaluation": "cv" | "validation" | "holdout",
    "space", "trials": [{"trial", "run_id", "params", "score", "status", "error"}],
    "best": {"trial", "run_id", "params", "score"}}``.

The job's result: ``{"run_id", "experiment", "model", "task", "dataset", "dataset_version_id",
"split_id", "target", "metrics": {test metrics}, "validation": {..} | null, "cv": {metric: mean}
| null, "search": {"method", "metric", "best": {..}, "trials": [..]} | null, "n_train",
"n_test", "duration_s"}``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.core.experiments.training.data import _target_values, load_data  # noqa: F401 - monitoring imports _target_values here
from modelyard.core.experiments.training.engine import EngineStart, choose_cluster
from modelyard.core.experiments.training.evaluation import (
    EXAMPLE_ROWS,
    LEARNING_CURVE_MAX_ROWS,
    _confusion,
    _curves,
    _importance,
    _learning_curve,
    _residuals,
    _signature,
    _slices,
    _staged_series,
)
from modelyard.core.experiments.training.fitting import (
    _cross_validate,
    _log_cv,
    _pipeline,
    _run_search,
    run_name,
)
from modelyard.core.experiments.training.metrics import (  # noqa: F401 - re-exported: the public names of training
    CLASSIFICATION_METRICS,
    GREATER_IS_BETTER,
    NONDETERMINISTIC_METRICS,
    PRIMARY_METRIC,
    REGRESSION_METRICS,
    _evaluate,
    _quiet,
    _score_matrix,
    _scores,
    compute_metrics,
)
from modelyard.core.experiments.training.recording import (
    _json_bytes,
    _warnings_to_log,
    clean,
    environment,
    threads_to_use,
)
from modelyard.core.experiments.training.spec import (
    TrainSpec,
    train_spec_job,
)
from modelyard.core.experiments.training.trials import fit
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext, JobOutcome, Reporter, run_job
from modelyard.core.store import Store

__all__ = [
    "train", "run_training", "train_and_wait", "mark_runs_of_job_cancelled", "end_runs_of_job", "runs_of_job",
    "environment", "compute_metrics", "CLASSIFICATION_METRICS", "REGRESSION_METRICS", "GREATER_IS_BETTER",
    "PRIMARY_METRIC", "NONDETERMINISTIC_METRICS", "train_spec_job",
]


# =========================================================================== runs of a job


def runs_of_job(store: Store, job_id: int) -> list[dict[str, Any]]:
    """The runs a job recorded: ``[{"run_id", "status", "parent_id"}]``, oldest first."""
    from sqlalchemy import select

    from modelyard.core.store import models as m

    with store.session() as s:
        rows = s.execute(select(m.Run.id, m.Run.uuid, m.Run.status, m.Run.parent_run_id)
                         .where(m.Run.job_id == job_id).order_by(m.Run.id)).all()
    uuids = {pk: uuid for pk, uuid, _, _ in rows}
    return [{"run_id": uuid, "status": status, "parent_id": uuids.get(parent)} for _, uuid, status, parent in rows]


def end_runs_of_job(store: Store, job_id: int, status: str, error: str | None = None) -> list[str]:
    """Record the runs of ``job_id`` that are still running (or were marked interrupted) as
    ``status``; returns their ids. For a job whose process was killed, which could not."""
    from sqlalchemy import select, update

    from modelyard.core.store import models as m

    now = m.utcnow()
    with store.write() as s:
        rows = s.execute(select(m.Run.id, m.Run.uuid).where(
            m.Run.job_id == job_id, m.Run.status.in_(("running", "interrupted")))).all()
        if rows:
            s.execute(update(m.Run).where(m.Run.id.in_([pk for pk, _ in rows]))
                      .values(status=status, end_time=now, heartbeat_at=now, error=error))
    return [uuid for _, uuid in rows]


def mark_runs_of_job_cancelled(store: Store, job_id: int) -> list[str]:
    """Record the runs a cancelled training job left running as ``cancelled`` (their ids).

    The runner already does this after a training job is cancelled (the kind's clean-up, see
    core/jobs/kinds.py); a second call finds nothing left running.
    """
    return end_runs_of_job(store, job_id, "cancelled", "Cancelled by the user.")


def train_and_wait(store: Store, spec: TrainSpec | Mapping[str, Any], *, reporter: Reporter | None = None,
                   cancel_event: threading.Event | None = None, cluster: str | None = None) -> JobOutcome:
    """Train ``spec`` in a child process now (in this thread); the runner tidies up its runs
    after a cancel or a crash. Returns the job's outcome (``outcome.result["run_id"]``...).
    ``cluster``: where a search's fits run (see :func:`~.spec.train_spec_job`)."""
    return run_job(store, train_spec_job(spec, cluster=cluster), reporter=reporter, cancel_event=cancel_event)


# =========================================================================== the job


def train(ctx: JobContext, *, spec: Mapping[str, Any], cluster: str | None = None) -> dict[str, Any]:
    """Job: train the model ``spec`` describes and record it as a run (see the module docstring);
    ``cluster`` says where a search's trials and the folds run (:mod:`.engine`)."""
    return run_training(ctx, TrainSpec.from_json(spec), cluster=cluster)


def run_training(ctx: JobContext, ts: TrainSpec, *, progress: ProgressSlice | None = None,
                 before_end: Callable[[Any], None] | None = None, cluster: str | None = None) -> dict[str, Any]:
    """Train and record (the body of :func:`train`; :mod:`.reproduce` calls it too).

    ``before_end(run)`` is called with the :class:`~modelyard.core.experiments.tracking.ActiveRun` when
    everything is recorded, before the run ends (to add more to it). ``cluster``: where the fits
    of a search or a cross-validation run (``serial``, ``local``, an address; default: the
    environment's ``MODELYARD_CLUSTER``, the store's preference, else ``auto``; see :mod:`.engine`).
    """
    from threadpoolctl import threadpool_limits

    progress = progress or ctx.sub(0.0, 1.0)
    t0 = time.monotonic()
    with threadpool_limits(limits=threads_to_use()):
        return _run(ctx, ts, progress, t0, before_end, cluster)


def _run(ctx: JobContext, ts: TrainSpec, progress: ProgressSlice, t0: float,
         before_end: Callable[[Any], None] | None, cluster_given: str | None) -> dict[str, Any]:
    from modelyard.core.experiments import tracking
    from modelyard.core.experiments.training import catalogue

    given_by = "the Train dialog's Runs on" if ts.source == "gui" else "--cluster"  # named in its messages
    cluster = choose_cluster(ctx.store, cluster_given, given_by=given_by) if (ts.search or ts.cv >= 2) else None
    # a cluster comes up while the data loads: at once when named, else (auto) once the split
    # says how many training rows there are
    fits = contextlib.ExitStack()
    starts: list[EngineStart] = []

    def start(n_rows: int) -> None:
        if cluster is not None and not starts:
            starts.append(EngineStart(cluster, n_rows=n_rows, n_jobs=threads_to_use(), model=ts.model))
            fits.callback(starts[0].close)

    try:
        if cluster is not None and cluster.kind != "auto":
            start(0)
        d, rs, plan = load_data(ctx, ts, progress.sub(0.0, 0.08), on_split=start)
        task = d.task
        env = environment(rs.cwd)
        tags = dict(rs.tags)
        if env["git"]:
            tags["git_commit"] = env["git"]["commit"]
        # the cluster first: a scheduler that cannot be reached fails the job before any run is recorded
        engine = starts[0].wait(ctx.check_cancelled, ctx.log) if starts else None
    except BaseException:
        fits.close()
        raise
    if rs.search and rs.search["method"] == "optuna" and not rs.search.get("parallel"):
        # the trials in flight decide what Optuna samples: recorded, so a reproduction asks the same
        rs.search["parallel"] = max(1, engine.workers) if engine is not None else 1
    try:
        run = tracking.start_run(rs.experiment or d.version.name, name=run_name(rs), tags=tags, store=ctx.store,
                                 source=rs.source, dataset_version_id=d.version.id, split_id=d.split.id,
                                 job_id=ctx.job_id, spec=rs.to_json())
    except BaseException:
        fits.close()
        raise
    ctx.log(f"Run {run.id} started in experiment '{run.experiment}'.")
    with fits, run:
        X_train, y_train = d.X(d.train), d.Y(d.train)
        X_test, y_test = d.X(d.test), d.Y(d.test)
        meta: dict[str, Any] = {"model": rs.model, "task": task, "dataset": d.version.ref, "target": d.target,
                                "split": d.split.name, "seed": rs.seed, "cv": rs.cv, "n_train": len(d.train),
                                "n_validation": len(d.validation), "n_test": len(d.test),
                                "n_features": len(d.features)}
        params = dict(rs.params)
        search_summary = None
        cv_means = None
        if rs.search:
            meta.update(search=rs.search["method"], search_trials=rs.search.get("trials") or (
                            "all" if rs.search["method"] == "grid" else "until the time budget"),
                        search_metric=rs.search.get("metric") or PRIMARY_METRIC[task])
            if rs.search["method"] == "optuna":
                meta.update(search_timeout_s=rs.search.get("timeout") or "none", search_pruning=rs.search["pruning"],
                            search_parallel=rs.search["parallel"])
        run.log_params(meta)
        if rs.search:
            search_summary = _run_search(ctx, run, rs, d, plan, progress.sub(0.08, 0.62), engine)
            fits.close()  # the cluster's workers are not needed for the final fit
            params = {**params, **search_summary["best"]["params"]}
            best = next(t for t in search_summary["trials"] if t["trial"] == search_summary["best"]["trial"])
            if best.get("folds"):
                cv_means = _log_cv(run, best["folds"])
            run.log_metric("best_score", search_summary["best"]["score"])
            run.set_tag("best_trial_run_id", search_summary["best"]["run_id"])
            run.log_bytes(_json_bytes({k: v for k, v in search_summary.items()}
                                      | {"trials": [{k: v for k, v in t.items() if k != "folds"}
                                                    for t in search_summary["trials"]]}),
                          "search/trials.json", kind="search", media_type="application/json")
        elif rs.cv >= 2:
            with _warnings_to_log(ctx):
                folds = _cross_validate(ctx, rs, d, plan, params, X_train, y_train, progress.sub(0.08, 0.62),
                                        "Cross-validation: ", engine)
            fits.close()
            cv_means = _log_cv(run, folds)
        model = _pipeline(rs, d, plan, params)
        run.log_params(catalogue.form_params(rs.model, task, model[-1]))
        # how long a fit takes is unknown: the bar shows "busy" (None), not a fraction that sits still
        progress.sub(0.62, 0.72)(None, f"Fitting {type(model[-1]).__name__} on {len(d.train):,} rows")
        t_fit = time.monotonic()
        with _warnings_to_log(ctx):
            fit(model, X_train, y_train, type(model[-1]).__name__)
        fit_s = time.monotonic() - t_fit
        run.log_metric("fit_time_s", fit_s)
        ctx.log(f"Fitted in {fit_s:.2f} s.")
        ev = progress.sub(0.72, 0.98)
        ev(0.0, f"Evaluating on {len(d.test):,} test rows")
        classes = getattr(model, "classes_", None)
        pred = model.predict(X_test)
        proba = decision = None
        if task == "classification":
            proba, decision = _scores(model, X_test)
        test_metrics = compute_metrics(task, y_test, pred, proba=proba, decision=decision, classes=classes)
        run.log_metrics(test_metrics)
        val_metrics = None
        if len(d.validation):
            val_metrics = _evaluate(model, d.X(d.validation), d.Y(d.validation), task, classes)
            run.log_metrics({f"val_{k}": v for k, v in val_metrics.items()})
        # curves and series
        primary = PRIMARY_METRIC[task]
        with _quiet():
            if hasattr(model[-1], "staged_predict") and hasattr(model[-1], "n_iter_"):
                ev(0.1, "Scores per boosting iteration")
                _staged_series(run, model, X_test, y_test, task)
            elif rs.curves or (rs.curves is None and len(d.train) <= LEARNING_CURVE_MAX_ROWS):
                _learning_curve(run, rs, d, plan, params, X_train, y_train, X_test, y_test,
                                test_metrics.get(primary, float("nan")), ev.sub(0.1, 0.4))
        ev(0.4, "Evaluation plots")
        if task == "classification":
            run.log_bytes(_json_bytes(_confusion(y_test, pred, classes)), "evaluation/confusion_matrix.json",
                          kind="confusion_matrix", media_type="application/json")
            scores, kind = _score_matrix(proba, decision, len(classes))
            if scores is not None:
                roc, pr = _curves(y_test, scores, kind, classes)
                run.log_bytes(_json_bytes(roc), "evaluation/roc_curve.json", kind="roc_curve",
                              media_type="application/json")
                run.log_bytes(_json_bytes(pr), "evaluation/pr_curve.json", kind="pr_curve",
                              media_type="application/json")
        else:
            run.log_bytes(_json_bytes(_residuals(y_test, pred, rs.seed)), "evaluation/residuals.json",
                          kind="residuals", media_type="application/json")
        with _quiet():
            importance = _importance(model, X_test, y_test, task, rs.seed, ev.sub(0.45, 0.85))
        run.log_bytes(_json_bytes(importance), "evaluation/permutation_importance.json", kind="feature_importance",
                      media_type="application/json")
        if rs.slice_columns:
            ev(0.86, "Metrics per slice")
            slices = _slices(d, rs.slice_columns, y_test, pred, classes)
            run.log_bytes(_json_bytes(slices), "evaluation/slices.json", kind="slices", media_type="application/json")
            run.log_metrics({f"slice_gap_{c['column']}": c["gap"] for c in slices["columns"] if c["gap"] is not None})
        ev(0.9, "Saving the model")
        record = {
            "dataset": {"requested": rs.dataset, "ref": d.version.ref, "name": d.version.name,
                        "version": d.version.version, "dataset_version_id": d.version.id,
                        "content_hash": d.version.content_hash, "data_hash": d.data_hash, "n_rows": d.version.n_rows,
                        "dropped_missing_target": d.dropped},
            "split": {"id": d.split.id, "name": d.split.name, "method": d.split.method, "seed": d.split.seed,
                      "test": d.split.spec.get("test"), "validation": d.split.spec.get("validation"),
                      "column": d.split.spec.get("column"), "counts": d.split.counts},
            "seed": rs.seed, "target": d.target, "task": task, "features": d.features, "spec": rs.to_json(), **env}
        run.log_bytes(_json_bytes(record), "reproducibility.json", kind="reproducibility",
                      media_type="application/json")
        run.log_bytes(_json_bytes(plan), "preprocessing.json", kind="preprocessing", media_type="application/json")
        run.log_bytes(_json_bytes(_signature(d, plan, model, X_train)), "model/signature.json", kind="signature",
                      media_type="application/json")
        run.log_model(model, input_example=X_train.head(EXAMPLE_ROWS))
        if before_end is not None:
            before_end(run)
        ev(1.0, "Done")
    duration = time.monotonic() - t0
    summary = _summary_line(task, test_metrics)
    ctx.log(f"Run {run.id}: {summary}.")
    return clean({
        "run_id": run.id, "experiment": run.experiment, "model": rs.model, "task": task, "dataset": d.version.ref,
        "dataset_version_id": d.version.id, "split_id": d.split.id, "target": d.target, "metrics": test_metrics,
        "validation": val_metrics, "cv": cv_means,
        "search": None if search_summary is None else {
            "method": search_summary["method"], "metric": search_summary["metric"], "best": search_summary["best"],
            "evaluation": search_summary["evaluation"],
            "trials": [{k: v for k, v in t.items() if k != "folds"} for t in search_summary["trials"]]},
        "n_train": len(d.train), "n_test": len(d.test), "duration_s": round(duration, 3)})


def _summary_line(task: str, metrics: Mapping[str, float]) -> str:
    keys = ("accuracy", "f1_macro", "roc_auc") if task == "classification" else ("rmse", "mae", "r2")
    return ", ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics) or "no test metrics"

