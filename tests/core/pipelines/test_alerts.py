"""What a pipeline run's end says: subject, body and payload per the pipeline's notify block."""

from __future__ import annotations

from pathlib import Path

from modelyard.core.pipelines import alerts
from modelyard.core.pipelines.spec import Pipeline, Step
from modelyard.core.store import Store


def run(store: Store, folder: Path, command: str, notify: dict | None = None, *, name: str = "nightly") -> int:
    from modelyard.core.pipelines.runner import run_pipeline

    steps = (Step("prepare", "shell", {"command": "echo ready"}, position=0),
             Step("load", "shell", {"command": command}, needs=("prepare",), position=1),
             Step("publish", "shell", {"command": "echo published"}, needs=("load",), position=2))
    pipeline = Pipeline(name=name, path=str(folder / f"{name}.yaml"), folder=str(folder), steps=steps,
                        notify=notify or {"on": ["failed", "blocked"]}, sha256="3" * 64)
    return run_pipeline(store, pipeline, trigger={"type": "schedule", "cron": "0 2 * * *",
                                                  "due": "2026-03-01T02:00:00Z"}).run_id


def test_a_failed_run_names_the_step_its_error_and_what_started_it(store: Store, tmp_path: Path) -> None:
    run_id = run(store, tmp_path, "echo broken >&2; exit 4")
    message = alerts.compose(store, run_id)
    assert message is not None
    assert message["event"] == "pipeline.failed"
    assert message["subject"] == "Pipeline nightly failed at step load"
    body = message["body"]
    assert "Status: failed" in body and "Step: load (shell), failed after 1 attempt" in body
    assert "exited with code 4" in body
    assert "Started by: schedule 0 2 * * * (due 2026-03-01T02:00:00Z)" in body
    assert "Steps: prepare succeeded, load failed, publish skipped" in body
    payload = message["payload"]
    assert payload["run_id"] == run_id and payload["status"] == "failed" and payload["exit_code"] == 1
    assert payload["step"]["name"] == "load" and "exited with code 4" in payload["step"]["error"]
    assert payload["steps"] == {"prepare": "succeeded", "load": "failed", "publish": "skipped"}
    assert payload["trigger"]["cron"] == "0 2 * * *" and payload["duration_s"] >= 0
    assert (message["channels"], message["recipients"]) == (None, None)  # every channel the store has


def test_a_success_notifies_only_when_the_notify_block_asks(store: Store, tmp_path: Path) -> None:
    assert alerts.compose(store, run(store, tmp_path, "echo fine")) is None  # default: failed, blocked
    run_id = run(store, tmp_path, "echo fine", {"on": ["succeeded"], "email": ["ops@example.com"],
                                                "webhook": False}, name="chatty")
    message = alerts.compose(store, run_id)
    assert message is not None and message["subject"].startswith("Pipeline chatty succeeded in ")
    assert message["channels"] == ["email", "desktop"] and message["recipients"] == ["ops@example.com"]
    assert message["payload"]["step"] is None


def test_run_ended_never_raises(store: Store, store_dir: Path, tmp_path: Path) -> None:
    run_id = run(store, tmp_path, "exit 1")
    assert alerts.run_ended(store, 999) == []
    store.close()
    for f in store_dir.glob("modelyard.db*"):  # a database that is gone
        f.unlink()
    assert alerts.run_ended(store, run_id) == []
