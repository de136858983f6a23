"""The serve step against real ``modelyard serve`` processes: started when asked, swapped to a new
version on the same port, refused with a clear message when nothing runs."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from factories import train_churn_model
from modelyard.core.common.procs import pid_alive
from modelyard.core.pipelines.runner import run_pipeline
from modelyard.core.registry import versions as registry
from modelyard.core.serving.process import http_get_json
from pipeline_helpers import pipeline, project, step, step_rows


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_serve_starts_a_server_then_swaps_it_to_a_new_version_on_its_port(store, tmp_path):
    folder = project(tmp_path)
    v1 = train_churn_model(store)
    nothing = run_pipeline(store, pipeline(folder, step("serve", "serve", {"ref": v1.ref}), name="serve-none"))
    assert nothing.status == "failed"
    assert "No server of 'churn' is running" in nothing.error and "start: true" in nothing.error
    pids: list[int] = []
    try:
        first = run_pipeline(store, pipeline(folder, step("serve", "serve", {"ref": v1.ref, "start": True}),
                                             name="serve-start"))
        assert first.status == "succeeded", first.error
        out = step_rows(store, first.run_id)["serve"].outputs
        pids.append(out["pid"])
        assert http_get_json(out["url"], "/metadata")["version"] == 1
        info = registry.register(store, registry.get_version(store, v1.ref).run_id, "churn")  # churn@v2
        second = run_pipeline(store, pipeline(folder, step("serve", "serve", {"ref": info.ref}), name="serve-swap"))
        assert second.status == "succeeded", second.error
        row = step_rows(store, second.run_id)["serve"]
        pids.append(row.outputs["pid"])
        assert row.outputs["url"] == out["url"] and row.outputs["pid"] != out["pid"]
        assert http_get_json(row.outputs["url"], "/metadata")["version"] == 2
        assert not pid_alive(out["pid"])
        assert f"Stopped the server at {out['url']}" in row.log
    finally:
        for pid in pids:
            _stop(pid)
