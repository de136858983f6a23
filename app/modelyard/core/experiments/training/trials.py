"""One piece of a search or a cross-validation: fit the pipeline on some training rows and score
it on others. A pure function of the training data, the pipeline's description, the parameters
and the part (which rows) - what a Dask worker runs (see :mod:`.engine`).

It never touches the store: it returns metrics (and the warnings it saw, as log lines); the
client, the training job, records them. So a worker on a colleague's machine needs the same
Python packages, never the store's location or credentials.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.core.common.errors import JobCancelled, ModelyardError


@dataclass(frozen=True)
class PipeSpec:
    """What builds the pipeline: the model's key, the task, the preprocessing plan and the seed."""

    model: str
    task: str
    plan: Mapping[str, Any]
    seed: int


@dataclass
class TrialData:
    """The training rows a search or cross-validation works on; sent to the workers once.

    ``parts[i]`` is ``(fit_rows, score_rows)`` (positions in ``X``): a fold, or the holdout. A
    part ``(None, None)`` fits on all of ``X`` and scores on ``X_score`` (the validation rows).
    """

    X: Any
    y: Any
    parts: list[tuple[Any, Any]]
    X_score: Any = None
    y_score: Any = None


@dataclass(frozen=True)
class Task:
    """One fit to make: the trial it belongs to (0 for a plain cross-validation), its parameters,
    which part of :class:`TrialData`, and how a failure names it ("fold 2", "trial 3")."""

    trial: int
    params: Mapping[str, Any]
    part: int
    what: str


def warning_line(w: warnings.WarningMessage) -> str:
    """A caught warning as one log line (its first line; a warning may have an empty message)."""
    return f"warning: {w.category.__name__}: {(str(w.message).splitlines() or [''])[0]}"


def build_pipeline(pipe: PipeSpec, params: Mapping[str, Any], n_jobs: int) -> Any:
    from sklearn.pipeline import Pipeline

    from modelyard.core.experiments.training import catalogue, preprocess

    pre = preprocess.build_preprocessor(plan=pipe.plan)
    est = catalogue.make_estimator(pipe.model, pipe.task, dict(params), seed=pipe.seed, n_jobs=n_jobs)
    return Pipeline([("preprocess", pre), ("model", est)])


def fit(model: Any, X: Any, y: Any, what: str) -> Any:
    try:
        return model.fit(X, y)
    except (JobCancelled, KeyboardInterrupt, MemoryError):
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelyardError(f"Training {what} failed: {msg}",
                             hint="Check the model's parameters and the preprocessing of the columns.") from exc


def run_part(data: TrialData, pipe: PipeSpec, params: Mapping[str, Any], part: int, what: str,
             n_jobs: int = 1) -> dict[str, Any]:
    """Fit on part ``part`` of ``data`` and score: ``{"metrics", "warnings", "error", "hint",
    "seconds", "worker"}``; a fit that fails is an ``error`` (one line), not an exception."""
    from modelyard.core.experiments.training.metrics import _evaluate

    t0 = time.monotonic()
    out: dict[str, Any] = {"metrics": None, "warnings": [], "error": None, "hint": None, "worker": _worker()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit_rows, score_rows = data.parts[part]
            if fit_rows is None:
                X_fit, y_fit, X_score, y_score = data.X, data.y, data.X_score, data.y_score
            else:
                X_fit, y_fit = data.X.iloc[fit_rows], data.y[fit_rows]
                X_score, y_score = data.X.iloc[score_rows], data.y[score_rows]
            model = fit(build_pipeline(pipe, params, n_jobs), X_fit, y_fit, what)
            out["metrics"] = _evaluate(model, X_score, y_score, pipe.task, getattr(model, "classes_", None))
        except (JobCancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed fit is reported; the search goes on
            if isinstance(exc, ModelyardError):
                out["error"], out["hint"] = exc.message, exc.hint
            else:
                out["error"] = f"{type(exc).__name__}: {exc}"
    seen: list[str] = []
    for w in caught:
        text = warning_line(w)
        if text not in seen:
            seen.append(text)
    out["warnings"] = seen
    out["seconds"] = time.monotonic() - t0
    return out


def run_part_on_worker(data: TrialData, pipe: PipeSpec, params: Mapping[str, Any], part: int,
                       what: str) -> dict[str, Any]:
    """:func:`run_part` on a Dask worker: one thread per task (the worker runs several tasks at once)."""
    with _controller().limit(limits=1):
        return run_part(data, pipe, params, part, what, n_jobs=1)


_CONTROLLER: Any = None


def _controller() -> Any:
    """The worker's thread-pool controller: looking up the thread pools takes longer than a small
    fit, so once per worker."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def warm_worker(model: str) -> None:
    """Import what fitting ``model`` takes (pandas, scikit-learn's pipeline, metrics and the model's
    class, this package's catalogue) on a worker that has just started, so its first fit does not
    pay for the imports; run on every worker while the client loads the data."""
    import pandas  # noqa: F401 - the scattered data is a DataFrame
    import sklearn.compose  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    from modelyard.core.experiments.training import catalogue, metrics, preprocess  # noqa: F401

    entry = catalogue.get_model(model)
    for task in entry.tasks:
        catalogue.estimator_class(entry.key, task)
    _controller()


def _worker() -> str | None:
    import sys

    dist = sys.modules.get("distributed")  # never imported here when the job runs the fits itself
    if dist is None:
        return None
    try:
        return str(dist.get_worker().address)
    except ValueError:  # not on a worker
        return None
