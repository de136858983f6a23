"""What the Pipelines panel asks of the core, as functions of the store run off the main thread
(``client.read`` / ``client.write``). Each returns plain data: the catalog's frozen dataclasses
turned into dicts (their ``to_json()``), so the panel's tables and the graph read one shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

RUN_KIND = "pipeline.run"  # the job kind the window runs a pipeline run as (runner.pipeline_job)
RUNS_SHOWN = 100


def plain(value: Any) -> Any:
    """A catalog dataclass (or a list of them) as dicts; dicts and scalars as they are."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _catalog() -> Any:
    from modelyard.core.pipelines import catalog

    return catalog


def list_pipelines(store: Any) -> list[dict[str, Any]]:
    return plain(_catalog().list_pipelines(store))


def pipeline_detail(store: Any, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the pipeline, its runs newest first)."""
    catalog = _catalog()
    return plain(catalog.get_pipeline(store, name)), plain(catalog.list_runs(store, name, limit=RUNS_SHOWN))


def get_run(store: Any, run_id: int) -> dict[str, Any]:
    return plain(_catalog().get_run(store, run_id))


def step_log(store: Any, run_id: int, step: str) -> str:
    return _catalog().step_log(store, run_id, step) or ""


def add_file(store: Any, path: str | Path) -> dict[str, Any]:
    """List the pipeline file at ``path`` (PipelineInvalid with every problem: nothing written)."""
    return plain(_catalog().add_pipeline_file(store, str(path)))


def remove(store: Any, name: str) -> None:
    """Stop listing pipeline ``name`` (audited; refused while it runs)."""
    _catalog().remove_pipeline(store, name)


def set_schedules(store: Any, name: str, on: bool) -> None:
    _catalog().set_schedules_enabled(store, name, on)


def read_file(path: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(the file's text, or None when it cannot be read; its problems). Writes nothing."""
    from modelyard.core.pipelines import loading

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    return text, [p.to_json() for p in loading.validate_file(path)]


def create_run(store: Any, name: str, path: str, params: dict[str, Any], jobs: int, force: bool) -> int:
    """Record a queued run of the pipeline as its file says now (or as last listed, when the file
    is gone); the window's job runner then runs it as a ``pipeline.run`` job."""
    from modelyard.core.pipelines import loading, runner

    pipeline = loading.load_pipeline(path) if Path(path).is_file() else _catalog().pipeline_spec(store, name)
    return int(runner.create_run(store, pipeline, params=params, jobs=jobs, force=force,
                                 trigger={"type": "manual", "via": "window"}))


def create_resume_run(store: Any, run_id: int) -> int:
    """Record the queued run that resumes run ``run_id``: its failed, cancelled, interrupted or
    skipped steps and what follows them run, the others reuse their outputs."""
    from modelyard.core.pipelines import runner

    return int(runner.create_resume_run(store, run_id))


def run_spec(name: str, run_id: int, why: str | None = None) -> Any:
    """The ``pipeline.run`` job of queued run ``run_id``: "Pipeline churn (run 4, schedule)"."""
    from modelyard.core.pipelines.runner import pipeline_job_spec

    return pipeline_job_spec(run_id, title=f"Pipeline {name} (run {run_id}{', ' + why if why else ''})")


def fire_triggers(store: Any, interval_s: float) -> list[tuple[str, int | None, str | None, str]]:
    """One pass of the open window over the triggers, as the agent's: claim what is due and record
    its runs (exactly once across windows and agents), then retry notifications waiting for
    delivery. (pipeline, run id or None, error or None, trigger type) for each claim. A member who may
    not write (a viewer of a team store) leaves the triggers to the others' windows and agents."""
    from modelyard.core.pipelines import triggers

    if not store.member.may("write"):
        return []

    now = triggers.SystemClock().now()
    started = triggers.start_due(store, now=now, on_time_s=max(triggers.ON_TIME_S, 2 * interval_s),
                                 settle_s=triggers.SETTLE_S)
    try:
        from modelyard.core.notify import deliver_pending
    except ImportError:  # pragma: no cover - the notify room is part of the package
        deliver_pending = None
    if deliver_pending is not None:
        deliver_pending(store, now=now)
    return [(s.claim.pipeline, s.run_id, s.error, s.claim.type) for s in started]
