"""Optuna as a search method: TPE sampling seeded from the search's seed, pruning of unpromising
trials on the cross-validation folds, a trial budget and a time budget.

The study is driven with ask and tell, so the fits run on any engine (:mod:`.engine`): serially
here, or as tasks on a Dask cluster with up to ``parallel`` trials in flight. A trial's folds run
one after the other (each fold is one task), so a pruned trial stops fitting after the fold that
pruned it, and its running mean is reported to the pruner after each fold.

**The same trials everywhere.** Trial ``k`` is asked when the trials up to ``k - parallel`` have
finished, and the study is told of the trials in their order, just before the trial that may see
them is asked; the pruner judges trial ``k`` against those same trials (the finished ones
up to ``k - parallel``). So what a trial samples and whether it is pruned depends on the seed and
``parallel``, never on which fit finished first: a search with ``parallel: 2`` gives the same
trials serially and on a cluster of any size. ``parallel`` defaults to the engine's workers (1
serially, where TPE then sees every earlier trial); the job records the value it used in the
run's spec, so ``run reproduce`` replays the same study. A trial whose slow fit holds back the
ones after it keeps the window from moving (the price of the determinism).

Each trial is recorded (a child run) as soon as it finishes, pruned trials with the status
``pruned``; the time budget stops new trials from starting (those in flight finish).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments.training.recording import clean
from modelyard.core.experiments.training.trials import PipeSpec, Task, TrialData
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext

PRUNER_STARTUP_TRIALS = 4  # finished trials before the pruner judges any
SAMPLEABLE = (type(None), bool, int, float, str)


def distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's distributions for a checked search space (lists: categorical; ranges: int or
    float, log or not); a value Optuna cannot sample is a one-line error naming the parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            bad = next((v for v in spec if not isinstance(v, SAMPLEABLE)), None)
            if bad is not None:
                raise ModelyardError(
                    f"The search space of '{name}' has a value Optuna cannot sample ({bad!r}).",
                    hint="Optuna samples text, numbers, true/false and null: leave that value out, "
                         "or use --search random or grid.")
            if len(set(map(repr, spec))) != len(spec):
                raise ModelyardError(f"The search space of '{name}' repeats a value ({spec!r}).",
                                     hint="Give each value once.")
            out[name] = CategoricalDistribution(spec)
        elif spec["type"] == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return out


class _Known:
    """The study as the pruner may see it when it judges trial ``k``: the trials up to
    ``k - parallel`` (told before ``k`` was asked), whatever has finished since. The pruner's
    interface is ``prune(study, trial)``; what it reads of the study is its direction and its trials."""

    def __init__(self, study: Any, below: int) -> None:
        self._study, self._below = study, below

    @property
    def direction(self) -> Any:
        return self._study.direction

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if t.number < self._below]


@dataclass
class _Live:
    """A trial whose fits are running: its Optuna trial, its record, its folds' results."""

    trial: Any
    record: dict[str, Any]
    below: int
    results: list[dict[str, Any]] = field(default_factory=list)
    outcome: tuple[str, float | None] | None = None  # (state, value) once finished, until told


Record = Callable[[dict[str, Any], list[dict[str, Any]], str | None], None]


def run_study(ctx: JobContext, engine: Any, data: TrialData, pipe: PipeSpec, *, search: Mapping[str, Any],
              space: Mapping[str, Any], fixed: Mapping[str, Any], metric: str, greater: bool, evaluation: str,
              seed: int, progress: ProgressSlice, record: Record) -> list[dict[str, Any]]:
    """Run the study; ``record(trial_record, fold_results, pruned_reason)`` records each trial as it
    finishes (and fills in its record: run id, score, status). Returns the trial records in order."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = distributions(space)
    k = len(data.parts)
    prune = bool(search.get("pruning", True)) and evaluation == "cv" and k >= 2
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0) if prune
              else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize" if greater else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    budget, timeout = search.get("trials"), search.get("timeout")
    parallel = int(search.get("parallel") or getattr(engine, "workers", 1) or 1)
    deadline = time.monotonic() + timeout if timeout else None
    live: dict[int, _Live] = {}
    records: list[dict[str, Any]] = []
    told = 0
    stopped = ""
    done = 0

    def what(n: int, part: int) -> str:
        return f"fold {part + 1}" if evaluation == "cv" else f"trial {n}"

    def tell(n: int) -> None:
        lv = live.pop(n)
        state, value = lv.outcome or ("fail", None)
        if state == "complete" and value is not None:
            study.tell(lv.trial, value)
        else:
            study.tell(lv.trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)

    def may_ask() -> bool:
        nonlocal stopped
        if budget is not None and len(records) >= budget:
            stopped = stopped or f"its budget of {budget} trial{'s' if budget != 1 else ''}"
            return False
        if deadline is not None and time.monotonic() >= deadline:
            stopped = stopped or f"its time budget of {timeout:g} s"
            return False
        first_unfinished = next((n for n in sorted(live) if live[n].outcome is None), None)
        return first_unfinished is None or first_unfinished > len(records) + 1 - parallel

    def finish(n: int, state: str, reason: str | None = None) -> None:
        nonlocal done
        lv = live[n]
        record(lv.record, lv.results, reason)
        score = lv.record.get("score")
        lv.outcome = (state if state != "complete" or score is not None else "fail", score)
        done += 1
        if budget is not None:
            progress(done / budget, f"Trial {n}: " + (f"{metric} {score:.4g}" if score is not None
                                                     else lv.record["status"]))
        elif deadline is not None:
            progress(min(1.0, 1 - (deadline - time.monotonic()) / timeout), f"Trial {n}: {lv.record['status']}")

    ctx.log(f"Optuna search (TPE, seed {seed}): "
            + (f"up to {budget} trial(s)" if budget else "trials") + (f" within {timeout:g} s" if timeout else "")
            + f" of {', '.join(space)}, {parallel} at a time, scored by {metric} "
            + ("(cross-validation, pruning after each fold)." if prune else
               "(cross-validation)." if evaluation == "cv" else f"({evaluation} rows)."))
    if search.get("pruning", True) and not prune:
        ctx.log("No pruning: it needs cross-validation (--cv K) to judge a trial before its end.")
    with engine.session(data, pipe, check=ctx.check_cancelled) as session:
        while True:
            while may_ask():
                n = len(records) + 1
                while told < n - parallel:  # the study learns of the trials in order, as late as it may
                    told += 1
                    tell(told)
                trial = study.ask(dists)
                params = {key: (float(f"{v:.6g}") if isinstance(v, float) and not isinstance(space[key], list)
                                else v) for key, v in clean(trial.params).items()}
                rec = {"trial": n, "run_id": None, "params": params, "score": None, "status": "failed",
                       "error": None}
                records.append(rec)
                live[n] = _Live(trial, rec, below=n - parallel)
                session.submit((n, 0), Task(n, {**fixed, **params}, 0, what(n, 0)))
            if not session.pending:
                break
            (n, part), res = session.next()
            lv = live[n]
            lv.results.append(res)
            if res["error"]:
                finish(n, "fail")
                continue
            if prune and part + 1 < k:
                values = [r["metrics"].get(metric, float("nan")) for r in lv.results]
                mean = float(sum(values) / len(values))
                if math.isfinite(mean):
                    lv.trial.report(mean, part)
                    frozen = study.get_trials(deepcopy=False)[lv.trial.number]
                    known = _Known(study, lv.below)
                    if pruner.prune(known, frozen):
                        finish(n, "pruned", _reason(known, part, k, metric, mean))
                        continue
            if part + 1 < k:
                session.submit((n, part + 1), Task(n, {**fixed, **lv.record["params"]}, part + 1, what(n, part + 1)))
            else:
                finish(n, "complete")
    while live:
        told += 1
        tell(told)
    pruned = sum(r["status"] == "pruned" for r in records)
    ctx.log(f"Optuna search: {len(records)} trial(s)" + (f", {pruned} pruned" if pruned else "")
            + (f"; stopped at {stopped}." if stopped else "."))
    return records


def _reason(known: _Known, part: int, k: int, metric: str, mean: float) -> str:
    import numpy as np
    from optuna.trial import TrialState

    earlier = [t.intermediate_values[part] for t in known.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if part in t.intermediate_values]
    median = float(np.nanmedian(earlier)) if earlier else float("nan")
    return (f"Pruned after fold {part + 1} of {k}: mean {metric} {mean:.4g}, worse than the earlier trials' "
            f"median {median:.4g}.")
