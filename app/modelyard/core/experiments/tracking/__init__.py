"""Experiment tracking for scripts, notebooks and the app: runs, params, metrics, tags, artifacts.

::

    import modelyard

    with modelyard.start_run(experiment="churn", tags={"team": "risk"}) as run:
        run.log_params({"model": "random_forest", "n_estimators": 300})
        for epoch in range(10):
            run.log_metrics({"loss": loss, "f1": f1}, step=epoch)
        run.log_model(pipeline, input_example=X_train.head())

    modelyard.search_runs(experiment="churn", filter='metrics.f1 > 0.8 and params.model = "random_forest"')

A run ended by an exception is recorded ``failed`` with the error (``cancelled`` for Ctrl+C);
one whose process dies is marked ``interrupted`` the next time any process opens the store.

Writes are buffered per run and flushed in batches, each batch one write transaction: when
:data:`FLUSH_MAX_POINTS` values are waiting, when :data:`FLUSH_INTERVAL_S` has passed since the
last flush (checked inside the ``log_*`` calls; no background thread), and when the run ends.
Every flush also refreshes the run's heartbeat, so the app shows the run live. An
:class:`ActiveRun` is thread-safe; any number of processes can log into one store at once (the
store serialises the transactions).

Values: param and tag values are stored as text (``str(value)``); metric values as floats.
``log_metric`` without a ``step`` uses the next step of that metric in this run (0, 1, 2...).
A param, once logged, keeps its first value (logging a different value raises). NaN metric
values cannot be stored in SQLite and are skipped with a warning (PostgreSQL keeps them).

Every value is checked when it is logged, so that one bad value cannot spoil a batch: a step
is a whole number from :data:`MIN_STEP` to :data:`MAX_STEP` (64 bits), a timestamp whole
milliseconds from 0 to :data:`MAX_TIMESTAMP_MS` (the end of the year 9999), a metric value a
real number (not text) that fits a float, and keys and text values valid Unicode. A call with
a value outside these raises :class:`ModelyardError` naming the key and the allowed range, and
records nothing of that call. Should a flush still fail on a value (a check missed it), the
values around it are written and only that one is dropped, with a warning naming it; a flush
that fails for another reason (a full disk) keeps the whole buffer for the next try.

The package: :mod:`.active` (the run being recorded, :func:`start_run`), :mod:`.values` (limits
and the checks of keys and values), :mod:`.writes` (the SQL writes share), :mod:`.queries`
(reading runs), :mod:`.edits` (tags of any run, the trash), :mod:`.info` (the records
returned) and :mod:`.stores` (which store a call uses). Patch a module constant such as
``FLUSH_INTERVAL_S`` in the module that reads it (``tracking.active``).
"""

from modelyard.core.experiments.tracking.active import ActiveRun, start_run
from modelyard.core.experiments.tracking.edits import (
    NOTE_TAG,
    delete_run,
    edit_run,
    purge_deleted,
    restore_run,
    run_note,
    set_tags,
)
from modelyard.core.experiments.tracking.info import (
    ExperimentInfo,
    LoggedArtifact,
    RunInfo,
)
from modelyard.core.experiments.tracking.queries import (
    get_run,
    list_experiments,
    metric_history,
    query_runs,
    run_records,
    search_runs,
)
from modelyard.core.experiments.tracking.values import (
    END_STATUSES,
    FLUSH_INTERVAL_S,
    FLUSH_MAX_POINTS,
    MAX_STEP,
    MAX_TIMESTAMP_MS,
    MIN_STEP,
    SOURCE_TYPES,
)

__all__ = [
    "ActiveRun", "RunInfo", "ExperimentInfo", "LoggedArtifact", "start_run", "get_run", "search_runs",
    "metric_history", "delete_run", "restore_run", "purge_deleted", "set_tags", "list_experiments",
    "query_runs", "run_records", "FLUSH_INTERVAL_S", "FLUSH_MAX_POINTS", "END_STATUSES", "SOURCE_TYPES",
    "MIN_STEP", "MAX_STEP", "MAX_TIMESTAMP_MS", "NOTE_TAG", "edit_run", "run_note",
]
