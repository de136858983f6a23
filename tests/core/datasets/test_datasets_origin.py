"""A dataset's origin: the user's own data ("imported") or a model's output ("generated")."""

from __future__ import annotations

from factories import check_file, churn_frame, train_churn_model, write_batch
from modelyard.core.datasets import catalog
from modelyard.core.jobs.runner import run_job
from modelyard.core.serving import scoring


def test_batches_and_predictions_are_generated_and_the_users_data_is_imported(store, tmp_path):
    train_churn_model(store)
    batch = write_batch(tmp_path, churn_frame(200, seed=3), "march.csv")
    check_file(store, batch)
    outcome = run_job(store, scoring.score_spec("churn@champion", dataset="churn"))
    assert outcome.status == "succeeded", outcome.error
    origins = {d.name: d.origin for d in catalog.list_datasets(store)}
    predictions = outcome.result["output"]["name"]
    assert origins.pop("churn") == "imported"
    assert origins.pop(predictions) == "generated"
    assert set(origins.values()) == {"generated"} and len(origins) == 1  # the drift check's batch
