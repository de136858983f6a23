"""A stand-in for the pipelines core the panel calls (catalog queries, loading, the runner and the
``pipeline.run`` job kind) while those parts are written on other branches: installed by the
``core`` fixture only for the names the real modules do not have yet, so the same tests run on the
real core once it is merged. In memory, per test; steps of kind ``shell`` really run their
command and ``python`` steps their function; anything else just succeeds after a pause."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import yaml
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.pipelines.spec import (
    STEP_KINDS,
    Pipeline,
    PipelineInvalid,
    Problem,
    Step,
    Trigger,
)

STATE: dict[str, Any] = {}
LOCK = threading.Lock()


def reset() -> None:
    STATE.clear()
    STATE.update(pipelines={}, runs={}, next_run=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- loading


def validate_text(text: str, file: str = "<text>") -> list[Problem]:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [Problem(file, (mark.line + 1) if mark else 1, (mark.column + 1) if mark else 1,
                        str(getattr(exc, "problem", exc)), "Fix the YAML syntax.")]
    if not isinstance(node, yaml.MappingNode):
        return [Problem(file, 1, 1, "A pipeline file is a mapping.", None)]
    problems = []
    top = {k.value: v for k, v in node.value}
    steps = top.get("steps")
    names = [k.value for k, _v in steps.value] if isinstance(steps, yaml.MappingNode) else []
    for _k, step in steps.value if isinstance(steps, yaml.MappingNode) else []:
        fields = {k.value: v for k, v in step.value}
        kind = fields.get("kind")
        if kind is not None and kind.value not in STEP_KINDS:
            problems.append(Problem(file, kind.start_mark.line + 1, kind.start_mark.column + 1,
                                    f"Unknown step kind {kind.value!r}.", "Use one of: " + ", ".join(STEP_KINDS)))
        needs = fields.get("needs")
        for n in needs.value if isinstance(needs, yaml.SequenceNode) else []:
            if n.value not in names:
                problems.append(Problem(file, n.start_mark.line + 1, n.start_mark.column + 1,
                                        f"needs {n.value!r}: no step has that name.", None))
    return problems


def validate_file(path: str) -> list[Problem]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return [Problem(str(path), 1, 1, "The file cannot be read.", None)]
    return validate_text(text, str(path))


def load_pipeline(path: str) -> Pipeline:
    problems = validate_file(path)
    if problems:
        raise PipelineInvalid(problems)
    raw = Path(path).read_bytes()
    d = yaml.safe_load(raw)
    import hashlib

    steps = tuple(Step(name=n, kind=s["kind"], params=s.get("params") or {}, needs=tuple(s.get("needs") or ()),
                       position=i) for i, (n, s) in enumerate(d["steps"].items()))
    triggers = tuple(Trigger(key=f"{'schedule' if 'schedule' in t else t['on']}:{i}",
                             type="schedule" if "schedule" in t else t["on"], cron=t.get("schedule"),
                             folder=t.get("folder"), model=t.get("model"), param=t.get("param"))
                     for i, t in enumerate(d.get("triggers") or []))
    return Pipeline(name=d["name"], path=str(Path(path).resolve()), folder=str(Path(path).resolve().parent),
                    steps=steps, params=dict(d.get("params") or {}), description=d.get("description"), triggers=triggers,
                    sha256=hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------- catalog


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for s in run["steps"]:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    ended = run.get("ended_at")
    dur = (ended - run["started_at"]).total_seconds() if ended and run.get("started_at") else None
    return {k: run.get(k) for k in ("id", "pipeline", "status", "trigger", "started_at", "ended_at", "exit_code",
                                    "error", "resumed_from")} | {"counts": counts, "duration_s": dur}


def _info(p: dict[str, Any]) -> dict[str, Any]:
    spec: Pipeline = p["spec"]
    runs = [r for r in STATE["runs"].values() if r["pipeline"] == spec.name]
    last = max(runs, key=lambda r: r["id"]) if runs else None
    return {"id": p["id"], "name": spec.name, "path": spec.path, "description": spec.description,
            "steps": [{"name": s.name, "kind": s.kind, "needs": list(s.needs)} for s in spec.steps],
            "triggers": [t.to_json() for t in spec.triggers], "params": dict(spec.params),
            "schedules_enabled": p["schedules_enabled"], "file_changed": False,
            "last_run": _summary(last) if last else None, "created_at": p["created_at"], "updated_at": p["created_at"]}


def save_pipeline(pipeline: Pipeline) -> int:
    with LOCK:
        p = STATE["pipelines"].get(pipeline.name)
        if p is None:
            p = STATE["pipelines"][pipeline.name] = {"id": len(STATE["pipelines"]) + 1, "schedules_enabled": True,
                                                     "created_at": _now()}
        p["spec"] = pipeline
        return p["id"]


def list_pipelines(store: Any) -> list[dict[str, Any]]:
    with LOCK:
        return [_info(p) for p in sorted(STATE["pipelines"].values(), key=lambda p: p["spec"].name)]


def _find(name: Any) -> dict[str, Any]:
    p = STATE["pipelines"].get(name) or next((p for p in STATE["pipelines"].values() if p["id"] == name), None)
    if p is None:
        raise NotFoundError(f"No pipeline {name}.")
    return p


def get_pipeline(store: Any, name: Any) -> dict[str, Any]:
    with LOCK:
        return _info(_find(name))


def pipeline_spec(store: Any, name: Any) -> Pipeline:
    with LOCK:
        return _find(name)["spec"]


def set_schedules_enabled(store: Any, name: str, on: bool) -> None:
    with LOCK:
        _find(name)["schedules_enabled"] = bool(on)


def add_pipeline_file(store: Any, path: str) -> dict[str, Any]:
    pipeline = load_pipeline(path)
    save_pipeline(pipeline)
    return get_pipeline(store, pipeline.name)


def list_runs(store: Any, pipeline: Any = None, limit: int = 50) -> list[dict[str, Any]]:
    with LOCK:
        runs = [r for r in STATE["runs"].values() if pipeline is None or r["pipeline"] == pipeline]
        return [_summary(r) for r in sorted(runs, key=lambda r: -r["id"])[:limit]]


def get_run(store: Any, run_id: int) -> dict[str, Any]:
    with LOCK:
        run = STATE["runs"].get(int(run_id))
        if run is None:
            raise NotFoundError(f"No pipeline run {run_id}.")
        return _summary(run) | {"params": dict(run["params"]),
                                "steps": [{k: v for k, v in s.items() if k != "log"} | {
                                    "duration_s": (s["ended_at"] - s["started_at"]).total_seconds()
                                    if s.get("ended_at") and s.get("started_at") else None} for s in run["steps"]]}


def step_log(store: Any, run_id: int, step: str) -> str:
    with LOCK:
        return next(s["log"] for s in STATE["runs"][int(run_id)]["steps"] if s["name"] == step)


# --------------------------------------------------------------------------- runner


def create_run(store: Any, pipeline: Pipeline, *, params: dict[str, Any] | None = None, trigger: Any = None,
               jobs: int = 1, force: bool = False, resume_of: Any = None) -> int:
    unknown = set(params or {}) - set(pipeline.params)
    if unknown:
        raise ModelyardError(f"Unknown parameters: {', '.join(sorted(unknown))}.")
    save_pipeline(pipeline)
    with LOCK:
        run_id = STATE["next_run"]
        STATE["next_run"] += 1
        STATE["runs"][run_id] = {
            "id": run_id, "pipeline": pipeline.name, "status": "queued", "trigger": trigger or {"type": "manual"},
            "started_at": None, "ended_at": None, "exit_code": None, "error": None, "resumed_from": None,
            "params": {**pipeline.params, **(params or {})}, "spec": pipeline, "force": force,
            "steps": [{"name": s.name, "kind": s.kind, "status": "pending", "attempts": 0, "started_at": None,
                       "ended_at": None, "outputs": {}, "records": [], "error": None, "job_id": None,
                       "cached_from": None, "needs": list(s.needs), "position": s.position, "log": ""}
                      for s in pipeline.steps]}
    return run_id


def _set(run: dict[str, Any], step: dict[str, Any] | None = None, **values: Any) -> None:
    with LOCK:
        (step if step is not None else run).update(values)


def pipeline_job(ctx: Any, *, run_id: int) -> dict[str, Any]:
    run = STATE["runs"][int(run_id)]
    spec: Pipeline = run["spec"]
    _set(run, status="running", started_at=_now())
    status = "succeeded"
    for s in spec.order():
        step = next(x for x in run["steps"] if x["name"] == s.name)
        if status != "succeeded":
            _set(run, step, status="skipped" if status == "failed" else status)
            continue
        _set(run, step, status="running", started_at=_now(), attempts=1)
        try:
            outputs = _execute(ctx, run, s)
            _set(run, step, status="succeeded", ended_at=_now(), outputs=outputs)
        except Exception as exc:  # noqa: BLE001 - a step's failure is its state
            if ctx.cancelled:
                status = "cancelled"
            else:
                status = "failed"
            _set(run, step, status=status, ended_at=_now(), error=str(exc))
    _set(run, status=status, ended_at=_now(), exit_code=0 if status == "succeeded" else 1)
    return {"run_id": run_id, "status": status}


def _execute(ctx: Any, run: dict[str, Any], s: Step) -> dict[str, Any]:
    from modelyard.core.pipelines.refs import resolve

    params = resolve(s.params, run["params"], {})
    step = next(x for x in run["steps"] if x["name"] == s.name)
    if s.kind == "shell":
        proc = subprocess.Popen(params["command"], shell=True, cwd=run["spec"].folder, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        while proc.poll() is None:
            if ctx.cancelled:
                proc.kill()
                proc.wait()
                raise RuntimeError("cancelled")
            time.sleep(0.02)
        _set(run, step, log=proc.stdout.read() if proc.stdout else "")
        if proc.returncode:
            raise RuntimeError(f"{params['command']} exited with {proc.returncode}")
        return {"exit_code": proc.returncode}
    if s.kind == "python":
        module, func = params["function"].split(":")
        if params.get("path"):
            sys.path.insert(0, str(Path(run["spec"].folder) / params["path"]))
        result = getattr(importlib.import_module(module), func)(**(params.get("args") or {}))
        return {"return": result}
    time.sleep(0.3)
    return {}


def install(monkeypatch: Any) -> list[str]:
    """Put the fakes where the real names are missing; returns the names faked."""
    from modelyard.core.jobs import kinds
    from modelyard.core.pipelines import catalog

    faked = []
    for name in ("list_pipelines", "get_pipeline", "pipeline_spec", "set_schedules_enabled", "add_pipeline_file",
                 "list_runs", "get_run", "step_log"):
        if not hasattr(catalog, name):
            monkeypatch.setattr(catalog, name, globals()[name], raising=False)
            faked.append(f"catalog.{name}")
    for module, names in (("loading", ("validate_file", "validate_text", "load_pipeline")),
                          ("runner", ("create_run", "pipeline_job"))):
        full = f"modelyard.core.pipelines.{module}"
        try:
            mod = importlib.import_module(full)
        except ImportError:
            mod = types.ModuleType(full)
            monkeypatch.setitem(sys.modules, full, mod)
            import modelyard.core.pipelines as package

            monkeypatch.setattr(package, module, mod, raising=False)
        for name in names:
            if not hasattr(mod, name):
                monkeypatch.setattr(mod, name, globals()[name], raising=False)
                faked.append(f"{module}.{name}")
    if "pipeline.run" not in kinds.KINDS:
        monkeypatch.setitem(kinds.KINDS, "pipeline.run", kinds.JobKind(
            "pipeline.run", "modelyard.core.pipelines.runner:pipeline_job",
            changes=frozenset({kinds.PIPELINES, kinds.DATASETS, kinds.RUNS, kinds.MODELS, kinds.CHECKS})))
        faked.append("kinds.pipeline.run")
    reset()
    return faked
