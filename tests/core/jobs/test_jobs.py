"""Jobs: what run_job records for success, failure, cancellation and crashes, in-thread and in a child."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from modelyard.core.common.procs import pid_alive
from modelyard.core.jobs import housekeeping as maintenance
from modelyard.core.jobs.runner import JobSpec, get_job, list_jobs, run_job
from modelyard.core.store import Store
from modelyard.core.store import models as m

USER_MESSAGE = "The column 'price' is missing from sales.csv."


class Recorder:
    """A reporter that remembers everything (called from the job's thread)."""

    def __init__(self) -> None:
        self.progress_calls: list[tuple[float | None, str]] = []
        self.lines: list[str] = []
        self.started = threading.Event()

    def progress(self, fraction: float | None, message: str) -> None:
        self.progress_calls.append((fraction, message))
        self.started.set()

    def log(self, line: str) -> None:
        self.lines.append(line)


def job_row(store: Store, job_id: int) -> m.Job:
    with store.session() as s:
        job = s.get(m.Job, job_id)
        assert job is not None
        return job


class Background:
    """run_job on a worker thread (as the GUI does), always joined at the end of the test."""

    def __init__(self, store: Store, spec: JobSpec, reporter: Recorder) -> None:
        self.cancel = threading.Event()
        self.outcome: Any = None
        self.thread = threading.Thread(
            target=lambda: setattr(self, "outcome", run_job(store, spec, reporter=reporter, cancel_event=self.cancel)),
            name="test-job-runner",
        )

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "run_job did not return after cancel"


# --------------------------------------------------------------------------- in this process


def test_success_records_result_progress_and_log(store: Store) -> None:
    rec = Recorder()
    out = run_job(store, JobSpec("jobfns:ok", "Say hello", {"value": 7, "lines": 3}), reporter=rec)
    assert out.ok and out.status == "succeeded" and out.result == {"value": 7} and out.error is None
    job = job_row(store, out.job_id)
    assert job.status == "succeeded"
    assert job.result == {"value": 7}
    assert job.progress == 1.0
    assert job.error is None
    assert job.started_at is not None and job.ended_at is not None and job.ended_at >= job.started_at
    assert job.log.splitlines() == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]
    assert rec.lines == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]
    assert rec.progress_calls[-1] == (1.0, "step 3")
    assert job.kind == "ok" and job.title == "Say hello" and job.params == {"value": 7, "lines": 3}
    assert job.actor == "tester"  # MODELYARD_USER from conftest

    record, log = get_job(store, out.job_id)
    assert record.status == "succeeded" and "line 2 of 3" in log
    assert [j.id for j in list_jobs(store)] == [out.job_id]


def test_user_error_is_recorded_with_exactly_its_message(store: Store) -> None:
    out = run_job(store, JobSpec("jobfns:user_error", "Import sales"))
    assert out.status == "failed"
    assert out.error == USER_MESSAGE
    job = job_row(store, out.job_id)
    assert job.status == "failed"
    assert job.error == USER_MESSAGE
    assert "checking the input" in job.log
    assert "Traceback" not in job.log and "Traceback" not in job.error


def test_unexpected_exception_is_recorded_with_traceback_in_the_log(store: Store) -> None:
    out = run_job(store, JobSpec("jobfns:crash", "Divide"))
    assert out.status == "failed"
    job = job_row(store, out.job_id)
    assert job.status == "failed"
    assert job.error.startswith("Unexpected error")
    assert "ZeroDivisionError" in job.error
    assert "Traceback" not in job.error
    assert "about to divide" in job.log
    assert "Traceback (most recent call last)" in job.log
    assert "_inner_helper_that_crashes" in job.log  # the frame where it went wrong


def test_unknown_job_function_fails_cleanly(store: Store) -> None:
    out = run_job(store, JobSpec("jobfns:no_such_function", "Nothing"))
    assert out.status == "failed"
    assert job_row(store, out.job_id).status == "failed"


def test_cancel_from_another_thread_ends_the_job_within_a_second(store: Store) -> None:
    rec = Recorder()
    with Background(store, JobSpec("jobfns:slow", "Slow", {"seconds": 30}), rec) as bg:
        assert rec.started.wait(10), "the job never reported progress"
        assert job_row(store, list_jobs(store)[0].id).status == "running"
        t0 = time.monotonic()
        bg.cancel.set()
        bg.thread.join(5)
        elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert bg.outcome.status == "cancelled"
    job = job_row(store, bg.outcome.job_id)
    assert job.status == "cancelled"
    assert job.error == "Cancelled by the user."
    assert job.ended_at is not None


def test_job_cancelled_before_it_starts_never_runs(store: Store) -> None:
    cancel = threading.Event()
    cancel.set()
    rec = Recorder()
    out = run_job(store, JobSpec("jobfns:ok", "Never"), reporter=rec, cancel_event=cancel)
    assert out.status == "cancelled"
    assert rec.lines == [] and rec.progress_calls == []
    job = job_row(store, out.job_id)
    assert job.status == "cancelled" and job.started_at is None


def test_progress_is_throttled(store: Store) -> None:
    rec = Recorder()
    t0 = time.monotonic()
    out = run_job(store, JobSpec("jobfns:many_progress", "Tight loop", {"steps": 100_000}), reporter=rec)
    elapsed = time.monotonic() - t0
    assert out.ok
    # One report per 0.5 % step, plus the first: the GUI is not flooded by 100,000 signals.
    assert 100 <= len(rec.progress_calls) <= 201, len(rec.progress_calls)
    fractions = [f for f, _ in rec.progress_calls]
    assert fractions == sorted(fractions)
    assert elapsed < 10


def test_job_reporting_progress_inside_its_own_write_transaction_does_not_lock_itself(store: Store) -> None:
    # Progress is written to the job row from the job's own thread; doing that while the job
    # holds the write lock used to wait for the busy timeout (60 s) and then fail with
    # "database is locked".
    rec = Recorder()
    t0 = time.monotonic()
    out = run_job(store, JobSpec("jobfns:write_in_one_transaction", "Import rows", {"rows": 50}), reporter=rec)
    elapsed = time.monotonic() - t0
    assert out.ok, out.error
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert out.result == {"rows": 50}
    with store.session() as s:
        assert s.query(m.AuditEvent).filter(m.AuditEvent.actor == "job").count() == 50
    job = job_row(store, out.job_id)
    assert job.progress == 1.0 and job.message == "row 50 of 50"
    assert job.log.splitlines() == ["writing"] + [f"saved row {i}" for i in range(1, 51)]
    assert len(rec.lines) == 51  # the reporter (the GUI) still saw every line as it happened


# --------------------------------------------------------------------------- in a child process


@pytest.mark.slow
def test_child_process_job_returns_its_result_and_log(store: Store) -> None:
    rec = Recorder()
    out = run_job(store, JobSpec("jobfns:ok", "Hello from a child", {"value": 9, "lines": 2}, process=True),
                  reporter=rec)
    assert out.status == "succeeded" and out.result == {"value": 9}
    job = job_row(store, out.job_id)
    assert job.status == "succeeded" and job.result == {"value": 9} and job.progress == 1.0
    assert "line 1 of 2" in job.log and "line 2 of 2" in job.log
    assert re.search(r"Started in process \d+\.", job.log)
    assert "line 2 of 2" in rec.lines


@pytest.mark.slow
def test_child_process_failure_message_comes_back(store: Store) -> None:
    out = run_job(store, JobSpec("jobfns:user_error", "Bad input", {"message": "Row 12 has no date."}, process=True))
    assert out.status == "failed" and out.error == "Row 12 has no date."
    job = job_row(store, out.job_id)
    assert job.status == "failed" and job.error == "Row 12 has no date."

    out = run_job(store, JobSpec("jobfns:crash", "Bug", process=True))
    job = job_row(store, out.job_id)
    assert job.status == "failed" and job.error.startswith("Unexpected error")
    assert "ZeroDivisionError" in job.log and "Traceback" in job.log


@pytest.mark.slow
def test_cancel_kills_the_child_process_quickly(store: Store) -> None:
    rec = Recorder()
    with Background(store, JobSpec("jobfns:slow", "Slow child", {"seconds": 60}, process=True), rec) as bg:
        assert rec.started.wait(30), "the child never reported progress"
        started = [ln for ln in rec.lines if ln.startswith("Started in process")]
        child_pid = int(re.search(r"\d+", started[0]).group())
        assert pid_alive(child_pid)
        t0 = time.monotonic()
        bg.cancel.set()
        bg.thread.join(10)
        elapsed = time.monotonic() - t0
    assert elapsed < 2.0, f"cancelling the child took {elapsed:.2f} s"
    assert not pid_alive(child_pid)
    assert bg.outcome.status == "cancelled"
    job = job_row(store, bg.outcome.job_id)
    assert job.status == "cancelled" and job.error == "Cancelled by the user."


@pytest.mark.slow
def test_child_process_that_dies_is_recorded_failed_with_its_exit_code(store: Store) -> None:
    out = run_job(store, JobSpec("jobfns:die", "Segfault-ish", {"code": 3}, process=True))
    assert out.status == "failed"
    job = job_row(store, out.job_id)
    assert job.status == "failed"
    assert "ended unexpectedly" in job.error and "exit code 3" in job.error


# --------------------------------------------------------------------------- maintenance jobs


def _put_some_artifacts(store: Store) -> list[str]:
    with store.write() as s:
        return [store.artifacts.put_bytes(f"artifact number {i}".encode() * 100, session=s).sha256 for i in range(4)]


def test_verify_artifacts_passes_on_an_intact_store(store: Store) -> None:
    _put_some_artifacts(store)
    out = run_job(store, maintenance.verify_spec())
    assert out.ok, out.error
    assert out.result["checked"] == 4
    assert out.result["missing"] == [] and out.result["corrupt"] == []
    assert job_row(store, out.job_id).kind == "store.verify"


def test_verify_artifacts_names_damaged_and_missing_files(store: Store) -> None:
    shas = _put_some_artifacts(store)
    damaged, missing = shas[0], shas[1]
    store.artifacts.path(damaged).write_bytes(b"bit rot")
    store.artifacts.path(missing).unlink()
    out = run_job(store, maintenance.verify_spec())
    assert out.status == "failed"
    assert "1 damaged" in out.error and damaged[:12] in out.error
    assert "1 missing" in out.error and missing[:12] in out.error
    for ok_sha in shas[2:]:
        assert ok_sha[:12] not in out.error
    job = job_row(store, out.job_id)
    assert job.status == "failed"
    assert f"corrupt: {store.artifacts.path(damaged)}" in job.log
    assert f"missing: {store.artifacts.path(missing)}" in job.log


def test_compact_database_succeeds_and_keeps_the_data(store: Store) -> None:
    shas = _put_some_artifacts(store)
    with store.write() as s:
        s.add_all([m.AuditEvent(actor="t", entity_type="x", entity_id=str(i), action="a", comment="c" * 500)
                   for i in range(200)])
    with store.write() as s:
        s.query(m.AuditEvent).delete()
    out = run_job(store, maintenance.compact_spec())
    assert out.ok, out.error
    assert isinstance(out.result["bytes_before"], int) and isinstance(out.result["bytes_after"], int)
    with store.session() as s:
        assert sorted(s.scalars(m.Artifact.__table__.select().with_only_columns(m.Artifact.sha256))) == sorted(shas)
    assert run_job(store, maintenance.verify_spec()).ok
