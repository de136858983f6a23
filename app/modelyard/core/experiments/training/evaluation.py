"""The evaluation artifacts of a training run: curves, confusion matrix, residuals, permutation
importance, slices, the model signature and the per-iteration series (shapes in
:mod:`modelyard.core.experiments.training.train`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.core.experiments.training.data import _Data
from modelyard.core.experiments.training.fitting import _pipeline
from modelyard.core.experiments.training.metrics import (
    GREATER_IS_BETTER,
    PRIMARY_METRIC,
    _primary_score,
    _quiet,
    compute_metrics,
)
from modelyard.core.experiments.training.spec import (
    TrainSpec,
)
from modelyard.core.jobs.progress import ProgressSlice

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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


EXAMPLE_ROWS = 5


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


def _importance(model: Any, X: Any, y: Any, task: str, seed: int, progress: ProgressSlice) -> dict[str, Any]:
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
                    progress: ProgressSlice) -> None:
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
