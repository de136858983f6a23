"""Builders for the runner's tests: pipelines as plain data, a data file, the python step functions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from factories import churn_frame
from modelyard.core.pipelines import refs
from modelyard.core.pipelines.spec import Pipeline, Step
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select

# the functions python steps call (written into the pipeline's folder as stepfns.py)
STEPFNS = textwrap.dedent('''
    import json
    import pathlib
    import time


    def add(a, b):
        print(f"adding {a} and {b}")
        return {"sum": a + b}


    def flaky(counter, fail_times):
        path = pathlib.Path(counter)
        n = int(path.read_text()) if path.exists() else 0
        path.write_text(str(n + 1))
        if n < fail_times:
            raise RuntimeError(f"flaky failure {n + 1}")
        return n + 1


    def write_report(rows, output_dir):
        (pathlib.Path(output_dir) / "report.json").write_text(json.dumps({"rows": rows}))
        return {"rows": rows}


    def sleep(seconds, marker=None):
        if marker:
            pathlib.Path(marker).write_text("started")
        time.sleep(seconds)
        return seconds
''')


def step(name: str, kind: str, params: dict[str, Any] | None = None, *, needs: tuple[str, ...] = (),
         **options: Any) -> Step:
    """A step; the steps its params reference are added to ``needs`` (as the loader does)."""
    params = dict(params or {})
    implied = [r.name for r in refs.find(params) if r.scope == "steps"]
    all_needs = tuple(dict.fromkeys([*needs, *implied]))
    return Step(name=name, kind=kind, params=params, needs=all_needs, **options)


def pipeline(folder: Path, *steps: Step, name: str = "test-pipe", params: dict[str, Any] | None = None) -> Pipeline:
    numbered = tuple(Step(**{**s.__dict__, "position": i}) for i, s in enumerate(steps))
    return Pipeline(name=name, path=str(folder / f"{name}.yaml"), folder=str(folder), steps=numbered,
                    params=dict(params or {}), sha256="0" * 64)


def project(tmp_path: Path, rows: int = 200, seed: int = 0) -> Path:
    """A pipeline folder with churn.csv and stepfns.py."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    churn_frame(rows, seed).to_csv(folder / "churn.csv", index=False)
    (folder / "stepfns.py").write_text(STEPFNS)
    return folder


def step_rows(store: Store, run_id: int) -> dict[str, m.PipelineStepRun]:
    with store.session() as s:
        rows = list(s.scalars(select(m.PipelineStepRun).where(m.PipelineStepRun.run_id == run_id)))
        for r in rows:
            s.expunge(r)
    return {r.step: r for r in rows}


def run_row(store: Store, run_id: int) -> m.PipelineRun:
    with store.session() as s:
        row = s.get(m.PipelineRun, run_id)
        s.expunge(row)
    return row


TRAIN = {"dataset": "${steps.load.outputs.ref}", "model": "logistic_regression", "target": "churned",
         "split": {"test": 0.25, "seed": 0}, "curves": False}
