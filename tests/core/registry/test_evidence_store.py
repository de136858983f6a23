"""The stored evidence of a model version: each computation adds a row and an artifact; the newest
is current; an older one stays readable (a request's snapshot names it). SQLite and PostgreSQL."""

from __future__ import annotations

from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.registry.review import evidence
from modelyard.core.store import Store


def _version(store: Store, name: str = "churn") -> registry.ModelVersionInfo:
    with tracking.start_run("team", store=store) as run:
        run.log_metric("accuracy", 0.8)
        run.log_bytes(b"model", "model/model.joblib", kind="model")
    return registry.register(store, run.id, name)


def test_the_newest_evidence_is_current_and_older_ones_stay_readable(store: Store) -> None:
    v1, v2 = _version(store), _version(store)
    assert evidence.latest_evidence(store, v2.ref) is None
    first = evidence.store_evidence(store, v2.id, {"format": 1, "metrics": [{"metric": "accuracy"}]},
                                    settings={"n_boot": 10}, champion_version_id=v1.id)
    second = evidence.store_evidence(store, v2.id, {"format": 1, "metrics": []}, settings={"n_boot": 20},
                                     champion_version_id=None)
    latest = evidence.latest_evidence(store, v2.ref)
    assert latest is not None and latest.id == second.id and latest.champion is None
    assert latest.settings == {"n_boot": 20} and latest.payload == {"format": 1, "metrics": []}
    assert first.champion == "churn@v1" and first.ref == "churn@v2"
    assert store.artifacts.read_json(first.sha256)["metrics"] == [{"metric": "accuracy"}]
    assert evidence.latest_evidence(store, v1.ref) is None
