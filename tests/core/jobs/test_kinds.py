"""The job registry: every kind resolves, spec builders agree with it, and the runner runs a kind's
clean-up once after a cancel or a failure (in this thread and for a child process)."""

from __future__ import annotations

import threading

import jobfns
import pytest
from modelyard.core.jobs import kinds
from modelyard.core.jobs.runner import JobSpec, get_job, resolve, run_job
from modelyard.core.store import Store


@pytest.mark.parametrize("name", sorted(kinds.KINDS))
def test_every_kind_names_functions_that_exist(name: str) -> None:
    kind = kinds.KINDS[name]
    assert kind.name == name
    assert callable(resolve(kind.func))
    if kind.cleanup is not None:
        assert callable(resolve(kind.cleanup))
    assert kind.changes <= kinds.TOPICS


def test_change_topics_are_the_windows() -> None:
    pytest.importorskip("PySide6")
    from modelyard.ui.common.client import TOPICS

    assert kinds.TOPICS == TOPICS


def test_specs_are_built_from_the_registry(tmp_path) -> None:
    from modelyard.core.bundles import export_bundle_spec, import_bundle_spec
    from modelyard.core.datasets.specs import import_spec, sample_spec
    from modelyard.core.experiments.training.spec import (
        reproduce_spec_job,
        train_spec_job,
    )
    from modelyard.core.jobs import housekeeping
    from modelyard.core.monitoring import drift
    from modelyard.core.monitoring.retraining import retrain_spec
    from modelyard.core.pipelines.runner import pipeline_job_spec
    from modelyard.core.pipelines.steps.data import import_files_spec
    from modelyard.core.pipelines.steps.escape import python_spec, shell_spec
    from modelyard.core.registry.review.compute import evidence_spec
    from modelyard.core.serving import scoring

    specs = [housekeeping.verify_spec(), housekeeping.gc_spec(dry_run=True), housekeeping.compact_spec(),
             import_spec(tmp_path / "a.csv"), sample_spec("iris"),
             train_spec_job({"dataset": "iris@v1", "model": "random_forest"}), reproduce_spec_job("abc"),
             export_bundle_spec("iris", tmp_path / "b.zip"), import_bundle_spec(tmp_path / "b.zip"),
             retrain_spec(3), drift.check_spec("iris", batch_path=tmp_path / "a.csv"),
             scoring.score_spec("iris", dataset="x@v1"), pipeline_job_spec(1), import_files_spec([tmp_path / "a.csv"]),
             python_spec("m:f", {}, [], None), shell_spec("true", str(tmp_path)), evidence_spec("iris@v1")]
    assert {s.kind for s in specs} == set(kinds.KINDS)
    for spec in specs:
        kind = kinds.get(spec.kind)
        assert spec.func == kind.func, spec.kind
    assert {s.kind: s.process for s in specs}["train"] is True
    assert {s.kind: s.process for s in specs}["pipeline.python"] is True
    assert {s.kind: s.process for s in specs}["registry.evidence"] is True
    assert retrain_spec(3, process=False).process is False


def test_for_kind_fills_what_the_kind_says_and_refuses_unknown_kinds() -> None:
    spec = JobSpec.for_kind("train", "Train it", {"spec": {}})
    assert (spec.func, spec.process, spec.kind, spec.label) == (kinds.get("train").func, True, "train", "train")
    assert JobSpec.for_kind("train", "Here", process=False).process is False
    with pytest.raises(KeyError, match="unknown job kind 'no.such'"):
        JobSpec.for_kind("no.such", "Nothing")
    assert kinds.changes_of("dataset.import") == {"datasets", "jobs"}
    assert kinds.changes_of("") == kinds.TOPICS  # a hand-made spec: refresh everything


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, str | None]]:
    table = dict(kinds.KINDS)
    for name, func in (("t.ok", "jobfns:ok"), ("t.error", "jobfns:user_error"), ("t.slow", "jobfns:slow"),
                       ("t.die", "jobfns:die")):
        table[name] = kinds.JobKind(name, func, cleanup="jobfns:record_cleanup")
    table["t.broken"] = kinds.JobKind("t.broken", "jobfns:crash", cleanup="jobfns:failing_cleanup")
    monkeypatch.setattr(kinds, "KINDS", table)
    jobfns.CLEANUP_CALLS.clear()
    yield jobfns.CLEANUP_CALLS
    jobfns.CLEANUP_CALLS.clear()


def test_the_runner_cleans_up_after_a_failure_or_cancel_only(store: Store, test_kinds) -> None:
    ok = run_job(store, JobSpec.for_kind("t.ok", "Fine"))
    assert ok.status == "succeeded" and test_kinds == []
    bad = run_job(store, JobSpec.for_kind("t.error", "Bad", {"message": "No dates."}))
    assert bad.status == "failed" and test_kinds == [(bad.job_id, "failed", bad.error)]
    test_kinds.clear()
    cancel = threading.Event()
    cancel.set()
    never = run_job(store, JobSpec.for_kind("t.ok", "Never"), cancel_event=cancel)
    assert never.status == "cancelled" and test_kinds == [(never.job_id, "cancelled", "Cancelled by the user.")]


def test_a_failing_clean_up_is_logged_and_keeps_the_outcome(store: Store, test_kinds) -> None:
    out = run_job(store, JobSpec.for_kind("t.broken", "Crash"))
    assert out.status == "failed" and "ZeroDivisionError" in (out.error or "")
    record, log = get_job(store, out.job_id)
    assert record.status == "failed"
    assert "Clean-up after the job (jobfns:failing_cleanup) failed: RuntimeError: the clean-up broke" in log


@pytest.mark.slow
def test_the_runner_cleans_up_after_a_child_is_killed_or_dies(store: Store, test_kinds) -> None:
    died = run_job(store, JobSpec.for_kind("t.die", "Dies", {"code": 3}, process=True))
    assert died.status == "failed" and test_kinds == [(died.job_id, "failed", died.error)]
    test_kinds.clear()
    cancel = threading.Event()
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.setdefault("out", run_job(
        store, JobSpec.for_kind("t.slow", "Slow", {"seconds": 60}, process=True), cancel_event=cancel)))
    worker.start()
    try:
        threading.Event().wait(1.0)
    finally:
        cancel.set()
        worker.join(30)
    out = box["out"]
    assert out.status == "cancelled"  # type: ignore[attr-defined]
    assert test_kinds == [(out.job_id, "cancelled", "Cancelled by the user.")]  # type: ignore[attr-defined]
