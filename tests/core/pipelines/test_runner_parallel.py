"""The runner's concurrency: independent branches at once with jobs=2, cancel (of a running search,
and of the pipeline's own job), and the run's job kind."""

from __future__ import annotations

import threading
import time

import pytest
from modelyard.core.jobs.runner import run_job
from modelyard.core.pipelines.runner import create_run, pipeline_job_spec, run_pipeline
from modelyard.core.store import models as m
from pipeline_helpers import TRAIN, pipeline, project, run_row, step, step_rows
from sqlalchemy import select


class Recorder:
    """A reporter that keeps what it was told (from several threads)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def step(self, name: str, status: str) -> None:
        with self.lock:
            self.events.append((name, status))

    def log(self, name: str, line: str) -> None:
        with self.lock:
            self.lines.append((name, line))

    def progress(self, name: str, fraction: float | None, message: str) -> None:
        pass


def _overlap(a: m.PipelineStepRun, b: m.PipelineStepRun) -> bool:
    return a.started_at < b.ended_at and b.started_at < a.ended_at


def test_two_independent_branches_run_at_once_with_two_jobs_and_one_after_the_other_with_one(store, tmp_path):
    folder = project(tmp_path)
    steps = [step("left", "shell", {"command": "sleep 0.6; echo left"}, cache=False),
             step("right", "shell", {"command": "sleep 0.6; echo right"}, cache=False),
             step("join", "shell", {"command": "echo both"}, needs=("left", "right"), cache=False)]
    rec = Recorder()
    two = run_pipeline(store, pipeline(folder, *steps), jobs=2, reporter=rec)
    assert two.status == "succeeded", two.error
    rows = step_rows(store, two.run_id)
    assert _overlap(rows["left"], rows["right"])
    assert rows["join"].started_at >= max(rows["left"].ended_at, rows["right"].ended_at)
    assert ("left", "running") in rec.events and ("join", "succeeded") in rec.events
    assert ("right", "right") in rec.lines
    one = run_pipeline(store, pipeline(folder, *steps), jobs=1)
    rows = step_rows(store, one.run_id)
    assert not _overlap(rows["left"], rows["right"])
    assert run_row(store, two.run_id).max_parallel == 2


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
def test_cancel_stops_a_running_search_and_records_the_run_cancelled(store, tmp_path):
    folder = project(tmp_path, rows=400)
    search = {**TRAIN, "model": "random_forest", "params": {"n_estimators": 200},
              "search": {"method": "random", "trials": 200}}
    p = pipeline(folder, step("load", "import", {"path": "churn.csv", "name": "churn"}),
                 step("search", "train", search),
                 step("after", "shell", {"command": "echo never"}, needs=("search",)),
                 step("aside", "shell", {"command": "sleep 30"}, needs=("load",)))
    cancel = threading.Event()
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("outcome", run_pipeline(store, p, jobs=2,
                                                                                    cancel_event=cancel)))
    worker.start()
    try:
        def trials_running() -> bool:
            with store.session() as s:
                return s.scalar(select(m.Run.id).where(m.Run.parent_run_id.is_not(None)).limit(1)) is not None
        _wait_for(trials_running)
    finally:
        cancel.set()
        worker.join(60)
    outcome = box["outcome"]
    assert outcome.status == "cancelled" and outcome.exit_code == 1
    assert outcome.steps == {"load": "succeeded", "search": "cancelled", "after": "skipped", "aside": "cancelled"}
    rows = step_rows(store, outcome.run_id)
    with store.session() as s:
        assert s.get(m.Job, rows["search"].job_id).status == "cancelled"
        assert s.scalars(select(m.Run.status).where(m.Run.status == "running")).all() == []
        parent = s.scalars(select(m.Run.status).where(m.Run.job_id == rows["search"].job_id,
                                                      m.Run.parent_run_id.is_(None))).all()
        trials = set(s.scalars(select(m.Run.status).where(m.Run.job_id == rows["search"].job_id,
                                                          m.Run.parent_run_id.is_not(None))))
    # the search is cancelled; a trial is recorded when its fit has finished (a trial that finished
    # before the cancel keeps its result), so none is left running
    assert parent == ["cancelled"] and trials <= {"succeeded", "cancelled"} and trials
    run = run_row(store, outcome.run_id)
    assert run.status == "cancelled" and run.error == "Step 'search' cancelled: Cancelled by the user."


def test_the_pipeline_job_runs_a_queued_run_and_its_cancel_cancels_the_steps(store, tmp_path):
    folder = project(tmp_path)
    ok = create_run(store, pipeline(folder, step("hi", "shell", {"command": "echo hi"})))
    outcome = run_job(store, pipeline_job_spec(ok))
    assert outcome.ok and outcome.result["status"] == "succeeded"
    assert run_row(store, ok).job_id == outcome.job_id
    slow = create_run(store, pipeline(folder, step("wait", "shell", {"command": "sleep 30"}),
                                      step("then", "shell", {"command": "echo then"}, needs=("wait",)), name="slow"))
    cancel = threading.Event()
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("job", run_job(store, pipeline_job_spec(slow),
                                                                           cancel_event=cancel)))
    worker.start()
    try:
        _wait_for(lambda: step_rows(store, slow)["wait"].status == "running")
    finally:
        cancel.set()
        worker.join(30)
    assert box["job"].status == "cancelled"
    assert {n: r.status for n, r in step_rows(store, slow).items()} == {"wait": "cancelled", "then": "skipped"}
    assert run_row(store, slow).status == "cancelled"


def test_a_running_steps_log_and_the_runs_heartbeat_are_written_while_it_runs(store, tmp_path, monkeypatch):
    from modelyard.core.pipelines import runner

    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.2)
    folder = project(tmp_path)
    p = pipeline(folder, step("talk", "shell", {"command": "echo first line; sleep 30"}))
    cancel = threading.Event()
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("outcome", run_pipeline(store, p, cancel_event=cancel)))
    worker.start()
    try:
        _wait_for(lambda: "first line" in _talk_log(store), 20)
        beat = run_row(store, _last_run(store)).heartbeat_at
        _wait_for(lambda: run_row(store, _last_run(store)).heartbeat_at > beat, 10)
        row = step_rows(store, _last_run(store))["talk"]
        assert row.status == "running" and row.job_id is not None
    finally:
        cancel.set()
        worker.join(30)
    assert box["outcome"].status == "cancelled"


def _talk_log(store) -> str:
    row = step_rows(store, _last_run(store) or 0).get("talk")
    return (row.log or "") if row is not None else ""


def _last_run(store) -> int:
    with store.session() as s:
        return s.scalar(select(m.PipelineRun.id).order_by(m.PipelineRun.id.desc()).limit(1))
