"""Explanations on held-out rows (pure: a fitted scikit-learn pipeline, no store): permutation
importance ranks a planted feature first and noise near zero, and equals sklearn's own; near
copies are flagged; partial dependence and calibration come out as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidence_helpers import fair_frame
from modelyard.core.registry.review import explain
from sklearn.compose import ColumnTransformer
from sklearn.inspection import partial_dependence
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _fitted(frame: pd.DataFrame, numeric: list[str]):
    pre = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000))
    train, test = frame.iloc[:3000], frame.iloc[3000:]
    model.fit(train.drop(columns=["label"]), train["label"])
    return model, test.drop(columns=["label"]), test["label"]


def test_permutation_importance_ranks_the_planted_feature_first_noise_near_zero_and_equals_sklearn() -> None:
    frame = fair_frame(n=4000).drop(columns=["age_band"])
    model, X, y = _fitted(frame, ["x1", "x2", "noise"])
    got = explain.permutation_importance(model, X, y, "classification", repeats=5, seed=3)
    names = [f["feature"] for f in got["features"]]
    assert names[0] == "x1" and got["features"][0]["mean"] > 0.3
    noise = next(f for f in got["features"] if f["feature"] == "noise")
    assert abs(noise["mean"]) < 0.01
    ours = {f["feature"]: f for f in got["features"]}
    theirs = sk_permutation_importance(model, X, y, scoring="accuracy", n_repeats=5, random_state=3)
    for j, name in enumerate(X.columns):
        assert ours[name]["mean"] == pytest.approx(theirs.importances_mean[j], abs=1e-12)
        assert ours[name]["std"] == pytest.approx(theirs.importances_std[j], abs=1e-12)
    assert (got["metric"], got["repeats"], got["rows"]) == ("accuracy", 5, 1000)


def test_near_copies_are_warned_about_and_independent_features_are_not() -> None:
    frame = fair_frame(n=2000, copy=True)
    pairs = explain.near_copies(frame, ["x1", "x1_copy", "x2", "noise"])
    assert [(p["a"], p["b"]) for p in pairs] == [("x1", "x1_copy")] and pairs[0]["r"] > 0.99
    warning = explain.near_copy_warning(pairs)
    assert warning.startswith("x1 and x1_copy are near copies (r = 1.00): shuffling one leaves the other")
    assert explain.near_copies(frame, ["x1", "x2", "noise"]) == [] and explain.near_copy_warning([]) is None


def test_partial_dependence_and_calibration_of_a_classifier() -> None:
    frame = fair_frame(n=4000).drop(columns=["age_band"])
    model, X, y = _fitted(frame, ["x1", "x2", "noise"])
    [x1, sex] = explain.partial_dependence(model, X, ["x1", "sex"], ["sex"], task="classification",
                                           target="label", seed=0)
    assert x1["of"] == "P(yes)" and x1["kind"] == "numeric" and len(x1["grid"]) == explain.PDP_GRID
    assert np.all(np.diff(x1["average"]) > 0) and x1["average"][0] < 0.1 < 0.9 < x1["average"][-1]
    assert sex["kind"] == "categorical" and sorted(sex["grid"]) == ["F", "M"]
    theirs = partial_dependence(model, X.sample(explain.PDP_ROWS, random_state=0), ["x1"], kind="average",
                                custom_values={"x1": np.asarray(x1["grid"])})
    assert np.allclose(theirs["average"][0], x1["average"], atol=1e-12)  # sklearn's brute partial dependence
    calib = explain.calibration(y, model.predict_proba(X), list(model.classes_), "yes")
    assert calib["of"] == "yes" and sum(calib["counts"]) == len(y) == 1000
    assert len(calib["prob_pred"]) == len(calib["prob_true"]) == len(calib["counts"])
    assert 0 < calib["brier"] < 0.1
    three = pd.Series(np.where(X["x1"] > 0.5, "high", np.where(X["x1"] < -0.5, "low", "mid")))
    multi = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[["x1", "x2"]], three)
    calib = explain.calibration(three, multi.predict_proba(X[["x1", "x2"]]), list(multi.classes_), None)
    assert calib["of"] == "the predicted class (top-class confidence)" and sum(calib["counts"]) == 1000
