"""Per-group metrics for the sensitive columns: fairlearn's ``MetricFrame`` gives each group's
value, the largest gap (``difference()``) and the ratio (``ratio()``) between groups; the
bootstrap (:mod:`.stats`, on the same resamples as the overall metrics) gives each group's
confidence interval.

A group is a distinct value of the column (missing values are the group ``(missing)``); a
column with more than :data:`MAX_GROUPS` distinct values is refused (bin it first: an age band,
not an age).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from modelyard.core.common.errors import ModelyardError
from modelyard.core.registry.reference import category_key
from modelyard.core.registry.review.stats import (
    BINARY_RATES,
    CONFUSION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    estimate,
    plain,
)

MAX_GROUPS = 30
MISSING = "(missing)"


def encode_groups(values: Any, column: str) -> tuple[np.ndarray, list[str]]:
    """(group code of each row, group names): names are the values as text, most frequent first."""
    import pandas as pd

    series = pd.Series(values)
    keys = series.map(lambda v: MISSING if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                      else category_key(v))
    counts = keys.value_counts(sort=True)
    if len(counts) > MAX_GROUPS:
        raise ModelyardError(f"The sensitive column {column} has {len(counts)} distinct values; groups need at most "
                             f"{MAX_GROUPS}.", hint=f"Add a column that bins {column} (e.g. bands) to the dataset and "
                             "mark that one sensitive.")
    names = [str(k) for k in counts.index]
    codes = pd.Index(names).get_indexer(keys)
    return codes.astype(np.int64), names


def metric_functions(task: str, classes: Sequence[Any], positive: Any | None) -> dict[str, Callable[..., float]]:
    """The group metrics as functions of (y_true, y_pred), named as the training job names them."""
    from sklearn import metrics as skm

    if task != "classification":
        return {"rmse": lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))),
                "mae": skm.mean_absolute_error, "r2": skm.r2_score, "mape": skm.mean_absolute_percentage_error}
    labels = list(classes)
    fns: dict[str, Callable[..., float]] = {
        "accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
        "precision_macro": partial(skm.precision_score, average="macro", labels=labels, zero_division=0),
        "recall_macro": partial(skm.recall_score, average="macro", labels=labels, zero_division=0),
        "f1_macro": partial(skm.f1_score, average="macro", labels=labels, zero_division=0),
    }
    if positive is not None:
        from fairlearn.metrics import (
            false_positive_rate,
            selection_rate,
            true_positive_rate,
        )

        fns.update(selection_rate=partial(selection_rate, pos_label=positive),
                   true_positive_rate=partial(true_positive_rate, pos_label=positive),
                   false_positive_rate=partial(false_positive_rate, pos_label=positive))
    return fns


def group_metric_names(task: str, binary: bool) -> tuple[str, ...]:
    if task != "classification":
        return REGRESSION_METRICS
    return CONFUSION_METRICS + (BINARY_RATES if binary else ())


def metric_frame(y_true: Any, y_pred: Any, groups: np.ndarray, names: Sequence[str],
                 fns: dict[str, Callable[..., float]], *, compress: bool = False) -> Any:
    """fairlearn's MetricFrame of ``fns`` by the groups (codes ``groups`` into ``names``).

    ``compress`` (label codes of a classifier): one row per distinct (group, true, predicted)
    with its count as the sample weight; every metric here is a function of the weighted
    confusion counts, so the values are the same as on the rows themselves, at the cost of a few
    dozen rows instead of every held-out row."""
    from fairlearn.metrics import MetricFrame

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    label = np.asarray(names, dtype=object)
    params = None
    if compress:
        width = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
        cells, counts = np.unique((groups * width + y_true) * width + y_pred, return_counts=True)
        groups, y_true, y_pred = cells // (width * width), (cells // width) % width, cells % width
        params = {key: {"sample_weight": counts.astype(float)} for key in fns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetricFrame(metrics=fns, y_true=y_true, y_pred=y_pred, sensitive_features=label[groups],
                           sample_params=params)


def group_section(column: str, names: list[str], codes: np.ndarray, frame: Any, samples: dict[str, np.ndarray],
                  confidence: float) -> dict[str, Any]:
    """The document's entry of one sensitive column (see docs/governance.md, "The evidence")."""
    sizes = np.bincount(codes, minlength=len(names))
    by_group = frame.by_group
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        difference, ratio = frame.difference(), frame.ratio()
    rows = []
    for g, name in enumerate(names):
        metrics = {}
        for key in by_group.columns:
            value = by_group.loc[name, key] if name in by_group.index else None
            metrics[key] = estimate(value, samples[key][:, g], confidence) if key in samples else \
                {"value": plain(value), "low": None, "high": None}
        rows.append({"group": name, "n": int(sizes[g]), "metrics": metrics})
    gaps = {}
    for key in by_group.columns:
        values = {name: plain(by_group.loc[name, key]) for name in names if name in by_group.index}
        known = {k: v for k, v in values.items() if v is not None}
        if len(known) < 2:
            gaps[key] = {"gap": None, "ratio": None, "worst": None, "best": None}
            continue
        higher = HIGHER_IS_BETTER.get(key, True)
        worst = (min if higher else max)(known, key=lambda k: known[k])
        best = (max if higher else min)(known, key=lambda k: known[k])
        gaps[key] = {"gap": plain(difference[key]), "ratio": plain(ratio[key]), "worst": worst, "best": best}
    return {"column": column, "rows": rows, "gaps": gaps}
