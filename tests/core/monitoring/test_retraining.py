"""Retraining from a drift check (``modelyard.core.monitoring.retraining``): the recorded spec retrained on the
new data, both models compared on the same recent rows, the new version registered as
``challenger`` (never champion) with the comparison in the audit log, and the lineage recorded.

The helpers at the top (a churn-like dataset, a trained and registered model, a drifted batch
file, a real drift check) are shared with ``test_drift_report.py`` and ``test_watch.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import check_file, churn_frame, drifted_batch, retrain, write_batch
from factories import train_churn_model as train_model
from modelyard.core.datasets import service
from modelyard.core.experiments import tracking
from modelyard.core.monitoring import retraining
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sklearn.metrics import accuracy_score, f1_score
from sqlalchemy import select

# --------------------------------------------------------------------------- shared helpers


# --------------------------------------------------------------------------- tests


def test_retrain_on_the_batch_registers_a_challenger_compared_on_the_same_recent_rows(
        store: Store, tmp_path: Path) -> None:
    champion = train_model(store)
    batch = drifted_batch()
    check = check_file(store, write_batch(tmp_path, batch))
    assert check["verdict"] == "drift"

    outcome = retrain(store, check["check_id"], comment="March data")
    assert outcome.status == "succeeded", outcome.error
    r = outcome.result
    assert r["ref"] == "churn@v2" and r["champion"] == champion.ref == "churn@v1" and r["data"] == "batch"

    # champion untouched; the new version is the challenger
    model = registry.get_model(store, "churn")
    assert model.aliases == {"champion": 1, "challenger": 2}

    # the held-out rows: the last quarter (the recorded test share) of the batch file, in file order
    n_test = round(0.25 * len(batch))
    assert r["n_eval_rows"] == n_test
    split = service.get_split(store, r["split_id"])
    assert split.dataset_version_id == r["dataset_version_id"] == check["batch_dataset_version_id"]
    assert service.load_split(store, split.id)["test"].tolist() == list(range(len(batch) - n_test, len(batch)))
    recent = batch.iloc[len(batch) - n_test:]

    # the champion's metrics are its own on exactly those rows
    champ_model = registry.load_model(store, "churn@v1")
    pred = champ_model.predict(recent[["age", "plan", "visits"]])
    assert r["metrics_champion"]["f1_macro"] == pytest.approx(f1_score(recent["churned"], pred, average="macro"))
    assert r["metrics_champion"]["accuracy"] == pytest.approx(accuracy_score(recent["churned"], pred))
    # ...and so are the new model's, which are also the run's recorded test metrics
    new_model = registry.load_model(store, "churn@v2")
    pred_new = new_model.predict(recent[["age", "plan", "visits"]])
    assert r["metrics_new"]["accuracy"] == pytest.approx(accuracy_score(recent["churned"], pred_new))
    run = tracking.get_run(r["run_id"], store=store)
    assert run.metrics["accuracy"] == pytest.approx(r["metrics_new"]["accuracy"])
    assert run.params["n_test"] == str(n_test) and run.params["n_train"] == str(len(batch) - n_test)
    # the relation flipped: the retrained model is far better on the recent rows
    assert r["metrics_new"]["f1_macro"] > r["metrics_champion"]["f1_macro"] + 0.3

    # the run is a normal tracked run of the same experiment, tagged with its origin
    assert run.experiment == "churn" and run.status == "succeeded"
    assert run.tags["retrained_from_check"] == str(check["check_id"])
    assert run.tags["retrained_from_version"] == "churn@v1" and run.tags["retrain_data"] == "batch"
    assert run.spec["model"] == "logistic_regression" and run.spec["split"]["id"] == split.id
    assert any(a.path == retraining.COMPARISON_PATH for a in run.artifacts)

    # the comparison is the audit comment of the registration, the alias and the retrain event
    events = registry.timeline(store, "churn")
    retrain_event = next(e for e in events if e["action"] == "retrain")
    alias_event = next(e for e in events if e["action"] == "set_alias" and e["details"]["alias"] == "challenger")
    f1_new, f1_old = r["metrics_new"]["f1_macro"], r["metrics_champion"]["f1_macro"]
    expected = (f"f1_macro {f1_new:.3g} vs champion churn@v1 {f1_old:.3g} on {n_test} recent rows of "
                f"{check['batch_ref']}")
    for event in (retrain_event, alias_event):
        assert event["comment"].startswith(expected) and event["comment"].endswith("-- March data")
        assert event["version"] == 2
    assert retrain_event["details"]["check_id"] == check["check_id"]
    assert retrain_event["details"]["n_eval_rows"] == n_test
    assert not any(e["action"] == "set_alias" and e["details"]["alias"] == "champion" and e["version"] == 2
                   for e in events)

    # a beat_champion gate compares the two on the same recent rows (not "different splits"):
    # the challenger passes; had the champion been better there, the reason would name those rows
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1_macro"}}, comment="policy")
    report = registry.check_gates(store, "churn@v2")
    assert report.passed, report.reasons
    with store.write() as s:  # the same event, with the champion ahead on those rows
        event = s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "retrain")).one()
        event.details = {**event.details, "metrics_new": {**event.details["metrics_new"], "f1_macro": 0.1}}
    [reason] = registry.check_gates(store, "churn@v2").reasons
    assert "does not beat the champion churn@v1" in reason and f"same {n_test} recent rows" in reason

    # lineage: monitoring_check -> run (retrained_as); and the run trained on the batch
    with store.session() as s:
        edge = s.scalars(select(m.LineageEdge).where(m.LineageEdge.relation == "retrained_as")).one()
        assert (edge.src_type, edge.src_id, edge.dst_type, edge.dst_id) == (
            "monitoring_check", str(check["check_id"]), "run", r["run_id"])
        assert s.scalar(select(m.Run.dataset_version_id).where(m.Run.uuid == r["run_id"])) == \
            check["batch_dataset_version_id"]


def test_retrain_on_reference_plus_batch_holds_out_the_newest_batch_rows(store: Store, tmp_path: Path) -> None:
    reference = churn_frame()
    train_model(store, reference, champion=False)  # no champion: compared with the checked version
    batch = drifted_batch(200, seed=3)
    # the batch has a time column (shuffled): "recent" means the newest by it, not the last in the file
    rng = np.random.default_rng(7)
    batch["seen_at"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.permutation(len(batch)), unit="h")
    batch.loc[5, "churned"] = None  # a row without an outcome is never a test row
    check = check_file(store, write_batch(tmp_path, batch), ref="churn")

    outcome = retrain(store, check["check_id"], data="reference+batch")
    assert outcome.status == "succeeded", outcome.error
    r = outcome.result
    assert r["champion"] == "churn@v1" and r["dataset"] == "churn-retraining@v1"
    assert registry.get_model(store, "churn").aliases == {"challenger": 2}

    combined = service.get_version(store, r["dataset_version_id"])
    assert combined.n_rows == len(reference) + len(batch)
    assert "seen_at" not in [c["name"] for c in combined.columns]  # only the columns both sides have
    n_test = round(0.25 * (len(batch) - 1))
    assert r["n_eval_rows"] == n_test
    test_rows = service.load_split(store, r["split_id"])["test"]
    assert (test_rows >= len(reference)).all()  # never a reference row
    known = batch[batch["churned"].notna()]
    newest = known.sort_values("seen_at").index[-n_test:]
    assert sorted((test_rows - len(reference)).tolist()) == sorted(newest.tolist())

    # the combined data records where it came from
    with store.session() as s:
        edges = s.scalars(select(m.LineageEdge).where(m.LineageEdge.relation == "combined_into")).all()
        roles = {e.details["role"]: (int(e.src_id), e.details["rows"]) for e in edges}
    assert roles["reference"] == (1, [0, len(reference)])
    assert roles["batch"] == (check["batch_dataset_version_id"], [len(reference), len(reference) + len(batch)])
    event = next(e for e in registry.timeline(store, "churn") if e["action"] == "retrain")
    assert "vs churn@v1 (the checked version; no champion)" in event["comment"]
    run = tracking.get_run(r["run_id"], store=store)
    assert int(run.params["n_train"]) == len(reference) + len(batch) - 1 - n_test


def test_retrain_refuses_a_batch_without_the_target(store: Store, tmp_path: Path) -> None:
    train_model(store)
    batch = drifted_batch().drop(columns=["churned"])
    check = check_file(store, write_batch(tmp_path, batch))
    outcome = retrain(store, check["check_id"])
    assert outcome.status == "failed"
    assert "has no column 'churned', the target of churn@v1" in outcome.error
    assert "once the outcomes are known" in (outcome.hint or "")
    assert [v.ref for v in registry.list_versions(store, "churn")] == ["churn@v1"]
    with store.session() as s:
        assert s.scalar(select(m.Run.id).where(m.Run.job_id == outcome.job_id)) is None
        assert s.scalar(select(m.LineageEdge.id).where(m.LineageEdge.relation == "retrained_as")) is None


def test_retrain_spec_validates_its_choices() -> None:
    with pytest.raises(Exception, match="Unknown training data choice"):
        retraining.retrain_spec(1, data="everything")
    spec = retraining.retrain_spec(7, data="reference+batch")
    assert spec.process and spec.params["check_id"] == 7 and spec.kind == "monitor.retrain"


def test_cli_retrain_in_a_child_process_and_report(store: Store, store_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import cli, cli_json

    train_model(store)
    check = check_file(store, write_batch(tmp_path, drifted_batch()))
    cid = str(check["check_id"])
    code, out, err = cli_json(capsys, "monitor", "retrain", cid, "--comment", "from cron", "--store", str(store_dir))
    assert code == 0, err
    assert out["status"] == "succeeded" and out["result"]["ref"] == "churn@v2"
    assert registry.get_model(store, "churn").aliases == {"champion": 1, "challenger": 2}
    assert tracking.get_run(out["result"]["run_id"], store=store).source_type == "cli"

    code, out, err = cli(capsys, "monitor", "retrain", "999", "--store", str(store_dir))
    assert code == 1 and "There is no drift check 999" in err

    code, out, err = cli_json(capsys, "monitor", "report", cid, "-o", str(tmp_path / "r.html"), "--store",
                              str(store_dir))
    assert code == 0 and out == {"check_id": check["check_id"], "path": str(tmp_path / "r.html")}
    assert "churn@v2" in (tmp_path / "r.html").read_text(encoding="utf-8")
