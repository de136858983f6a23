"""How the Pipelines panel words and colours things: times, durations, run counts, triggers, and
the colour of each step state in the graph (pending grey, running blue, succeeded green, cached
pale green, failed red, blocked amber; skipped, cancelled and interrupted muted)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtGui import QColor

from modelyard.core.common.names import fmt_duration

# state -> (border/text colour on a light palette, on a dark palette); fills are the border colour
# at low opacity over the view's base colour, so they work on both.
STATE_COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#8c959f", "#6e7681"),
    "queued": ("#8c959f", "#6e7681"),
    "running": ("#1f6feb", "#58a6ff"),
    "succeeded": ("#1a7f37", "#3fb950"),
    "cached": ("#4ac26b", "#2ea043"),
    "failed": ("#cf222e", "#f85149"),
    "blocked": ("#bf8700", "#d29922"),
    "skipped": ("#afb8c1", "#484f58"),
    "cancelled": ("#afb8c1", "#484f58"),
    "interrupted": ("#afb8c1", "#484f58"),
}
MUTED = ("skipped", "cancelled", "interrupted")
ACTIVE = ("queued", "running")  # a run still going: the panel polls it
RESUMABLE = ("failed", "blocked", "cancelled", "interrupted")  # a run whose unfinished steps Resume runs
RUN_ENDS = ("succeeded", "failed", "blocked", "cancelled", "interrupted")
ALERT_ON = ("failed", "blocked")  # run endings that raise a desktop notification
TRIGGER_WORDS = {"schedule": "schedule", "new_file": "new file", "drift": "drift", "live_drift": "live drift", "manual": "by hand",
                 "resume": "resume"}
# the order counts are listed in
COUNT_ORDER = ("succeeded", "cached", "running", "pending", "failed", "blocked", "skipped", "cancelled",
               "interrupted")


def state_colour(state: str | None, dark: bool) -> QColor:
    light, darkc = STATE_COLOURS.get(state or "pending", STATE_COLOURS["pending"])
    return QColor(darkc if dark else light)


def parse_time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def when(value: Any, *, short: bool = True) -> str:
    """A time in the user's zone: "Dec 06 09:12" (short) or "2026-12-06 09:12:30"."""
    t = parse_time(value)
    if t is None:
        return ""
    return t.astimezone().strftime("%b %d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def duration(seconds: Any) -> str:
    """ "0.4 s", "12 s", "3 min 05 s", "1 h 02 min"; "" when unknown."""
    return "" if seconds is None else fmt_duration(float(seconds), compact=False)


def elapsed(row: dict[str, Any]) -> str:
    """A run's or step's duration; for one still running, the time since it started."""
    if row.get("duration_s") is not None:
        return duration(row["duration_s"])
    start = parse_time(row.get("started_at"))
    if start is None or row.get("status") not in ACTIVE:
        return ""
    return duration((dt.datetime.now(dt.UTC) - start).total_seconds())


def counts_text(counts: dict[str, int] | None) -> str:
    """ "3 succeeded · 1 cached · 1 failed" (states with no step left out)."""
    counts = counts or {}
    parts = [f"{counts[k]} {k}" for k in COUNT_ORDER if counts.get(k)]
    parts += [f"{n} {k}" for k, n in counts.items() if k not in COUNT_ORDER and n]
    return " · ".join(parts)


def trigger_text(trigger: Any) -> str:
    """What started a run: "by hand", "schedule 0 2 * * *", "new file churn.csv", "resume of run 4"."""
    if not trigger:
        return "by hand"
    if isinstance(trigger, str):
        return TRIGGER_WORDS.get(trigger, trigger)
    kind = str(trigger.get("type") or "manual")
    word = TRIGGER_WORDS.get(kind, kind)
    if kind == "schedule" and trigger.get("cron"):
        return f"{word} {trigger['cron']}"
    if kind == "new_file" and (trigger.get("path") or trigger.get("file")):
        from pathlib import PurePath

        return f"{word} {PurePath(str(trigger.get('path') or trigger.get('file'))).name}"
    if kind in ("drift", "live_drift") and trigger.get("model"):
        return f"{word} of {trigger['model']}"
    if kind == "resume" and trigger.get("run") is not None:
        return f"resume of run {trigger['run']}"
    return word


VIA = {"window": "started in the window", "python": "started through the Python API",
       "cli": "started with modelyard pipeline run"}


def trigger_detail_of_run(trigger: Any) -> str | None:
    """A run's trigger in full, for a tooltip: where it was started, the due time, the file, the check."""
    if not isinstance(trigger, dict):
        return None
    kind = trigger.get("type")
    if kind in (None, "manual"):
        return VIA.get(str(trigger.get("via")), "started by hand")
    parts = [trigger_text(trigger)]
    for key, label in (("due", "due"), ("path", "file"), ("version", "version"), ("check", "check")):
        if trigger.get(key) not in (None, ""):
            parts.append(f"{label}: {trigger[key]}")
    return "\n".join(parts)


def triggers_text(triggers: list[dict[str, Any]] | None) -> str:
    """A pipeline's triggers in a few words: "schedule, new file"; "—" when it has none."""
    words = [TRIGGER_WORDS.get(str(t.get("type")), str(t.get("type"))) for t in triggers or []]
    return ", ".join(dict.fromkeys(words)) or "—"


def trigger_detail(t: dict[str, Any]) -> str:
    """One trigger in full, for a tooltip."""
    kind = t.get("type")
    if kind == "schedule":
        return f"schedule {t.get('cron')} (missed: {str(t.get('missed') or 'run_once').replace('_', ' ')})"
    if kind == "new_file":
        return f"a new file matching {t.get('pattern') or '*'} in {t.get('folder')}"
    if kind == "drift":
        return f"drift found in a check of {t.get('model')}"
    if kind == "live_drift":
        return f"a live drift alert of {t.get('model')} (Monitoring › Live)"
    return str(kind)


def step_status_text(step: dict[str, Any]) -> str:
    status = step.get("status") or "pending"
    if status == "cached":
        return "cached (outputs of an earlier run reused)"
    attempts = int(step.get("attempts") or 0)
    return f"{status}, attempt {attempts}" if attempts > 1 else status


def short_value(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (dict, list)) else _json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(value: Any) -> str:
    import json

    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)
