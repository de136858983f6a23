"""The evidence of a version: the candidate against the champion on the same held-out rows with
paired bootstrap intervals, computed as a job (cancellable), refused clearly without held-out
rows. SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from evidence_helpers import fair_frame, train_version
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.metrics import compute_metrics
from modelyard.core.jobs.runner import run_job
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import evidence
from modelyard.core.registry.review.compute import compute_evidence, evidence_spec
from modelyard.core.registry.review.heldout import load_heldout
from modelyard.core.store import Store


def test_candidate_and_champion_are_scored_on_the_same_held_out_rows_with_paired_intervals(store: Store) -> None:
    frame = fair_frame(n=3000)
    champion = registry.set_alias(store, train_version(store, frame, "credit").ref, "champion", comment="first")
    candidate = train_version(store, frame, "credit", model="random_forest")
    info = compute_evidence(store, candidate.ref, sensitive=["sex", "age_band"], n_boot=300, repeats=2)
    doc = info.payload
    assert info.champion == champion.ref == doc["champion"] and doc["version"] == candidate.ref
    held = load_heldout(store, candidate.ref, candidate.id)
    assert doc["rows"] == {"n": 750, "part": "test", "dataset_version": "credit@v1",
                           "split": held.split_label} and len(held.frame) == 750
    assert held.split_label.startswith('the split "') and held.split_label.endswith(' of credit@v1')
    assert (doc["format"], doc["n_boot"], doc["confidence"], doc["task"], doc["positive_label"]) == \
        (1, 300, 0.95, "classification", "yes")
    X, y = held.frame[held.features], held.frame["label"]
    by_metric = {e["metric"]: e for e in doc["metrics"]}
    for ref, side in ((candidate.ref, "candidate"), (champion.ref, "champion")):
        model = registry.load_model(store, ref)
        expected = compute_metrics("classification", y, model.predict(X), proba=model.predict_proba(X),
                                   classes=model.classes_)
        for key in ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc",
                    "log_loss"):
            e = by_metric[key][side]
            assert e["value"] == pytest.approx(expected[key], abs=1e-9), (side, key)
            assert e["low"] <= e["value"] <= e["high"]
            assert key == "log_loss" or e["high"] - e["low"] < 0.1
    for e in doc["metrics"]:
        diff = e["difference"]
        assert diff["value"] == pytest.approx(e["candidate"]["value"] - e["champion"]["value"])
        assert diff["low"] <= diff["value"] <= diff["high"]
    acc = by_metric["accuracy"]
    # paired: the two models err on mostly the same rows, so the difference varies less than either
    assert acc["difference"]["high"] - acc["difference"]["low"] < acc["candidate"]["high"] - acc["candidate"]["low"]
    assert [g["column"] for g in doc["groups"]] == ["sex", "age_band"] == doc["sensitive"]
    assert sum(r["n"] for r in doc["groups"][1]["rows"]) == 750
    assert doc["importance"]["features"][0]["feature"] == "x1" and len(doc["partial_dependence"]) == 3
    assert doc["calibration"]["of"] == "yes" and sum(doc["calibration"]["counts"]) == 750
    assert evidence.latest_evidence(store, candidate.ref).id == info.id
    assert info.settings == {"sensitive": ["sex", "age_band"], "n_boot": 300, "repeats": 2, "seed": 0,
                             "confidence": 0.95}


def test_the_champion_itself_has_no_comparison_and_regression_works(store: Store) -> None:
    frame = fair_frame(n=800)
    frame["amount"] = frame["x1"] * 3 + frame["x2"] + np.random.default_rng(0).normal(size=len(frame))
    v = train_version(store, frame.drop(columns=["label"]), "amount", model="ridge", target="amount")
    registry.set_alias(store, v.ref, "champion", comment="first")
    doc = compute_evidence(store, v.ref, sensitive=["sex"], n_boot=100, repeats=2).payload
    assert doc["champion"] is None and doc["task"] == "regression" and doc["calibration"] is None
    assert doc["notes"] == [f"{v.ref} is the champion: there is no other version to compare it with."]
    assert {e["metric"] for e in doc["metrics"]} == {"rmse", "mae", "r2", "mape"}
    assert all(e["champion"] is None and e["difference"] is None for e in doc["metrics"])
    rmse = doc["groups"][0]["gaps"]["rmse"]
    assert rmse["gap"] >= 0 and rmse["worst"] in ("F", "M") and doc["importance"]["metric"] == "rmse"
    assert doc["importance"]["features"][0]["feature"] == "x1"


def test_the_evidence_runs_as_a_job_and_a_cancel_stores_nothing(store: Store) -> None:
    v = train_version(store, fair_frame(n=2000), "credit")
    outcome = run_job(store, evidence_spec(v.ref, sensitive=["sex"], n_boot=50, repeats=1))  # in a child
    assert outcome.ok, outcome.error
    assert outcome.result["ref"] == v.ref and outcome.result["rows"] == 500
    first = evidence.latest_evidence(store, v.ref)
    assert first is not None and first.id == outcome.result["evidence_id"]

    cancel = threading.Event()

    class Reporter:
        messages: list[str] = []

        def progress(self, fraction: float | None, message: str) -> None:
            self.messages.append(message)
            if message.startswith("bootstrap"):
                cancel.set()  # the next report is a cancellation point

        def log(self, line: str) -> None:
            pass

    reporter = Reporter()
    outcome = run_job(store, evidence_spec(v.ref, n_boot=5000, process=False), reporter=reporter, cancel_event=cancel)
    assert outcome.status == "cancelled"
    assert any(msg.startswith("bootstrap") for msg in reporter.messages)
    assert not any(msg.startswith("permutation") for msg in reporter.messages)
    assert evidence.latest_evidence(store, v.ref).id == first.id  # nothing new stored


def test_a_version_without_held_out_rows_or_with_an_unknown_column_is_refused_by_name(store: Store) -> None:
    with tracking.start_run("team", store=store) as run:
        run.log_bytes(b"model", "model/model.joblib", kind="model")
    bare = registry.register(store, run.id, "bare")
    with pytest.raises(ModelyardError, match="bare@v1 has no dataset version in this store") as caught:
        compute_evidence(store, bare.ref)
    assert "modelyard train" in caught.value.hint
    v = train_version(store, fair_frame(n=400), "credit")
    with pytest.raises(ModelyardError, match="The sensitive column region is not in the rows of credit@v1"):
        compute_evidence(store, v.ref, sensitive=["region"])
    with pytest.raises(ModelyardError, match="at least 10"):
        compute_evidence(store, v.ref, n_boot=3)


def test_three_classes_and_a_classifier_without_probabilities(store: Store) -> None:
    frame = fair_frame(n=1200)
    frame["label"] = np.where(frame["x1"] > 0.5, "high", np.where(frame["x1"] < -0.5, "low", "mid"))
    three = train_version(store, frame, "three")
    doc = compute_evidence(store, three.ref, sensitive=["sex"], n_boot=50, repeats=1).payload
    assert doc["positive_label"] is None and "roc_auc" not in {e["metric"] for e in doc["metrics"]}
    assert "ROC AUC is left out: the evidence computes it for two classes only." in doc["notes"]
    assert doc["calibration"]["of"] == "the predicted class (top-class confidence)"
    assert "selection_rate" not in doc["groups"][0]["gaps"] and doc["partial_dependence"][0]["of"].startswith("P(")
    svm = train_version(store, fair_frame(n=1200), "svm", model="svm")
    doc = compute_evidence(store, svm.ref, sensitive=["sex"], n_boot=50, repeats=1).payload
    assert doc["calibration"] is None and doc["partial_dependence"][0]["of"] == "share predicted yes"
    assert all(0 <= a <= 1 for a in doc["partial_dependence"][0]["average"])
    assert "log_loss" not in {e["metric"] for e in doc["metrics"]}
