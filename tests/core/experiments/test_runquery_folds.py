"""Cross-validation metrics logged per fold (``cv_<metric>`` at steps 0..k-1): the runs table, its
sort, its in-memory filter, the SQL filter and the CSV export see the mean over the folds, not the
last fold (which is what ``latest_metrics`` holds)."""

from __future__ import annotations

import numpy as np
import pytest
from modelyard.core.experiments import runquery as rq
from modelyard.core.experiments import tracking
from modelyard.core.store import Store

FOLDS = {"high-mean": [0.90, 0.88, 0.70],   # mean 0.8267, last fold 0.70
         "low-mean": [0.60, 0.65, 0.95]}    # mean 0.7333, last fold 0.95


@pytest.fixture(params=["rows", "block cache"])
def store(tmp_path, monkeypatch: pytest.MonkeyPatch, request):
    monkeypatch.setattr(rq.loader, "CACHE_MIN_RUNS", 0 if request.param == "block cache" else 10**9)
    s = Store.open(tmp_path / "store")
    for name, folds in FOLDS.items():
        with tracking.start_run("cv", name=name, store=s) as run:
            for i, v in enumerate(folds):
                run.log_metric("cv_accuracy", v, step=i)
            run.log_metrics({"cv_accuracy_mean": float(np.mean(folds)), "cv_accuracy_std": float(np.std(folds)),
                             "accuracy": folds[-1]})
    with tracking.start_run("cv", name="no-cv", store=s) as run:
        run.log_metric("accuracy", 0.5)
    yield s
    s.close()


def by_name(table: rq.RunsTable, column: str) -> dict[str, object]:
    return dict(zip(table.column("name"), table.column(column), strict=True))


def test_a_fold_series_column_is_the_mean_over_folds_with_the_folds_beside_it(store):
    for _ in range(2):  # the second read comes from the block cache when it is used
        table = rq.query_runs(store, ["cv"])
        values = by_name(table, "metrics.cv_accuracy")
        for name, folds in FOLDS.items():
            assert values[name] == pytest.approx(np.mean(folds))
            assert values[name] == pytest.approx(by_name(table, "metrics.cv_accuracy_mean")[name])
            assert rq.fold_values(by_name(table, "folds.cv_accuracy")[name]) == pytest.approx(folds)
        assert np.isnan(values["no-cv"]) and by_name(table, "folds.cv_accuracy")["no-cv"] is None
        # the single-value companions are not fold series
        assert "folds.cv_accuracy_mean" not in table.columns


def test_sort_and_filters_in_memory_and_in_sql_use_the_mean(store):
    table = rq.query_runs(store, ["cv"])
    ordered = table.sort("metrics.cv_accuracy", ascending=False)
    assert list(ordered.column("name"))[:2] == ["high-mean", "low-mean"]  # by last fold it would be the reverse
    assert list(table.filter("metrics.cv_accuracy > 0.8").column("name")) == ["high-mean"]
    assert list(rq.query_runs(store, ["cv"], filter="metrics.cv_accuracy > 0.8").column("name")) == ["high-mean"]
    top = rq.query_runs(store, ["cv"], order_by=["metrics.cv_accuracy DESC"], limit=1)
    assert list(top.column("name")) == ["high-mean"]


def test_a_refresh_keeps_the_means_of_new_runs(store):
    table = rq.query_runs(store, ["cv"])
    with tracking.start_run("cv", name="later", store=store) as run:
        for i, v in enumerate([0.5, 0.7]):
            run.log_metric("cv_accuracy", v, step=i)
    fresh = table.refresh()
    assert by_name(fresh, "metrics.cv_accuracy")["later"] == pytest.approx(0.6)
    assert rq.fold_values(by_name(fresh, "folds.cv_accuracy")["later"]) == [0.5, 0.7]
    assert by_name(fresh, "metrics.cv_accuracy")["high-mean"] == pytest.approx(np.mean(FOLDS["high-mean"]))
