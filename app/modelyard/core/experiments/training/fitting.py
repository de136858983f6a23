"""Building and fitting the pipeline, cross-validation, and hyperparameter search (a parent run
with one child run per trial).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.experiments.training.data import _Data
from modelyard.core.experiments.training.engine import Engine, SerialEngine
from modelyard.core.experiments.training.metrics import (
    GREATER_IS_BETTER,
    PRIMARY_METRIC,
)
from modelyard.core.experiments.training.recording import (
    clean,
    threads_to_use,
)
from modelyard.core.experiments.training.spec import (
    TrainSpec,
)
from modelyard.core.experiments.training.trials import (
    PipeSpec,
    Task,
    TrialData,
    build_pipeline,
)
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext

HOLDOUT_SHARE = 0.2
GRID_POINTS = 3
MAX_GRID = 500


# =========================================================================== building and fitting


def _pipe(ts: TrainSpec, d: _Data, plan: Mapping[str, Any]) -> PipeSpec:
    return PipeSpec(model=ts.model, task=d.task, plan=plan, seed=ts.seed)


def _pipeline(ts: TrainSpec, d: _Data, plan: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return build_pipeline(_pipe(ts, d, plan), params, threads_to_use())


def _folds(task: str, y: Any, k: int, seed: int) -> list[tuple[Any, Any]]:
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if k > n:
        raise ModelyardError(f"{k}-fold cross-validation needs at least {k} training rows (there are {n}).",
                             hint="Use fewer folds.")
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= k:
            return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


class _Warnings:
    """Each distinct warning the fits reported, logged once."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx, self.seen = ctx, set()

    def __call__(self, lines: list[str]) -> None:
        for line in lines:
            if line not in self.seen:
                self.seen.add(line)
                self.ctx.log(line)


def _cross_validate(ctx: JobContext, ts: TrainSpec, d: _Data, plan: Mapping[str, Any], params: Mapping[str, Any],
                    X: Any, y: Any, progress: ProgressSlice, label: str,
                    engine: Engine | None = None) -> list[dict[str, float]]:
    """The metrics of each fold (on ``engine``, else one after the other here; a fold that fails
    fails the run)."""
    folds = _folds(d.task, y, ts.cv, ts.seed)
    k = len(folds)
    tasks = [Task(0, dict(params), i, f"fold {i + 1}") for i in range(k)]
    out: list[Any] = [None] * k
    warn = _Warnings(ctx)
    engine = engine or SerialEngine(threads_to_use())
    serial = isinstance(engine, SerialEngine)
    finished = 0
    for i, res in engine.run(TrialData(X, y, folds), _pipe(ts, d, plan), tasks,
                             before=lambda i: progress(i / k, f"{label}fold {i + 1}/{k}"),
                             check=ctx.check_cancelled):
        warn(res["warnings"])
        if res["error"]:
            raise ModelyardError(res["error"], hint=res["hint"])
        out[i] = res["metrics"]
        finished += 1
        if not serial:
            progress(finished / k, f"{label}{finished}/{k} folds done")
    progress(1.0, f"{label}{k} folds done")
    return out


def _log_cv(run: Any, folds: list[dict[str, float]]) -> dict[str, float]:
    import numpy as np

    keys = sorted({k for f in folds for k in f})
    for i, f in enumerate(folds):
        run.log_metrics({f"cv_{k}": v for k, v in f.items()}, step=i)
    summary: dict[str, float] = {}
    for k in keys:
        values = [f[k] for f in folds if k in f]
        if len(values) == len(folds):
            summary[f"cv_{k}_mean"] = float(np.mean(values))
            summary[f"cv_{k}_std"] = float(np.std(values))
    run.log_metrics(summary)
    return {k[3:-5]: v for k, v in summary.items() if k.endswith("_mean")}


# =========================================================================== search


class LogUniformInt:
    """Integers spread evenly on a log scale between ``low`` and ``high`` (for ParameterSampler)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = int(low), int(high)

    def rvs(self, random_state: Any = None) -> int:
        import numpy as np
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
        return int(min(max(np.floor(value), self.low), self.high))


def _grid_values(spec: Mapping[str, Any]) -> list[Any]:
    import numpy as np

    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    values = np.geomspace(low, high, GRID_POINTS) if log else np.linspace(low, high, GRID_POINTS)
    if spec["type"] == "int":
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.6g}") for v in values]


def search_candidates(space: Mapping[str, Any], method: str, trials: int | None, seed: int) -> list[dict[str, Any]]:
    """The parameter sets a search tries, within the trial budget."""
    import numpy as np
    from scipy import stats
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if method == "grid":
        grid = list(ParameterGrid({k: (v if isinstance(v, list) else _grid_values(v)) for k, v in space.items()}))
        if trials is None and len(grid) > MAX_GRID:
            raise ModelyardError(f"The grid has {len(grid):,} combinations; at most {MAX_GRID} are tried without "
                                 "a budget.", hint="Give a trial budget (--trials N) or fewer values.")
        if trials is not None and len(grid) > trials:
            rng = np.random.default_rng(seed)
            grid = [grid[i] for i in sorted(rng.choice(len(grid), size=trials, replace=False))]
        return [clean(c) for c in grid]
    dists: dict[str, Any] = {}
    combinations: int | None = 1  # None: a range makes the space endless
    for k, v in space.items():
        if isinstance(v, list):
            dists[k] = v
            combinations = None if combinations is None else combinations * len(v)
            continue
        combinations = None
        if v["type"] == "float":
            dists[k] = (stats.loguniform(v["low"], v["high"]) if v.get("log")
                        else stats.uniform(v["low"], v["high"] - v["low"]))
        elif v.get("log"):
            dists[k] = LogUniformInt(v["low"], v["high"])
        else:
            dists[k] = stats.randint(v["low"], v["high"] + 1)
    n = int(trials or 10)
    if combinations is not None:
        n = min(n, combinations)  # only lists: sampled without repeats
    sampled = list(ParameterSampler(dists, n_iter=n, random_state=seed))
    out = []
    for c in sampled:
        item = {}
        for k, v in clean(c).items():
            spec = space[k]
            item[k] = float(f"{v:.6g}") if isinstance(spec, Mapping) and spec["type"] == "float" else v
        out.append(item)
    return out


def _run_search(ctx: JobContext, run: Any, ts: TrainSpec, d: _Data, plan: Mapping[str, Any],
                progress: ProgressSlice, engine: Engine | None = None) -> dict[str, Any]:
    """Try the candidates (their fits on ``engine``, else one after the other here), one child run per trial,
    recorded as soon as the trial finishes; returns the summary (best params and score...)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from modelyard.core.experiments.training import catalogue

    search = ts.search or {}
    task = d.task
    space = catalogue.check_search_space(ts.model, task, search.get("space")
                                         or catalogue.default_search_space(ts.model, task))
    fixed = dict(ts.params)
    space = {k: v for k, v in space.items() if k not in fixed}
    if not space:
        raise ModelyardError("Every parameter of the search space is fixed by the spec's params: nothing to search.",
                             hint="Leave some searched parameters out of --param, or give a search space.")
    metric = search.get("metric") or PRIMARY_METRIC[task]
    greater = GREATER_IS_BETTER[metric]
    X_train, y_train = d.X(d.train), d.Y(d.train)
    if ts.cv >= 2:
        evaluation = "cv"
        data = TrialData(X_train, y_train, _folds(task, y_train, ts.cv, ts.seed))
    elif len(d.validation):
        evaluation = "validation"
        data = TrialData(X_train, y_train, [(None, None)], d.X(d.validation), d.Y(d.validation))
    else:
        evaluation = "holdout"
        strat = None
        if task == "classification":
            _, counts = np.unique(y_train, return_counts=True)
            strat = y_train if counts.min() >= 2 else None
        try:
            tr, va = train_test_split(np.arange(len(y_train)), test_size=HOLDOUT_SHARE, random_state=ts.seed,
                                      stratify=strat)
        except ValueError:
            tr, va = train_test_split(np.arange(len(y_train)), test_size=HOLDOUT_SHARE, random_state=ts.seed)
        data = TrialData(X_train, y_train, [(tr, va)])
    engine = engine or SerialEngine(threads_to_use())
    history = _History(run, metric, greater)

    def record(rec: dict[str, Any], results: list[dict[str, Any]], pruned: str | None = None) -> None:
        _record_trial(ctx, run, ts, d, rec, results, evaluation, metric, pruned=pruned)
        history.finished(rec["trial"], rec["score"])

    if search["method"] == "optuna":
        from modelyard.core.experiments.training import optuna_search

        if not isinstance(engine, SerialEngine):
            progress(0.0, f"Optuna trials on {engine.description}")
        trials = optuna_search.run_study(ctx, engine, data, _pipe(ts, d, plan), search=search, space=space,
                                         fixed=fixed, metric=metric, greater=greater, evaluation=evaluation,
                                         seed=ts.seed, progress=progress, record=record)
    else:
        trials = _run_candidates(ctx, ts, d, plan, progress, engine, data, search, space, fixed, metric,
                                 evaluation, record)
    scored = [t for t in trials if t["score"] is not None]
    if not scored:
        raise ModelyardError(f"All {len(trials)} trials of the search failed.",
                             hint="The job's log says why; check the search space.")
    best = (max if greater else min)(scored, key=lambda t: t["score"])
    ctx.log(f"Best: trial {best['trial']} with {metric} {best['score']:.6g} "
            f"({', '.join(f'{k}={v}' for k, v in best['params'].items())}).")
    return {"method": search["method"], "metric": metric, "greater_is_better": greater, "evaluation": evaluation,
            "space": space, "trials": trials,
            "best": {k: best[k] for k in ("trial", "run_id", "params", "score")}}


def _run_candidates(ctx: JobContext, ts: TrainSpec, d: _Data, plan: Mapping[str, Any], progress: ProgressSlice,
                    engine: Engine, data: TrialData, search: Mapping[str, Any], space: Mapping[str, Any],
                    fixed: Mapping[str, Any], metric: str, evaluation: str,
                    record: Callable[..., None]) -> list[dict[str, Any]]:
    """A grid or random search: every candidate's fits at once on ``engine``."""
    candidates = search_candidates(space, search["method"], search.get("trials"), ts.seed)
    ctx.log(f"{search['method'].capitalize()} search: {len(candidates)} trial(s) of {', '.join(space)}, "
            f"scored by {metric} ({'cross-validation' if evaluation == 'cv' else evaluation + ' rows'}).")
    n, k = len(candidates), len(data.parts)
    tasks = [Task(i + 1, {**fixed, **cand}, j, f"fold {j + 1}" if evaluation == "cv" else f"trial {i + 1}")
             for i, cand in enumerate(candidates) for j in range(k)]
    trials: list[dict[str, Any]] = [{"trial": i + 1, "run_id": None, "params": cand, "score": None,
                                     "status": "failed", "error": None} for i, cand in enumerate(candidates)]
    parts: dict[int, list[Any]] = {i + 1: [None] * k for i in range(n)}

    def label(trial: int) -> str:
        return f"Trial {trial}/{n}: "

    def before(idx: int) -> None:  # the serial engine: a fold's progress, as the fits go
        t = tasks[idx]
        sub = progress.sub((t.trial - 1) / n, t.trial / n)
        if t.part == 0:
            sub(0.0, label(t.trial) + ", ".join(f"{key}={v}" for key, v in candidates[t.trial - 1].items()))
        if evaluation == "cv":
            sub(t.part / k, f"{label(t.trial)}fold {t.part + 1}/{k}")

    finished = 0
    if not isinstance(engine, SerialEngine):
        progress(0.0, f"{n} trials on {engine.description}")
    for idx, res in engine.run(data, _pipe(ts, d, plan), tasks, before=before, check=ctx.check_cancelled):
        t = tasks[idx]
        parts[t.trial][t.part] = res
        if any(r is None for r in parts[t.trial]):
            continue
        rec = trials[t.trial - 1]
        record(rec, parts.pop(t.trial))
        finished += 1
        progress(finished / n, label(t.trial) + (f"{metric} {rec['score']:.4g}" if rec["score"] is not None
                                                 else "failed"))
    return trials


class _History:
    """The study's history on the search's run: ``search.best_<metric>`` at step = trial number,
    the best score of the trials up to it (logged in trial order, as the trials finish)."""

    def __init__(self, run: Any, metric: str, greater: bool) -> None:
        self.run, self.key, self.greater = run, f"search.best_{metric}", greater
        self.scores: dict[int, float | None] = {}
        self.next = 1
        self.best: float | None = None

    def finished(self, trial: int, score: float | None) -> None:
        self.scores[trial] = score
        while self.next in self.scores:
            s = self.scores.pop(self.next)
            if s is not None and (self.best is None or (s > self.best if self.greater else s < self.best)):
                self.best = s
            if self.best is not None:
                self.run.log_metric(self.key, self.best, step=self.next)
            self.next += 1


def _record_trial(ctx: JobContext, run: Any, ts: TrainSpec, d: _Data, record: dict[str, Any],
                  results: list[dict[str, Any]], evaluation: str, metric: str, pruned: str | None = None) -> None:
    """Record a finished trial as a child run of the search ``run``; fills in ``record``. A trial
    ``pruned`` (the reason) after some folds ends ``pruned`` with those folds' metrics."""
    from modelyard.core.experiments import tracking
    from modelyard.core.experiments.training import catalogue

    i = record["trial"]
    workers = sorted({r["worker"] for r in results if r.get("worker")})
    tags = {**ts.tags, "search_trial": i, **({"search_worker": ", ".join(workers)} if workers else {})}
    if pruned is not None:
        tags.update({"search.pruned": "true", "search.folds_done": len(results), "search.pruned_reason": pruned})
    child = tracking.start_run(run.experiment, name=f"{run_name(ts)} trial {i}", parent=run, store=ctx.store,
                               source=ts.source, dataset_version_id=d.version.id, split_id=d.split.id,
                               job_id=ctx.job_id, tags=tags)
    record["run_id"] = child.id
    warn = _Warnings(ctx)
    try:
        with child:
            params = {**ts.params, **record["params"]}
            est = catalogue.make_estimator(ts.model, d.task, params, seed=ts.seed)
            child.log_params({"model": ts.model, "task": d.task, "dataset": d.version.ref, "target": d.target,
                              "seed": ts.seed, "trial": i, **catalogue.form_params(ts.model, d.task, est)})
            for r in results:
                warn(r["warnings"])
            failed = next((r for r in results if r["error"]), None)
            if failed is not None:
                raise ModelyardError(failed["error"], hint=failed["hint"])
            if pruned is not None:  # no metrics: a part of the folds would read as a score beside the others'
                record.update(status="pruned", folds_done=len(results), pruned=pruned)
                child.end("pruned")
                ctx.log(f"Trial {i}: {pruned}")
                return
            if evaluation == "cv":
                folds = [r["metrics"] for r in results]
                score = _log_cv(child, folds).get(metric, float("nan"))
                record["folds"] = folds
            else:
                m = results[0]["metrics"]
                child.log_metrics({f"val_{key}": v for key, v in m.items()})
                score = m.get(metric, float("nan"))
            if math.isfinite(score):
                child.log_metric("score", score)
            record["score"] = score if math.isfinite(score) else None
            record["status"] = "succeeded"
    except (JobCancelled, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded; the search goes on
        record["error"] = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        ctx.log(f"Trial {i} failed: {record['error']}")


def run_name(ts: TrainSpec) -> str:
    return ts.run_name or ts.model
