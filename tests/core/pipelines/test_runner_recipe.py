"""The whole recipe (import -> search -> gate -> register -> bundle -> check) through the runner,
and a gate that blocks it."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import churn_frame
from modelyard.core.pipelines.runner import run_pipeline
from modelyard.core.registry import versions as registry
from modelyard.core.registry.gates_for_run import check_gates_for_run
from modelyard.core.store import models as m
from pipeline_helpers import TRAIN, pipeline, project, step, step_rows
from sqlalchemy import select

SEARCH = {**TRAIN, "search": {"method": "grid", "space": {"C": [0.1, 1.0]}}}


def recipe(folder: Path, *, min_accuracy: float = 0.5, block_on_drift: bool = True, train: dict = SEARCH):
    return pipeline(
        folder,
        step("load", "import", {"path": "churn.csv", "name": "churn"}),
        step("search", "train", train),
        step("gate", "gate", {"model": "churn", "run": "${steps.search.outputs.run_id}",
                              "gates": {"min_metrics": {"accuracy": min_accuracy}}}),
        step("register", "register", {"run": "${steps.search.outputs.run_id}", "model": "churn",
                                      "alias": "champion"}, needs=("gate",)),
        step("bundle", "bundle", {"ref": "${steps.register.outputs.ref}", "folder": "out"}),
        step("check", "check", {"model": "${steps.register.outputs.ref}", "batch": "batch.csv",
                                "block_on_drift": block_on_drift}),
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
    with store.session() as s:
        produced = set(s.execute(select(m.LineageEdge.dst_type, m.LineageEdge.dst_id).where(
            m.LineageEdge.src_type == "pipeline_run", m.LineageEdge.src_id == str(outcome.run_id))).all())
    assert {("dataset_version", str(rows["load"].outputs["dataset_version_id"])),
            ("run", search.outputs["run_id"]), ("model_version", str(reg["model_version_id"])),
            ("bundle", bundle["path"]), ("monitoring_check", str(check["check_id"]))} <= produced


@pytest.mark.slow
def test_a_gate_that_blocks_skips_what_follows_and_exits_3(store, tmp_path):
    folder = project(tmp_path, rows=200)
    churn_frame(100, seed=9).to_csv(folder / "batch.csv", index=False)
    outcome = run_pipeline(store, recipe(folder, min_accuracy=0.999, train=TRAIN))
    assert outcome.status == "blocked" and outcome.exit_code == 3
    assert outcome.steps == {"load": "succeeded", "search": "succeeded", "gate": "blocked", "register": "skipped",
                             "bundle": "skipped", "check": "skipped"}
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
