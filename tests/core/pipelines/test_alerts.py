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
    assert message["channels"] == ["email"] and message["recipients"] == ["ops@example.com"]
    assert message["payload"]["step"] is None


def test_run_ended_never_raises(store: Store, store_dir: Path, tmp_path: Path) -> None:
    run_id = run(store, tmp_path, "exit 1")
    assert alerts.run_ended(store, 999) == []
    store.close()
    for f in store_dir.glob("modelyard.db*"):  # a database that is gone
        f.unlink()
    assert alerts.run_ended(store, run_id) == []


# --------------------------------------------------------------------------- delivered, through a real webhook


def _notify_room():
    """core/notify's delivery."""
    import modelyard.core.notify as notify

    return notify


class _Hook:
    """A webhook receiver on 127.0.0.1 (http.server in a thread) that keeps what it is sent."""

    def __init__(self, port: int = 0) -> None:
        import http.server
        import json
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    @classmethod
    def on_port(cls, port: int) -> _Hook:
        return cls(port)

    def __enter__(self) -> _Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_a_failed_run_posts_its_webhook_and_a_success_does_not(store: Store, tmp_path: Path) -> None:
    notify = _notify_room()
    with _Hook() as hook:
        notify.set_webhook(store, url=hook.url)
        failed = run(store, tmp_path, "echo broken >&2; exit 4")
        run(store, tmp_path, "echo fine", name="quiet")
    [posted] = hook.received
    assert posted["event"] == "pipeline.failed" and posted["subject"] == "Pipeline nightly failed at step load"
    assert posted["run_id"] == failed and posted["step"]["name"] == "load" and "Step: load" in posted["text"]


def test_an_undelivered_alert_never_fails_the_run_and_the_agent_delivers_it_later(store: Store,
                                                                                 tmp_path: Path) -> None:
    import datetime as dt

    from modelyard.core.pipelines.agent import run_agent
    from modelyard.core.pipelines.triggers import FixedClock
    from modelyard.core.store import models as m
    from sqlalchemy import select

    notify = _notify_room()
    with _Hook() as hook:
        url = hook.url
    notify.set_webhook(store, url=url)  # nobody listens there now
    run_id = run(store, tmp_path, "exit 4")
    with store.session() as s:
        assert s.get(m.PipelineRun, run_id).status == "failed"  # the run ended as it did, not worse
        [row] = s.scalars(select(m.Notification)).all()
    assert (row.status, row.pipeline_run_id) == ("pending", run_id) and row.last_error

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with _Hook.on_port(port) as hook:
        run_agent(store, once=True, clock=FixedClock(m.utcnow() + dt.timedelta(hours=1)))
    [posted] = hook.received
    assert posted["run_id"] == run_id
    with store.session() as s:
        assert s.get(m.Notification, row.id).status == "sent"
