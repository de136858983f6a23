"""The evidence's group metrics agree with fairlearn's MetricFrame computed here, independently,
on the same predictions of the same held-out rows. SQLite and PostgreSQL."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from evidence_helpers import fair_frame, train_version
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from modelyard.core.common.errors import ModelyardError
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import fairness
from modelyard.core.registry.review.compute import compute_evidence
from modelyard.core.registry.review.heldout import load_heldout
from modelyard.core.store import Store
from sklearn import metrics as skm


def test_group_metrics_agree_with_fairlearn_on_the_same_predictions(store: Store) -> None:
    v = train_version(store, fair_frame(n=4000, noise=(0.2, 0.03)), "credit")
    doc = compute_evidence(store, v.ref, sensitive=["sex", "age_band"], n_boot=200, repeats=1).payload
    held = load_heldout(store, v.ref, v.id, also=["sex", "age_band"])
    y = held.frame["label"].to_numpy()
    pred = registry.load_model(store, v.ref).predict(held.frame[held.features])
    fns = {"accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
           "f1_macro": partial(skm.f1_score, average="macro"),
           "precision_macro": partial(skm.precision_score, average="macro", zero_division=0),
           "recall_macro": partial(skm.recall_score, average="macro"),
           "selection_rate": partial(selection_rate, pos_label="yes"),
           "true_positive_rate": partial(true_positive_rate, pos_label="yes"),
           "false_positive_rate": partial(false_positive_rate, pos_label="yes")}
    for section in doc["groups"]:
        column = section["column"]
        mf = MetricFrame(metrics=fns, y_true=y, y_pred=pred, sensitive_features=held.frame[column])
        assert {r["group"]: r["n"] for r in section["rows"]} == held.frame[column].value_counts().to_dict()
        for row in section["rows"]:
            for key in fns:
                got = row["metrics"][key]
                assert got["value"] == pytest.approx(mf.by_group.loc[row["group"], key], abs=1e-12), (column, key)
                assert got["low"] <= got["value"] + 1e-12 and got["value"] <= got["high"] + 1e-12
        for key in fns:
            assert section["gaps"][key]["gap"] == pytest.approx(mf.difference()[key], abs=1e-12)
            assert section["gaps"][key]["ratio"] == pytest.approx(mf.ratio()[key], abs=1e-12)
    sex = doc["groups"][0]
    assert sex["gaps"]["accuracy"]["worst"] == "F" and sex["gaps"]["false_positive_rate"]["worst"] == "F"


def test_groups_are_the_values_with_missing_as_their_own_and_too_many_refused() -> None:
    codes, names = fairness.encode_groups(["a", None, "b", "a", np.nan], "region")
    assert names == ["a", "(missing)", "b"] and list(codes) == [0, 1, 2, 0, 1]
    with pytest.raises(ModelyardError, match="The sensitive column age has 40 distinct values; groups need at most 30"):
        fairness.encode_groups(list(range(40)), "age")
