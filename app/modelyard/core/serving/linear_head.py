"""Predictions and class probabilities of a logistic regression from one matrix product.

A stream wants both the prediction and the probabilities of each event. scikit-learn's
``LogisticRegression.predict`` and ``predict_proba`` each check their input again (``validate_data``:
~0.3 ms for one row, most of an event's time) and each compute the decision function. For the
features the fast path (:mod:`.fastpath`) already made, :class:`LogisticHead` computes the decision
function once, exactly as scikit-learn does (``X @ coef_.T + intercept_``), and derives both from
it as scikit-learn does (the sign or the largest score; softmax for several classes, the logistic
function for two).

Nothing is trusted blindly: :func:`logistic_head` returns a head only when its predictions and
probabilities are *equal* (not close) to the estimator's on probe rows (random features of the
right width, and the caller's examples); else None, and the estimator is called as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LogisticHead:
    def __init__(self, estimator: Any) -> None:
        import numpy as np

        coef = np.asarray(estimator.coef_)
        self.coef_T = coef.T if coef.ndim == 2 else coef
        self.intercept = estimator.intercept_
        self.classes = estimator.classes_
        self.binary = len(self.classes) <= 2

    def decision(self, X: Any) -> Any:
        scores = X @ self.coef_T + self.intercept
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

    def predict_both(self, X: Any) -> tuple[Any, Any]:
        """(predictions, class probabilities) of the features ``X``."""
        import numpy as np
        from scipy.special import expit
        from sklearn.utils.extmath import softmax

        scores = self.decision(X)
        if scores.ndim == 1:
            indices = (scores > 0).astype(np.intp)
        else:
            indices = np.argmax(scores, axis=1)
        pred = self.classes.take(indices, axis=0)
        if not self.binary:
            return pred, softmax(scores, copy=True)
        if scores.ndim != 1:
            return pred, None
        prob = expit(scores)  # a new array: the scores are not changed
        return pred, np.stack([1 - prob, prob], axis=1)


def logistic_head(estimator: Any, width: int, examples: Sequence[Any] = ()) -> LogisticHead | None:
    """A :class:`LogisticHead` of ``estimator`` when it reproduces it exactly (see the module docstring)."""
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover - a dependency
        return None
    if type(estimator) is not LogisticRegression or not hasattr(estimator, "coef_"):
        return None
    try:
        head = LogisticHead(estimator)
        if np.asarray(head.coef_T).shape[0] != width:
            return None
        rng = np.random.default_rng(0)
        probes = [rng.normal(0, 3, size=(64, width)), rng.normal(0, 3, size=(1, width)), *examples]
        for X in probes:
            X = np.asarray(X, dtype=np.float64)
            pred, probs = head.predict_both(X)
            if probs is None or not np.array_equal(pred, estimator.predict(X)) or \
                    not np.array_equal(probs, estimator.predict_proba(X)):
                return None
    except Exception:  # noqa: BLE001 - any surprise: the estimator is called as usual
        return None
    return head
