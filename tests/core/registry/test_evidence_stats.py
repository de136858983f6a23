"""The vectorised bootstrap (pure, no store): each resample's metrics equal scikit-learn's with the
resample's row counts as sample weights, and the candidate and champion share the resamples."""

from __future__ import annotations

import numpy as np
import pytest
from modelyard.core.registry.review import stats
from sklearn import metrics as skm


def test_resampled_metrics_equal_sklearn_with_the_row_counts_as_weights() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    score = np.round(rng.random(n) * 0.7 + y * 0.3, 2)  # rounded: many ties
    pred = (score > 0.5).astype(int)
    proba = np.column_stack([1 - score, score])
    loss = -np.log(np.clip(proba[np.arange(n), y], 1e-15, 1))
    order = np.argsort(score, kind="stable")
    scorer = stats.ClassificationScorer(y[order], pred[order], 3, 2, 1, score=score[order], loss=loss[order])
    [w] = list(stats.resample_chunks(n, 3, seed=1))
    got = scorer(w)
    for b in range(3):
        sw = w[b][np.argsort(order)]  # back to the original row order
        assert got["accuracy"][b] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=sw))
        assert got["balanced_accuracy"][b] == pytest.approx(skm.balanced_accuracy_score(y, pred, sample_weight=sw))
        assert got["f1_macro"][b] == pytest.approx(skm.f1_score(y, pred, average="macro", sample_weight=sw))
        assert got["roc_auc"][b] == pytest.approx(skm.roc_auc_score(y, score, sample_weight=sw))
        assert got["log_loss"][b] == pytest.approx(skm.log_loss(y, proba, sample_weight=sw))
        assert got["true_positive_rate"][b] == pytest.approx(skm.recall_score(y, pred, sample_weight=sw))
    yr = rng.normal(size=n)
    pr = yr + rng.normal(scale=0.5, size=n)
    groups = rng.integers(0, 3, n)
    reg = stats.RegressionScorer(yr, pr, groups=groups, n_groups=3)(w)
    for b in range(3):
        for g in range(3):
            sw = w[b] * (groups == g)
            assert reg["rmse"][b, g] == pytest.approx(np.sqrt(skm.mean_squared_error(yr, pr, sample_weight=sw)))
            assert reg["r2"][b, g] == pytest.approx(skm.r2_score(yr, pr, sample_weight=sw))
            assert reg["mape"][b, g] == pytest.approx(skm.mean_absolute_percentage_error(yr, pr, sample_weight=sw))


def test_the_difference_is_paired_and_the_intervals_cover_the_estimate() -> None:
    rng = np.random.default_rng(2)
    n = 5000
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.85, y, 1 - y)
    b = np.where(rng.random(n) < 0.02, 1 - a, a)  # the champion agrees with the candidate on 98 % of rows
    scorers = {"a": stats.ClassificationScorer(y, a, 2, 2, 1), "b": stats.ClassificationScorer(y, b, 2, 2, 1)}
    points, samples = stats.run_bootstrap(scorers, n, 400, seed=0)
    single = stats.estimate(points["a"]["accuracy"], samples["a"]["accuracy"], 0.95)
    diff = stats.estimate(points["a"]["accuracy"] - points["b"]["accuracy"],
                          samples["a"]["accuracy"] - samples["b"]["accuracy"], 0.95)
    assert single["low"] < single["value"] < single["high"] and diff["low"] <= diff["value"] <= diff["high"]
    assert (diff["high"] - diff["low"]) < 0.5 * (single["high"] - single["low"])  # paired: far narrower
    again = stats.run_bootstrap(scorers, n, 400, seed=0)[1]
    assert np.array_equal(again["a"]["accuracy"], samples["a"]["accuracy"])  # seeded


def test_roc_auc_is_exact_for_the_estimate_and_within_a_hair_on_resamples_of_many_distinct_scores() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    y = rng.integers(0, 2, n)
    score = rng.random(n) + 0.4 * y  # continuous: every score distinct, more than AUC_LEVELS of them
    scorer = stats.ClassificationScorer(y, (score > 0.7).astype(int), 2, 2, 1, score=score)
    assert scorer.levels <= stats.AUC_LEVELS
    points, _ = stats.run_bootstrap({"a": scorer}, n, 10, seed=0)
    assert points["a"]["roc_auc"] == skm.roc_auc_score(y, score)
    [w] = list(stats.resample_chunks(n, 4, seed=5))
    got = scorer(w)["roc_auc"]
    for b in range(4):
        assert abs(got[b] - skm.roc_auc_score(y, score, sample_weight=w[b])) < 1e-3


def test_the_dense_and_the_counting_paths_agree(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    n = 2000
    y, groups = rng.normal(size=n), rng.integers(0, 7, n)
    pred = y + rng.normal(size=n)
    labels, guess = rng.integers(0, 3, n), rng.integers(0, 3, n)
    [w] = list(stats.resample_chunks(n, 5, seed=1))
    dense = (stats.RegressionScorer(y, pred, groups=groups, n_groups=7)(w),
             stats.ClassificationScorer(labels, guess, 3, 3, None, groups=groups, n_groups=7)(w))
    monkeypatch.setattr(stats, "DENSE_CELLS", 0)
    counted = (stats.RegressionScorer(y, pred, groups=groups, n_groups=7)(w),
               stats.ClassificationScorer(labels, guess, 3, 3, None, groups=groups, n_groups=7)(w))
    for a, b in zip(dense, counted, strict=True):
        for key in a:
            assert np.allclose(a[key], b[key], equal_nan=True), key
