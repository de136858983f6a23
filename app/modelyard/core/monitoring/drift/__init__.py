"""Drift checks: does a new batch of data still look like what a model was trained on?

Qt-free; importing this package is cheap (the functions below load their modules on first use).

::

    from modelyard.core.monitoring import drift

    cfg = drift.default_config()                       # thresholds, tests, dataset rule (plain JSON)
    drift.set_config(store, "churn", {**cfg, "critical": ["age"]}, comment="age matters")
    result = drift.run_check(store, "churn@champion", batch_frame)        # -> CheckResult (nothing stored)
    result.verdict, result.drift_share, result.features["age"]["drift"]

    # the job (GUI drop, CLI): import the file as a dataset version, check, record
    spec = drift.check_spec("churn@champion", batch_path="march.csv")   # JobSpec of check_drift_job
    outcome = run_job(store, spec)            # outcome.result = {"check_id", "verdict", ...}

    # without a store: frames (or a reference profile) in, a CheckResult out
    ref = drift.prepare_reference(train_frame, target="churned", categorical=["plan"])   # reusable
    drift.check_frames(ref, batch_frame, model=fitted_pipeline, metrics={"accuracy": 0.91})

    drift.list_checks(store, "churn", limit=50)       # newest first, summary rows
    drift.get_check(store, check_id)                  # everything a view needs (see check.get_check)
    drift.timeline(store, "churn")                    # drift scores per feature per check + model metric
    drift.model_status(store, "churn")                # "ok" | "warning" | "drift" | None (latest check)

Modules:

``stats``      the tests and distances (numpy/scipy), on raw values or on binned profiles
``config``     the default configuration, validation, the per-model configuration and its audit
``columns``    column-by-column access to a pandas frame or an Arrow table (no whole-frame copies)
``compare``    one column's tests and the decision across columns
``baseline``   a model version's reference, ready for checks (its training rows or its stored profile)
``outputs``    the model's side: prediction drift, performance, and the domain classifier
``admit``      whether a file is a batch of a model's data at all (its header, before importing)
``check``      the check itself and the job
``stored``     stored checks read back: summaries (with a one-line summary), one check, the timeline

The reference profile (JSON, shipped in bundles) and the training rows of a version are built and
read by :mod:`modelyard.core.registry.reference`.

What a check reports, field by field, is in :mod:`modelyard.core.monitoring.drift.check`'s docstring; the
settings in :mod:`modelyard.core.monitoring.drift.config`'s.

See ``docs/architecture.md`` (Drift checks) for the tests chosen and why.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "default_config": "config", "get_config": "config", "set_config": "config", "validate_config": "config",
    "run_check": "check", "check_frames": "check", "prepare_reference": "check", "check_drift_job": "check",
    "check_spec": "check", "CheckResult": "check",
    "list_checks": "check", "get_check": "check", "timeline": "check", "model_status": "check",
    "summary_line": "check",
    # the reference profile lives in the registry room (a full module path)
    "build_reference": "modelyard.core.registry.reference",
    "reference_for_version": "modelyard.core.registry.reference",
}

__all__ = [
    "CheckResult", "build_reference", "check_drift_job", "check_frames", "check_spec", "default_config", "get_check",
    "get_config", "list_checks", "model_status", "prepare_reference", "reference_for_version", "run_check",
    "set_config", "summary_line", "timeline", "validate_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.core.monitoring.drift' has no attribute {name!r}")
    import importlib

    path = module if "." in module else f"modelyard.core.monitoring.drift.{module}"
    return getattr(importlib.import_module(path), name)
