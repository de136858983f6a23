"""The model registry: versions, aliases, stages, gates, the audit timeline and loading."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from modelyard.core.common.errors import GateFailed, ModelyardError, NotFoundError
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select

X = np.array([[i, i % 3] for i in range(20)], dtype=float)
Y = np.array([0] * 10 + [1] * 10)


def make_split(store: Store, name: str = "iris") -> tuple[int, int]:
    """A dataset version and a split of it (rows written directly: no import job)."""
    with store.write() as s:
        ds = m.Dataset(name=name)
        s.add(ds)
        s.flush()
        v = m.DatasetVersion(dataset_id=ds.id, version=1, content_hash="0" * 64, n_rows=20, n_cols=3)
        s.add(v)
        s.flush()
        sp = m.DatasetSplit(dataset_version_id=v.id, name="default", method="random", seed=0, spec={"test": 0.2})
        s.add(sp)
        s.flush()
        return v.id, sp.id


def make_run(store: Store, metrics: dict[str, float], *, model: bool = True, dv: int | None = None,
             split: int | None = None, spec: dict[str, Any] | None = None) -> str:
    from sklearn.linear_model import LogisticRegression

    with tracking.start_run("churn", store=store, dataset_version_id=dv, split_id=split,
                            spec=spec or {"model": "logistic_regression"}) as run:
        run.log_metrics(metrics)
        run.log_metrics({"val_accuracy": 0.5, "cv_f1": 0.4})
        if model:
            run.log_model(LogisticRegression().fit(X, Y), input_example=X[:3])
    return run.id


def test_register_creates_numbered_versions_linked_to_run_and_dataset(store: Store) -> None:
    dv, split = make_split(store)
    r1 = make_run(store, {"accuracy": 0.8}, dv=dv, split=split)
    r2 = make_run(store, {"accuracy": 0.9}, dv=dv, split=split)
    v1 = registry.register(store, r1, "churn")
    v2 = registry.register(store, r2[:10], "churn", comment="retrained")
    assert (v1.version, v2.version) == (1, 2) and v2.ref == "churn@v2"
    assert v1.run_id == r1 and v2.run_id == r2
    assert v1.dataset_version_id == dv and v1.split_id == split
    assert v1.card is not None and v1.card["spec"] == {"model": "logistic_regression"}
    assert v2.metrics == {"accuracy": 0.9}  # test metrics only: no val_ / cv_
    assert v1.signature is not None and v1.signature["inputs"][0]["shape"] == [-1, 2]
    assert v1.stage == "None" and v1.aliases == [] and v1.created_by == "tester"
    assert registry.get_version(store, "churn").version == 2
    assert registry.get_version(store, "churn@v1").id == v1.id
    assert registry.get_version(store, "churn@1").id == v1.id
    assert [v.version for v in registry.list_versions(store, "churn")] == [1, 2]
    (info,) = registry.list_models(store)
    assert info.name == "churn" and info.latest_version == 2 and info.n_versions == 2
    with store.session() as s:
        edges = s.scalars(select(m.LineageEdge).where(m.LineageEdge.dst_type == "model_version")).all()
    assert {(e.src_type, e.src_id, e.dst_id) for e in edges if e.relation == "registered_as"} == {
        ("run", r1, str(v1.id)), ("run", r2, str(v2.id))}
    actions = [e["action"] for e in registry.timeline(store, "churn")]
    assert actions == ["register", "register", "create_model"]
    assert registry.timeline(store, "churn")[0]["comment"] == "retrained"


def test_register_refuses_a_run_without_a_model(store: Store) -> None:
    run_id = make_run(store, {"accuracy": 0.8}, model=False)
    with pytest.raises(ModelyardError, match=f"Run {run_id} has no logged model"):
        registry.register(store, run_id, "churn")
    assert registry.list_models(store) == []
    with pytest.raises(NotFoundError):
        registry.register(store, "ffffffffffff", "churn")
    with pytest.raises(ModelyardError, match="cannot contain '@'"):
        registry.register(store, run_id, "a@b")


def test_champion_alias_moves_and_is_audited(store: Store) -> None:
    registry.register(store, make_run(store, {"accuracy": 0.8}), "churn")
    registry.register(store, make_run(store, {"accuracy": 0.9}), "churn")
    with pytest.raises(ModelyardError, match="--comment"):
        registry.set_alias(store, "churn@v1", "champion", comment=None)
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    assert registry.get_version(store, "churn@champion").version == 1
    v2 = registry.set_alias(store, "churn@v2", "champion", comment="better")
    assert v2.aliases == ["champion"]
    assert registry.get_version(store, "churn@v1").aliases == []
    assert registry.get_version(store, "churn@champion").version == 2
    assert registry.list_models(store)[0].aliases == {"champion": 2}
    events = [e for e in registry.timeline(store, "churn") if e["action"] == "set_alias"]
    assert [(e["from_value"], e["to_value"], e["comment"], e["actor"]) for e in events] == [
        ("churn@v1", "churn@v2", "better", "tester"), (None, "churn@v1", "first", "tester")]
    registry.remove_alias(store, "churn", "champion", comment="retire")
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        registry.get_version(store, "churn@champion")
    with pytest.raises(ModelyardError, match="cannot be an alias"):
        registry.set_alias(store, "churn@v1", "v3", comment="x")


def test_stage_changes_are_audited(store: Store) -> None:
    registry.register(store, make_run(store, {"accuracy": 0.8}), "churn")
    with pytest.raises(ModelyardError, match="--comment"):
        registry.set_stage(store, "churn@v1", "Staging", comment="  ")
    with pytest.raises(ModelyardError, match="not a stage"):
        registry.set_stage(store, "churn@v1", "Live", comment="x")
    assert registry.set_stage(store, "churn@v1", "staging", comment="try it").stage == "Staging"
    registry.set_stage(store, "churn@v1", "Production", comment="go")
    assert registry.list_models(store)[0].stages == {"Production": [1]}
    events = [(e["from_value"], e["to_value"], e["comment"]) for e in registry.timeline(store, "churn")
              if e["action"] == "set_stage"]
    assert events == [("Staging", "Production", "go"), ("None", "Staging", "try it")]


def test_min_metric_gate_blocks_with_reason(store: Store) -> None:
    registry.register(store, make_run(store, {"accuracy": 0.85, "f1": 0.7}), "churn")
    with pytest.raises(ModelyardError, match="--comment"):
        registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.9}}, comment="")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.9, "auc": 0.5}}, comment="policy")
    report = registry.check_gates(store, "churn@v1")
    assert not report.passed and len(report.reasons) == 2
    with pytest.raises(GateFailed) as err:
        registry.set_stage(store, "churn@v1", "Production", comment="go")
    assert err.value.exit_code == 3
    assert "accuracy 0.85" in err.value.message and "minimum 0.9" in err.value.message
    assert "'auc'" in err.value.message
    with pytest.raises(GateFailed):
        registry.set_alias(store, "churn@v1", "champion", comment="go")
    assert registry.get_version(store, "churn@v1").stage == "None"
    # other aliases and stages are not gated
    registry.set_alias(store, "churn@v1", "challenger", comment="try")
    registry.set_stage(store, "churn@v1", "Staging", comment="try")
    # force needs a comment, and is audited
    with pytest.raises(ModelyardError, match="--force needs a --comment"):
        registry.set_stage(store, "churn@v1", "Production", comment=None, force=True)
    v = registry.set_stage(store, "churn@v1", "Production", comment="hotfix, accepted risk", force=True)
    assert v.stage == "Production"
    first, second = registry.timeline(store, "churn")[:2]
    assert first["action"] == "set_stage" and second["action"] == "gate_override"
    assert second["comment"] == "hotfix, accepted risk" and len(second["details"]["reasons"]) == 2
    assert registry.list_models(store)[0].gates == {"min_metrics": {"accuracy": 0.9, "auc": 0.5}}


def test_beat_champion_gate(store: Store) -> None:
    dv, split = make_split(store)
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.7}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.9}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.99}), "churn")  # no split recorded
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1", "higher_is_better": True}},
                       comment="policy")
    registry.set_alias(store, "churn@v1", "champion", comment="first: nothing to beat")
    with pytest.raises(GateFailed, match=r"f1 0.7 of churn@v2 does not beat the champion churn@v1 \(0.8"):
        registry.set_alias(store, "churn@v2", "champion", comment="worse")
    report = registry.check_gates(store, "churn@v4")
    assert not report.passed and "not evaluated on the same test split" in report.reasons[0]
    assert registry.check_gates(store, "churn@v3").passed
    registry.set_alias(store, "churn@v3", "champion", comment="better")
    assert registry.get_version(store, "churn@champion").version == 3
    # lower is better
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1", "higher_is_better": False}},
                       comment="flip")
    assert registry.check_gates(store, "churn@v2").passed


def test_load_model_predicts(store: Store) -> None:
    registry.register(store, make_run(store, {"accuracy": 1.0}), "churn")
    model = registry.load_model(store, "churn@v1")
    assert list(model.predict(X[:2])) == [0, 0]
    with pytest.raises(NotFoundError, match="no version 7"):
        registry.load_model(store, "churn@v7")
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        registry.get_version(store, "nope")


def _set_metrics(store: Store, ref: str, metrics: dict[str, Any]) -> None:
    """Record metrics as a bundle's manifest may carry them (NaN, text...), straight in the database."""
    info = registry.get_version(store, ref)
    with store.write() as s:
        s.get(m.ModelVersion, info.id).metrics = metrics


@pytest.mark.parametrize(("value", "said"), [(float("nan"), "NaN"), ("high", "'high'"), (float("inf"), "inf"),
                                             (True, "True"), (None, "no recorded test metric")])
def test_min_metric_gate_fails_closed_on_a_nan_missing_or_non_numeric_metric(store: Store, value: Any,
                                                                           said: str) -> None:
    registry.register(store, make_run(store, {"accuracy": 0.95}), "churn")
    _set_metrics(store, "churn@v1", {"accuracy": value} if value is not None else {"f1": 0.9})
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.9}}, comment="policy")
    report = registry.check_gates(store, "churn@v1")
    assert not report.passed and len(report.reasons) == 1 and said in report.reasons[0]
    with pytest.raises(GateFailed) as err:
        registry.set_alias(store, "churn@v1", "champion", comment="go")
    assert "accuracy" in err.value.message and said in err.value.message and "\n" not in err.value.message
    with pytest.raises(GateFailed):
        registry.set_stage(store, "churn@v1", "Production", comment="go")
    info = registry.get_version(store, "churn@v1")
    assert info.aliases == [] and info.stage == "None"
    assert "gate_override" not in [e["action"] for e in registry.timeline(store, "churn")]


@pytest.mark.parametrize("champion_value", [float("nan"), "n/a", 0.8])
@pytest.mark.parametrize("new_value", [float("nan"), "better", 0.9])
def test_beat_champion_gate_fails_closed_on_a_nan_or_non_numeric_metric(store: Store, champion_value: Any,
                                                                        new_value: Any) -> None:
    dv, split = make_split(store)
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.9}, dv=dv, split=split), "churn")
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    _set_metrics(store, "churn@v1", {"f1": champion_value})
    _set_metrics(store, "churn@v2", {"f1": new_value})
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1"}}, comment="policy")
    report = registry.check_gates(store, "churn@v2")
    if isinstance(champion_value, float) and champion_value == champion_value and new_value == 0.9:
        assert report.passed  # the control: two numbers, the challenger is better
        return
    assert not report.passed and len(report.reasons) == 1
    assert "not a number" in report.reasons[0] or "NaN" in report.reasons[0]
    with pytest.raises(GateFailed):
        registry.set_alias(store, "churn@v2", "champion", comment="go")
    assert registry.get_version(store, "churn@champion").version == 1


@pytest.mark.parametrize(("recorded", "said"), [(float("nan"), "NaN"), (None, "has no recorded value")])
def test_beat_champion_on_a_retraining_comparison_fails_closed_on_nan(store: Store, recorded: Any,
                                                                      said: str) -> None:
    dv, split = make_split(store)
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.9}), "churn")  # trained elsewhere: no common split
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1"}}, comment="policy")
    model_id = registry.get_model(store, "churn").id
    with store.write() as s:  # what a retraining records when its metric came out NaN (JSON: null) there
        s.add(m.AuditEvent(actor="tester", entity_type=registry.ENTITY, entity_id=str(model_id), action="retrain",
                           to_value="churn@v2", details={"champion": "churn@v1", "metric": "f1",
                                                         "metrics_new": {"f1": recorded},
                                                         "metrics_champion": {"f1": 0.7}, "n_eval_rows": 40,
                                                         "eval_rows": {"batch_ref": "batch@v1"}, "check_id": 1}))
    report = registry.check_gates(store, "churn@v2")
    assert not report.passed and len(report.reasons) == 1 and said in report.reasons[0]
    assert "f1 of churn@v2" in report.reasons[0] and "batch@v1" in report.reasons[0]
