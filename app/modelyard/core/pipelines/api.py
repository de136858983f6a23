"""The pipelines' Python API (``modelyard.run_pipeline`` ...): the runner with the tracking API's
store resolution (``store=`` a Store or a folder; else ``MODELYARD_STORE`` / the default store)."""

from __future__ import annotations

import os
from typing import Any

from modelyard.core.store import Store


def _open(store: Store | str | os.PathLike[str] | None) -> Store:
    from modelyard.core.experiments.tracking.stores import _store

    return _store(store)


def run_pipeline(path: str | os.PathLike[str], *, params: dict[str, Any] | None = None,
                 store: Store | str | os.PathLike[str] | None = None, jobs: int = 1, force: bool = False) -> Any:
    """Run the pipeline file at ``path`` now (as ``modelyard pipeline run``); its
    :class:`~modelyard.core.pipelines.runner.PipelineOutcome` (``status``, ``exit_code``, ``steps``)."""
    from modelyard.core.pipelines import runner

    return runner.run_pipeline(_open(store), os.fspath(path), params=params, jobs=jobs, force=force,
                               trigger={"type": "manual", "via": "python"})


def resume_pipeline(run_id: int, store: Store | str | os.PathLike[str] | None = None, *, jobs: int | None = None) -> Any:
    """Resume pipeline run ``run_id``: its failed step and the steps after it run, the rest is reused."""
    from modelyard.core.pipelines import runner

    return runner.resume_run(_open(store), int(run_id), jobs=jobs)


def validate_pipeline(path: str | os.PathLike[str]) -> list[Any]:
    """Every problem of the pipeline file at ``path`` (each with file, line, column and a hint); [] when valid."""
    from modelyard.core.pipelines.loading import validate_file

    return validate_file(os.fspath(path))
