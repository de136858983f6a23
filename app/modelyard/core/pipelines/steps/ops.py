"""Operations steps: ``score`` (batch scoring), ``check`` (drift) and ``serve`` (the model server)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.pipelines.steps.base import (
    StepBlocked,
    StepContext,
    StepResult,
    need,
    record,
)

SWAP_WAIT_S = 30.0  # how long a serve step waits for a server following an alias to swap


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
    records = [record("dataset_version", out["dataset_version_id"])] if out.get("created", True) else []
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


def do_serve(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.registry import versions as registry
    from modelyard.core.serving.process import ServerProcess, http_get_json

    info = registry.get_version(sc.store, str(need(params, "ref", "serve")))
    servers = running_servers(sc, info.name)
    for srv in servers:
        name, number, alias = registry.parse_ref(srv["ref"] or "")
        if number is not None:
            continue  # pinned to a version: it never swaps
        sc.log(f"The server at {srv['url']} follows {srv['ref']}; waiting for it to serve {info.ref}.")
        deadline = time.monotonic() + SWAP_WAIT_S
        while time.monotonic() < deadline:
            sc.check_cancelled()
            try:
                stats = http_get_json(srv["url"], "/metadata", timeout=2.0)
            except (OSError, ModelyardError):
                break
            if stats.get("version") == info.version:
                return StepResult({"url": srv["url"], "ref": info.ref, "pid": srv["pid"]})
            time.sleep(0.25)
        raise ModelyardError(f"The server at {srv['url']} follows {srv['ref']}, which does not point at {info.ref}.",
                             hint=f"Make {info.ref} the version {srv['ref']} names (a register step's alias), or "
                                  "serve it with start: true.")
    if not params.get("start"):
        pinned = ", ".join(f"{s['url']} ({s['ref']})" for s in servers)
        raise ModelyardError(f"No running server of {info.name!r} follows an alias or its latest version"
                             + (f" (pinned: {pinned})" if pinned else "") + f", so nothing serves {info.ref}.",
                             hint="Start one with 'modelyard serve NAME@champion', or set start: true on the step.")
    proc = ServerProcess(info.ref, store=sc.store.root, db_url=sc.store.db_url, port=int(params.get("port") or 0))
    proc.start()
    sc.log(f"Started a server of {info.ref} at {proc.url} (pid {proc.pid}); it runs as long as this process.")
    return StepResult({"url": proc.url, "ref": info.ref, "pid": proc.pid}, [record("server", proc.url)])
