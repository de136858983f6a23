"""Generated data and trained versions for the evidence, fairness and explanation tests (nothing
downloads): a credit-like table whose label noise can differ by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from modelyard.core.datasets.service import import_frame
from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store


def fair_frame(n: int = 6000, seed: int = 0, *, noise: tuple[float, float] = (0.05, 0.05),
               copy: bool = False) -> pd.DataFrame:
    """``x1`` decides the label (with ``x2`` a little), ``noise`` decides nothing; a share of the
    labels is flipped: ``noise[0]`` of group F's, ``noise[1]`` of group M's. ``copy`` adds
    ``x1_copy``, a near copy of x1."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    band = rng.choice(["18-30", "31-50", "51+"], n)
    x1, x2, junk = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    clean = (2.0 * x1 + 0.3 * x2) > 0
    flip = rng.random(n) < np.where(sex == "F", noise[0], noise[1])
    frame = pd.DataFrame({"x1": x1, "x2": x2, "noise": junk, "sex": sex, "age_band": band,
                          "label": np.where(clean ^ flip, "yes", "no")})
    if copy:
        frame.insert(1, "x1_copy", x1 + rng.normal(scale=0.05, size=n))
    return frame


def train_run(store: Store, frame: pd.DataFrame, name: str, *, model: str = "logistic_regression",
              dataset: str | None = None, target: str = "label") -> str:
    """Import ``frame`` as ``dataset`` (default ``name``; reused when already imported) and train
    ``model`` on it with a 25 % test split (in this process); the run's id."""
    dataset = dataset or name
    from modelyard.core.datasets import service

    if not any(d.name == dataset for d in service.list_datasets(store)):
        import_frame(store, frame, dataset, target=target)
    job = train_spec_job(TrainSpec(dataset=dataset, model=model, split={"test": 0.25, "seed": 0},
                                   experiment=name, curves=False, source="api"))
    outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert outcome.ok, outcome.error
    return outcome.result["run_id"]


def train_version(store: Store, frame: pd.DataFrame, name: str, *, model: str = "logistic_regression",
                  dataset: str | None = None, target: str = "label") -> registry.ModelVersionInfo:
    """:func:`train_run`, registered as the next version of ``name``."""
    run_id = train_run(store, frame, name, model=model, dataset=dataset, target=target)
    return registry.register(store, run_id, name)
