"""The metrics of a set of predictions, and which way each one is better.

Used by the training job (test, validation and cross-validation scores), by drift checks on
labelled batches and by retraining comparisons, so all of them score the same way.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import Any

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                          "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
GREATER_IS_BETTER = {"accuracy": True, "balanced_accuracy": True, "precision_macro": True, "recall_macro": True,
                     "f1_macro": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False, "r2": True,
                     "mape": False}
PRIMARY_METRIC = {"classification": "accuracy", "regression": "rmse"}
NONDETERMINISTIC_METRICS = frozenset({"fit_time_s"})


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
            # the three macro averages from one count of the labels (what average="macro" does three times)
            per_label = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                            labels=labels)
            for key, values in zip(("precision_macro", "recall_macro", "f1_macro"), per_label[:3]):
                out[key] = float(np.average(values))
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
