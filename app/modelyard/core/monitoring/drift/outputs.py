"""The model's side of a drift check: its outputs on the batch against those on the reference
(prediction drift), its metrics on the batch against the recorded ones (performance), and the
domain classifier that tries to tell batch rows from reference rows (multivariate drift)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.core.common.errors import ModelyardError
from modelyard.core.monitoring.drift.baseline import Reference
from modelyard.core.monitoring.drift.columns import Columns
from modelyard.core.monitoring.drift.compare import (
    _decide,
    _fmt,
    _profile_column,
    _RefColumn,
    _sample,
    compare_categorical,
    compare_numeric,
)
from modelyard.core.registry import reference as refmod

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_SAMPLE = 20_000
MAX_DOMAIN_CODES = 254
DOMAIN_ITERATIONS = 50


# =========================================================================== the model's outputs


def _model_checks(load_model: Callable[[], Any] | None, recorded: Mapping[str, Any], reference: Reference,
                  source: Columns, cfg: Mapping[str, Any], skipped: dict[str, str]
                  ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    inputs = reference.inputs
    missing = [c for c in inputs if c not in source.names]
    if missing:
        msg = f"the batch lacks the model's input column(s) {', '.join(map(repr, missing))}"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    if load_model is None:
        skipped["prediction"] = skipped["performance"] = "no model given"
        return None, None
    try:
        model = load_model()
    except (ModelyardError, OSError, ValueError, ImportError, AttributeError) as exc:
        msg = f"the model could not be loaded ({getattr(exc, 'message', None) or exc})"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    seed = int(cfg["seed"])
    n = int(cfg["prediction"].get("sample") or PREDICTION_SAMPLE)
    target = reference.target
    batch = source.rows(list(dict.fromkeys([*inputs, *([target] if target and target in source.names else [])])),
                        n, seed)
    task = reference.task
    classification = task == "classification"
    try:
        with one_thread():
            pred_b = np.asarray(model.predict(batch[inputs]))
            proba_b = model.predict_proba(batch[inputs]) if classification and hasattr(model, "predict_proba") \
                else None
    except Exception as exc:  # noqa: BLE001 - the batch's data may break the model: report, do not fail the check
        msg = f"the model failed on the batch: {type(exc).__name__}: {exc}"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    prediction: dict[str, Any] | None = None
    if cfg["prediction"]["enabled"]:
        prediction = _prediction_drift(model, reference, pred_b, proba_b, cfg, seed, n, skipped)
    performance = None
    if cfg["performance"]["enabled"] and target and target in batch.columns and task:
        y = batch[target]
        known = ~y.isna().to_numpy()
        if known.sum() == 0:
            skipped["performance"] = f"the batch's target column '{target}' is empty"
        else:
            performance = _performance(recorded, model, y[known], pred_b[known],
                                       proba_b[known] if proba_b is not None else None, task, cfg)
    return prediction, performance


def _prediction_drift(model: Any, reference: Reference, pred_b: np.ndarray, proba_b: np.ndarray | None,
                      cfg: Mapping[str, Any], seed: int, n: int, skipped: dict[str, str]) -> dict[str, Any] | None:
    import pandas as pd

    classification = reference.task == "classification" or pred_b.dtype.kind in "OUSb"
    out: dict[str, Any] = {"output": "label" if classification else "number", "rows": len(pred_b), "scores": None}
    pred_r = proba_r = None
    if reference.rows is not None:
        ref_rows = reference.rows.rows(reference.inputs, n, seed)
        try:
            with one_thread():
                pred_r = np.asarray(model.predict(ref_rows[reference.inputs]))
                if proba_b is not None:
                    proba_r = model.predict_proba(ref_rows[reference.inputs])
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the check stands
            skipped["prediction"] = f"the model failed on its own reference rows: {type(exc).__name__}: {exc}"
            return None
        if classification:
            counts, missing = refmod.category_counts(pd.Series(pred_r))
            ref_col = _RefColumn("prediction", "categorical", str(pred_r.dtype), counts=counts, missing=missing)
        else:
            ref_col = _RefColumn("prediction", "numeric", str(pred_r.dtype),
                                 num=_sample(pred_r.astype(np.float64), np.float64))
    else:
        prof = (reference.profile or {}).get("predictions")
        if not prof:
            skipped["prediction"] = "the reference profile holds no profile of the model's outputs"
            return None
        ref_col = _profile_column("prediction", prof, int(prof.get("n") or 0))
        classification = ref_col.kind == "categorical"
        out["output"] = "label" if classification else "number"
    if classification:
        counts, missing = refmod.category_counts(pd.Series(pred_b))
        row = compare_categorical("prediction", ref_col, counts, missing, cfg, role="prediction")
        out["labels"] = row
    else:
        assert ref_col.num is not None
        row = compare_numeric("prediction", ref_col.num, _sample(pred_b.astype(np.float64), np.float64), cfg,
                              role="prediction")
        out["values"] = row
    _decide([row], "none")
    drift = bool(row["drift"])
    reason = f"{'labels' if classification else 'values'}: {row['reason']}"
    if proba_b is not None and proba_r is not None and np.asarray(proba_b).ndim == 2 and proba_b.shape[1] == 2:
        srow = compare_numeric("score", _sample(np.asarray(proba_r)[:, 1], np.float64),
                               _sample(np.asarray(proba_b)[:, 1], np.float64), cfg, role="prediction")
        _decide([srow], "none")
        out["scores"] = srow
        if srow["drift"]:
            drift = True
            reason += f"; scores (probability of {getattr(model, 'classes_', [None, 'the second class'])[1]!r}): " \
                      f"{srow['reason']}"
    elif proba_b is not None and reference.rows is None:
        skipped.setdefault("prediction_scores", "score drift needs the reference's rows (a profile holds labels only)")
    out["drift"] = drift
    out["reason"] = reason
    return out


def _performance(recorded: Mapping[str, Any], model: Any, y: Any, pred: np.ndarray, proba: np.ndarray | None,
                 task: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    from modelyard.core.experiments.training.train import (
        GREATER_IS_BETTER,
        PRIMARY_METRIC,
        compute_metrics,
    )

    classes = getattr(model, "classes_", None)
    if task == "classification":
        lookup = {refmod.category_key(c): c for c in (classes if classes is not None else [])}
        y_true = np.asarray([lookup.get(refmod.category_key(v), v) for v in y.tolist()], dtype=object)
        try:
            y_true = y_true.astype(np.asarray(classes).dtype) if classes is not None else y_true
        except (TypeError, ValueError):
            pass
    else:
        y_true = refmod.numeric_values(y)
    now = compute_metrics(task, y_true, pred, proba=proba, classes=classes)
    deciding = list(cfg["performance"].get("metrics") or []) or [PRIMARY_METRIC[task]]
    max_drop = float(cfg["performance"]["max_relative_drop"])
    rows = []
    degraded_names = []
    for key in sorted(set(now) | {k for k in deciding if k in recorded}):
        higher = GREATER_IS_BETTER.get(key, True)
        was, value = recorded.get(key), now.get(key)
        change = rel = None
        if was is not None and value is not None:
            change = value - was
            worse = (was - value) if higher else (value - was)
            rel = worse / abs(was) if was else worse
        decides = key in deciding
        degraded = bool(decides and rel is not None and rel > max_drop)
        if degraded:
            degraded_names.append(key)
        rows.append({"metric": key, "recorded": was, "batch": value, "change": change, "relative_drop": rel,
                     "greater_is_better": higher, "decides": decides, "degraded": degraded})
    text = "; ".join(f"{r['metric']} {_fmt(r['batch'])} vs {_fmt(r['recorded'])} recorded "
                     f"({r['relative_drop']:+.1%} worse)" for r in rows if r["degraded"])
    return {"task": task, "rows": len(y_true), "metrics": rows, "degraded": bool(degraded_names),
            "max_relative_drop": max_drop,
            "reason": f"the model performs worse on the batch: {text}" if degraded_names else ""}


# =========================================================================== the domain classifier


def one_thread() -> Any:
    """Native thread pools (OpenMP, BLAS) limited to one thread: on a busy machine OpenMP's
    spinning workers make small fits 10-50x slower, and these fits are small."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _encode(frame: pd.DataFrame, cols: list[str], kinds: Mapping[str, str]) -> tuple[np.ndarray, list[bool]]:
    import pandas as pd

    out = np.empty((len(frame), len(cols)), dtype=np.float32)
    mask = []
    for j, c in enumerate(cols):
        s = frame[c]
        if kinds[c] == "categorical":
            raw_codes, raw_uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
            # the same category may come as 1 and "1" (or 1.0): merge by key, computed once per distinct value
            key_codes, uniques = pd.factorize(np.asarray([refmod.category_key(v) for v in raw_uniques], dtype=object))
            codes = np.where(raw_codes >= 0, key_codes[np.maximum(raw_codes, 0)] if len(key_codes) else -1, -1)
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            order = np.argsort(-counts, kind="stable")
            rank = np.empty(len(uniques), dtype=np.int64)
            rank[order] = np.arange(len(uniques))
            mapped = np.where(codes >= 0, np.minimum(rank[np.maximum(codes, 0)], MAX_DOMAIN_CODES), -1)
            out[:, j] = np.where(mapped >= 0, mapped, np.nan)
            mask.append(True)
        else:
            out[:, j] = refmod.numeric_values(s)
            mask.append(False)
    return out, mask


def _domain_classifier(reference: Reference, batch: Columns, cols: list[str], cfg: Mapping[str, Any],
                       skipped: dict[str, str]) -> dict[str, Any] | None:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    mv = cfg["multivariate"]
    if not cols:
        skipped["multivariate"] = "no feature could be compared"
        return None
    assert reference.rows is not None
    seed, n, folds = int(cfg["seed"]), int(mv["sample"]), int(mv["folds"])
    ref_rows = reference.rows.rows(cols, n, seed)
    cur_rows = batch.rows(cols, n, seed + 1)
    if min(len(ref_rows), len(cur_rows)) < max(folds, 10):
        skipped["multivariate"] = f"too few rows for {folds}-fold cross-validation"
        return None
    both = pd.concat([ref_rows.reset_index(drop=True), cur_rows.reset_index(drop=True)], ignore_index=True)
    kinds = {c: reference.kinds[c] for c in cols}
    X, mask = _encode(both, cols, kinds)
    y = np.concatenate([np.zeros(len(ref_rows), dtype=np.int8), np.ones(len(cur_rows), dtype=np.int8)])
    oof = np.zeros(len(y), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with one_thread():
        for train, test in splitter.split(X, y):
            clf = HistGradientBoostingClassifier(max_iter=DOMAIN_ITERATIONS, learning_rate=0.1, max_leaf_nodes=15,
                                                 early_stopping=False, random_state=seed,
                                                 categorical_features=np.asarray(mask) if any(mask) else None)
            clf.fit(X[train], y[train])
            oof[test] = clf.predict_proba(X[test])[:, 1]
    auc = float(roc_auc_score(y, oof))
    threshold = float(mv["auc_threshold"])
    return {"auc": auc, "threshold": threshold, "drift": bool(auc >= threshold), "n_reference": len(ref_rows),
            "n_batch": len(cur_rows), "folds": folds, "columns": cols, "model": "HistGradientBoostingClassifier"}
