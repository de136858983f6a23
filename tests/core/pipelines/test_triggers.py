"""Triggers: schedules with an injected clock, new files, drift checks, each claimed exactly once."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest
from modelyard.core.pipelines import triggers
from modelyard.core.pipelines.catalog import save_pipeline
from modelyard.core.pipelines.spec import Pipeline, Step, Trigger
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select, update

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def list_pipeline(store: Store, folder: Path, *trigs: Trigger, name: str = "nightly",
                  listed: dt.datetime | None = None, params: dict | None = None) -> int:
    """List a one-step pipeline with ``trigs``; ``listed`` backdates when it was listed."""
    pipeline = Pipeline(name=name, path=str(folder / f"{name}.yaml"), folder=str(folder),
                        steps=(Step("hello", "shell", {"command": "echo hello"}),),
                        params=params if params is not None else {"data": "", "check": 0}, triggers=trigs,
                        sha256="0" * 64)
    pid = save_pipeline(store, pipeline)
    if listed is not None:
        with store.write() as s:
            s.execute(update(m.Pipeline).where(m.Pipeline.id == pid).values(created_at=listed))
    return pid


def firings(store: Store) -> list[tuple[str, str, str]]:
    with store.session() as s:
        return [(f.trigger, f.fire_key, f.decision) for f in s.scalars(select(m.TriggerFiring).order_by(m.TriggerFiring.id))]


def sched(cron: str, missed: str = "run_once", index: int = 0) -> Trigger:
    return Trigger(key=f"schedule:{index}", type="schedule", cron=cron, missed=missed)


# --------------------------------------------------------------------------- schedules


def test_a_schedule_is_due_once_per_cron_time(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 2 * * *"), listed=at("2026-03-01T12:00:00"))
    clock = triggers.FixedClock(at("2026-03-02T01:59:00"))
    assert triggers.claim_due(store, now=clock.now()) == []  # not due yet

    clock.at = at("2026-03-02T02:00:20")
    [claim] = triggers.claim_due(store, now=clock.now())
    assert (claim.decision, claim.type, claim.trigger, claim.fire_key) == ("run", "schedule", "schedule:0",
                                                                          "2026-03-02T02:00:00Z")
    assert claim.firing_id is not None and claim.params == {}
    assert claim.trigger_json()["due"] == "2026-03-02T02:00:00Z"
    # the same time is not due again, later in the day neither
    clock.advance(hours=5)
    assert triggers.claim_due(store, now=clock.now()) == []
    # the next day's time is
    clock.at = at("2026-03-03T02:01:00")
    assert [c.fire_key for c in triggers.claim_due(store, now=clock.now())] == ["2026-03-03T02:00:00Z"]
    assert [f[2] for f in firings(store)] == ["run", "run"]


def test_missed_times_run_once_makes_one_claim_for_the_newest(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 * * * *"), listed=at("2026-03-01T00:30:00"))
    # the machine was off from 00:30 to 05:10: 01:00 .. 05:00 passed
    claims = triggers.claim_due(store, now=at("2026-03-01T05:10:00"))
    assert [(c.decision, c.fire_key) for c in claims] == [("run", "2026-03-01T05:00:00Z")]
    assert claims[0].detail["missed"] == 4
    assert firings(store) == [("schedule:0", "2026-03-01T05:00:00Z", "run")]


def test_missed_times_skip_makes_no_run_and_records_skipped_firings(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 * * * *", missed="skip"), listed=at("2026-03-01T00:30:00"))
    claims = triggers.claim_due(store, now=at("2026-03-01T03:20:00"))
    assert {c.decision for c in claims} == {"skipped"}
    assert sorted(c.fire_key for c in claims) == ["2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z",
                                                  "2026-03-01T03:00:00Z"]
    assert sorted(firings(store)) == [("schedule:0", f"2026-03-01T0{h}:00:00Z", "skipped") for h in (1, 2, 3)]
    # nothing more until the next time; that one, seen on time, runs
    assert triggers.claim_due(store, now=at("2026-03-01T03:59:00")) == []
    [claim] = triggers.claim_due(store, now=at("2026-03-01T04:00:30"))
    assert (claim.decision, claim.fire_key) == ("run", "2026-03-01T04:00:00Z")


def test_skip_runs_the_newest_time_when_it_is_on_time_and_skips_the_older(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("*/10 * * * *", missed="skip"), listed=at("2026-03-01T00:05:00"))
    claims = triggers.claim_due(store, now=at("2026-03-01T00:30:40"))
    assert sorted((c.decision, c.fire_key) for c in claims) == [
        ("run", "2026-03-01T00:30:00Z"), ("skipped", "2026-03-01T00:10:00Z"), ("skipped", "2026-03-01T00:20:00Z")]


def test_a_pipeline_listed_after_a_due_time_does_not_fire_for_the_past(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 2 * * *"), listed=at("2026-03-02T09:00:00"))
    assert triggers.claim_due(store, now=at("2026-03-02T09:00:05")) == []
    assert triggers.claim_due(store, now=at("2026-03-02T23:59:00")) == []
    assert [c.fire_key for c in triggers.claim_due(store, now=at("2026-03-03T02:00:00"))] == ["2026-03-03T02:00:00Z"]


def test_schedules_switched_off_fire_nothing(store: Store, tmp_path: Path) -> None:
    pid = list_pipeline(store, tmp_path, sched("* * * * *"), listed=at("2026-03-01T00:00:00"))
    with store.write() as s:
        s.execute(update(m.Pipeline).where(m.Pipeline.id == pid).values(schedules_enabled=False))
    assert triggers.claim_due(store, now=at("2026-03-01T05:00:00")) == []
    assert firings(store) == []


def test_schedules_switched_on_again_do_not_fire_for_the_time_they_were_off(store: Store, tmp_path: Path) -> None:
    from modelyard.core.pipelines.catalog import set_schedules_enabled

    list_pipeline(store, tmp_path, sched("* * * * *"), listed=m.utcnow() - dt.timedelta(days=2))
    set_schedules_enabled(store, "nightly", False)
    assert triggers.claim_due(store, now=m.utcnow()) == []
    set_schedules_enabled(store, "nightly", True)
    assert triggers.claim_due(store, now=m.utcnow() - dt.timedelta(seconds=1)) == []  # nothing for the past
    [claim] = triggers.claim_due(store, now=m.utcnow() + dt.timedelta(minutes=1))  # the next minute does
    assert claim.decision == "run" and claim.detail["missed"] == 0


def test_two_claimers_at_once_claim_a_due_time_once(store: Store, store_dir: Path, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 2 * * *"), listed=at("2026-03-01T00:00:00"))
    now = at("2026-03-01T02:00:01")
    other = Store.open(store_dir, create=False)
    results: list[list[triggers.Claim]] = []
    barrier = threading.Barrier(4)

    def claim(s: Store) -> None:
        barrier.wait(5)
        results.append(triggers.claim_due(s, now=now))

    try:
        threads = [threading.Thread(target=claim, args=(s,)) for s in (store, other, store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert firings(store) == [("schedule:0", "2026-03-01T02:00:00Z", "run")]


def test_a_bad_cron_is_an_error_claim_and_other_pipelines_still_fire(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("61 * * * *"), name="broken", listed=at("2026-03-01T00:00:00"))
    list_pipeline(store, tmp_path, sched("0 * * * *"), name="fine", listed=at("2026-03-01T00:00:00"))
    claims = triggers.claim_due(store, now=at("2026-03-01T01:00:00"))
    by = {c.pipeline: c for c in claims}
    assert by["broken"].decision == "error" and "61 * * * *" in (by["broken"].message or "")
    assert by["fine"].decision == "run"


def test_next_due_and_due_times_are_utc() -> None:
    assert triggers.next_due("0 2 * * *", at("2026-03-01T02:00:00")) == at("2026-03-02T02:00:00")
    assert triggers.due_times("0 */6 * * *", at("2026-03-01T00:00:00"), at("2026-03-01T13:00:00")) == [
        at("2026-03-01T12:00:00"), at("2026-03-01T06:00:00")]


# --------------------------------------------------------------------------- new files


def _new_file_trigger(folder: Path, pattern: str = "*.csv") -> Trigger:
    return Trigger(key="new_file:0", type="new_file", folder=str(folder), pattern=pattern, param="data")


def _write_old(path: Path, text: str, age_s: float = 10.0) -> None:
    """Write ``path`` and date it ``age_s`` in the past (settled)."""
    path.write_text(text)
    t = path.stat().st_mtime - age_s
    os.utime(path, (t, t))


def test_new_file_fires_once_per_new_file_and_again_when_it_changes(store: Store, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    list_pipeline(store, tmp_path, _new_file_trigger(incoming), listed=m.utcnow() - dt.timedelta(minutes=5))
    now = m.utcnow()
    assert triggers.claim_due(store, now=now) == []  # an empty folder

    _write_old(incoming / "a.csv", "x\n1\n")
    (incoming / "notes.txt").write_text("not a csv")
    (incoming / ".hidden.csv").write_text("x\n1\n")
    (incoming / "b.csv.part").write_text("x\n1\n")
    (incoming / "empty.csv").write_text("")
    [claim] = triggers.claim_due(store, now=now, settle_s=0)
    assert (claim.type, claim.decision) == ("new_file", "run")
    assert claim.params == {"data": str(incoming / "a.csv")}
    assert claim.trigger_json()["path"] == str(incoming / "a.csv")

    assert triggers.claim_due(store, now=now, settle_s=0) == []  # the same file again: nothing

    _write_old(incoming / "a.csv", "x\n1\n2\n", age_s=5)  # written again
    _write_old(incoming / "b.csv", "x\n3\n")
    claims = triggers.claim_due(store, now=now, settle_s=0)
    assert sorted(c.params["data"] for c in claims) == [str(incoming / "a.csv"), str(incoming / "b.csv")]
    assert len(firings(store)) == 3


def test_new_file_waits_until_the_file_settles(store: Store, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    list_pipeline(store, tmp_path, _new_file_trigger(incoming), listed=m.utcnow() - dt.timedelta(minutes=5))
    (incoming / "fresh.csv").write_text("x\n1\n")  # just written
    assert triggers.claim_due(store, now=m.utcnow(), settle_s=60) == []
    assert len(triggers.claim_due(store, now=m.utcnow(), settle_s=0)) == 1


def test_files_there_before_the_pipeline_was_listed_do_not_fire(store: Store, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_old(incoming / "old.csv", "x\n1\n", age_s=3600)
    time.sleep(0.05)
    list_pipeline(store, tmp_path, _new_file_trigger(incoming))
    assert triggers.claim_due(store, now=m.utcnow(), settle_s=0) == []


def test_a_missing_folder_is_an_error_claim(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, _new_file_trigger(tmp_path / "nowhere"))
    [claim] = triggers.claim_due(store, now=m.utcnow())
    assert claim.decision == "error"
    assert str(tmp_path / "nowhere") in (claim.message or "") and "does not exist" in (claim.message or "")


# --------------------------------------------------------------------------- drift


def _check(store: Store, model: str, verdict: str) -> int:
    with store.write() as s:
        rm = s.scalar(select(m.RegisteredModel).where(m.RegisteredModel.name == model))
        if rm is None:
            rm = m.RegisteredModel(name=model)
            s.add(rm)
            s.flush()
            s.add(m.ModelVersion(model_id=rm.id, version=1))
            s.flush()
        mv = s.scalar(select(m.ModelVersion).where(m.ModelVersion.model_id == rm.id))
        check = m.MonitoringCheck(model_version_id=mv.id, verdict=verdict, config={})
        s.add(check)
        s.flush()
        return check.id


def test_a_drift_check_fires_once_with_its_id(store: Store, tmp_path: Path) -> None:
    before = _check(store, "churn", "drift")  # made before the pipeline was listed: not for it
    list_pipeline(store, tmp_path, Trigger(key="drift:0", type="drift", model="churn", param="check"))
    _check(store, "churn", "ok")
    _check(store, "other", "drift")
    drifted = _check(store, "churn", "drift")
    [claim] = triggers.claim_due(store, now=m.utcnow())
    assert (claim.type, claim.fire_key, claim.params) == ("drift", str(drifted), {"check": drifted})
    assert claim.trigger_json()["version"] == "churn@v1"
    assert drifted != before
    assert triggers.claim_due(store, now=m.utcnow()) == []


# --------------------------------------------------------------------------- orphans


def test_a_claim_whose_claimer_died_is_handed_over_once(store: Store, tmp_path: Path) -> None:
    list_pipeline(store, tmp_path, sched("0 2 * * *"), listed=at("2026-03-01T00:00:00"))
    [claim] = triggers.claim_due(store, now=at("2026-03-01T02:00:05"))
    assert triggers.orphaned_claims(store) == []  # its claimer (this process) is alive
    dead = _dead_pid()
    with store.write() as s:
        s.execute(update(m.TriggerFiring).where(m.TriggerFiring.id == claim.firing_id).values(pid=dead))
    [orphan] = triggers.orphaned_claims(store)
    assert (orphan.claim.firing_id, orphan.run_id, orphan.pid) == (claim.firing_id, None, dead)
    assert orphan.claim.spec["name"] == "nightly"
    assert triggers.take_over(store, orphan) is True
    assert triggers.take_over(store, orphan) is False  # a second adopter loses
    assert triggers.orphaned_claims(store) == []


def test_a_claim_of_another_machine_is_adopted_only_when_that_claimer_looks_gone(store: Store, tmp_path: Path) -> None:
    pid = list_pipeline(store, tmp_path, sched("0 2 * * *"), listed=at("2026-03-01T00:00:00"))
    [claim] = triggers.claim_due(store, now=at("2026-03-01T02:00:05"))
    with store.write() as s:
        s.execute(update(m.TriggerFiring).where(m.TriggerFiring.id == claim.firing_id)
                  .values(host="elsewhere", pid=4242, fired_at=m.utcnow() - dt.timedelta(minutes=3)))
    assert triggers.orphaned_claims(store) == []  # claimed 3 minutes ago: may still be starting it
    with store.write() as s:
        s.execute(update(m.TriggerFiring).where(m.TriggerFiring.id == claim.firing_id)
                  .values(fired_at=m.utcnow() - dt.timedelta(minutes=30)))
        busy = m.PipelineRun(pipeline_id=pid, status="running", spec={}, spec_sha256="0" * 64, host="elsewhere",
                             pid=4242, heartbeat_at=m.utcnow())
        s.add(busy)
    assert triggers.orphaned_claims(store) == []  # that agent is busy with another run: it will get to it
    with store.write() as s:
        s.execute(update(m.PipelineRun).values(heartbeat_at=m.utcnow() - dt.timedelta(minutes=30)))
    assert [o.claim.firing_id for o in triggers.orphaned_claims(store)] == [claim.firing_id]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.pid


@pytest.mark.parametrize("cron", ["", "not cron", "* * *"])
def test_unreadable_crons_say_what_to_fix(cron: str) -> None:
    with pytest.raises(triggers.ModelyardError) as info:
        triggers.due_times(cron, at("2026-03-01T00:00:00"), at("2026-03-02T00:00:00"))
    assert "cron expression" in info.value.message


# --------------------------------------------------------------------------- the agent, in this process


def agent_pass(store: Store, clock: triggers.Clock | None = None) -> list[dict]:
    from modelyard.core.pipelines.agent import run_agent

    seen: list[dict] = []
    run_agent(store, once=True, clock=clock, out=seen.append, settle_s=0)
    return seen


def runs(store: Store) -> list[m.PipelineRun]:
    with store.session() as s:
        return list(s.scalars(select(m.PipelineRun).order_by(m.PipelineRun.id)))


def step_log(store: Store, run_id: int) -> str:
    with store.session() as s:
        return s.scalar(select(m.PipelineStepRun.log).where(m.PipelineStepRun.run_id == run_id)) or ""


def echo_pipeline(store: Store, folder: Path, trig: Trigger, command: str, **kwargs) -> int:
    pipeline = Pipeline(name="echo", path=str(folder / "echo.yaml"), folder=str(folder),
                        steps=(Step("say", "shell", {"command": command}),),
                        params={"data": "", "check": 0}, triggers=(trig,), sha256="2" * 64)
    pid = save_pipeline(store, pipeline)
    if kwargs.get("listed") is not None:
        with store.write() as s:
            s.execute(update(m.Pipeline).where(m.Pipeline.id == pid).values(created_at=kwargs["listed"]))
    return pid


def test_the_agent_runs_a_new_file_trigger_with_the_path_in_its_param(store: Store, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    echo_pipeline(store, tmp_path, _new_file_trigger(incoming), "echo got ${params.data}",
                  listed=m.utcnow() - dt.timedelta(minutes=5))
    _write_old(incoming / "march.csv", "x\n1\n")
    seen = agent_pass(store)
    [run] = runs(store)
    assert (run.status, run.params["data"]) == ("succeeded", str(incoming / "march.csv"))
    assert run.trigger["type"] == "new_file" and run.trigger["path"] == str(incoming / "march.csv")
    assert f"got {incoming / 'march.csv'}" in step_log(store, run.id)
    assert [e["event"] for e in seen] == ["claimed", "finished"]
    assert seen[1]["status"] == "succeeded" and seen[1]["run_id"] == run.id
    agent_pass(store)  # the same file again: no second run
    assert len(runs(store)) == 1


def test_the_agent_runs_a_drift_trigger_with_the_check_in_its_param(store: Store, tmp_path: Path) -> None:
    echo_pipeline(store, tmp_path, Trigger(key="drift:0", type="drift", model="churn", param="check"),
                  "echo check ${params.check}")
    check_id = _check(store, "churn", "drift")
    agent_pass(store)
    [run] = runs(store)
    assert (run.status, run.params["check"], run.trigger["check"]) == ("succeeded", check_id, check_id)
    assert f"check {check_id}" in step_log(store, run.id)


def test_the_agent_with_an_injected_clock_runs_a_missed_schedule_once(store: Store, tmp_path: Path) -> None:
    echo_pipeline(store, tmp_path, sched("0 * * * *"), "echo tick", listed=at("2026-03-01T00:30:00"))
    seen = agent_pass(store, triggers.FixedClock(at("2026-03-01T05:10:00")))
    [run] = runs(store)
    assert run.status == "succeeded" and run.trigger["due"] == "2026-03-01T05:00:00Z" and run.trigger["missed"] == 4
    assert seen[0]["event"] == "claimed" and seen[0]["at"] == "2026-03-01T05:10:00+00:00"
    agent_pass(store, triggers.FixedClock(at("2026-03-01T05:50:00")))
    assert len(runs(store)) == 1


def test_the_agent_skips_missed_times_under_skip(store: Store, tmp_path: Path) -> None:
    echo_pipeline(store, tmp_path, sched("0 * * * *", missed="skip"), "echo tick", listed=at("2026-03-01T00:30:00"))
    seen = agent_pass(store, triggers.FixedClock(at("2026-03-01T03:20:00")))
    assert runs(store) == []
    assert [(e["event"], e["count"]) for e in seen] == [("skipped", 3)]


def test_a_run_that_cannot_be_created_is_told_and_the_agent_goes_on(store: Store, tmp_path: Path) -> None:
    echo_pipeline(store, tmp_path, Trigger(key="drift:0", type="drift", model="churn", param="nope"), "echo x")
    _check(store, "churn", "drift")
    seen = agent_pass(store)
    assert runs(store) == []
    [error] = [e for e in seen if e["event"] == "error"]
    assert "nope" in error["message"] and "echo" in error["message"]
    assert [f[2] for f in firings(store)] == ["failed"]
    assert agent_pass(store) == []  # not tried again


def test_the_agent_adopts_a_claim_whose_claimer_died(store: Store, tmp_path: Path) -> None:
    echo_pipeline(store, tmp_path, sched("0 2 * * *"), "echo adopted", listed=at("2026-03-01T00:00:00"))
    [claim] = triggers.claim_due(store, now=at("2026-03-01T02:00:05"))  # claimed, then the claimer "dies"
    with store.write() as s:
        s.execute(update(m.TriggerFiring).where(m.TriggerFiring.id == claim.firing_id).values(pid=_dead_pid()))
    seen = agent_pass(store, triggers.FixedClock(at("2026-03-01T02:00:30")))
    assert [e["event"] for e in seen] == ["adopted", "claimed", "finished"]
    [run] = runs(store)
    assert run.status == "succeeded"
    with store.session() as s:
        assert s.get(m.TriggerFiring, claim.firing_id).run_id == run.id


def test_a_pipeline_file_with_a_new_file_trigger_runs_for_a_file_dropped_in_its_folder(store: Store,
                                                                                       tmp_path: Path) -> None:
    from modelyard.core.pipelines.catalog import add_pipeline_file

    (tmp_path / "incoming").mkdir()
    (tmp_path / "drop.yaml").write_text(
        "name: drop\n"
        "params: {data: null}\n"
        "triggers:\n"
        "  - on: new_file\n"
        "    folder: incoming\n"
        "    pattern: '*.csv'\n"
        "    param: data\n"
        "steps:\n"
        "  count:\n"
        "    kind: shell\n"
        "    params: {command: 'wc -l < \"${params.data}\"'}\n")
    add_pipeline_file(store, tmp_path / "drop.yaml")
    _write_old(tmp_path / "incoming" / "april.csv", "a\n1\n2\n")
    agent_pass(store)
    [run] = runs(store)
    assert run.status == "succeeded", run.error
    assert run.params == {"data": str(tmp_path / "incoming" / "april.csv")}
    assert "3" in step_log(store, run.id).split()
