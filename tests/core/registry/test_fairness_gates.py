"""Fairness gates: a model that is worse for one group (a label-noise rate that differs by group)
fails a gate naming the group, the metric, the gap and the threshold; the same data without the
disparity passes; the gates fail closed without evidence. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from evidence_helpers import fair_frame, train_version
from modelyard.core.common.errors import GateFailed, ModelyardError
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review.compute import compute_evidence
from modelyard.core.store import Store

RULE = {"column": "sex", "metric": "accuracy", "max_gap": 0.05}


def _gated(store: Store, name: str, noise: tuple[float, float], rules: list[dict]) -> registry.ModelVersionInfo:
    v = train_version(store, fair_frame(noise=noise), name)
    registry.set_gates(store, name, {"sensitive_columns": ["sex"], "fairness": rules}, comment="fairness policy")
    return v


def test_a_model_worse_for_one_group_fails_naming_group_metric_gap_and_threshold(store: Store) -> None:
    v = _gated(store, "credit", (0.25, 0.02), [RULE])
    doc = compute_evidence(store, v.ref, n_boot=100, repeats=2).payload
    report = registry.check_gates(store, v.ref)
    assert not report.passed
    assert "accuracy between groups of sex: gap at most 0.05" in report.checked
    [reason] = report.reasons
    section = next(g for g in doc["groups"] if g["column"] == "sex")
    by_group = {r["group"]: r["metrics"]["accuracy"]["value"] for r in section["rows"]}
    gap = section["gaps"]["accuracy"]
    assert gap["worst"] == "F" and gap["best"] == "M"  # the noisier group
    assert reason == (f"accuracy gap between groups of sex is {gap['gap']:.3f} (F {by_group['F']:.3f}, "
                      f"M {by_group['M']:.3f}), above the maximum 0.05.")
    assert gap["gap"] == pytest.approx(by_group["M"] - by_group["F"]) and gap["gap"] > 0.1
    with pytest.raises(GateFailed, match=re.escape(reason)):
        registry.set_alias(store, v.ref, "champion", comment="try")


def test_the_same_data_without_the_disparity_passes(store: Store) -> None:
    v = _gated(store, "credit", (0.05, 0.05), [RULE, {"column": "sex", "metric": "selection_rate", "min_ratio": 0.8}])
    compute_evidence(store, v.ref, n_boot=100, repeats=2)
    report = registry.check_gates(store, v.ref)
    assert report.passed, report.reasons
    assert "selection_rate between groups of sex: ratio at least 0.8" in report.checked
    registry.set_alias(store, v.ref, "champion", comment="fair enough")


def test_a_ratio_below_the_minimum_says_so(store: Store) -> None:
    v = _gated(store, "credit", (0.25, 0.02), [{"column": "sex", "metric": "true_positive_rate", "min_ratio": 0.99}])
    compute_evidence(store, v.ref, n_boot=50, repeats=1)
    [reason] = registry.check_gates(store, v.ref).reasons
    assert re.fullmatch(r"true_positive_rate ratio between groups of sex is 0\.\d{3} \(F 0\.\d{3}, M 0\.\d{3}\), "
                        r"below the minimum 0\.99\.", reason), reason


def test_fairness_gates_fail_closed_without_evidence_or_without_the_column(store: Store) -> None:
    v = _gated(store, "credit", (0.05, 0.05), [RULE])
    report = registry.check_gates(store, v.ref)
    assert report.reasons == [f"{v.ref} has no evidence to check the fairness gates on; compute it with "
                               f"'modelyard model evidence {v.ref}'."]
    with pytest.raises(GateFailed, match="no evidence"):
        registry.set_alias(store, v.ref, "champion", comment="try")
    compute_evidence(store, v.ref, sensitive=["age_band"], n_boot=20, repeats=1)  # another column than the gate's
    assert registry.check_gates(store, v.ref).reasons == [
        f"The evidence of {v.ref} has no groups of sex; compute it again with "
        f"'modelyard model evidence {v.ref} --sensitive sex'."]
    registry.set_alias(store, v.ref, "champion", comment="override", force=True)  # --force still works, audited
    assert registry.timeline(store, "credit")[1]["action"] == "gate_override"


def test_fairness_gates_are_validated_with_one_line_messages(store: Store) -> None:
    train_version(store, fair_frame(n=400), "credit")
    cases = [
        ({"fairness": [{"column": "sex", "metric": "roc", "max_gap": 0.1}]}, "needs a metric, one of accuracy"),
        ({"fairness": [{"column": "sex", "metric": "accuracy"}]}, "needs max_gap (e.g. 0.05) or min_ratio"),
        ({"fairness": [{"column": "sex", "metric": "accuracy", "min_ratio": 1.5}]}, "must be between 0 and 1"),
        ({"fairness": [{"column": "sex", "metric": "accuracy", "max_gap": "a lot"}]}, "must be a number"),
        ({"fairness": [{"metric": "accuracy", "max_gap": 0.1}]}, "needs a column"),
        ({"sensitive_columns": [""]}, "not a column name"),
    ]
    for gates, message in cases:
        with pytest.raises(ModelyardError, match=re.escape(message)) as caught:
            registry.set_gates(store, "credit", gates, comment="x")
        assert "\n" not in str(caught.value)
    info = registry.set_gates(store, "credit", {"fairness": [RULE]}, comment="the rule's column becomes sensitive")
    assert info.gates["sensitive_columns"] == ["sex"]
