"""Operations steps: ``score`` (batch scoring), ``check`` (drift) and ``serve`` (the model server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.pipelines.steps.base import (
    StepBlocked,
    StepContext,
    StepResult,
    need,
    record,
)

SWAP_WAIT_S = 30.0  # how long a serve step waits for a server following an alias to swap
START_WAIT_S = 120.0  # how long it waits for a server it started to listen
STOP_WAIT_S = 15.0


def _dataset_or_file(sc: StepContext, value: Any) -> tuple[int | None, Path | None]:
    """A dataset version (id or ``name@vN``) or a file (relative to the pipeline's folder)."""
    from modelyard.core.datasets import service

    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    path = sc.path(str(value))
    if path.exists():
        return None, path
    return service.get_version(sc.store, str(value)).id, None


def do_score(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.datasets import service
    from modelyard.core.serving.scoring import score_spec, write_table_file

    model = str(need(params, "model", "score"))
    given = params.get("path") if params.get("path") is not None else params.get("dataset")
    if given is None:
        raise ModelyardError("A score step needs 'dataset' (a dataset version) or 'path' (a file) to score.",
                             hint="Add one of them under the step's params.")
    dvid, path = _dataset_or_file(sc, given)
    result = sc.run_job(score_spec(model, dataset=dvid, path=path))
    out = result["output"]
    written = None
    if params.get("output"):
        target = sc.path(params["output"])
        target.parent.mkdir(parents=True, exist_ok=True)
        written = str(write_table_file(service.load_frame(sc.store, out["dataset_version_id"]), target))
        sc.log(f"Wrote the predictions to {written}.")
    records = [record("dataset_version", result["input"]["dataset_version_id"])] \
        if (result.get("input") or {}).get("imported") else []  # the scored file, stored as a version
    if out.get("created", True):
        records.append(record("dataset_version", out["dataset_version_id"]))
    if written:
        records.append(record("file", written))
    return StepResult({"dataset_version_id": out["dataset_version_id"], "ref": out["ref"],
                       "rows": result.get("n_rows"), "path": written}, records)


def do_check(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.monitoring.drift.check import check_spec

    model = str(need(params, "model", "check"))
    dvid, path = _dataset_or_file(sc, need(params, "batch", "check"))
    result = sc.run_job(check_spec(model, batch_path=path, batch_dataset_version_id=dvid,
                                   config=params.get("config") or None))
    verdict = result["verdict"]
    outputs = {"check_id": result["check_id"], "verdict": verdict, "drift_share": result.get("drift_share"),
               "drift": verdict == "drift"}
    records = [record("check", result["check_id"])]
    if verdict == "drift" and params.get("block_on_drift", True):
        raise StepBlocked(f"The drift check of {result['ref']} on {result.get('batch_ref')} found drift "
                          f"({len(result.get('drifted') or [])} of {result.get('n_features')} features).",
                          hint="Set block_on_drift: false on the step to go on after a drift.",
                          outputs=outputs, records=records)
    return StepResult(outputs, records)


def running_servers(sc: StepContext, model: str) -> list[dict[str, Any]]:
    """The model's servers that are running on this machine: ``[{"url", "pid", "ref"}]``, from the
    serve_start / serve_stop events the servers record."""
    from sqlalchemy import select

    from modelyard.core.common.procs import pid_alive
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import lookup
    from modelyard.core.store import models as m

    with sc.store.session() as s:
        row = lookup.find_model(s, registry.parse_ref(model)[0])
        if row is None:
            return []
        events = s.execute(select(m.AuditEvent.action, m.AuditEvent.details).where(
            m.AuditEvent.entity_type == registry.ENTITY, m.AuditEvent.entity_id == str(row.id),
            m.AuditEvent.action.in_(("serve_start", "serve_stop"))).order_by(m.AuditEvent.id)).all()
    live: dict[str, dict[str, Any]] = {}
    for action, details in events:
        d = details or {}
        if not d.get("url"):
            continue
        if action == "serve_start":
            live[d["url"]] = {"url": d["url"], "pid": d.get("pid"), "ref": d.get("ref")}
        else:
            live.pop(d["url"], None)
    return [v for v in live.values() if isinstance(v["pid"], int) and pid_alive(v["pid"])]


def _metadata(url: str) -> dict[str, Any] | None:
    from modelyard.core.serving.process import http_get_json

    try:
        return http_get_json(url, "/metadata", timeout=2.0)
    except (OSError, ModelyardError, ValueError):
        return None


def _stop_server(sc: StepContext, srv: dict[str, Any]) -> None:
    """Stop a server process gracefully (SIGTERM: it finishes its requests and records serve_stop)."""
    from modelyard.core.common.procs import pid_alive

    try:
        os.kill(srv["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while pid_alive(srv["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(srv["pid"]):
        raise ModelyardError(f"The server at {srv['url']} (pid {srv['pid']}) did not stop within {STOP_WAIT_S:g} s.",
                             hint=f"Stop it yourself (kill {srv['pid']}) and run the step again.")
    sc.log(f"Stopped the server at {srv['url']} (pid {srv['pid']}), which served {srv['ref']}.")


def start_server(sc: StepContext, ref: str, port: int) -> dict[str, Any]:
    """Start ``modelyard serve REF`` as a process of its own (it goes on after the pipeline ends;
    stop it with SIGTERM / ``kill PID``); ``{"url", "pid", "log"}`` once it listens."""
    fd, log = tempfile.mkstemp(prefix="modelyard-serve-", suffix=".log")
    cmd = [sys.executable, "-m", "modelyard", "serve", ref, "--store", str(sc.store.root), "--port", str(port),
           "--ready-json"]
    if sc.store.db_url:
        cmd += ["--db-url", sc.store.db_url]
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        for line in Path(log).read_text(errors="replace").splitlines():
            if line.startswith("{") and '"ready"' in line:
                info = json.loads(line)
                sc.log(f"Started a server of {ref} at {info['url']} (pid {proc.pid}; its log: {log}). It goes on "
                       f"after the pipeline; stop it with 'kill {proc.pid}'.")
                return {"url": info["url"], "pid": proc.pid, "log": log}
        if proc.poll() is not None:
            tail = Path(log).read_text(errors="replace").strip().splitlines()[-3:]
            raise ModelyardError(f"The model server for {ref} exited (code {proc.returncode}) before it was ready: "
                                 + " ".join(tail), hint=f"Its log: {log}.")
        if sc.cancel.is_set():
            proc.terminate()
            proc.wait(10)
            raise JobCancelled()
        time.sleep(0.1)
    proc.terminate()
    proc.wait(10)
    raise ModelyardError(f"The model server for {ref} was not ready after {START_WAIT_S:g} s.", hint=f"Its log: {log}.")


def do_serve(sc: StepContext, params: dict[str, Any]) -> StepResult:
    """Make the model's running server serve ``ref``: a server following an alias (or the latest
    version) swaps by itself, so wait for it; one pinned to another version is stopped and started
    again on its port with ``ref``; with none running, start one when ``start`` is true."""
    from modelyard.core.registry import versions as registry

    info = registry.get_version(sc.store, str(need(params, "ref", "serve")))
    servers = running_servers(sc, info.name)
    following = [srv for srv in servers if registry.parse_ref(srv["ref"] or "")[1] is None]
    for srv in following:
        sc.log(f"The server at {srv['url']} follows {srv['ref']}; waiting for it to serve {info.ref}.")
        deadline = time.monotonic() + SWAP_WAIT_S
        while time.monotonic() < deadline:
            sc.check_cancelled()
            meta = _metadata(srv["url"])
            if meta is not None and meta.get("version") == info.version:
                sc.log(f"{srv['url']} serves {info.ref}.")
                return StepResult({"url": srv["url"], "ref": info.ref, "pid": srv["pid"]})
            time.sleep(0.25)
        raise ModelyardError(f"The server at {srv['url']} follows {srv['ref']}, which does not point at {info.ref}.",
                             hint=f"Make {info.ref} the version {srv['ref']} names (a register step's alias), or "
                                  "serve the version itself.")
    for srv in servers:  # pinned to a version
        if registry.parse_ref(srv["ref"])[1] == info.version:
            sc.log(f"{srv['url']} already serves {info.ref}.")
            return StepResult({"url": srv["url"], "ref": info.ref, "pid": srv["pid"]})
    if servers:
        srv = servers[0]
        port = urlsplit(srv["url"]).port or 0
        _stop_server(sc, srv)
        started = start_server(sc, info.ref, port)
    elif params.get("start"):
        started = start_server(sc, info.ref, int(params.get("port") or 0))
    else:
        raise ModelyardError(f"No server of {info.name!r} is running, so nothing can be swapped to {info.ref}.",
                             hint="Start one with 'modelyard serve NAME@champion', or set start: true on the step.")
    endpoint = urlsplit(started["url"]).netloc
    return StepResult({"url": started["url"], "ref": info.ref, "pid": started["pid"]}, [record("server", endpoint)])
