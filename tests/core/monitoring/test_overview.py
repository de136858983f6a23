"""The Monitoring panel's model list: one core call, a fixed number of queries for any number of models."""

from __future__ import annotations

from contextlib import contextmanager

from factories import check_file, drifted_batch, train_churn_model, write_batch
from modelyard.core.monitoring import drift, watch
from modelyard.core.monitoring.overview import models_overview
from modelyard.core.registry import versions as registry
from sqlalchemy import event


@contextmanager
def counted(store):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_the_overview_matches_the_per_model_readers(store, tmp_path):
    train_churn_model(store)
    run_id = registry.get_version(store, "churn@champion").run_id
    registry.register(store, run_id, "other")
    check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    folder = tmp_path / "drops"
    folder.mkdir()
    watch.set_watch_folder(store, "churn", str(folder), comment="nightly")

    rows = {r.name: r for r in models_overview(store)}
    assert list(rows) == ["churn", "other"]
    churn, other = rows["churn"], rows["other"]
    assert churn.n_checks == 1 and churn.status == drift.model_status(store, "churn") == "drift"
    assert churn.last is not None and churn.ref == "churn@v1 (champion)"
    assert churn.watch_folder == str(folder)
    assert other.n_checks == 0 and other.status is None and other.last is None
    assert other.ref == "other@v1" and other.watch_folder is None
    assert churn.as_dict()["name"] == "churn"


def test_the_number_of_queries_does_not_grow_with_the_models(store, tmp_path):
    train_churn_model(store)
    run_id = registry.get_version(store, "churn@champion").run_id
    check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    models_overview(store)  # warm: imports, first connection
    with counted(store) as one:
        assert len(models_overview(store)) == 1
    for i in range(19):
        registry.register(store, run_id, f"model-{i:02d}")
    with counted(store) as twenty:
        assert len(models_overview(store)) == 20
    assert len(one) == len(twenty) <= 5
