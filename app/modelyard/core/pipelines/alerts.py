"""The notification a pipeline run's end sends, per the pipeline's ``notify`` block.

The runner calls :func:`run_ended` when a run ends. It composes the subject, body and JSON payload
from the run (pipeline, status, the step that failed or blocked and its error, duration, what
started it) and hands them to :func:`modelyard.core.notify.notify`, which records one
notification per channel and delivers it (retrying later what it cannot deliver now). It never
raises: a notification that cannot be composed or delivered never fails the pipeline.

``notify`` in the pipeline file (default ``{on: [failed, blocked]}``)::

    notify:
      on: [failed, blocked, succeeded]   # which endings send a message
      email: [ops@example.com]           # these recipients instead of the store's; false: no e-mail
      webhook: false                     # no webhook for this pipeline (default: every channel set up)
"""

from __future__ import annotations

import logging
from typing import Any

from modelyard.core.common.names import fmt_duration
from modelyard.core.store import Store

__all__ = ["CHANNELS", "compose", "run_ended"]

log = logging.getLogger(__name__)

#: The channels :mod:`modelyard.core.notify` delivers (the window shows its own desktop notification).
CHANNELS = ("email", "webhook")
_ENDS = ("failed", "blocked", "succeeded")


def run_ended(store: Store, run_id: int) -> list[int]:
    """Notify about the end of pipeline run ``run_id`` when its pipeline's ``notify.on`` names its
    status. Returns the notification rows made (none when nothing was due). Never raises."""
    try:
        message = compose(store, run_id)
        if message is None:
            return []
        try:
            from modelyard.core.notify import notify
        except ImportError:  # the notify room is not there (an older checkout)
            return []
        return list(notify(store, message["event"], subject=message["subject"], body=message["body"],
                           payload=message["payload"], pipeline_run_id=run_id, channels=message["channels"],
                           recipients=message["recipients"]) or [])
    except Exception:  # noqa: BLE001 - a notification never fails the pipeline
        log.exception("could not notify about the end of pipeline run %s", run_id)
        return []


def compose(store: Store, run_id: int) -> dict[str, Any] | None:
    """The notification for run ``run_id``'s end — ``{"event", "subject", "body", "payload",
    "channels", "recipients"}`` — or None when the run has not ended or its pipeline's ``notify.on``
    does not name its status."""
    from modelyard.core.store import models as m

    with store.session() as s:
        run = s.get(m.PipelineRun, run_id)
        if run is None:
            return None
        pipeline = s.get(m.Pipeline, run.pipeline_id)
        steps = list(s.query(m.PipelineStepRun).filter(m.PipelineStepRun.run_id == run_id)
                     .order_by(m.PipelineStepRun.position, m.PipelineStepRun.id))
        spec = run.spec or (pipeline.spec if pipeline is not None else {}) or {}
        name = pipeline.name if pipeline is not None else spec.get("name", f"run {run_id}")
        status, error, trigger = run.status, run.error, dict(run.trigger or {})
        started, ended, exit_code, params = run.started_at, run.ended_at, run.exit_code, dict(run.params or {})
        step_rows = [(st.step, st.kind, st.status, st.error, st.attempts) for st in steps]
    if status not in _ENDS:
        return None
    block = spec.get("notify") or {"on": ["failed", "blocked"]}
    if status not in (block.get("on") or ()):
        return None
    channels, recipients = _channels(block)
    culprit = next((r for r in step_rows if r[2] == status), None) or next(
        (r for r in step_rows if r[2] in ("failed", "blocked", "interrupted", "cancelled")), None)
    duration = (ended - started).total_seconds() if started is not None and ended is not None else None
    when = _trigger_text(trigger)

    if status == "succeeded":
        subject = f"Pipeline {name} succeeded" + (f" in {fmt_duration(duration)}" if duration is not None else "")
    elif culprit is not None:
        verb = "was blocked by" if status == "blocked" else "failed at"
        subject = f"Pipeline {name} {verb} step {culprit[0]}"
    else:
        subject = f"Pipeline {name} {status}"
    lines = [f"Pipeline: {name}", f"Run: {run_id}", f"Status: {status}"]
    if culprit is not None and status != "succeeded":
        lines.append(f"Step: {culprit[0]} ({culprit[1]}), {culprit[2]} after {culprit[4]} "
                     f"attempt{'s' if culprit[4] != 1 else ''}")
        if culprit[3]:
            lines.append(f"Error: {culprit[3]}")
    elif error and status != "succeeded":
        lines.append(f"Error: {error}")
    if duration is not None:
        lines.append(f"Duration: {fmt_duration(duration)}")
    lines.append(f"Started by: {when}")
    if step_rows:
        lines.append("Steps: " + ", ".join(f"{r[0]} {r[2]}" for r in step_rows))
    payload = {
        "event": f"pipeline.{status}", "pipeline": name, "run_id": run_id, "status": status, "exit_code": exit_code,
        "error": error, "duration_s": None if duration is None else round(duration, 3),
        "started_at": started.isoformat() if started else None, "ended_at": ended.isoformat() if ended else None,
        "trigger": trigger, "params": params, "steps": {r[0]: r[2] for r in step_rows},
        "step": None if culprit is None or status == "succeeded" else
        {"name": culprit[0], "kind": culprit[1], "status": culprit[2], "error": culprit[3], "attempts": culprit[4]},
    }
    return {"event": f"pipeline.{status}", "subject": subject, "body": "\n".join(lines) + "\n", "payload": payload,
            "channels": channels, "recipients": recipients}


def _channels(block: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """(channels, e-mail recipients) from a ``notify`` block: None means the store's defaults."""
    email, webhook = block.get("email"), block.get("webhook")
    recipients = [str(a) for a in email] if isinstance(email, list | tuple) and email else None
    if isinstance(email, str) and email.strip():
        recipients = [email.strip()]
    off = {c for c, v in (("email", email), ("webhook", webhook)) if v is False}
    return ([c for c in CHANNELS if c not in off] if off else None), recipients


def _trigger_text(trigger: dict[str, Any]) -> str:
    kind = trigger.get("type") or "manual"
    if kind == "schedule":
        return f"schedule {trigger.get('cron') or ''} (due {trigger.get('due') or trigger.get('fire_key')})".strip()
    if kind == "new_file":
        return f"new file {trigger.get('path') or trigger.get('fire_key')}"
    if kind == "drift":
        return f"drift check {trigger.get('check')} of {trigger.get('version') or trigger.get('model')}"
    if kind == "live_drift":
        return f"live drift alert {trigger.get('alert')} of {trigger.get('model')} ({trigger.get('window')})"
    if kind == "resume":
        return f"resume of run {trigger.get('run')}"
    by = trigger.get("by") or trigger.get("actor")
    return f"{kind}" + (f" ({by})" if by else "")
