"""The metrics a run and a search trial record are scikit-learn's own, whatever the labels; the
features reach the model as the same floats whichever way they are converted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelyard.core.experiments.training.metrics import compute_metrics
from modelyard.core.experiments.training.preprocess import to_float
from sklearn import metrics as skm

LABELS = ["a", "b", "c", "d"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1, max_size=40),
       st.one_of(st.none(), st.lists(st.sampled_from(LABELS[:3]), min_size=1, max_size=3, unique=True)))
def test_the_macro_averages_equal_scikit_learns_whatever_labels_the_rows_and_the_model_know(
        pairs: list[tuple[str, str]], classes: list[str] | None) -> None:
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    labels = sorted(classes) if classes else None
    got = compute_metrics("classification", y_true, y_pred, classes=np.array(labels) if labels else None)
    for key, fn in (("precision_macro", skm.precision_score), ("recall_macro", skm.recall_score),
                    ("f1_macro", skm.f1_score)):
        assert got[key] == float(fn(y_true, y_pred, average="macro", zero_division=0, labels=labels)), key


NAN = np.nan


@pytest.mark.parametrize(("frame", "want"), [
    (pd.DataFrame({"i": [1, 2, 3], "f": [0.5, NAN, 2.0], "b": [True, False, True]}),
     [[1, 0.5, 1], [2, NAN, 0], [3, 2, 1]]),
    (pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "nb": pd.array([True, None, False], dtype="boolean")}),
     [[1, 1], [NAN, NAN], [3, 0]]),
    (pd.DataFrame({"t": pd.to_timedelta([1, 2, None], unit="s"), "x": [1.0, 2.0, 3.0]}),
     [[1, 1], [2, 2], [NAN, 3]]),
    (pd.DataFrame({"s": ["1.5", "x", None], "b": [True, False, True]}),
     [[1.5, 1], [NAN, 0], [NAN, 1]]),
], ids=["numbers", "nullable", "durations", "text"])
def test_features_reach_the_model_as_floats_with_missing_values_as_nan(frame: pd.DataFrame, want: list) -> None:
    got = to_float(frame)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float64))
