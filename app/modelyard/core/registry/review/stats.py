"""A fast paired bootstrap: the metrics of a model's predictions, and of its groups, on resampled rows.

Nothing is refitted and no metric function is called per resample. Each chunk of resamples is a
matrix of row counts ``W`` (resamples x rows; a row drawn twice counts 2), drawn once and shared
by every statistic, so the candidate, the champion and every group are scored on the SAME
resamples (a paired bootstrap: the difference's interval comes from the per-resample
differences). Every statistic is then a product with ``W``:

* classification: weighted confusion counts (``W`` times a one-hot of the cell
  ``true * L + predicted``), from which accuracy, balanced accuracy, macro precision, recall and F1 (over the
  model's classes, zero where undefined, as :mod:`modelyard.core.experiments.training.metrics`
  scores them) and, for binary targets, the selection rate and true/false positive rates follow;
  ROC AUC (binary) from weighted positive/negative counts per score level (ties count half);
  log loss as the weighted mean of each row's loss;
* regression: weighted sums of the error, its square, the target and its square (rmse, mae, r2,
  mape).

The point estimate is the same statistic with every row counted once; the interval is the
percentile interval of the resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from modelyard.core.experiments.training.metrics import GREATER_IS_BETTER

CONFUSION_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro")
BINARY_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
GROUP_METRICS = CONFUSION_METRICS + BINARY_RATES + REGRESSION_METRICS  # what a fairness gate can name
HIGHER_IS_BETTER: dict[str, bool] = {**GREATER_IS_BETTER, "selection_rate": True, "true_positive_rate": True,
                                     "false_positive_rate": False}
CHUNK_CELLS = 4_000_000  # rows x resamples per chunk (~32 MB of counts)
DENSE_CELLS = 4_000_000  # rows x cells of a one-hot kept dense
AUC_LEVELS = 4096  # score levels of ROC AUC on the resamples

Stats = dict[str, np.ndarray]


def resample_chunks(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row-count matrices (b x ``n``, float64) of ``n_boot`` resamples, in chunks of b."""
    rng = np.random.default_rng(seed)
    per = max(1, min(n_boot, CHUNK_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(per, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b, dtype=np.int64) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        del idx
        yield counts.astype(np.float64)
        done += b


class _OneHot:
    """Row i in cell ``codes[i]`` of ``cells``: ``times(w)`` sums each resample's row counts per cell
    (resamples x cells): a product with a dense one-hot while small (BLAS), else one bincount per
    resample (faster than a sparse product for a one-hot)."""

    def __init__(self, codes: np.ndarray, cells: int) -> None:
        self.codes, self.cells = np.asarray(codes, dtype=np.int64), int(cells)
        self.dense = None
        if len(self.codes) * self.cells <= DENSE_CELLS:
            self.dense = np.zeros((len(self.codes), self.cells))
            self.dense[np.arange(len(self.codes)), self.codes] = 1.0

    def times(self, w: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return w @ self.dense
        return np.stack([np.bincount(self.codes, weights=row, minlength=self.cells) for row in w])


def from_confusion(c: np.ndarray, k: int, pos: int | None) -> Stats:
    """Metrics from confusion counts ``c`` (..., L, L: true x predicted); macro averages over the
    first ``k`` labels (the model's classes; later labels are ones it never predicts)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = c.sum(axis=(-2, -1))
        diag = np.diagonal(c, axis1=-2, axis2=-1)
        true, pred = c.sum(axis=-1), c.sum(axis=-2)
        present = true > 0
        recall = np.where(present, diag / np.where(present, true, 1), 0.0)
        precision = np.where(pred > 0, diag / np.where(pred > 0, pred, 1), 0.0)
        both = true + pred
        f1 = np.where(both > 0, 2 * diag / np.where(both > 0, both, 1), 0.0)
        out: Stats = {
            "accuracy": diag.sum(axis=-1) / n,
            "balanced_accuracy": recall.sum(axis=-1) / present.sum(axis=-1),
            "precision_macro": precision[..., :k].mean(axis=-1),
            "recall_macro": recall[..., :k].mean(axis=-1),
            "f1_macro": f1[..., :k].mean(axis=-1),
        }
        if pos is not None:
            tp = c[..., pos, pos]
            out["selection_rate"] = pred[..., pos] / n
            out["true_positive_rate"] = tp / true[..., pos]
            out["false_positive_rate"] = (pred[..., pos] - tp) / (n - true[..., pos])
    return out


def from_sums(sums: np.ndarray) -> Stats:
    """rmse, mae, r2 and mape from weighted sums (..., 6): n, e^2, |e|, y, y^2, |e|/max(|y|, eps)."""
    n, se2, sae, sy, sy2, sape = (sums[..., i] for i in range(6))
    with np.errstate(divide="ignore", invalid="ignore"):
        total = sy2 - sy * sy / n
        r2 = np.where(np.abs(total) > 1e-12 * np.maximum(sy2, 1.0), 1 - se2 / np.where(total == 0, 1, total),
                      np.where(se2 == 0, 1.0, 0.0))
        return {"rmse": np.sqrt(se2 / n), "mae": sae / n, "r2": r2, "mape": sape / n}


def regression_values(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The per-row columns :func:`from_sums` sums (rows x 6)."""
    e = pred - y
    return np.column_stack([np.ones_like(y), e * e, np.abs(e), y, y * y,
                            np.abs(e) / np.maximum(np.abs(y), np.finfo(np.float64).eps)])


class ClassificationScorer:
    """The metrics of predicted label codes ``pred`` against ``y`` (0..L-1), optionally per group.

    ``score`` (binary: the positive class's score) gives ROC AUC: exact for the estimate; on the
    resamples, from weights per score level (the distinct scores, or beyond :data:`AUC_LEVELS` of
    them equal-count bins of their ranks: pairs in one bin count as ties, which moves a resample's
    AUC by at most the share of such pairs, about 1 / AUC_LEVELS). ``loss`` (each row's log loss)
    gives log loss."""

    def __init__(self, y: np.ndarray, pred: np.ndarray, n_labels: int, k: int, pos: int | None, *,
                 groups: np.ndarray | None = None, n_groups: int = 1, score: np.ndarray | None = None,
                 loss: np.ndarray | None = None) -> None:
        self.L, self.k, self.pos, self.G = n_labels, k, pos, n_groups
        g = groups if groups is not None else np.zeros(len(y), dtype=np.int64)
        self.grouped = groups is not None
        self.onehot = _OneHot(g * n_labels * n_labels + y * n_labels + pred, n_groups * n_labels * n_labels)
        self.loss = loss
        self.auc: Any = None
        self.exact_auc: float | None = None
        if score is not None and pos is not None and not self.grouped and 0 < (y == pos).sum() < len(y):
            from sklearn.metrics import roc_auc_score

            self.exact_auc = float(roc_auc_score(y == pos, score))
            # the score's level: its distinct values, or (beyond AUC_LEVELS of them) equal-count bins of
            # its rank, ties kept together; a positive beats the negatives on lower levels, ties half
            distinct, level = np.unique(score, return_inverse=True)
            if len(distinct) > AUC_LEVELS:
                first = np.searchsorted(np.sort(score), distinct, side="left")
                level = (first * AUC_LEVELS // len(score))[level]
            self.levels = int(level.max()) + 1
            self.auc = _OneHot(level * 2 + (y == pos), self.levels * 2)

    def point(self, w: np.ndarray) -> Stats:
        """The statistics with every row once (``w`` all ones); ROC AUC from the exact scores."""
        out = self(w)
        if self.exact_auc is not None:
            out["roc_auc"] = np.array([self.exact_auc])
        return out

    def __call__(self, w: np.ndarray) -> Stats:
        b = w.shape[0]
        counts = self.onehot.times(w).reshape(b, self.G, self.L, self.L)
        out = from_confusion(counts, self.k, self.pos)
        if not self.grouped:
            out = {key: v[:, 0] for key, v in out.items()}
            if self.loss is not None:
                out["log_loss"] = (w @ self.loss) / w.sum(axis=1)
            if self.auc is not None:
                by_level = self.auc.times(w).reshape(b, self.levels, 2)
                out["roc_auc"] = _weighted_auc(by_level[:, :, 1], by_level[:, :, 0])
        return out


def _weighted_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample from the weight of positives and negatives per score level
    (resamples x levels, ascending): every positive beats the negatives below its level and ties
    half of those on it; over (weight of positives x weight of negatives)."""
    below = np.cumsum(neg, axis=1) - 0.5 * neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.einsum("ij,ij->i", pos, below) / (pos.sum(axis=1) * neg.sum(axis=1))


class RegressionScorer:
    """rmse, mae, r2 and mape of ``pred`` against ``y``, optionally per group."""

    def __init__(self, y: np.ndarray, pred: np.ndarray, *, groups: np.ndarray | None = None, n_groups: int = 1) -> None:
        self.values = regression_values(y, pred)  # rows x 6
        self.groups, self.G = groups, n_groups
        self.dense = None
        if groups is not None and len(y) * n_groups * 6 <= DENSE_CELLS:  # rows x (group g's six columns at 6g..)
            self.dense = (np.eye(n_groups)[groups][:, :, None] * self.values[:, None, :]).reshape(len(y), -1)

    def __call__(self, w: np.ndarray) -> Stats:
        if self.groups is None:
            return from_sums(w @ self.values)
        if self.dense is not None:
            return from_sums((w @ self.dense).reshape(w.shape[0], self.G, 6))
        cells = _OneHot(self.groups, self.G)
        return from_sums(np.stack([cells.times(w * self.values[:, c]) for c in range(6)], axis=-1))


def run_bootstrap(scorers: dict[str, Callable[[np.ndarray], Stats]], n: int, n_boot: int, seed: int, *,
                  progress: Callable[[float], None] | None = None) -> tuple[dict[str, Stats], dict[str, Stats]]:
    """``(points, samples)``: each scorer's statistics with every row once, and on ``n_boot``
    resamples (arrays with the resamples first), all scorers on the same resamples."""
    ones = np.ones((1, n))
    points = {name: {k: v[0] for k, v in getattr(f, "point", f)(ones).items()} for name, f in scorers.items()}
    parts: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in scorers}
    done = 0
    for wt in resample_chunks(n, n_boot, seed):
        for name, f in scorers.items():
            for key, v in f(wt).items():
                parts[name].setdefault(key, []).append(v)
        done += wt.shape[0]
        if progress is not None:
            progress(done / n_boot)
    samples = {name: {k: np.concatenate(v) for k, v in d.items()} for name, d in parts.items()}
    return points, samples


def interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of resampled values (resamples first); NaN resamples are left out."""
    tail = (1 - confidence) / 2 * 100
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def plain(value: Any) -> float | None:
    """A JSON number: a finite float, else None."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def estimate(point: Any, samples: np.ndarray, confidence: float) -> dict[str, float | None]:
    low, high = interval(samples, confidence)
    return {"value": plain(point), "low": plain(low), "high": plain(high)}
