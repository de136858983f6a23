"""Triggers: what starts a pipeline by itself — a schedule, a new file in a folder, a drift check —
claimed exactly once however many agents (and open windows) watch one store.

::

    from modelyard.core.pipelines import triggers

    for claim in triggers.claim_due(store, now=triggers.SystemClock().now()):
        if claim.decision == "run":
            run_id = triggers.start_claim(store, claim)   # a queued run; the agent executes it

**Exactly once.** Every occasion a trigger fires for has a *fire key* (a schedule's due time, a
new file's path, size and modification time, a drift check's id). Claiming inserts the unique
``TriggerFiring(pipeline, trigger, fire_key)`` row in its own write transaction: whoever inserts
it first runs the pipeline; everyone else gets an integrity error and moves on. Then
:func:`start_claim` creates the queued run (the runner's ``create_run``) and records its id on the
firing. A claimer that died between the two leaves a firing without a run (or with a run still
queued): :func:`orphaned_claims` hands those to a live agent, which takes them over with a
compare-and-set on the firing's host and pid.

**Schedules** (``schedule: "0 2 * * *"``) are cron expressions read by croniter, in UTC (as CI
schedulers read them: every machine sharing a store agrees on when a time is due). A schedule is
due when a cron time has passed since its last firing, or since the pipeline was listed (a
pipeline listed at 09:00 does not fire for 02:00 that morning). When several cron times passed
with nothing running them (the machine was off), the trigger's ``missed`` policy decides:
``run_once`` (the default) runs once, for the newest time; ``skip`` records every missed time as
a ``skipped`` firing and runs nothing — a time seen within :data:`ON_TIME_S` of when it was due is
not missed and runs.

**New files** (``on: new_file``): each regular file directly in the folder whose name matches the
pattern (hidden and temporary files left out), not empty, changed after the pipeline was listed
and settled (unchanged for :data:`SETTLE_S` seconds: not still being written). The fire key is the
file's path, size and modification time: the same file fires once; a file written again fires
again. The pipeline parameter ``param`` gets the file's absolute path.

**Drift** (``on: drift``): each drift check of the model with verdict ``drift`` made after the
pipeline was listed fires once; ``param`` gets the check's id. **Live drift** (``on: live_drift``):
each alert of the model's live view (a ``live_drift`` audit event: core/monitoring/live.py) the
same way; ``param`` gets the alert's id.

A pipeline whose schedules are switched off (``schedules_enabled``) fires none of its triggers,
and once switched on again fires only for what happens from then on ("listed" above means listed
or switched on, whichever came last).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.procs import hostname, pid_alive
from modelyard.core.pipelines.spec import Pipeline, Trigger
from modelyard.core.store import STALE_HEARTBEAT, Store
from modelyard.core.store import models as m

__all__ = ["Claim", "Clock", "FixedClock", "Orphan", "Started", "SystemClock", "ON_TIME_S", "SETTLE_S", "claim_due",
           "describe", "due_times", "next_due", "orphaned_claims", "start_claim", "start_due", "take_over"]

#: A schedule time seen this long after it was due still counts as on time (the ``skip`` policy runs it).
ON_TIME_S = 120.0
#: A new file must be unchanged this long before it fires (a file being copied keeps changing).
SETTLE_S = 2.0
#: At most this many missed times of one schedule are recorded as ``skipped`` at once (the newest).
MAX_SKIPPED = 100
_KEY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_KEY_LIMIT = 500  # TriggerFiring.fire_key's length
_TEMP_SUFFIXES = frozenset({".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock",
                            ".filepart", ".opdownload"})


# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock that says what it is told (tests; ``advance`` moves it)."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at = self.at + dt.timedelta(**delta)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a naive datetime; give timezone-aware UTC times")
    return value.astimezone(dt.UTC)


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One occasion a trigger fired for, claimed by this process (its firing row is written).

    ``decision``: ``run`` (start the pipeline with ``params``), ``skipped`` (a missed schedule time
    under the ``skip`` policy; nothing runs) or ``error`` (the trigger could not be looked at —
    a folder that is gone, say; nothing was written and ``message`` says what to do).
    """

    pipeline_id: int
    pipeline: str  # its name
    trigger: str  # the trigger's key in the file, e.g. "schedule:0"
    type: str  # schedule | new_file | drift
    fire_key: str
    decision: str = "run"
    params: dict[str, Any] = field(default_factory=dict)  # the run's parameters the trigger sets
    detail: dict[str, Any] = field(default_factory=dict)  # due / path / check, for the run's trigger record
    firing_id: int | None = None
    spec: dict[str, Any] = field(default_factory=dict)  # the pipeline as listed (Pipeline.to_json())
    message: str | None = None

    def trigger_json(self) -> dict[str, Any]:
        """What the run records as its ``trigger``."""
        return {"type": self.type, "trigger": self.trigger, "fire_key": self.fire_key, "firing": self.firing_id,
                **self.detail}

    def to_json(self) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "pipeline": self.pipeline, "trigger": self.trigger,
                "type": self.type, "fire_key": self.fire_key, "decision": self.decision, "params": self.params,
                "detail": self.detail, "firing_id": self.firing_id, "message": self.message}


@dataclass(frozen=True)
class _Listed:
    id: int
    name: str
    spec: dict[str, Any]
    created_at: dt.datetime


def describe(trigger: Trigger | dict[str, Any] | None) -> str:
    """A trigger as a person names it: "its schedule '0 2 * * *'", "its new_file trigger on
    /data/incoming", "its drift trigger on churn"."""
    t = trigger.to_json() if isinstance(trigger, Trigger) else dict(trigger or {})
    if t.get("type") == "schedule":
        return f"its schedule '{t.get('cron')}'"
    if t.get("type") == "new_file":
        return f"its new_file trigger on {t.get('folder')}"
    if t.get("type") == "drift":
        return f"its drift trigger on {t.get('model')}"
    if t.get("type") == "live_drift":
        return f"its live drift trigger on {t.get('model')}"
    return "its trigger"


def _spec_trigger(spec: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((t for t in spec.get("triggers") or () if t.get("key") == key), None)


def _listed(store: Store) -> list[_Listed]:
    """The pipelines whose triggers are on, each with when it was listed or its triggers last
    switched on (``created_at`` then: nothing fires for what happened while they were off)."""
    with store.session() as s:
        rows = s.execute(select(m.Pipeline.id, m.Pipeline.name, m.Pipeline.spec, m.Pipeline.created_at)
                         .where(m.Pipeline.schedules_enabled.is_(True)).order_by(m.Pipeline.id)).all()
        enabled = dict(s.execute(
            select(m.AuditEvent.entity_id, func.max(m.AuditEvent.at))
            .where(m.AuditEvent.entity_type == "pipeline", m.AuditEvent.action == "enable_schedules")
            .group_by(m.AuditEvent.entity_id)).all())
    return [_Listed(r.id, r.name, r.spec or {}, max(_utc(r.created_at), _utc(enabled.get(str(r.id), r.created_at))))
            for r in rows]


def claim_due(store: Store, *, now: dt.datetime, on_time_s: float = ON_TIME_S, settle_s: float = SETTLE_S,
              pipelines: Iterable[str] | None = None) -> list[Claim]:
    """Claim every trigger that is due at ``now`` (aware UTC) and return the claims, oldest
    pipeline first. Each ``run``/``skipped`` claim's firing row is written (exactly once across
    processes); start the ``run`` ones with :func:`start_claim`. ``pipelines`` limits it to
    those names. Never raises for one pipeline's broken trigger: that is an ``error`` claim."""
    now = _utc(now)
    wanted = set(pipelines) if pipelines is not None else None
    claims: list[Claim] = []
    for row in _listed(store):
        if wanted is not None and row.name not in wanted:
            continue
        try:
            pipeline = Pipeline.from_json(row.spec)
        except (KeyError, TypeError) as exc:
            claims.append(Claim(row.id, row.name, "", "", "", decision="error",
                                message=f"Pipeline {row.name}: its listed spec cannot be read ({exc}); add its file "
                                        "again with 'modelyard pipeline validate' and list it again."))
            continue
        for trigger in pipeline.triggers:
            try:
                if trigger.type == "schedule":
                    found = _schedule(store, row, trigger, now, on_time_s)
                elif trigger.type == "new_file":
                    found = _new_files(store, row, trigger, settle_s)
                elif trigger.type == "drift":
                    found = _drift(store, row, trigger)
                elif trigger.type == "live_drift":
                    found = _live_drift(store, row, trigger)
                else:
                    continue
            except ModelyardError as exc:
                found = [Claim(row.id, row.name, trigger.key, trigger.type, "", decision="error",
                               message=f"Pipeline {row.name}, {describe(trigger)}: {exc.message}"
                                       + (f" {exc.hint}" if exc.hint else ""))]
            claims.extend(c if c.decision == "error" else _with_spec(c, row.spec) for c in found)
    return claims


def _with_spec(claim: Claim, spec: dict[str, Any]) -> Claim:
    return Claim(**{**claim.__dict__, "spec": spec})


def _insert_firing(store: Store, claim: Claim) -> Claim | None:
    """Write ``claim``'s firing row; None when another process had written it first."""
    try:
        with store.write() as s:
            row = m.TriggerFiring(pipeline_id=claim.pipeline_id, trigger=claim.trigger, fire_key=claim.fire_key,
                                  decision=claim.decision, host=hostname(), pid=os.getpid())
            s.add(row)
            s.flush()
            firing_id = row.id
    except IntegrityError:
        return None
    return Claim(**{**claim.__dict__, "firing_id": firing_id})


def _fired(store: Store, pipeline_id: int, trigger: str, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    out: set[str] = set()
    with store.session() as s:
        for i in range(0, len(keys), 500):
            out.update(s.scalars(select(m.TriggerFiring.fire_key).where(
                m.TriggerFiring.pipeline_id == pipeline_id, m.TriggerFiring.trigger == trigger,
                m.TriggerFiring.fire_key.in_(keys[i:i + 500]))))
    return out


# --------------------------------------------------------------------------- schedules


def _key_of(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(_KEY_FORMAT)


def _time_of(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, _KEY_FORMAT).replace(tzinfo=dt.UTC)


def _croniter(cron: str, start: dt.datetime) -> Any:
    from croniter import CroniterError, croniter

    try:
        return croniter(cron, start)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ModelyardError(f"the cron expression cannot be read ({exc}).",
                             hint="Fix the schedule in the pipeline file (five fields: minute hour day month "
                                  "weekday) and list it again.") from None


def due_times(cron: str, after: dt.datetime, now: dt.datetime, *, limit: int = MAX_SKIPPED + 1) -> list[dt.datetime]:
    """The cron times in (``after``, ``now``], newest first, at most ``limit`` of them (UTC)."""
    after, now = _utc(after), _utc(now)
    it = _croniter(cron, now + dt.timedelta(microseconds=1))
    out: list[dt.datetime] = []
    while len(out) < limit:
        t = _utc(it.get_prev(dt.datetime))
        if t <= after:
            break
        out.append(t)
    return out


def next_due(cron: str, now: dt.datetime) -> dt.datetime:
    """The first cron time after ``now`` (UTC): what a panel shows as 'next run'."""
    return _utc(_croniter(cron, _utc(now)).get_next(dt.datetime))


def _schedule(store: Store, row: _Listed, trigger: Trigger, now: dt.datetime, on_time_s: float) -> list[Claim]:
    with store.session() as s:
        last = s.scalar(select(func.max(m.TriggerFiring.fire_key)).where(
            m.TriggerFiring.pipeline_id == row.id, m.TriggerFiring.trigger == trigger.key))
    after = row.created_at
    if last:
        try:
            after = max(after, _time_of(last))
        except ValueError:
            pass
    times = due_times(trigger.cron or "", after, now)
    if not times:
        return []
    newest, older = times[0], times[1:]
    base = dict(pipeline_id=row.id, pipeline=row.name, trigger=trigger.key, type="schedule")
    detail = {"cron": trigger.cron, "missed_policy": trigger.missed}
    to_run: list[dt.datetime] = []
    to_skip: list[dt.datetime] = []
    if trigger.missed == "skip":
        late = (now - newest).total_seconds() > on_time_s
        to_skip = times if late else older
        to_run = [] if late else [newest]
    else:  # run_once: however many times passed, one run, for the newest
        to_run = [newest]
    claims: list[Claim] = []
    for when in to_run:
        claim = _insert_firing(store, Claim(**base, fire_key=_key_of(when), decision="run",
                                            detail={**detail, "due": _key_of(when), "missed": len(older)}))
        if claim is not None:
            claims.append(claim)
    if to_skip:
        skipped = [Claim(**base, fire_key=_key_of(t), decision="skipped", detail={**detail, "due": _key_of(t)})
                   for t in to_skip[:MAX_SKIPPED]]
        claims.extend(_insert_skipped(store, skipped))
    return claims


def _insert_skipped(store: Store, claims: list[Claim]) -> list[Claim]:
    """Record missed times as ``skipped`` firings in one transaction (none when another process did)."""
    try:
        with store.write() as s:
            rows = [m.TriggerFiring(pipeline_id=c.pipeline_id, trigger=c.trigger, fire_key=c.fire_key,
                                    decision="skipped", host=hostname(), pid=os.getpid()) for c in claims]
            s.add_all(rows)
            s.flush()
            ids = [r.id for r in rows]
    except IntegrityError:
        return []
    return [Claim(**{**c.__dict__, "firing_id": i}) for c, i in zip(claims, ids, strict=True)]


# --------------------------------------------------------------------------- new files


def _is_candidate(name: str, pattern: str) -> bool:
    if not name or name.startswith((".", "~")) or name.endswith("~"):
        return False
    if os.path.splitext(name)[1].lower() in _TEMP_SUFFIXES:
        return False
    return fnmatch.fnmatch(name, pattern)


def _file_key(path: str, size: int, mtime_ns: int) -> str:
    key = f"{path}|{size}|{mtime_ns}"
    if len(key) <= _KEY_LIMIT:
        return key
    return f"sha256:{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()}|{size}|{mtime_ns}"


def _new_files(store: Store, row: _Listed, trigger: Trigger, settle_s: float) -> list[Claim]:
    folder = Path(trigger.folder or "")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        raise ModelyardError("the folder does not exist.",
                             hint="Create it, or change the trigger's folder in the pipeline file.") from None
    except NotADirectoryError:
        raise ModelyardError("that is a file, not a folder.",
                             hint="Change the trigger's folder in the pipeline file.") from None
    except PermissionError:
        raise ModelyardError("the folder cannot be read (permission denied).",
                             hint="Give the agent's user read access to it.") from None
    listed = row.created_at.timestamp()
    settled_before = time.time() - settle_s
    found: list[tuple[str, str, int, int]] = []
    for entry in entries:
        if not _is_candidate(entry.name, trigger.pattern or "*"):
            continue
        try:
            if not entry.is_file(follow_symlinks=True):
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError:
            continue
        changed = max(st.st_mtime, st.st_ctime)
        if st.st_size == 0 or changed > settled_before or changed < listed:
            continue  # empty, still being written, or there before the pipeline was listed
        path = str(folder / entry.name)
        found.append((_file_key(path, st.st_size, st.st_mtime_ns), path, st.st_size, st.st_mtime_ns))
    done = _fired(store, row.id, trigger.key, [k for k, *_ in found])
    claims = []
    for key, path, size, mtime_ns in found:
        if key in done:
            continue
        claim = _insert_firing(store, Claim(
            row.id, row.name, trigger.key, "new_file", key, params={trigger.param: path} if trigger.param else {},
            detail={"path": path, "size": size, "mtime_ns": mtime_ns, "param": trigger.param}))
        if claim is not None:
            claims.append(claim)
    return claims


# --------------------------------------------------------------------------- drift


def _drift(store: Store, row: _Listed, trigger: Trigger) -> list[Claim]:
    with store.session() as s:
        checks = s.execute(
            select(m.MonitoringCheck.id, m.ModelVersion.version)
            .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
            .join(m.RegisteredModel, m.RegisteredModel.id == m.ModelVersion.model_id)
            .where(m.RegisteredModel.name == trigger.model, m.MonitoringCheck.verdict == "drift",
                   m.MonitoringCheck.created_at > row.created_at)
            .order_by(m.MonitoringCheck.id)).all()
    return _claim_each(store, row, trigger, "drift", {
        check_id: {"check": check_id, "model": trigger.model, "version": f"{trigger.model}@v{version}"}
        for check_id, version in checks})


def _claim_each(store: Store, row: _Listed, trigger: Trigger, kind: str, events: dict[int, dict[str, Any]]
                ) -> list[Claim]:
    """One claim per event (id -> the firing's detail) this trigger has not fired for yet, in
    order; ``param`` gets the event's id."""
    done = _fired(store, row.id, trigger.key, [str(i) for i in events])
    claims = []
    for event_id, detail in events.items():
        if str(event_id) in done:
            continue
        claim = _insert_firing(store, Claim(
            row.id, row.name, trigger.key, kind, str(event_id),
            params={trigger.param: event_id} if trigger.param else {},
            detail={**detail, "param": trigger.param}))
        if claim is not None:
            claims.append(claim)
    return claims


def live_drift_models(store: Store) -> list[str]:
    """The models named by the ``on: live_drift`` triggers of pipelines whose triggers are on."""
    names = {t.get("model") for row in _listed(store) for t in row.spec.get("triggers") or ()
             if t.get("type") == "live_drift" and t.get("model")}
    return sorted(names)


def _live_drift(store: Store, row: _Listed, trigger: Trigger) -> list[Claim]:
    """Each live drift alert of the model (a ``live_drift`` audit event, core/monitoring/live.py)
    recorded after the pipeline was listed fires once; ``param`` gets the alert's id."""
    with store.session() as s:
        model_id = s.execute(select(m.RegisteredModel.id).where(m.RegisteredModel.name == trigger.model)).scalar()
        alerts = [] if model_id is None else s.execute(
            select(m.AuditEvent.id, m.AuditEvent.to_value)
            .where(m.AuditEvent.entity_type == "registered_model", m.AuditEvent.entity_id == str(model_id),
                   m.AuditEvent.action == "live_drift", m.AuditEvent.at > row.created_at)
            .order_by(m.AuditEvent.id)).all()
    return _claim_each(store, row, trigger, "live_drift", {
        alert_id: {"alert": alert_id, "model": trigger.model, "window": window} for alert_id, window in alerts})


# --------------------------------------------------------------------------- starting claimed runs


def start_claim(store: Store, claim: Claim, *, jobs: int = 1) -> int:
    """Create the queued run of a ``run`` claim (the runner's ``create_run``) and record its id on
    the claim's firing. A run that cannot be created (a parameter the pipeline does not have,
    say) marks the firing ``failed`` and raises the runner's error."""
    from modelyard.core.pipelines.runner import create_run

    pipeline = Pipeline.from_json(claim.spec)
    try:
        run_id = create_run(store, pipeline, params=claim.params or None, trigger=claim.trigger_json(), jobs=jobs)
    except Exception:
        _set_firing(store, claim.firing_id, decision="failed")
        raise
    _set_firing(store, claim.firing_id, run_id=run_id)
    return run_id


def _set_firing(store: Store, firing_id: int | None, **values: Any) -> None:
    if firing_id is None:
        return
    with store.write() as s:
        s.execute(update(m.TriggerFiring).where(m.TriggerFiring.id == firing_id).values(**values))


@dataclass(frozen=True)
class Orphan:
    """A firing whose claimer died before its run ran: ``run_id`` None (no run yet) or a queued run."""

    claim: Claim
    run_id: int | None
    host: str | None
    pid: int | None


def orphaned_claims(store: Store, *, now: dt.datetime | None = None) -> list[Orphan]:
    """``run`` firings whose claiming process is gone (its pid on this host; on another, claimed
    over ``STALE_HEARTBEAT`` ago by a process running nothing with a fresh heartbeat) and whose run
    never started. Take one over with :func:`take_over`."""
    now = _utc(now) if now is not None else m.utcnow()
    host, me = hostname(), os.getpid()
    with store.session() as s:
        rows = s.execute(
            select(m.TriggerFiring, m.Pipeline.name, m.Pipeline.spec, m.PipelineRun.status)
            .join(m.Pipeline, m.Pipeline.id == m.TriggerFiring.pipeline_id)
            .outerjoin(m.PipelineRun, m.PipelineRun.id == m.TriggerFiring.run_id)
            .where(m.TriggerFiring.decision == "run")
            .where((m.TriggerFiring.run_id.is_(None)) | (m.PipelineRun.status == "queued"))
            .order_by(m.TriggerFiring.id)).all()
        busy = {(r.host, r.pid) for r in s.execute(  # other machines' claimers still running something
            select(m.PipelineRun.host, m.PipelineRun.pid).where(
                m.PipelineRun.status == "running", m.PipelineRun.host != host,
                m.PipelineRun.heartbeat_at > now - STALE_HEARTBEAT))}
    out = []
    for firing, name, spec, status in rows:
        if firing.run_id is not None and status != "queued":
            continue
        if firing.host == host:
            if firing.pid == me or (firing.pid is not None and pid_alive(firing.pid)):
                continue
        elif now - _utc(firing.fired_at) <= STALE_HEARTBEAT or (firing.host, firing.pid) in busy:
            continue  # another machine's claimer may still be alive (busy with its other runs)
        t = _spec_trigger(spec or {}, firing.trigger) or {"type": firing.trigger.split(":", 1)[0]}
        claim = Claim(firing.pipeline_id, name, firing.trigger, t["type"], firing.fire_key,
                      params=_orphan_params(t, firing.fire_key), detail=_orphan_detail(t, firing.fire_key),
                      firing_id=firing.id, spec=spec or {})
        out.append(Orphan(claim, firing.run_id, firing.host, firing.pid))
    return out


def _orphan_params(t: dict[str, Any], fire_key: str) -> dict[str, Any]:
    """The parameters the trigger ``t`` set for ``fire_key``, recovered from the key."""
    if not t.get("param"):
        return {}
    if t.get("type") in ("drift", "live_drift") and fire_key.isdigit():
        return {t["param"]: int(fire_key)}
    if t.get("type") == "new_file" and not fire_key.startswith("sha256:"):
        return {t["param"]: fire_key.rsplit("|", 2)[0]}
    return {}


def _orphan_detail(t: dict[str, Any], fire_key: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"adopted": True}
    if t.get("type") == "schedule":
        detail.update(cron=t.get("cron"), missed_policy=t.get("missed"), due=fire_key)
    elif t.get("type") == "new_file" and not fire_key.startswith("sha256:"):
        detail.update(path=fire_key.rsplit("|", 2)[0], param=t.get("param"))
    elif t.get("type") == "drift" and fire_key.isdigit():
        detail.update(check=int(fire_key), model=t.get("model"), param=t.get("param"))
    elif t.get("type") == "live_drift" and fire_key.isdigit():
        detail.update(alert=int(fire_key), model=t.get("model"), param=t.get("param"))
    return detail


def take_over(store: Store, orphan: Orphan) -> bool:
    """Make this process the claimer of ``orphan`` (compare-and-set on the firing's host and pid):
    True when it won; another agent adopting the same firing at once gets False."""
    cond = [m.TriggerFiring.id == orphan.claim.firing_id]
    cond.append(m.TriggerFiring.host.is_(None) if orphan.host is None else m.TriggerFiring.host == orphan.host)
    cond.append(m.TriggerFiring.pid.is_(None) if orphan.pid is None else m.TriggerFiring.pid == orphan.pid)
    with store.write() as s:
        res = s.execute(update(m.TriggerFiring).where(*cond).values(host=hostname(), pid=os.getpid()))
        return (res.rowcount or 0) == 1


# --------------------------------------------------------------------------- all of it, for an agent or a window


@dataclass(frozen=True)
class Started:
    """What :func:`start_due` did about one claim: ``run_id`` is the queued run to execute (None for
    a ``skipped`` or ``error`` claim, or a run that could not be created: ``error`` says why)."""

    claim: Claim
    run_id: int | None = None
    error: str | None = None
    adopted: bool = False  # taken over from a claimer that died


def start_due(store: Store, *, now: dt.datetime, on_time_s: float = ON_TIME_S, settle_s: float = SETTLE_S,
              adopt: bool = True) -> list[Started]:
    """Take over orphaned claims (``adopt``), claim every due trigger and create the queued run of
    each ``run`` claim. The caller executes the runs (the agent on its threads, the window as
    ``pipeline.run`` jobs). Never raises for one trigger's problem; the store's own errors do."""
    out: list[Started] = []
    if adopt:
        for orphan in orphaned_claims(store):
            if take_over(store, orphan):
                out.append(_create(store, orphan.claim, orphan.run_id, adopted=True))
    for claim in claim_due(store, now=now, on_time_s=on_time_s, settle_s=settle_s):
        out.append(_create(store, claim, None) if claim.decision == "run" else Started(claim, error=claim.message))
    return out


def _create(store: Store, claim: Claim, run_id: int | None, *, adopted: bool = False) -> Started:
    if run_id is not None:
        return Started(claim, run_id, adopted=adopted)
    try:
        return Started(claim, start_claim(store, claim), adopted=adopted)
    except Exception as exc:  # noqa: BLE001 - one trigger's broken run never stops the others
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        hint = getattr(exc, "hint", None)
        what = describe(_spec_trigger(claim.spec, claim.trigger))
        return Started(claim, None, f"Pipeline {claim.pipeline}: the run {what} asked for could not be created: "
                                    f"{text}" + (f" {hint}" if hint else ""), adopted=adopted)
