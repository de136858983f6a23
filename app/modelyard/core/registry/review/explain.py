"""Explanations of a fitted model on its held-out rows: permutation importance, a warning where
features are near copies, partial dependence of the top features, and a calibration curve.

Permutation importance is scikit-learn's (``sklearn.inspection.permutation_importance``: the drop
in the score when one column's values are shuffled, ``repeats`` times), computed column by column
here with the same shuffles, all repeats of a column in one prediction call, so that a job
reports progress and can be cancelled between columns (a test checks the numbers equal sklearn's). Two features that are near copies share their
importance: shuffling one leaves the other, so each looks less important than the pair is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from modelyard.core.registry.review.stats import plain

NEAR_COPY = 0.95  # |r| at or above which two numeric features are called near copies
PDP_TOP = 3
PDP_GRID = 20
PDP_ROWS = 1_000
CALIBRATION_BINS = 10


def score_function(task: str) -> tuple[str, Callable[[Any, Any], float]]:
    """(metric name, score where higher is better) the importance is measured in."""
    if task == "classification":
        return "accuracy", lambda y, p: float(np.mean(np.asarray(y) == np.asarray(p)))
    return "rmse", lambda y, p: -float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(p, dtype=float)) ** 2)))


def permutation_importance(model: Any, X: Any, y: Any, task: str, *, repeats: int, seed: int,
                           progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """``{"metric", "repeats", "rows", "features": [{"feature", "mean", "std"}, ...]}``, highest first.

    The shuffles are sklearn's for ``random_state=seed`` (one seed drawn from it, then for every
    column a fresh generator from that seed shuffling the row order ``repeats`` times)."""
    import pandas as pd
    from sklearn.utils import check_random_state

    metric, score = score_function(task)
    y = np.asarray(y)
    baseline = score(y, model.predict(X))
    random_seed = check_random_state(seed).randint(np.iinfo(np.int32).max + 1)
    features = []
    columns = list(X.columns)
    n = len(X)
    for j, name in enumerate(columns):
        rng = check_random_state(random_seed)
        order = np.arange(n)
        values = X.iloc[:, j].to_numpy()
        shuffled = []
        for _ in range(repeats):  # as sklearn: one generator per column, the shuffles compound
            rng.shuffle(order)
            values = values[order]
            shuffled.append(values)
        # every repeat in one call: the frame repeated, the column replaced by its shuffles
        stacked = pd.concat([X] * repeats, ignore_index=True)
        stacked[name] = pd.Series(np.concatenate(shuffled), dtype=X[name].dtype)
        pred = np.asarray(model.predict(stacked))
        drops = [baseline - score(y, pred[r * n:(r + 1) * n]) for r in range(repeats)]
        features.append({"feature": str(name), "mean": plain(np.mean(drops)), "std": plain(np.std(drops))})
        if progress is not None:
            progress((j + 1) / len(columns))
    features.sort(key=lambda f: -(f["mean"] if f["mean"] is not None else -np.inf))
    return {"metric": metric, "repeats": int(repeats), "rows": int(n), "features": features}


def near_copies(frame: Any, numeric: Sequence[str], threshold: float = NEAR_COPY) -> list[dict[str, Any]]:
    """Pairs of numeric features with |Pearson r| >= ``threshold`` on these rows, strongest first."""
    cols = [c for c in numeric if c in frame.columns]
    if len(cols) < 2:
        return []
    import pandas as pd

    from modelyard.core.registry.reference import numeric_values

    values = pd.DataFrame({c: numeric_values(frame[c]) for c in cols})
    r = values.corr().to_numpy()
    pairs = []
    for i in range(len(cols)):
        for k in range(i + 1, len(cols)):
            if np.isfinite(r[i, k]) and abs(r[i, k]) >= threshold:
                pairs.append({"a": str(cols[i]), "b": str(cols[k]), "r": round(float(r[i, k]), 4)})
    pairs.sort(key=lambda p: -abs(p["r"]))
    return pairs


def near_copy_warning(pairs: list[dict[str, Any]]) -> str | None:
    if not pairs:
        return None
    first = pairs[0]
    more = f" (and {len(pairs) - 1} more {'pair' if len(pairs) == 2 else 'pairs'})" if len(pairs) > 1 else ""
    return (f"{first['a']} and {first['b']} are near copies (r = {first['r']:.2f}){more}: shuffling one leaves the "
            "other, so read their importances together (each alone looks less important than the pair is).")


def _grid(values: Any, categorical: bool) -> list[Any]:
    import pandas as pd

    s = pd.Series(values).dropna()
    if s.empty:
        return []
    if categorical:
        return list(s.value_counts().index[:PDP_GRID])
    v = s.astype(float).to_numpy()
    distinct = np.unique(v)
    if len(distinct) <= PDP_GRID:
        return [float(x) for x in distinct]
    return [float(x) for x in np.unique(np.quantile(v, np.linspace(0.05, 0.95, PDP_GRID)))]


def partial_dependence(model: Any, X: Any, features: Sequence[str], categorical: Sequence[str], *,
                       task: str, target: str, seed: int) -> list[dict[str, Any]]:
    """One curve per feature (what sklearn's ``partial_dependence`` computes with its brute method,
    kind "average", on up to :data:`PDP_ROWS` rows, in one prediction call per feature): the
    average prediction with the feature set to each grid value. A
    classifier's curve is the probability of the positive class (binary) or of the class it
    predicts most often (multiclass), or without probabilities the share of rows predicted as that
    class; ``of`` says which."""
    import pandas as pd

    from modelyard.core.registry.review.compute import _classes

    rows = X if len(X) <= PDP_ROWS else X.sample(PDP_ROWS, random_state=seed)
    classes = _classes(model)
    is_classifier = task == "classification" and bool(classes)
    has_proba = is_classifier and hasattr(model, "predict_proba")
    which = 0
    if is_classifier:
        if len(classes) == 2:
            which = 1
        else:
            predicted = np.asarray(model.predict(rows))
            values, counts = np.unique(predicted, return_counts=True)
            which = classes.index(values[int(np.argmax(counts))])
    # a classifier without probabilities: the share of rows predicted as that class
    of = (f"P({classes[which]})" if has_proba else f"share predicted {classes[which]}") if is_classifier \
        else f"predicted {target}"

    def response(frame: Any) -> Any:
        if has_proba:
            return model.predict_proba(frame)[:, which]
        if is_classifier:
            return (np.asarray(model.predict(frame)) == classes[which]).astype(float)
        return model.predict(frame)

    curves = []
    for name in features:
        kind = "categorical" if name in categorical else "numeric"
        grid = _grid(rows[name], kind == "categorical")
        if not grid:
            continue
        # sklearn's brute method, in one call: the rows once per grid value, the feature set to it
        stacked = pd.concat([rows] * len(grid), ignore_index=True)
        stacked[name] = pd.Series(np.repeat(np.asarray(grid, dtype=object), len(rows)), dtype=rows[name].dtype)
        try:
            out = response(stacked)
        except (ValueError, TypeError) as exc:
            curves.append({"feature": name, "kind": kind, "grid": [], "average": [], "of": of,
                           "error": f"{type(exc).__name__}: {exc}"})
            continue
        average = np.asarray(out, dtype=float).reshape(len(grid), len(rows)).mean(axis=1)
        curves.append({"feature": name, "kind": kind, "of": of,
                       "grid": [plain(g) if kind == "numeric" else str(g) for g in grid],
                       "average": [plain(a) for a in average]})
    return curves


def calibration(y: Any, proba: Any, classes: Sequence[Any], positive: Any | None) -> dict[str, Any] | None:
    """sklearn's ``calibration_curve`` (10 equal-width bins; empty bins left out) and the Brier
    score: of the positive class (binary), else of the top class's confidence against whether
    the predicted class was right."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    if proba is None:
        return None
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y)
    if positive is not None:
        truth = (y == positive).astype(int)
        prob = proba[:, list(classes).index(positive)]
        of = str(positive)
    else:
        top = proba.argmax(axis=1)
        truth = (np.asarray(classes, dtype=object)[top] == y).astype(int)
        prob = proba[top.reshape(-1, 1) == np.arange(proba.shape[1])].reshape(-1)
        of = "the predicted class (top-class confidence)"
    if truth.min() == truth.max():
        return None
    prob_true, prob_pred = calibration_curve(truth, prob, n_bins=CALIBRATION_BINS, strategy="uniform")
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=CALIBRATION_BINS)
    return {"of": of, "prob_pred": [plain(v) for v in prob_pred], "prob_true": [plain(v) for v in prob_true],
            "counts": [int(c) for c in counts[counts > 0]], "brier": plain(brier_score_loss(truth, prob))}
