"""The whole recipe (import -> search -> gate -> register -> bundle -> check) through the runner,
and a gate that blocks it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from factories import churn_frame
from modelyard.core.pipelines.runner import run_pipeline
from modelyard.core.registry import lineage
from modelyard.core.registry import versions as registry
from modelyard.core.registry.gates_for_run import check_gates_for_run
from modelyard.core.store import models as m
from pipeline_helpers import TRAIN, pipeline, project, step, step_rows
from sqlalchemy import select

SEARCH = {**TRAIN, "search": {"method": "grid", "space": {"C": [0.1, 1.0]}}}


def _train_here(store) -> str:
    """A run trained in this process (quicker than a child): its id."""
    from factories import churn_frame as frame
    from modelyard.core.datasets.service import import_frame
    from modelyard.core.experiments.training.spec import TrainSpec
    from modelyard.core.jobs.runner import JobSpec, run_job

    import_frame(store, frame(200), "churn", target="churned")
    spec = TrainSpec(dataset="churn", model="logistic_regression", split={"test": 0.25, "seed": 0}, curves=False)
    out = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="t",
                                 params={"spec": spec.to_json()}))
    assert out.ok, out.error
    return out.result["run_id"]


def recipe(folder: Path, *, min_accuracy: float = 0.5, block_on_drift: bool = True, train: dict = SEARCH):
    run = "${steps.search.outputs.run_id}" if train is not None else "${params.run}"
    return pipeline(
        folder,
        step("load", "import", {"path": "churn.csv", "name": "churn"}),
        step("search", "train", train),
        step("gate", "gate", {"model": "churn", "run": run,
                              "gates": {"min_metrics": {"accuracy": min_accuracy}}}),
        step("register", "register", {"run": run, "model": "churn",
                                      "alias": "champion"}, needs=("gate",)),
        step("bundle", "bundle", {"ref": "${steps.register.outputs.ref}", "folder": "out"}),
        step("check", "check", {"model": "${steps.register.outputs.ref}", "batch": "batch.csv",
                                "block_on_drift": block_on_drift}),
        step("score", "score", {"model": "${steps.register.outputs.ref}", "path": "batch.csv",
                                "output": "out/predictions.csv"}),
        name="churn-recipe")


@pytest.mark.slow
def test_the_recipe_runs_end_to_end_and_links_what_it_made(store, tmp_path):
    folder = project(tmp_path, rows=300)
    churn_frame(150, seed=9).to_csv(folder / "batch.csv", index=False)
    outcome = run_pipeline(store, recipe(folder))
    assert outcome.status == "succeeded", outcome.error
    rows = step_rows(store, outcome.run_id)
    search = rows["search"]
    assert len(search.outputs["run_ids"]) == 3  # the search's parent and its two trials
    assert rows["gate"].outputs["passed"] is True
    assert rows["gate"].outputs["checked"] == ["min accuracy >= 0.5"]
    reg = rows["register"].outputs
    assert reg["ref"] == "churn@v1" and reg["alias"] == "champion"
    info = registry.get_version(store, "churn@champion")
    assert info.run_id == search.outputs["run_id"] and info.id == reg["model_version_id"]
    bundle = rows["bundle"].outputs
    assert Path(bundle["path"]) == folder / "out" / "churn-v1.mybundle" and Path(bundle["path"]).is_file()
    check = rows["check"].outputs
    assert check["verdict"] in ("ok", "warning") and check["drift"] is False
    score = rows["score"].outputs
    assert score["rows"] == 150 and Path(score["path"]) == folder / "out" / "predictions.csv"
    assert len((folder / "out" / "predictions.csv").read_text().splitlines()) == 151
    scored = [r for r in rows["score"].records if r["type"] == "dataset_version"]
    assert len(scored) == 2 and scored[1]["id"] == str(score["dataset_version_id"])  # the batch stored, the predictions
    assert {"type": "file", "id": score["path"]} in rows["score"].records
    with store.session() as s:
        produced = set(s.execute(select(m.LineageEdge.dst_type, m.LineageEdge.dst_id).where(
            m.LineageEdge.src_type == "pipeline_run", m.LineageEdge.src_id == str(outcome.run_id))).all())
    assert {("dataset_version", str(rows["load"].outputs["dataset_version_id"])),
            ("run", search.outputs["run_id"]), ("model_version", str(reg["model_version_id"])),
            ("bundle", bundle["sha256"]), ("monitoring_check", str(check["check_id"])),
            ("dataset_version", str(score["dataset_version_id"]))} <= produced
    # the model version's lineage shows the pipeline run that made it, and one node for its bundle
    graph = lineage.version_lineage(store, reg["ref"])
    made_by = graph.find("pipeline_run", str(outcome.run_id))
    assert made_by is not None and made_by.label == f"pipeline {recipe(folder).name}, run {outcome.run_id}"
    assert [n.key for n in graph.of_type("bundle")] == [bundle["sha256"]]
    # the same recipe again: nothing runs, in under a second; a removed predictions file is written again
    t0 = time.perf_counter()
    again = run_pipeline(store, recipe(folder))
    elapsed = time.perf_counter() - t0
    assert set(again.steps.values()) == {"cached"}, again.steps
    assert elapsed < 1.0, f"an all-cached recipe took {elapsed:.2f} s"
    assert [v.ref for v in registry.list_versions(store, "churn")] == ["churn@v1"]
    Path(score["path"]).unlink()
    third = run_pipeline(store, recipe(folder))
    assert third.steps["score"] == "succeeded" and Path(score["path"]).is_file()
    assert {n for n, st in third.steps.items() if st != "cached"} == {"score"}


def test_a_gate_that_blocks_skips_what_follows_and_exits_3(store, tmp_path):
    folder = project(tmp_path, rows=200)
    run_id = _train_here(store)
    p = recipe(folder, min_accuracy=0.999, train=None)
    p = pipeline(folder, *[s for s in p.steps if s.name not in ("load", "search")], name="churn-blocked",
                 params={"run": ""})
    outcome = run_pipeline(store, p, params={"run": run_id})
    assert outcome.status == "blocked" and outcome.exit_code == 3
    assert outcome.steps == {"gate": "blocked", "register": "skipped", "bundle": "skipped", "check": "skipped",
                             "score": "skipped"}
    rows = step_rows(store, outcome.run_id)
    assert "below the minimum 0.999" in rows["gate"].error
    assert rows["gate"].outputs["passed"] is False
    assert outcome.error.startswith("Step 'gate' blocked: The gates of 'churn' block run ")
    with store.session() as s:
        assert s.scalar(select(m.RegisteredModel).where(m.RegisteredModel.name == "churn")) is None  # nothing registered


def test_gates_for_a_run_not_registered_use_the_models_gates_and_champion(store):
    from factories import train_churn_model
    from modelyard.core.experiments.training.spec import TrainSpec
    from modelyard.core.jobs.runner import JobSpec, run_job

    champion = train_churn_model(store)  # churn@v1, champion, on the split test 0.25 seed 0
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "accuracy"}}, comment="policy")
    spec = TrainSpec(dataset="churn", model="dummy", split={"test": 0.25, "seed": 0}, experiment="churn", curves=False)
    out = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="t",
                                 params={"spec": spec.to_json()}))
    report = check_gates_for_run(store, "churn", out.result["run_id"])
    assert not report.passed
    assert f"does not beat the champion {champion.ref}" in report.reasons[0]
    assert check_gates_for_run(store, "churn", out.result["run_id"], gates={"min_metrics": {"accuracy": 0.1}}).passed
    assert check_gates_for_run(store, "newmodel", out.result["run_id"],
                               gates={"beat_champion": {"metric": "accuracy"}}).passed  # no champion yet
    again = check_gates_for_run(store, "churn", champion.run_id)  # the champion's own run: nothing to beat
    assert again.passed and again.checked == ["beating the champion on accuracy applies to the other versions"]


@pytest.mark.slow
def test_a_check_that_finds_drift_blocks_unless_told_not_to_and_then_retraining_follows(store, tmp_path):
    from factories import drifted_batch, train_churn_model

    folder = project(tmp_path)
    train_churn_model(store)
    drifted_batch().to_csv(folder / "drifted.csv", index=False)
    blocked = run_pipeline(store, pipeline(folder, step("check", "check", {"model": "churn@champion",
                                                                           "batch": "drifted.csv"}),
                                           step("after", "shell", {"command": "echo never"}, needs=("check",)),
                                           name="drift-blocks"))
    assert blocked.status == "blocked" and blocked.exit_code == 3
    assert blocked.steps == {"check": "blocked", "after": "skipped"}
    row = step_rows(store, blocked.run_id)["check"]
    assert row.outputs["verdict"] == "drift" and row.outputs["drift"] is True
    assert row.records == [{"type": "check", "id": str(row.outputs["check_id"])}]  # recorded though blocked
    goes_on = run_pipeline(store, pipeline(folder, step("check", "check", {"model": "churn@champion",
                                                                           "batch": "drifted.csv",
                                                                           "block_on_drift": False}),
                                           step("retrain", "retrain", {"check": "${steps.check.outputs.check_id}"}),
                                           name="drift-retrains"))
    assert goes_on.status == "succeeded", goes_on.error
    out = step_rows(store, goes_on.run_id)["retrain"].outputs
    assert out["ref"] == "churn@v2"
    assert "challenger" in registry.get_version(store, out["ref"]).aliases


def test_a_gate_or_a_check_runs_again_when_the_registry_moves_under_an_unchanged_reference(store, tmp_path):
    from factories import train_churn_model

    folder = project(tmp_path)
    v1 = train_churn_model(store)
    churn_frame(100, seed=4).to_csv(folder / "batch.csv", index=False)
    p = pipeline(folder, step("gate", "gate", {"model": "churn", "run": v1.run_id}),
                 step("check", "check", {"model": "churn@champion", "batch": "batch.csv"}), name="watch")
    assert set(run_pipeline(store, p).steps.values()) == {"succeeded"}
    assert set(run_pipeline(store, p).steps.values()) == {"cached"}
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "accuracy"}}, comment="policy")
    assert run_pipeline(store, p).steps == {"gate": "succeeded", "check": "cached"}
    v2 = registry.register(store, v1.run_id, "churn")
    registry.set_alias(store, v2.ref, "champion", comment="newer", force=True)
    assert run_pipeline(store, p).steps == {"gate": "succeeded", "check": "succeeded"}
