"""The pipeline catalog: listed pipelines, their runs and steps as plain data; audited writes; 'not found' hints.

Runs and steps are written straight into the store here (the runner is tested on its own), so each
query is checked against rows whose every field the test chose.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.pipelines import catalog
from modelyard.core.pipelines.loading import load_pipeline
from modelyard.core.store import models as m
from sqlalchemy import event, func, select

PIPE = """\
name: {name}
params: {{data: churn.csv, seed: 1}}
triggers:
  - schedule: "0 2 * * *"
steps:
  load:
    kind: import
    params: {{path: "${{params.data}}", name: churn}}
  train:
    kind: train
    params: {{dataset: "${{steps.load.outputs.ref}}", model: random_forest}}
  export:
    kind: bundle
    params: {{ref: "churn@v1", folder: out}}
    needs: [train]
"""

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def write_pipe(folder: Path, name: str = "churn-nightly") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(PIPE.format(name=name), encoding="utf-8")
    return path


def add_run(store, pipeline_id: int, status: str, *, at: dt.datetime, steps: dict[str, str],
            params: dict | None = None, **fields) -> int:
    """A run created at ``at`` whose steps (name -> status, in this order) started and ended a minute apart."""
    with store.write() as s:
        spec = s.get(m.Pipeline, pipeline_id).spec
        run = m.PipelineRun(pipeline_id=pipeline_id, status=status, params=params or {}, spec=spec, spec_sha256="x",
                            trigger={"type": "manual"}, created_at=at, started_at=at,
                            ended_at=at + dt.timedelta(minutes=len(steps)) if status in ("succeeded", "failed") else None,
                            **fields)
        s.add(run)
        s.flush()
        kinds = {st["name"]: st["kind"] for st in spec["steps"]}
        for i, (name, step_status) in enumerate(steps.items()):
            started = at + dt.timedelta(minutes=i) if step_status not in ("pending", "skipped") else None
            ended = started + dt.timedelta(seconds=30) if started and step_status != "running" else None
            s.add(m.PipelineStepRun(run_id=run.id, step=name, kind=kinds.get(name, "shell"), position=i,
                                    status=step_status, attempts=1 if started else 0, started_at=started,
                                    ended_at=ended, outputs={"ref": "churn@v1"} if step_status == "succeeded" else None,
                                    records=[{"type": "dataset_version", "id": "1"}] if name == "load" else None,
                                    log=f"{name} line 1\n{name} line 2\n", error="boom" if step_status == "failed" else None))
        return run.id


def audit_rows(store, action: str | None = None) -> list[m.AuditEvent]:
    with store.session() as s:
        q = select(m.AuditEvent).where(m.AuditEvent.entity_type == "pipeline").order_by(m.AuditEvent.id)
        if action:
            q = q.where(m.AuditEvent.action == action)
        return list(s.scalars(q))


@contextmanager
def counted(store):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


# --------------------------------------------------------------------------- pipelines


def test_adding_a_file_lists_it_with_its_graph_and_notices_when_the_file_changes(store, tmp_path):
    path = write_pipe(tmp_path)
    info = catalog.add_pipeline_file(store, path)

    assert (info.name, info.path, info.description) == ("churn-nightly", str(path.resolve()), None)
    assert info.steps == [{"name": "load", "kind": "import", "needs": []},
                          {"name": "train", "kind": "train", "needs": ["load"]},
                          {"name": "export", "kind": "bundle", "needs": ["train"]}]
    assert [t["key"] for t in info.triggers] == ["schedule:0"] and info.triggers[0]["cron"] == "0 2 * * *"
    assert info.params == {"data": "churn.csv", "seed": 1}
    assert info.schedules_enabled is True and info.file_changed is False and info.last_run is None
    assert [a.action for a in audit_rows(store)] == ["add_pipeline"]
    assert catalog.pipeline_spec(store, "churn-nightly") == load_pipeline(path)
    assert catalog.get_pipeline(store, info.id) == catalog.get_pipeline(store, "churn-nightly")

    path.write_text(path.read_text().replace("seed: 1", "seed: 2"))
    assert catalog.get_pipeline(store, "churn-nightly").file_changed is True
    again = catalog.add_pipeline_file(store, path)  # listing it again takes the new file
    assert again.id == info.id and again.params["seed"] == 2 and again.file_changed is False
    assert [a.action for a in audit_rows(store)] == ["add_pipeline", "update_pipeline"]
    path.unlink()
    assert catalog.get_pipeline(store, "churn-nightly").file_changed is True

    payload = json.loads(json.dumps(again.to_json()))
    assert payload["created_at"] == again.created_at.isoformat() and payload["last_run"] is None


def test_pipelines_are_listed_by_name_each_with_its_newest_run(store, tmp_path):
    b = catalog.add_pipeline_file(store, write_pipe(tmp_path, "b-pipe"))
    a = catalog.add_pipeline_file(store, write_pipe(tmp_path, "a-pipe"))
    add_run(store, b.id, "failed", at=T0, steps={"load": "succeeded", "train": "failed", "export": "skipped"})
    newest = add_run(store, b.id, "succeeded", at=T0 + dt.timedelta(hours=1),
                     steps={"load": "cached", "train": "succeeded", "export": "succeeded"})

    listed = catalog.list_pipelines(store)
    assert [p.name for p in listed] == ["a-pipe", "b-pipe"]
    assert listed[0].last_run is None and listed[0].id == a.id
    last = listed[1].last_run
    assert last is not None and (last.id, last.status, last.pipeline) == (newest, "succeeded", "b-pipe")
    assert last.counts == {"cached": 1, "succeeded": 2}
    with counted(store) as statements:
        catalog.list_pipelines(store)
    assert len(statements) <= 4, statements


def test_schedules_switch_on_and_off_audited_once_per_change(store, tmp_path):
    catalog.add_pipeline_file(store, write_pipe(tmp_path))
    assert catalog.set_schedules_enabled(store, "churn-nightly", False).schedules_enabled is False
    assert catalog.set_schedules_enabled(store, "churn-nightly", False).schedules_enabled is False  # no change
    assert catalog.set_schedules_enabled(store, "churn-nightly", True).schedules_enabled is True
    rows = [(a.action, a.from_value, a.to_value, a.actor) for a in audit_rows(store) if "schedules" in a.action]
    assert rows == [("disable_schedules", "on", "off", "tester"), ("enable_schedules", "off", "on", "tester")]


def test_removing_a_pipeline_deletes_its_history_audited_and_never_mid_run(store, tmp_path):
    info = catalog.add_pipeline_file(store, write_pipe(tmp_path))
    done = add_run(store, info.id, "succeeded", at=T0, steps={"load": "succeeded"})
    running = add_run(store, info.id, "running", at=T0 + dt.timedelta(hours=1), steps={"load": "running"})

    with pytest.raises(ModelyardError, match=rf"has run {running} queued or running") as err:
        catalog.remove_pipeline(store, "churn-nightly")
    assert "Cancel run" in err.value.hint
    assert catalog.get_pipeline(store, "churn-nightly").id == info.id

    with store.write() as s:
        s.get(m.PipelineRun, running).status = "cancelled"
    catalog.remove_pipeline(store, "churn-nightly")
    assert catalog.list_pipelines(store) == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.PipelineRun)) == 0
        assert s.scalar(select(func.count()).select_from(m.PipelineStepRun)) == 0
    [removed] = audit_rows(store, "remove_pipeline")
    assert removed.from_value == "churn-nightly" and removed.details == {"path": info.path, "runs": 2}
    with pytest.raises(NotFoundError):
        catalog.get_run(store, done)


# --------------------------------------------------------------------------- runs and steps


def test_runs_are_listed_newest_first_with_step_counts_in_two_queries(store, tmp_path):
    one = catalog.add_pipeline_file(store, write_pipe(tmp_path, "one"))
    two = catalog.add_pipeline_file(store, write_pipe(tmp_path, "two"))
    ids = []
    for i in range(12):
        pid = one.id if i % 3 else two.id
        status = ("succeeded", "failed", "running")[i % 3]
        steps = {"load": "succeeded", "train": "failed" if status == "failed" else "succeeded",
                 "export": "skipped" if status == "failed" else ("running" if status == "running" else "succeeded")}
        ids.append(add_run(store, pid, status, at=T0 + dt.timedelta(minutes=10 * i), steps=steps))

    with counted(store) as statements:
        runs = catalog.list_runs(store)
    assert len(statements) <= 2, statements
    assert [r.id for r in runs] == ids[::-1]
    assert runs[0].status == "running" and runs[0].ended_at is None and runs[0].finished is False
    failed = next(r for r in runs if r.status == "failed")
    assert failed.counts == {"succeeded": 1, "failed": 1, "skipped": 1}
    assert failed.duration_s == 180.0 and failed.finished is True
    assert failed.trigger == {"type": "manual"} and failed.pipeline == "one"

    with counted(store) as statements:
        assert [r.id for r in catalog.list_runs(store, pipeline="two")] == [ids[9], ids[6], ids[3], ids[0]]
    assert len(statements) <= 2, statements
    three = catalog.add_pipeline_file(store, write_pipe(tmp_path, "three"))
    assert catalog.list_runs(store, pipeline="three") == [] and catalog.list_runs(store, pipeline=three.id) == []
    assert [r.id for r in catalog.list_runs(store, pipeline=one.id, limit=3)] == [ids[11], ids[10], ids[8]]
    payload = json.loads(json.dumps([r.to_json() for r in runs]))
    assert payload[-1]["started_at"] == T0.isoformat() and payload[0]["ended_at"] is None


def test_a_run_shows_every_step_with_its_needs_outputs_records_and_log(store, tmp_path):
    info = catalog.add_pipeline_file(store, write_pipe(tmp_path))
    first = add_run(store, info.id, "failed", at=T0, steps={"load": "succeeded", "train": "failed", "export": "skipped"},
                    params={"data": "march.csv", "seed": 1}, exit_code=1, error="step 'train' failed")
    resumed = add_run(store, info.id, "succeeded", at=T0 + dt.timedelta(hours=1),
                      steps={"load": "cached", "train": "succeeded", "export": "succeeded"}, resumed_from=first)

    run = catalog.get_run(store, first)
    assert (run.status, run.exit_code, run.error, run.params) == ("failed", 1, "step 'train' failed",
                                                                   {"data": "march.csv", "seed": 1})
    assert [s.name for s in run.steps] == ["load", "train", "export"]
    load, train, export = run.steps
    assert (load.kind, load.status, load.needs, load.outputs) == ("import", "succeeded", [], {"ref": "churn@v1"})
    assert load.records == [{"type": "dataset_version", "id": "1"}] and load.duration_s == 30.0
    assert (train.status, train.error, train.needs, train.attempts) == ("failed", "boom", ["load"], 1)
    assert (export.status, export.started_at, export.duration_s, export.needs) == ("skipped", None, None, ["train"])
    assert run.counts == {"succeeded": 1, "failed": 1, "skipped": 1}
    assert catalog.get_run(store, resumed).resumed_from == first
    assert catalog.get_run(store, resumed).step("load").duration_s == 0.0  # cached: nothing ran

    payload = json.loads(json.dumps(run.to_json()))
    assert payload["steps"][0]["started_at"] == T0.isoformat() and payload["params"]["data"] == "march.csv"
    assert catalog.step_log(store, first, "train") == "train line 1\ntrain line 2\n"


# --------------------------------------------------------------------------- not found


def test_unknown_names_and_ids_say_what_exists(store, tmp_path):
    info = catalog.add_pipeline_file(store, write_pipe(tmp_path))
    run = add_run(store, info.id, "succeeded", at=T0, steps={"load": "succeeded", "train": "succeeded"})
    for call in (lambda: catalog.get_pipeline(store, "nope"), lambda: catalog.pipeline_spec(store, "nope"),
                 lambda: catalog.set_schedules_enabled(store, "nope", False),
                 lambda: catalog.remove_pipeline(store, "nope"), lambda: catalog.list_runs(store, pipeline="nope")):
        with pytest.raises(NotFoundError, match="There is no pipeline 'nope' in this store") as err:
            call()
        assert "modelyard pipeline list" in err.value.hint
    with pytest.raises(NotFoundError, match=r"There is no pipeline run 999\.") as err:
        catalog.get_run(store, 999)
    assert "modelyard pipeline runs" in err.value.hint
    with pytest.raises(NotFoundError, match="There is no pipeline run 999"):
        catalog.step_log(store, 999, "load")
    with pytest.raises(NotFoundError, match=rf"Run {run} has no step 'lod'") as err:
        catalog.step_log(store, run, "lod")
    assert err.value.hint == "Its steps: load, train."
    assert catalog.get_pipeline(store, str(info.id)).name == "churn-nightly"


def test_a_settled_file_is_hashed_once_and_again_when_it_is_rewritten(store, tmp_path, monkeypatch):
    import os

    path = write_pipe(tmp_path)
    catalog.add_pipeline_file(store, path)
    old = 1_700_000_000_000_000_000
    os.utime(path, ns=(old, old))
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    assert [catalog.get_pipeline(store, "churn-nightly").file_changed for _ in range(3)] == [False] * 3
    assert len(reads) == 1  # the list is polled: a settled file is not read again
    path.write_text(path.read_text().replace("seed: 1", "seed: 9"))  # same size
    os.utime(path, ns=(old + 1, old + 1))
    assert catalog.get_pipeline(store, "churn-nightly").file_changed is True
