"""Which test modules run on which database: the one list (tests/conftest.py applies it).

A module in :data:`BOTH` runs every test twice, ``[sqlite]`` and ``[postgresql]``: the PostgreSQL
run gets a new, empty database on the session's throwaway server (tests/pg_server.py), named by
``MODELYARD_DB_URL`` for the whole test, so every ``Store.open`` in it, the CLI's and child
processes' included, uses that database. A test of such a module that cannot run on PostgreSQL
carries ``@pytest.mark.sqlite_only("why")``.

A module-scoped fixture that makes a store once per module follows the backend itself:
``params=backend_params()`` and :func:`module_store` (tests/core/experiments/test_runquery.py). A
test that uses one runs twice by that fixture's parameter, and its ``backend`` (so ``db_url``, the
``store`` fixture and ``MODELYARD_DB_URL``) follows it: the per-test databases are on the same
backend as the module's store. A module-scoped fixture that makes no store (a key pair, an
in-memory frame) is named in :data:`STORE_FREE_FIXTURES`. A test of a :data:`BOTH` module that
uses any other module-scoped fixture stays on SQLite (its two runs would share one store); the
session's summary lists those modules and fixtures.
A module in :data:`POSTGRESQL_ONLY` runs on PostgreSQL alone (what only a server does). A module in
:data:`OWN_PARAMS` has only module-scoped stores, each following the backend by its parameter.

Every module under :data:`STORE_TEST_FOLDERS` must be in one of the three, :data:`SQLITE_ONLY`
with its reason (collection fails otherwise), so no module stays SQLite-only silently. Modules
elsewhere run on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# The folders whose modules touch the store and must say where they run.
STORE_TEST_FOLDERS = ("tests/core/store", "tests/core/experiments", "tests/core/registry", "tests/core/bundles",
                      "tests/core/monitoring", "tests/cli")

BOTH: frozenset[str] = frozenset({
    "tests/core/store/test_store.py",
    "tests/core/store/test_store_gc.py",
    "tests/core/store/test_artifact_json.py",
    "tests/core/store/test_live.py",
    "tests/ui/test_ui_live.py",
    "tests/core/registry/test_evidence_store.py",
    "tests/core/registry/test_requests.py",
    "tests/cli/test_cli_review.py",
    "tests/cli/test_cli_store_cluster.py",
    "tests/core/registry/test_evidence.py",
    "tests/core/registry/test_fairness_gates.py",
    "tests/core/registry/test_fairness.py",
    "tests/cli/test_cli_evidence.py",
    "tests/core/store/test_artifacts_concurrent.py",
    "tests/core/experiments/test_tracking.py",
    "tests/core/experiments/test_run_edits.py",
    "tests/core/registry/test_registry.py",
    "tests/core/registry/test_lineage.py",
    "tests/core/registry/test_cards.py",
    "tests/core/registry/test_cards_review.py",
    "tests/core/registry/test_gate_wording.py",
    "tests/core/registry/test_stale_edits.py",
    "tests/cli/test_notify_cli.py",
    "tests/cli/test_monitor_refusals_cli.py",
    "tests/cli/test_cli_run.py",
    "tests/cli/test_cli_pipeline.py",
    "tests/cli/test_cli_model.py",
    "tests/cli/test_cli_stale.py",
    "tests/cli/test_cli_messages.py",
    "tests/cli/test_cli_dataset.py",
    "tests/cli/test_cli.py",
    "tests/cli/test_agent.py",
    "tests/core/experiments/test_runquery_folds.py",
    "tests/core/monitoring/test_watch.py",
    "tests/core/monitoring/test_retraining.py",
    "tests/core/monitoring/test_overview.py",
    "tests/core/monitoring/test_drift_report.py",
    "tests/core/monitoring/test_drift_reference.py",
    "tests/core/monitoring/test_drift.py",
    "tests/core/monitoring/test_batch_admission.py",
    "tests/core/bundles/test_export_leftovers.py",
    "tests/core/bundles/test_bundles.py",
    "tests/core/bundles/test_bundle_mlflow.py",
})

# Modules about what only a server does (advisory locks, many processes on one server).
POSTGRESQL_ONLY: frozenset[str] = frozenset({
    "tests/core/store/test_postgres.py",
    "tests/core/store/test_roles.py",
    "tests/cli/test_cli_team.py",
    "tests/core/registry/test_requests_team.py",
    "tests/cli/test_cli_review_team.py",
    "tests/cli/test_cli_store_cluster_team.py",
    "tests/cli/test_cli_team_store.py",
    "tests/ui/registry/test_review_tab.py",
})

# Modules whose module-scoped store is parametrized over both backends by the module itself
# (``params=backend_params()`` and :func:`module_store`), with what stays SQLite-only in them.
OWN_PARAMS: dict[str, str] = {
    "tests/core/experiments/test_runquery.py":
        "its read-only store and the runs-table cache tests' stores (cache_store), on both backends",
    "tests/cli/test_drift_cli.py": "its store with a trained model (lab), on both backends",
    "tests/core/monitoring/test_live_windows.py": "its store with a served model's prediction log (lab), on both backends",
    "tests/cli/test_cli_outputs.py": "its store with a trained model and a drift check (lab), on both backends",
    "tests/core/experiments/test_runquery_fuzz.py": "its read-only runs store, on both backends",
    "tests/core/experiments/test_tracking_fuzz.py": "its store every example logs a new run into, on both backends",
}

# Module-scoped fixtures that make no store: a test sharing only these runs on both backends
# (each run with its own per-test store), like a test with no module-scoped fixture.
STORE_FREE_FIXTURES: dict[str, frozenset[str]] = {
    "tests/core/bundles/test_bundles.py": frozenset({"keys"}),  # a key pair in a folder
    "tests/core/monitoring/test_drift.py": frozenset({"ref_1k"}),  # an in-memory reference frame
}

_TIME = ("CPU-bound model training; the rows it writes are covered on both backends by test_tracking and "
         "test_registry; kept off the PostgreSQL half for the suite's time")

SQLITE_ONLY: dict[str, str] = {
    "tests/ui/experiments/test_train_cluster.py":
        "the Train dialog's choice of cluster and a Dask cluster's behaviour, not the store's (the cluster "
        "preference's rows run on both backends in tests/cli/test_cli_store_cluster.py)",
    "tests/ui/registry/test_request_evidence.py":
        "the dialog's job wiring (the evidence itself runs on both backends in tests/core/registry/test_evidence.py)",
    "tests/core/experiments/test_training_progress.py": _TIME,
    "tests/core/experiments/test_training.py": _TIME,
    "tests/core/experiments/test_search_cluster.py": "a Dask cluster's behaviour, not the store's",
    "tests/core/experiments/test_search_optuna.py": "a search's sampling and pruning, not the store's",
    "tests/core/experiments/test_training_metrics.py": "no store: metrics and the features' conversion",
    "tests/cli/test_serve_usage.py": "no store: the options are refused before one opens",
    "tests/cli/test_pipeline_example.py": _TIME,
    "tests/cli/test_cli_train.py": _TIME,
    "tests/core/store/test_store_opening.py":
        "SQLite files: zero-byte, foreign, damaged, read-only and missing database files",
    "tests/core/monitoring/test_drift_million.py":
        "no store: in-memory frames through check_frames (the stored checks run on both backends in test_drift)",
    "tests/core/monitoring/test_drift_stats.py": "pure statistics, no store",
    "tests/core/registry/test_evidence_stats.py": "pure statistics, no store",
    "tests/core/registry/test_explain.py": "pure: a fitted scikit-learn pipeline on a generated frame, no store",
}


def postgresql_param() -> Any:
    """The 'postgresql' parameter. Never skipped: without a server the fixture fails, naming what
    to install (the test extra brings one: tests/pg_server.py)."""
    return "postgresql"


def backend_params() -> list[Any]:
    """``params=`` for a module-scoped fixture that makes its own store on each backend."""
    return ["sqlite", postgresql_param()]


def follows_backend(fixturedef: Any) -> bool:
    """Whether a fixture (its pytest FixtureDef) is parametrized over the backends (``backend_params()``)."""
    return fixturedef.params is not None and list(fixturedef.params) == backend_params()


@contextmanager
def module_store(request: pytest.FixtureRequest, root: Path) -> Iterator[Any]:
    """A new store at ``root`` on ``request.param``'s backend (a new database on the session's
    server for 'postgresql', dropped afterwards), closed at the end."""
    from modelyard.core.store import Store

    if request.param != "postgresql":
        with Store.open(root) as store:
            yield store
        return
    server = request.getfixturevalue("pg_server_session")
    name = server.create_database("template1")
    try:
        with Store.open(root, db_url=server.url(name)) as store:
            yield store
    finally:
        server.drop_database(name)


def module_db_url(store: Any) -> str | None:
    """A module store's database URL for the CLI and child processes: None on SQLite (the folder
    names it), the server database's URL on PostgreSQL."""
    return None if store.is_sqlite else store.db_url


def use_module_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, fixture: str) -> None:
    """For a test using the module-scoped ``fixture`` (a dict with its store's ``db_url``): point
    ``MODELYARD_DB_URL`` at that store's database instead of the test's own, so the CLI and child
    processes that name the store by its folder open it on its backend."""
    if fixture in request.fixturenames:
        url = request.getfixturevalue(fixture)["db_url"]
        if url:
            monkeypatch.setenv("MODELYARD_DB_URL", url)

