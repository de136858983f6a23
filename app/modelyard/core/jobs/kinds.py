"""The registry of job kinds: what each kind of job runs, where, how it is tidied up, what it changes.

One row per kind, in one table (:data:`KINDS`). A kind says

* ``func``: the job function, as a ``"module:function"`` string (see :mod:`.runner`);
* ``process``: whether it runs in a child process (killed at once on cancel);
* ``cleanup``: an optional ``"module:function"`` the runner calls as
  ``cleanup(store, job_id, status, error)`` after the job ended ``cancelled`` or ``failed`` (a
  child killed on cancel, or one that died, cannot tidy up itself: a training job's runs would
  stay ``running``). It must be idempotent and cheap; the runner logs, never raises, its errors;
* ``changes``: the change topics the window refreshes after the job (the jobs list refreshes
  after every job; :func:`changes_of` adds it).

Everything here is a plain string: core/jobs sits below every lifecycle room, so it names their
functions instead of importing them. A spec is built from a kind with
:meth:`modelyard.core.jobs.runner.JobSpec.for_kind`; a test resolves every ``func`` and
``cleanup`` of the table, so a moved function fails there and not in a user's job.
"""

from __future__ import annotations

from dataclasses import dataclass

# Change topics: the names modelyard.ui.common.client.TOPICS knows (core cannot import ui; a test
# keeps the two equal).
DATASETS = "datasets"
RUNS = "runs"
MODELS = "models"
CHECKS = "checks"
SERVERS = "servers"
JOBS = "jobs"
STORE = "store"
PIPELINES = "pipelines"
TOPICS = frozenset({DATASETS, RUNS, MODELS, CHECKS, SERVERS, JOBS, STORE, PIPELINES})


@dataclass(frozen=True)
class JobKind:
    name: str  # what the jobs table's ``kind`` says, e.g. "train"
    func: str  # "package.module:function"
    process: bool = False  # run in a child process (killable at once)
    cleanup: str | None = None  # "package.module:function(store, job_id, status, error)" after cancel/failure
    changes: frozenset[str] = frozenset()  # change topics to refresh after it


_END_RUNS = "modelyard.core.experiments.training.train:end_runs_of_job"  # the runs a killed trainer left running


def _kinds(*rows: JobKind) -> dict[str, JobKind]:
    return {k.name: k for k in rows}


KINDS: dict[str, JobKind] = _kinds(
    JobKind("dataset.import", "modelyard.core.datasets.service:import_dataset", changes=frozenset({DATASETS})),
    JobKind("dataset.sample", "modelyard.core.datasets.service:import_sample", changes=frozenset({DATASETS})),
    JobKind("train", "modelyard.core.experiments.training.train:train", process=True, cleanup=_END_RUNS,
            changes=frozenset({RUNS, DATASETS})),
    JobKind("train.reproduce", "modelyard.core.experiments.training.reproduce:reproduce", process=True,
            cleanup=_END_RUNS, changes=frozenset({RUNS, DATASETS})),
    # in a child: loading and writing the model with skops scans every loaded module and held the
    # window's main thread (the GIL) up to ~200 ms from a worker thread
    JobKind("bundle.export", "modelyard.core.bundles:export_bundle_job", process=True,
            cleanup="modelyard.core.bundles:remove_export_leftovers", changes=frozenset({MODELS})),
    JobKind("bundle.import", "modelyard.core.bundles:import_bundle_job",
            changes=frozenset({MODELS, RUNS, DATASETS})),
    # a version's evidence (bootstrap, group metrics, explanations): in a child, killable at once
    JobKind("registry.evidence", "modelyard.core.registry.review.compute:evidence_job", process=True,
            changes=frozenset({MODELS})),
    JobKind("score", "modelyard.core.serving.scoring:score_job", changes=frozenset({DATASETS, MODELS})),
    JobKind("drift.check", "modelyard.core.monitoring.drift.check:check_drift_job",
            changes=frozenset({CHECKS, MODELS, DATASETS})),  # MODELS: a model's drift badge
    JobKind("monitor.retrain", "modelyard.core.monitoring.retraining:retrain_job", process=True, cleanup=_END_RUNS,
            changes=frozenset({RUNS, MODELS, DATASETS, CHECKS})),
    # pipelines: a run (on a thread: its steps start their own jobs) and the jobs of its steps
    JobKind("pipeline.run", "modelyard.core.pipelines.runner:pipeline_job",
            changes=frozenset({PIPELINES, DATASETS, RUNS, MODELS, CHECKS, SERVERS, STORE})),
    JobKind("pipeline.import", "modelyard.core.pipelines.steps.data:import_files_job", changes=frozenset({DATASETS})),
    # a python step's function is the team's code: in a child, killable, its imports kept out of this process
    JobKind("pipeline.python", "modelyard.core.pipelines.steps.escape:python_job", process=True,
            changes=frozenset({PIPELINES})),
    JobKind("pipeline.shell", "modelyard.core.pipelines.steps.escape:shell_job", changes=frozenset({PIPELINES})),
    JobKind("store.verify", "modelyard.core.jobs.housekeeping:verify_artifacts"),
    JobKind("store.gc", "modelyard.core.jobs.housekeeping:collect_garbage", changes=frozenset({STORE})),
    JobKind("store.compact", "modelyard.core.jobs.housekeeping:compact_database", changes=frozenset({STORE})),
)


def get(name: str) -> JobKind:
    """The kind called ``name``; an unknown name is a programming error (KeyError)."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown job kind {name!r}; known: {', '.join(sorted(KINDS))}") from None


def find(name: str) -> JobKind | None:
    """The kind called ``name``, or None (a spec made by hand, as tests do, has no registered kind)."""
    return KINDS.get(name)


def changes_of(name: str) -> frozenset[str]:
    """What the window refreshes after a job of kind ``name``: its ``changes`` and the jobs list;
    every topic for a job of no registered kind."""
    kind = KINDS.get(name)
    return TOPICS if kind is None else kind.changes | {JOBS}
