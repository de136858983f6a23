"""The training job: one spec in, one tracked run (or a search: a parent and one child per trial) out.

Run it in a child process, so the window never waits on scikit-learn and a cancel kills it at
once::

    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    job = train_spec_job(TrainSpec(dataset="iris@v1", model="random_forest", cv=5, source="gui"))
    outcome = run_job(store, job, reporter=..., cancel_event=...)       # or the GUI's JobRunner
    if outcome.status == "cancelled":
        mark_runs_of_job_cancelled(store, outcome.job_id)               # the killed child could not
    # or all of it: train_and_wait(store, spec)

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
``search_trial`` = N on a trial.

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
import json
import math
import os
import platform
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.experiments.training.spec import (
    DEFAULT_TEST_SHARE,
    TrainSpec,
    train_spec_job,
)
from modelyard.core.jobs.runner import JobContext, JobOutcome, Reporter, run_job
from modelyard.core.store import Store

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "train", "run_training", "train_and_wait", "mark_runs_of_job_cancelled", "end_runs_of_job", "runs_of_job",
    "environment", "compute_metrics", "CLASSIFICATION_METRICS", "REGRESSION_METRICS", "GREATER_IS_BETTER",
    "PRIMARY_METRIC", "NONDETERMINISTIC_METRICS", "train_spec_job",
]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                          "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
GREATER_IS_BETTER = {"accuracy": True, "balanced_accuracy": True, "precision_macro": True, "recall_macro": True,
                     "f1_macro": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False, "r2": True,
                     "mape": False}
PRIMARY_METRIC = {"classification": "accuracy", "regression": "rmse"}
NONDETERMINISTIC_METRICS = frozenset({"fit_time_s"})
PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "pyarrow", "threadpoolctl")

CURVE_POINTS = 200
RESIDUAL_POINTS = 2_000
RESIDUAL_BINS = 30
IMPORTANCE_ROWS = 5_000
IMPORTANCE_REPEATS = 5
LEARNING_CURVE_MAX_ROWS = 20_000
LEARNING_CURVE_SHARES = (0.1, 0.25, 0.5, 0.75)
MAX_SERIES_POINTS = 1_000
SLICE_MAX_GROUPS = 20
SLICE_NUMERIC_BINS = 4
HOLDOUT_SHARE = 0.2
GRID_POINTS = 3
MAX_GRID = 500
EXAMPLE_ROWS = 5


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

    Call it when ``run_job`` reports a training job cancelled: the child process was killed, so
    it could not end its runs itself (otherwise the next opening of the store would mark them
    ``interrupted``). :func:`train_and_wait` and ``modelyard train`` call it; so must the GUI.
    """
    return end_runs_of_job(store, job_id, "cancelled", "Cancelled by the user.")


def train_and_wait(store: Store, spec: TrainSpec | Mapping[str, Any], *, reporter: Reporter | None = None,
                   cancel_event: threading.Event | None = None) -> JobOutcome:
    """Train ``spec`` in a child process now (in this thread), and tidy up its runs after a
    cancel or a crash. Returns the job's outcome (``outcome.result["run_id"]``...)."""
    outcome = run_job(store, train_spec_job(spec), reporter=reporter, cancel_event=cancel_event)
    if outcome.status == "cancelled":
        mark_runs_of_job_cancelled(store, outcome.job_id)
    elif outcome.status == "failed":
        end_runs_of_job(store, outcome.job_id, "failed", outcome.error)
    return outcome


# =========================================================================== facts


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_facts(cwd: str | None) -> dict[str, Any] | None:
    """The git commit (and whether the tree has changes) of the folder ``cwd``, or None."""
    if not cwd or not os.path.isdir(cwd):
        return None

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, timeout=10,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None,
            "root": git("rev-parse", "--show-toplevel")}


def threads_to_use() -> int:
    """Cores a training job may use: all but one (the window keeps one)."""
    return max(1, (os.cpu_count() or 2) - 1)


def environment(cwd: str | None = None) -> dict[str, Any]:
    """Python, platform, package versions and git commit: the facts a result may depend on."""
    from modelyard._version import __version__

    return {"python": platform.python_version(), "python_implementation": platform.python_implementation(),
            "platform": platform.platform(), "system": platform.system(), "machine": platform.machine(),
            "packages": _package_versions(), "modelyard": __version__, "threads": threads_to_use(),
            "git": git_facts(cwd)}


# =========================================================================== JSON


def clean(value: Any) -> Any:
    """JSON-able plain values: numpy scalars and arrays to Python, NaN and infinities to None."""
    import numpy as np

    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return clean(value.item())
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except (TypeError, ValueError):
            pass
    return str(value)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(clean(obj), indent=1, allow_nan=False).encode()


# =========================================================================== metrics


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _scores(model: Any, X: Any) -> tuple[Any, Any]:
    """(probabilities or None, decision function or None) of a fitted classifier."""
    proba = decision = None
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(X)
        except (AttributeError, NotImplementedError, ValueError):
            proba = None
    if proba is None and hasattr(model, "decision_function"):
        try:
            decision = model.decision_function(X)
        except (AttributeError, NotImplementedError, ValueError):
            decision = None
    return proba, decision


def _score_matrix(proba: Any, decision: Any, n_classes: int) -> tuple[Any, str] | tuple[None, None]:
    import numpy as np

    if proba is not None:
        return np.asarray(proba, dtype=float), "probability"
    if decision is not None:
        d = np.asarray(decision, dtype=float)
        if d.ndim == 1 and n_classes == 2:
            return np.column_stack([-d, d]), "decision_function"
        if d.ndim == 2 and d.shape[1] == n_classes:
            return d, "decision_function"
    return None, None


def _ovr_aucs(y_true: Any, scores: Any, classes: Any) -> dict[int, float]:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    out: dict[int, float] = {}
    if len(classes) == 2:
        pos = np.asarray(y_true) == classes[1]
        if 0 < pos.sum() < len(pos):
            out[1] = float(roc_auc_score(pos, scores[:, 1]))
        return out
    for k, c in enumerate(classes):
        pos = np.asarray(y_true) == c
        if 0 < pos.sum() < len(pos):
            out[k] = float(roc_auc_score(pos, scores[:, k]))
    return out


def compute_metrics(task: str, y_true: Any, y_pred: Any, *, proba: Any = None, decision: Any = None,
                    classes: Any = None) -> dict[str, float]:
    """The metrics of one set of predictions (those that are defined for it)."""
    import numpy as np
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    n = len(y_true)
    if n == 0:
        return out
    with _quiet():
        if task == "classification":
            out["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
            out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred))
            labels = list(classes) if classes is not None else None
            out["precision_macro"] = float(skm.precision_score(y_true, y_pred, average="macro", zero_division=0,
                                                               labels=labels))
            out["recall_macro"] = float(skm.recall_score(y_true, y_pred, average="macro", zero_division=0,
                                                         labels=labels))
            out["f1_macro"] = float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0, labels=labels))
            if classes is not None:
                scores, _ = _score_matrix(proba, decision, len(classes))
                if scores is not None:
                    aucs = _ovr_aucs(y_true, scores, classes)
                    if aucs:
                        out["roc_auc"] = float(np.mean(list(aucs.values())))
                if proba is not None:
                    try:
                        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
                    except ValueError:
                        pass
        else:
            yt = np.asarray(y_true, dtype=float)
            yp = np.asarray(y_pred, dtype=float)
            out["rmse"] = float(np.sqrt(np.mean((yt - yp) ** 2)))
            out["mae"] = float(np.mean(np.abs(yt - yp)))
            if n >= 2:
                out["r2"] = float(skm.r2_score(yt, yp))
            out["mape"] = float(skm.mean_absolute_percentage_error(yt, yp))
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _evaluate(model: Any, X: Any, y: Any, task: str, classes: Any) -> dict[str, float]:
    pred = model.predict(X)
    proba = decision = None
    if task == "classification":
        proba, decision = _scores(model, X)
    return compute_metrics(task, y, pred, proba=proba, decision=decision, classes=classes)


def _primary_score(task: str, metric: str, y: Any, pred: Any) -> float:
    import numpy as np

    if len(y) == 0:
        return float("nan")
    if metric == "accuracy":
        return float(np.mean(np.asarray(y) == np.asarray(pred)))
    if metric == "rmse":
        diff = np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)
        return float(np.sqrt(np.mean(diff ** 2)))
    return compute_metrics(task, y, pred).get(metric, float("nan"))


# =========================================================================== progress


class _Progress:
    """Maps a phase's own 0..1 onto a slice of the job's progress bar."""

    def __init__(self, ctx: JobContext, start: float = 0.0, end: float = 1.0) -> None:
        self.ctx, self.start, self.end = ctx, start, end

    def __call__(self, fraction: float | None, message: str) -> None:
        if fraction is None:
            self.ctx.progress(None, message)
        else:
            self.ctx.progress(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0), message)

    def sub(self, a: float, b: float) -> _Progress:
        span = self.end - self.start
        return _Progress(self.ctx, self.start + span * a, self.start + span * b)


@contextlib.contextmanager
def _warnings_to_log(ctx: JobContext) -> Iterator[None]:
    """Log each distinct warning (e.g. a solver that did not converge) once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                text = f"warning: {w.category.__name__}: {str(w.message).splitlines()[0]}"
                if text not in seen:
                    seen.add(text)
                    ctx.log(text)


# =========================================================================== data


class _Data:
    """The loaded data of a run: frames by part, the target, and the facts about them."""

    version: Any
    split: Any
    target: str
    task: str
    features: list[str]
    frame: pd.DataFrame
    y: np.ndarray
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    classes: Any
    data_hash: str
    dropped: int

    def X(self, part: np.ndarray) -> pd.DataFrame:
        return self.frame.iloc[part][self.features].reset_index(drop=True)

    def Y(self, part: np.ndarray) -> np.ndarray:
        return self.y[part]


def _resolve_version(store: Store, ts: TrainSpec) -> Any:
    from modelyard.core.datasets.service import get_version

    if ts.dataset:
        return get_version(store, ts.dataset)
    return get_version(store, int(ts.dataset_version_id or 0))


def _infer_task(version: Any, target: str) -> str:
    from modelyard.core.datasets.schema import infer_type, task_for

    if target == version.target and version.task:
        return version.task
    col = next((c for c in (version.profile or {}).get("columns", []) if c["name"] == target), None)
    sem = next((c.get("type") for c in version.columns if c["name"] == target), None)
    if col is None:
        return "classification" if sem in ("categorical", "boolean") else "regression"
    return task_for(col, infer_type(col, version.n_rows, for_target=True))


def _resolve_split(ctx: JobContext, store: Store, version: Any, ts: TrainSpec, task: str, target: str) -> Any:
    from modelyard.core.datasets import service
    from modelyard.core.datasets.splits import SplitError

    sp = dict(ts.split or {})
    if sp.get("id") is not None:
        info = service.get_split(store, int(sp["id"]))
        if info.dataset_version_id == version.id:
            return info
        # a split of another version (the dataset moved on): the same parameters on this one
        ctx.log(f"Split {info.id} belongs to {info.ref}, not {version.ref}: making the same split of {version.ref}.")
        sp = {"test": info.spec.get("test"), "validation": info.spec.get("validation"), "method": info.method,
              "column": info.spec.get("column"), "seed": info.seed}
    method_given = sp.get("method") is not None
    method = sp.get("method") or ("stratified" if task == "classification" else "random")
    column = sp.get("column")
    if method == "stratified" and column is None:
        column = target
    kwargs = {"test": sp.get("test") if sp.get("test") is not None else DEFAULT_TEST_SHARE,
              "validation": sp.get("validation") or 0.0,
              "seed": sp.get("seed") if sp.get("seed") is not None else ts.seed}
    try:
        return service.create_split(store, version.id, method=method, column=column, **kwargs)
    except SplitError as exc:
        if method_given or method != "stratified":
            raise
        ctx.log(f"A stratified split is not possible ({exc.message}); using a random split.")
        return service.create_split(store, version.id, method="random", **kwargs)


def _target_values(series: pd.Series, task: str) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if task == "regression":
        if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
            raise ModelyardError(f"The target '{series.name}' holds text; a regression model needs numbers.",
                                 hint="Choose a classification model, or a numeric target.")
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(v == np.round(v)):
            return v.astype(np.int64)
        return v
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        raise ModelyardError(f"The target '{series.name}' holds dates and times; it cannot be predicted here.")
    values = series.astype(object).to_numpy(dtype=object)
    kinds = {type(v) for v in values}
    if kinds <= {bool, np.bool_}:
        return values.astype(bool)
    return np.asarray([str(v) for v in values], dtype=object)


def load_data(ctx: JobContext, ts: TrainSpec, progress: _Progress) -> tuple[_Data, TrainSpec, dict[str, Any]]:
    """Resolve and load everything a run trains on; returns the data, the resolved spec, the plan."""
    import numpy as np
    import pyarrow.parquet as pq

    from modelyard.core.datasets import service
    from modelyard.core.datasets.snapshot import content_hash
    from modelyard.core.experiments.training import catalogue, preprocess

    store = ctx.store
    progress(0.0, f"Loading {ts.dataset or ts.dataset_version_id}")
    version = _resolve_version(store, ts)
    names = [c["name"] for c in version.columns]
    target = ts.target or version.target
    if not target:
        raise ModelyardError(f"{version.ref} has no target column, and the spec names none.",
                             hint="Give the target (--target COL), or set the dataset's target.")
    if target not in names:
        raise ModelyardError(f"{version.ref} has no column '{target}' to predict.",
                             hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    task = ts.task or _infer_task(version, target)
    entry = catalogue.get_model(ts.model, task)
    params = catalogue.coerce_params(entry.key, ts.params, task)
    missing = [c for c in ts.slice_columns if c not in names]
    if missing:
        raise ModelyardError(f"{version.ref} has no column(s) {', '.join(map(repr, missing))} to slice by.",
                             hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    plan = preprocess.describe_preprocessing(version.schema or {}, target=target, model_key=entry.key,
                                             overrides=ts.preprocessing)
    features = preprocess.feature_columns(plan)
    if not features:
        raise ModelyardError(f"No column of {version.ref} is left to train on.",
                             hint="Give some columns a preprocessing step, or change their roles in the dataset.")
    if ts.search:
        space = ts.search.get("space") or catalogue.default_search_space(entry.key, task)
        catalogue.check_search_space(entry.key, task, space)
        if ts.search.get("metric") is not None:
            allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
            if ts.search["metric"] not in allowed:
                raise ModelyardError(f"Unknown search metric '{ts.search['metric']}' for {task}.",
                                     hint=f"Use one of {', '.join(allowed)}.")
    progress(0.2, f"Splitting {version.ref}")
    split = _resolve_split(ctx, store, version, ts, task, target)
    parts = service.load_split(store, split.id)
    progress(0.4, f"Reading {version.ref} ({version.n_rows:,} rows)")
    table = pq.read_table(service.snapshot_path(store, version.id))
    data_hash = content_hash(table)
    if data_hash != version.content_hash:
        ctx.log(f"warning: the data of {version.ref} hashes to {data_hash[:12]}..., not its recorded "
                f"{version.content_hash[:12]}...: its snapshot file was changed.")
    cols = list(dict.fromkeys([*features, target, *ts.slice_columns]))
    frame = table.select(cols).to_pandas()
    del table
    y_series = frame[target]
    known = ~y_series.isna().to_numpy()
    dropped = int((~known).sum())
    if dropped:
        ctx.log(f"Dropped {dropped:,} row(s) whose target '{target}' is missing.")
    y_known = _target_values(y_series[known], task)
    y = np.zeros(len(frame), dtype=y_known.dtype)  # rows without a target are never used
    y[known] = y_known

    def keep(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        return idx[known[idx]]

    d = _Data()
    d.version, d.split, d.target, d.task, d.features, d.frame, d.y = version, split, target, task, features, frame, y
    d.train, d.validation, d.test = keep(parts["train"]), keep(parts["validation"]), keep(parts["test"])
    d.data_hash, d.dropped = data_hash, dropped
    if len(d.train) < 2:
        raise ModelyardError(f"{version.ref} has {len(d.train)} training row(s) with a target: too few to train on.")
    if len(d.test) < 1:
        raise ModelyardError(f"The split of {version.ref} leaves no test rows with a target.",
                             hint="Use a larger test share.")
    if task == "classification":
        train_classes = np.unique(d.y[d.train])
        if len(train_classes) < 2:
            raise ModelyardError(f"The training rows of {version.ref} hold a single class of '{target}' "
                                 f"({train_classes[0]!r}): there is nothing to tell apart.")
    resolved = TrainSpec.from_json({
        **ts.to_json(), "target": target, "task": task, "model": entry.key, "params": params,
        "dataset_version_id": version.id, "content_hash": version.content_hash,
        "split": {"id": split.id, "name": split.name, "method": split.method, "seed": split.seed,
                  "test": split.spec.get("test"), "validation": split.spec.get("validation"),
                  "column": split.spec.get("column")},
        "experiment": ts.experiment or version.name,
    })
    progress(1.0, f"Loaded {version.ref}: {len(d.train):,} training and {len(d.test):,} test rows")
    return d, resolved, plan


# =========================================================================== building and fitting


def _pipeline(ts: TrainSpec, d: _Data, plan: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import Pipeline

    from modelyard.core.experiments.training import catalogue, preprocess

    pre = preprocess.build_preprocessor(plan=plan)
    est = catalogue.make_estimator(ts.model, d.task, params, seed=ts.seed, n_jobs=threads_to_use())
    return Pipeline([("preprocess", pre), ("model", est)])


def _fit(model: Any, X: Any, y: Any, what: str) -> Any:
    try:
        return model.fit(X, y)
    except (JobCancelled, KeyboardInterrupt, MemoryError):
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelyardError(f"Training {what} failed: {msg}",
                             hint="Check the model's parameters and the preprocessing of the columns.") from exc


def _folds(task: str, y: Any, k: int, seed: int) -> list[tuple[Any, Any]]:
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if k > n:
        raise ModelyardError(f"{k}-fold cross-validation needs at least {k} training rows (there are {n}).",
                             hint="Use fewer folds.")
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= k:
            return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


def _cross_validate(ts: TrainSpec, d: _Data, plan: Mapping[str, Any], params: Mapping[str, Any], X: Any, y: Any,
                    progress: _Progress, label: str) -> list[dict[str, float]]:
    from sklearn.base import clone

    folds = _folds(d.task, y, ts.cv, ts.seed)
    base = _pipeline(ts, d, plan, params)
    out = []
    for i, (tr, va) in enumerate(folds):
        progress(i / len(folds), f"{label}fold {i + 1}/{len(folds)}")
        model = _fit(clone(base), X.iloc[tr], y[tr], f"fold {i + 1}")
        classes = getattr(model, "classes_", None)
        out.append(_evaluate(model, X.iloc[va], y[va], d.task, classes))
    progress(1.0, f"{label}{len(folds)} folds done")
    return out


def _log_cv(run: Any, folds: list[dict[str, float]]) -> dict[str, float]:
    import numpy as np

    keys = sorted({k for f in folds for k in f})
    for i, f in enumerate(folds):
        run.log_metrics({f"cv_{k}": v for k, v in f.items()}, step=i)
    summary: dict[str, float] = {}
    for k in keys:
        values = [f[k] for f in folds if k in f]
        if len(values) == len(folds):
            summary[f"cv_{k}_mean"] = float(np.mean(values))
            summary[f"cv_{k}_std"] = float(np.std(values))
    run.log_metrics(summary)
    return {k[3:-5]: v for k, v in summary.items() if k.endswith("_mean")}


# =========================================================================== search


class LogUniformInt:
    """Integers spread evenly on a log scale between ``low`` and ``high`` (for ParameterSampler)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = int(low), int(high)

    def rvs(self, random_state: Any = None) -> int:
        import numpy as np
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
        return int(min(max(np.floor(value), self.low), self.high))


def _grid_values(spec: Mapping[str, Any]) -> list[Any]:
    import numpy as np

    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    values = np.geomspace(low, high, GRID_POINTS) if log else np.linspace(low, high, GRID_POINTS)
    if spec["type"] == "int":
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.6g}") for v in values]


def search_candidates(space: Mapping[str, Any], method: str, trials: int | None, seed: int) -> list[dict[str, Any]]:
    """The parameter sets a search tries, within the trial budget."""
    import numpy as np
    from scipy import stats
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if method == "grid":
        grid = list(ParameterGrid({k: (v if isinstance(v, list) else _grid_values(v)) for k, v in space.items()}))
        if trials is None and len(grid) > MAX_GRID:
            raise ModelyardError(f"The grid has {len(grid):,} combinations; at most {MAX_GRID} are tried without "
                                 "a budget.", hint="Give a trial budget (--trials N) or fewer values.")
        if trials is not None and len(grid) > trials:
            rng = np.random.default_rng(seed)
            grid = [grid[i] for i in sorted(rng.choice(len(grid), size=trials, replace=False))]
        return [clean(c) for c in grid]
    dists: dict[str, Any] = {}
    combinations: int | None = 1  # None: a range makes the space endless
    for k, v in space.items():
        if isinstance(v, list):
            dists[k] = v
            combinations = None if combinations is None else combinations * len(v)
            continue
        combinations = None
        if v["type"] == "float":
            dists[k] = (stats.loguniform(v["low"], v["high"]) if v.get("log")
                        else stats.uniform(v["low"], v["high"] - v["low"]))
        elif v.get("log"):
            dists[k] = LogUniformInt(v["low"], v["high"])
        else:
            dists[k] = stats.randint(v["low"], v["high"] + 1)
    n = int(trials or 10)
    if combinations is not None:
        n = min(n, combinations)  # only lists: sampled without repeats
    sampled = list(ParameterSampler(dists, n_iter=n, random_state=seed))
    out = []
    for c in sampled:
        item = {}
        for k, v in clean(c).items():
            spec = space[k]
            item[k] = float(f"{v:.6g}") if isinstance(spec, Mapping) and spec["type"] == "float" else v
        out.append(item)
    return out


def _run_search(ctx: JobContext, run: Any, ts: TrainSpec, d: _Data, plan: Mapping[str, Any],
                progress: _Progress) -> dict[str, Any]:
    """Try the candidates, one child run each; returns the summary (best params and score...)."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    from modelyard.core.experiments import tracking
    from modelyard.core.experiments.training import catalogue

    search = ts.search or {}
    task = d.task
    space = catalogue.check_search_space(ts.model, task, search.get("space")
                                         or catalogue.default_search_space(ts.model, task))
    fixed = dict(ts.params)
    space = {k: v for k, v in space.items() if k not in fixed}
    if not space:
        raise ModelyardError("Every parameter of the search space is fixed by the spec's params: nothing to search.",
                             hint="Leave some searched parameters out of --param, or give a search space.")
    metric = search.get("metric") or PRIMARY_METRIC[task]
    greater = GREATER_IS_BETTER[metric]
    candidates = search_candidates(space, search["method"], search.get("trials"), ts.seed)
    X_train, y_train = d.X(d.train), d.Y(d.train)
    if ts.cv >= 2:
        evaluation = "cv"
    elif len(d.validation):
        evaluation = "validation"
        X_val, y_val = d.X(d.validation), d.Y(d.validation)
    else:
        evaluation = "holdout"
        strat = None
        if task == "classification":
            _, counts = np.unique(y_train, return_counts=True)
            strat = y_train if counts.min() >= 2 else None
        try:
            tr, va = train_test_split(np.arange(len(y_train)), test_size=HOLDOUT_SHARE, random_state=ts.seed,
                                      stratify=strat)
        except ValueError:
            tr, va = train_test_split(np.arange(len(y_train)), test_size=HOLDOUT_SHARE, random_state=ts.seed)
        X_val, y_val = X_train.iloc[va].reset_index(drop=True), y_train[va]
        X_fit, y_fit = X_train.iloc[tr].reset_index(drop=True), y_train[tr]
    ctx.log(f"{search['method'].capitalize()} search: {len(candidates)} trial(s) of {', '.join(space)}, "
            f"scored by {metric} ({'cross-validation' if evaluation == 'cv' else evaluation + ' rows'}).")
    trials: list[dict[str, Any]] = []
    n = len(candidates)
    for i, cand in enumerate(candidates):
        sub = progress.sub(i / n, (i + 1) / n)
        label = f"Trial {i + 1}/{n}: "
        sub(0.0, label + ", ".join(f"{k}={v}" for k, v in cand.items()))
        params = {**fixed, **cand}
        record: dict[str, Any] = {"trial": i + 1, "run_id": None, "params": cand, "score": None,
                                  "status": "failed", "error": None}
        trials.append(record)
        child = tracking.start_run(run.experiment, name=f"{run_name(ts)} trial {i + 1}", parent=run, store=ctx.store,
                                   source=ts.source, dataset_version_id=d.version.id, split_id=d.split.id,
                                   job_id=ctx.job_id, tags={**ts.tags, "search_trial": i + 1})
        record["run_id"] = child.id
        try:
            with child:
                est = catalogue.make_estimator(ts.model, task, params, seed=ts.seed)
                child.log_params({"model": ts.model, "task": task, "dataset": d.version.ref, "target": d.target,
                                  "seed": ts.seed, "trial": i + 1,
                                  **catalogue.form_params(ts.model, task, est)})
                with _warnings_to_log(ctx):
                    if evaluation == "cv":
                        folds = _cross_validate(ts, d, plan, params, X_train, y_train, sub, label)
                        means = _log_cv(child, folds)
                        score = means.get(metric, float("nan"))
                        record["folds"] = folds
                    else:
                        base = _pipeline(ts, d, plan, params)
                        fit_X, fit_y = (X_train, y_train) if evaluation == "validation" else (X_fit, y_fit)
                        model = _fit(clone(base), fit_X, fit_y, f"trial {i + 1}")
                        m = _evaluate(model, X_val, y_val, task, getattr(model, "classes_", None))
                        child.log_metrics({f"val_{k}": v for k, v in m.items()})
                        score = m.get(metric, float("nan"))
                if math.isfinite(score):
                    child.log_metric("score", score)
                record["score"] = score if math.isfinite(score) else None
                record["status"] = "succeeded"
        except (JobCancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed trial is recorded; the search goes on
            record["error"] = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
            ctx.log(f"Trial {i + 1} failed: {record['error']}")
        sub(1.0, label + (f"{metric} {record['score']:.4g}" if record["score"] is not None else "failed"))
    scored = [t for t in trials if t["score"] is not None]
    if not scored:
        raise ModelyardError(f"All {len(trials)} trials of the search failed.",
                             hint="The job's log says why; check the search space.")
    best = (max if greater else min)(scored, key=lambda t: t["score"])
    ctx.log(f"Best: trial {best['trial']} with {metric} {best['score']:.6g} "
            f"({', '.join(f'{k}={v}' for k, v in best['params'].items())}).")
    return {"method": search["method"], "metric": metric, "greater_is_better": greater, "evaluation": evaluation,
            "space": space, "trials": trials,
            "best": {k: best[k] for k in ("trial", "run_id", "params", "score")}}


def run_name(ts: TrainSpec) -> str:
    return ts.run_name or ts.model


# =========================================================================== evaluation artifacts


def _downsample(n: int, k: int = CURVE_POINTS) -> Any:
    import numpy as np

    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def _curves(y: Any, scores: Any, score_kind: str, classes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    binary = len(classes) == 2
    which = [1] if binary else list(range(len(classes)))
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    with _quiet():
        for k in which:
            pos = np.asarray(y) == classes[k]
            if not 0 < pos.sum() < len(pos):
                continue
            s = scores[:, k]
            fpr, tpr, thr = roc_curve(pos, s)
            idx = _downsample(len(fpr))
            roc.append({"label": classes[k], "fpr": fpr[idx], "tpr": tpr[idx], "thresholds": thr[idx],
                        "auc": float(roc_auc_score(pos, s))})
            prec, rec, thr2 = precision_recall_curve(pos, s)
            thr2 = np.append(thr2, np.nan)  # precision/recall have one more point than thresholds
            idx = _downsample(len(prec))
            pr.append({"label": classes[k], "precision": prec[idx], "recall": rec[idx], "thresholds": thr2[idx],
                       "average_precision": float(average_precision_score(pos, s)), "prevalence": float(pos.mean())})
    kind = "binary" if binary else "one_vs_rest"
    aucs = [c["auc"] for c in roc]
    return ({"kind": kind, "score": score_kind, "curves": roc, "auc_macro": float(np.mean(aucs)) if aucs else None},
            {"kind": kind, "score": score_kind, "curves": pr})


def _confusion(y: Any, pred: Any, classes: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, pred, labels=list(classes))
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(totals > 0, cm / np.maximum(totals, 1), 0.0)
    return {"labels": list(classes), "matrix": cm, "normalized": np.round(norm, 6), "n": int(len(y))}


def _residuals(y: Any, pred: Any, seed: int) -> dict[str, Any]:
    import numpy as np

    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    res = y - pred
    n = len(y)
    idx = np.arange(n)
    if n > RESIDUAL_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=RESIDUAL_POINTS, replace=False))
    counts, edges = np.histogram(res[np.isfinite(res)], bins=RESIDUAL_BINS) if n else (np.zeros(0), np.zeros(0))
    return {"n": n, "shown": int(len(idx)),
            "points": {"actual": y[idx], "predicted": pred[idx], "residual": res[idx]},
            "histogram": {"edges": edges, "counts": counts},
            "summary": {"mean": float(res.mean()), "std": float(res.std()), "min": float(res.min()),
                        "max": float(res.max())}}


def _importance(model: Any, X: Any, y: Any, task: str, seed: int, progress: _Progress) -> dict[str, Any]:
    import numpy as np

    metric = PRIMARY_METRIC[task]
    greater = GREATER_IS_BETTER[metric]
    rng = np.random.default_rng(seed)
    n = len(X)
    if n > IMPORTANCE_ROWS:
        idx = np.sort(rng.choice(n, size=IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[idx].reset_index(drop=True), y[idx]
        n = IMPORTANCE_ROWS
    baseline = _primary_score(task, metric, y, model.predict(X))
    features = []
    cols = list(X.columns)
    for j, col in enumerate(cols):
        progress(j / max(len(cols), 1), f"Permutation importance: {col} ({j + 1}/{len(cols)})")
        drops = []
        for _ in range(IMPORTANCE_REPEATS):
            Xp = X.copy(deep=False)
            Xp[col] = X[col].iloc[rng.permutation(n)].reset_index(drop=True)
            score = _primary_score(task, metric, y, model.predict(Xp))
            drops.append((baseline - score) if greater else (score - baseline))
        features.append({"name": col, "mean": float(np.mean(drops)), "std": float(np.std(drops))})
    features.sort(key=lambda f: -(f["mean"] if math.isfinite(f["mean"]) else -math.inf))
    return {"metric": metric, "greater_is_better": greater, "baseline": baseline, "n_repeats": IMPORTANCE_REPEATS,
            "n_rows": n, "features": features}


def _slice_labels(values: pd.Series) -> np.ndarray:
    import pandas as pd

    from modelyard.core.experiments.training.preprocess import to_category_text

    missing = values.isna().to_numpy()
    if (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
            and values.nunique(dropna=True) > SLICE_MAX_GROUPS):
        binned = pd.qcut(values.astype(float), SLICE_NUMERIC_BINS, duplicates="drop")
        labels = binned.astype(str).to_numpy(dtype=object)
    else:
        labels = to_category_text(values.to_frame())[:, 0]
    labels = labels.astype(object)
    labels[missing] = "(missing)"
    return labels


def _slices(d: _Data, columns: list[str], y: Any, pred: Any, classes: Any) -> dict[str, Any]:
    import numpy as np

    task = d.task
    metric = PRIMARY_METRIC[task]
    greater = GREATER_IS_BETTER[metric]
    keep = ("accuracy", "balanced_accuracy", "f1_macro") if task == "classification" else ("rmse", "mae", "r2")
    out = []
    frame = d.frame.iloc[d.test].reset_index(drop=True)
    for col in columns:
        labels = _slice_labels(frame[col])
        values, counts = np.unique(labels.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        top = [values[i] for i in order[:SLICE_MAX_GROUPS]]
        if len(values) > SLICE_MAX_GROUPS:
            labels = np.where(np.isin(labels.astype(str), top), labels.astype(str), "(other)")
            top.append("(other)")
        groups = []
        for value in top:
            mask = labels.astype(str) == value
            if not mask.any():
                continue
            m = compute_metrics(task, y[mask], pred[mask], classes=classes)
            groups.append({"value": value, "n": int(mask.sum()), "metrics": {k: m[k] for k in keep if k in m}})
        scored = [g for g in groups if metric in g["metrics"]]
        best = worst = None
        gap = None
        if scored:
            pick = (max, min) if greater else (min, max)
            b = pick[0](scored, key=lambda g: g["metrics"][metric])
            w = pick[1](scored, key=lambda g: g["metrics"][metric])
            best = {"value": b["value"], "score": b["metrics"][metric]}
            worst = {"value": w["value"], "score": w["metrics"][metric]}
            gap = abs(best["score"] - worst["score"])
        out.append({"column": col, "groups": groups, "best": best, "worst": worst, "gap": gap})
    return {"metric": metric, "greater_is_better": greater, "columns": out}


def _signature(d: _Data, plan: Mapping[str, Any], model: Any, X_example: Any) -> dict[str, Any]:
    steps = {c["name"]: c for c in plan["columns"]}
    dtypes = dict(X_example.dtypes.items())
    example = json.loads(X_example.head(EXAMPLE_ROWS).to_json(orient="split", index=False, date_format="iso"))
    classes = getattr(model, "classes_", None)
    target_dtype = next((c.get("dtype") for c in d.version.columns if c["name"] == d.target), None)
    return {"inputs": [{"name": f, "dtype": str(dtypes.get(f)), "type": steps[f].get("type"), "step": steps[f]["step"]}
                       for f in d.features],
            "target": {"name": d.target, "dtype": target_dtype, "task": d.task,
                       "classes": list(classes) if classes is not None else None},
            "output": {"kind": "label" if d.task == "classification" else "number",
                       "proba": hasattr(model, "predict_proba") and d.task == "classification"},
            "example": {"columns": example["columns"], "rows": example["data"]}}


def _staged_series(run: Any, model: Any, X_test: Any, y_test: Any, task: str) -> None:
    """Test score per boosting iteration, and scikit-learn's own per-iteration scores."""
    import numpy as np

    est = model[-1]
    metric = PRIMARY_METRIC[task]
    n_iter = int(getattr(est, "n_iter_", 0) or 0)
    if n_iter and hasattr(est, "staged_predict"):
        Xt = model[:-1].transform(X_test)
        stride = max(1, math.ceil(n_iter / MAX_SERIES_POINTS))
        for i, pred in enumerate(est.staged_predict(Xt), start=1):
            if i % stride == 0 or i == n_iter:
                score = _primary_score(task, metric, y_test, pred)
                if math.isfinite(score):
                    run.log_metric(f"staged_{metric}", score, step=i)
    for attr, key in (("train_score_", "train_score"), ("validation_score_", "validation_score")):
        values = np.asarray(getattr(est, attr, []), dtype=float)
        if values.size:
            stride = max(1, math.ceil(values.size / MAX_SERIES_POINTS))
            for i in range(0, values.size, stride):
                if math.isfinite(values[i]):
                    run.log_metric(key, float(values[i]), step=i)


def _learning_curve(run: Any, ts: TrainSpec, d: _Data, plan: Mapping[str, Any], params: Mapping[str, Any],
                    X_train: Any, y_train: Any, X_test: Any, y_test: Any, final_score: float,
                    progress: _Progress) -> None:
    import numpy as np
    from sklearn.base import clone

    metric = PRIMARY_METRIC[d.task]
    n = len(y_train)
    order = np.random.default_rng(ts.seed).permutation(n)
    base = _pipeline(ts, d, plan, params)
    shares = LEARNING_CURVE_SHARES
    for i, share in enumerate(shares):
        rows = int(share * n)
        progress(i / len(shares), f"Learning curve: {rows:,} rows")
        idx = np.sort(order[:rows])
        if rows < 5 or (d.task == "classification" and len(np.unique(y_train[idx])) < 2):
            continue
        try:
            with _quiet():
                model = clone(base).fit(X_train.iloc[idx], y_train[idx])
                score = _primary_score(d.task, metric, y_test, model.predict(X_test))
        except (ValueError, TypeError, ArithmeticError):
            continue  # e.g. fewer rows than neighbours
        if math.isfinite(score):
            run.log_metric(f"learning_curve_{metric}", score, step=rows)
    if math.isfinite(final_score):
        run.log_metric(f"learning_curve_{metric}", final_score, step=n)


# =========================================================================== the job


def train(ctx: JobContext, *, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Job: train the model ``spec`` describes and record it as a run (see the module docstring)."""
    return run_training(ctx, TrainSpec.from_json(spec))


def run_training(ctx: JobContext, ts: TrainSpec, *, progress: _Progress | None = None,
                 before_end: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Train and record (the body of :func:`train`; :mod:`.reproduce` calls it too).

    ``before_end(run)`` is called with the :class:`~modelyard.core.experiments.tracking.ActiveRun` when
    everything is recorded, before the run ends (to add more to it).
    """
    from threadpoolctl import threadpool_limits

    progress = progress or _Progress(ctx)
    t0 = time.monotonic()
    with threadpool_limits(limits=threads_to_use()):
        return _run(ctx, ts, progress, t0, before_end)


def _run(ctx: JobContext, ts: TrainSpec, progress: _Progress, t0: float,
         before_end: Callable[[Any], None] | None) -> dict[str, Any]:
    from modelyard.core.experiments import tracking
    from modelyard.core.experiments.training import catalogue

    d, rs, plan = load_data(ctx, ts, progress.sub(0.0, 0.08))
    task = d.task
    env = environment(rs.cwd)
    tags = dict(rs.tags)
    if env["git"]:
        tags["git_commit"] = env["git"]["commit"]
    run = tracking.start_run(rs.experiment or d.version.name, name=run_name(rs), tags=tags, store=ctx.store,
                             source=rs.source, dataset_version_id=d.version.id, split_id=d.split.id,
                             job_id=ctx.job_id, spec=rs.to_json())
    ctx.log(f"Run {run.id} started in experiment '{run.experiment}'.")
    with run:
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
            meta.update(search=rs.search["method"], search_trials=rs.search.get("trials") or "all",
                        search_metric=rs.search.get("metric") or PRIMARY_METRIC[task])
        run.log_params(meta)
        if rs.search:
            search_summary = _run_search(ctx, run, rs, d, plan, progress.sub(0.08, 0.62))
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
                folds = _cross_validate(rs, d, plan, params, X_train, y_train, progress.sub(0.08, 0.62),
                                        "Cross-validation: ")
            cv_means = _log_cv(run, folds)
        model = _pipeline(rs, d, plan, params)
        run.log_params(catalogue.form_params(rs.model, task, model[-1]))
        progress.sub(0.62, 0.72)(0.0, f"Fitting {type(model[-1]).__name__} on {len(d.train):,} rows")
        t_fit = time.monotonic()
        with _warnings_to_log(ctx):
            _fit(model, X_train, y_train, type(model[-1]).__name__)
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

