"""End to end: a real drift check that finds drift starts the retraining pipeline bound to the model
(`on: drift`), which retrains from that check and registers the challenger; an ok check starts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import (
    check_file,
    churn_frame,
    drifted_batch,
    train_churn_model,
    write_batch,
)
from modelyard.core.pipelines import catalog
from modelyard.core.pipelines.agent import run_agent
from modelyard.core.registry import versions

PIPELINE = """\
name: churn-retrain
description: Retrain churn when a check finds drift.
params:
  check: 0
triggers:
  - on: drift
    model: churn
    param: check
steps:
  retrain:
    kind: retrain
    params: {check: "${params.check}", comment: "drift check ${params.check}"}
"""


@pytest.mark.slow
def test_a_check_that_finds_drift_starts_the_retraining_pipeline_bound_to_the_model(store, tmp_path: Path) -> None:
    train_churn_model(store)
    path = tmp_path / "retrain.yml"
    path.write_text(PIPELINE)
    catalog.add_pipeline_file(store, path)

    calm = check_file(store, write_batch(tmp_path, churn_frame(300, seed=7), "calm.csv"))
    assert calm["verdict"] == "ok"
    assert run_agent(store, once=True)["claimed"] == 0  # an ok check starts nothing
    assert catalog.list_runs(store) == []

    found = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    assert found["verdict"] == "drift"
    counts = run_agent(store, once=True)
    assert counts["claimed"] == 1 and counts["failed"] == 0, counts
    [summary] = catalog.list_runs(store)
    run = catalog.get_run(store, summary.id)
    assert run.status == "succeeded", run.error
    assert run.params["check"] == found["check_id"] and run.trigger["type"] == "drift"
    step = run.step("retrain")
    challenger = versions.get_version(store, step.outputs["ref"])
    assert challenger.ref == step.outputs["ref"] and challenger.version == 2
    assert {"type": "run", "id": step.outputs["run_id"]} in [{"type": r["type"], "id": r["id"]} for r in step.records]

    assert run_agent(store, once=True)["claimed"] == 0  # the same check never starts a second run
    assert len(catalog.list_runs(store)) == 1
