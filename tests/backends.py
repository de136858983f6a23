"""Which test modules run on which database: the one list (tests/conftest.py applies it).

A module in :data:`BOTH` runs every test twice, ``[sqlite]`` and ``[postgresql]``: the PostgreSQL
run gets a new, empty database on the session's throwaway server (tests/pg_server.py), named by
``MODELYARD_DB_URL`` for the whole test, so every ``Store.open`` in it, the CLI's and child
processes' included, uses that database. A test of such a module that cannot run on PostgreSQL
carries ``@pytest.mark.sqlite_only("why")``.

A module in :data:`POSTGRESQL_ONLY` runs on PostgreSQL alone (what only a server does).

Every module under :data:`STORE_TEST_FOLDERS` must be in one of the three, :data:`SQLITE_ONLY`
with its reason (collection fails otherwise), so no module stays SQLite-only silently. Modules
elsewhere run on SQLite only.
"""

from __future__ import annotations

# The folders whose modules touch the store and must say where they run.
STORE_TEST_FOLDERS = ("tests/core/store", "tests/core/experiments", "tests/core/registry", "tests/core/bundles",
                      "tests/core/monitoring", "tests/cli")

BOTH: frozenset[str] = frozenset({
    "tests/core/store/test_store.py",
    "tests/core/store/test_store_gc.py",
    "tests/core/store/test_artifact_json.py",
    "tests/core/experiments/test_tracking.py",
    "tests/core/experiments/test_run_edits.py",
    "tests/core/registry/test_registry.py",
    "tests/core/registry/test_lineage.py",
    "tests/core/registry/test_cards.py",
    "tests/core/registry/test_gate_wording.py",
    "tests/cli/test_pipeline_example.py",
    "tests/cli/test_notify_cli.py",
    "tests/cli/test_monitor_refusals_cli.py",
    "tests/cli/test_cli_train.py",
    "tests/cli/test_cli_run.py",
    "tests/cli/test_cli_pipeline.py",
    "tests/cli/test_cli_model.py",
    "tests/cli/test_cli_messages.py",
    "tests/cli/test_cli_dataset.py",
    "tests/cli/test_cli.py",
    "tests/cli/test_agent.py",
    "tests/core/experiments/test_runquery_folds.py",
    "tests/core/experiments/test_training_progress.py",
    "tests/core/experiments/test_training.py",
    "tests/core/monitoring/test_watch.py",
    "tests/core/monitoring/test_retraining.py",
    "tests/core/monitoring/test_overview.py",
    "tests/core/monitoring/test_drift_report.py",
    "tests/core/monitoring/test_drift_reference.py",
    "tests/core/monitoring/test_drift.py",
    "tests/core/monitoring/test_batch_admission.py",
    "tests/core/bundles/test_export_leftovers.py",
    "tests/core/bundles/test_bundles.py",
})

# Modules about what only a server does (advisory locks, many processes on one server).
POSTGRESQL_ONLY: frozenset[str] = frozenset({
    "tests/core/store/test_postgres.py",
})

_NEXT = "not tried on PostgreSQL yet (issue 15, next session)"

SQLITE_ONLY: dict[str, str] = {
    "tests/cli/test_drift_cli.py": "its store is module-scoped (SQLite); make it follow the backend (next session)",
    "tests/cli/test_cli_outputs.py": "its store is module-scoped (SQLite); make it follow the backend (next session)",
    "tests/core/store/test_store_opening.py":
        "SQLite files: zero-byte, foreign, damaged, read-only and missing database files",
    "tests/core/experiments/test_runquery.py": "its store is module-scoped; " + _NEXT,
    "tests/core/experiments/test_runquery_fuzz.py": _NEXT,
    "tests/core/experiments/test_tracking_fuzz.py": _NEXT,
    "tests/core/bundles/test_bundle_mlflow.py": _NEXT,
    "tests/core/monitoring/test_drift_million.py": _NEXT,
    "tests/core/monitoring/test_drift_stats.py": "pure statistics, no store",
}
