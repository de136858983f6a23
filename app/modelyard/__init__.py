"""Modelyard: the whole life of a small team's machine-learning models, on the desktop.

``import modelyard`` is cheap and Qt-free. The GUI lives in :mod:`modelyard.ui`, the
command line in :mod:`modelyard.cli`, and everything they share in :mod:`modelyard.core`.
"""

from typing import Any

from modelyard._version import __version__

# The tracking API (``modelyard.start_run`` ...), imported on first use so that ``import
# modelyard`` stays cheap: SQLAlchemy and the store load only when a function is touched.
_TRACKING = ("start_run", "get_run", "search_runs", "metric_history", "delete_run", "restore_run",
             "purge_deleted", "set_tags", "list_experiments", "query_runs", "ActiveRun", "RunInfo")

# The pipelines (``modelyard.run_pipeline`` ...), also on first use.
_PIPELINES = ("run_pipeline", "resume_pipeline", "validate_pipeline")

__all__ = ["__version__", *_TRACKING, *_PIPELINES, "FilterError"]


def __getattr__(name: str) -> Any:
    if name == "FilterError":
        from modelyard.core.experiments.runquery import FilterError

        return FilterError
    if name in _TRACKING:
        from modelyard.core.experiments import tracking

        value = getattr(tracking, name)
        globals()[name] = value
        return value
    if name in _PIPELINES:
        from modelyard.core.pipelines import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
