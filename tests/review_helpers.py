"""Set-up for the promotion-request tests (tests/core/registry/test_requests*.py, tests/cli/test_cli_review*.py):
registered versions with a stand-in model file, the card's review fields and a small evidence document
in the documented format (docs/governance.md), written directly (nothing here computes evidence)."""

from __future__ import annotations

from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.registry.cards import REVIEW_FIELDS
from modelyard.core.registry.review import evidence
from modelyard.core.store import Store
from modelyard.core.store import models as m

CARD = {"intended_use": "Monthly churn scoring of retail customers.",
        "out_of_scope_uses": "Credit decisions.", "known_limitations": "Trained on 2025 data only.",
        "ethical_considerations": "Checked per sex and age band."}


def make_versions(store: Store, accuracies: list[float], name: str = "churn") -> list[str]:
    """One registered version per accuracy (a stand-in model file: nothing here loads it)."""
    refs = []
    for i, accuracy in enumerate(accuracies):
        with tracking.start_run("team", store=store, name=f"r{i}") as run:
            run.log_metric("accuracy", accuracy)
            run.log_bytes(f"model {i} {name}".encode(), "model/model.joblib", kind="model")
        refs.append(registry.register(store, run.id, name).ref)
    return refs


def fill_card(store: Store, ref: str, fields: dict[str, str] | None = None) -> None:
    """Write the card's review fields of ``ref`` (the texts the card editor would set)."""
    info = registry.get_version(store, ref)
    with store.write() as s:
        mv = s.get(m.ModelVersion, info.id)
        card = dict(mv.card or {})
        card["notes"] = dict(card.get("notes") or {}) | dict(CARD if fields is None else fields)
        mv.card = card


def evidence_doc(ref: str, champion: str | None, accuracy: float, champion_accuracy: float | None = None
                 ) -> dict:
    """A small evidence document (format 1) with one metric and one group column."""
    def ci(v: float) -> dict:
        return {"value": v, "low": round(v - 0.02, 4), "high": round(v + 0.02, 4)}

    return {"format": 1, "version": ref, "champion": champion, "task": "classification", "target": "churned",
            "positive_label": "yes", "rows": {"n": 2000, "part": "test", "split": "the split of churn-data@v1",
                                              "dataset_version": "churn-data@v1"},
            "confidence": 0.95, "n_boot": 200, "seed": 0,
            "metrics": [{"metric": "accuracy", "higher_is_better": True, "candidate": ci(accuracy),
                         "champion": ci(champion_accuracy) if champion_accuracy is not None else None,
                         "difference": ci(accuracy - champion_accuracy) if champion_accuracy is not None else None}],
            "sensitive": ["sex"],
            "groups": [{"column": "sex", "rows": [{"group": "F", "n": 1000, "metrics": {"accuracy": ci(accuracy - 0.01)}},
                                                  {"group": "M", "n": 1000, "metrics": {"accuracy": ci(accuracy + 0.01)}}],
                        "gaps": {"accuracy": {"gap": 0.02, "ratio": 0.98, "worst": "F", "best": "M"}}}],
            "importance": None, "partial_dependence": [], "calibration": None, "notes": [],
            "computed_at": "2026-12-06T14:00:00+00:00", "seconds": 0.1}


def give_evidence(store: Store, ref: str, accuracy: float = 0.9, champion_accuracy: float | None = 0.8
                  ) -> evidence.EvidenceInfo:
    """Store evidence of ``ref`` computed against the model's current champion."""
    info = registry.get_version(store, ref)
    model = registry.get_model(store, info.name)
    champ = model.aliases.get("champion")
    champion_ref = f"{info.name}@v{champ}" if champ is not None and champ != info.version else None
    champion_id = registry.get_version(store, champion_ref).id if champion_ref else None
    doc = evidence_doc(info.ref, champion_ref, accuracy, champion_accuracy if champion_ref else None)
    return evidence.store_evidence(store, info.id, doc, settings={"n_boot": 200, "sensitive": ["sex"]},
                                   champion_version_id=champion_id)


def ready(store: Store, ref: str, accuracy: float = 0.9) -> None:
    """``ref`` with its card's review fields and evidence: what a request needs."""
    fill_card(store, ref)
    give_evidence(store, ref, accuracy)


__all__ = ["CARD", "REVIEW_FIELDS", "evidence_doc", "fill_card", "give_evidence", "make_versions", "ready"]
