"""What the Jobs dock and the status-bar strip say about jobs: elapsed times, a sentence for a job
that wrote no log, and the one-line summary of recent jobs. Plain functions of plain rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from modelyard.core.common.names import plural

STATUS_WORDS = {"queued": "is waiting to start", "running": "is running", "succeeded": "succeeded",
                "failed": "failed", "cancelled": "was cancelled", "interrupted": "was interrupted"}


class Row(Protocol):
    title: str
    status: str
    progress: float | None
    message: str
    error: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    result: dict[str, Any] | None


def fmt_elapsed(seconds: float | None) -> str:
    """A clock-style duration: ``0:42``, ``12:05``, ``1:02:03``."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def elapsed(row: Row, now: dt.datetime | None = None) -> str:
    """How long the job ran (or has been running), ``""`` before it started."""
    if row.started_at is None:
        return ""
    end = row.ended_at or now or dt.datetime.now(dt.UTC)
    return fmt_elapsed((end - row.started_at).total_seconds())


def outcome_phrase(row: Row) -> str:
    """``Import churn.csv succeeded`` — the job and what became of it."""
    return f"{row.title} {STATUS_WORDS.get(row.status, row.status)}"


def _result_lines(result: dict[str, Any] | None, limit: int = 8) -> list[str]:
    lines = []
    for key, value in (result or {}).items():
        if isinstance(value, (str, int, float, bool)) and value != "":
            text = str(value)
            lines.append(f"  {key.replace('_', ' ')}: {text if len(text) <= 120 else text[:117] + '…'}")
        if len(lines) >= limit:
            break
    return lines


def without_log(row: Row) -> str:
    """What the detail pane says about a job that wrote no log line: what it did and how it ended."""
    took = elapsed(row)
    when = row.ended_at.astimezone().strftime("%H:%M:%S") if row.ended_at else ""
    if row.status == "running":  # the title above says the step and the time; this text does not change
        return f"{row.title} is running and has written no log lines yet; they appear here as it writes them."
    if row.status == "queued":
        return f"{row.title} is waiting to start."
    text = outcome_phrase(row)
    if when:
        text += f" at {when}"
    if took:
        text += f" after {took}"
    text += ". It wrote no log lines."
    if row.error:
        text = f"{row.error}\n\n{text}"
    if row.message:
        text += f"\nLast step: {row.message}"
    lines = _result_lines(row.result)
    if lines:
        text += "\nResult:\n" + "\n".join(lines)
    return text


def status_line(rows: Sequence[Row]) -> str:
    """The status-bar strip: ``Jobs: 1 running · Train churn 0:42`` or
    ``Jobs: 3 recent · last: Import churn.csv succeeded`` (rows newest first)."""
    if not rows:
        return "Jobs: none yet"
    running = [r for r in rows if r.status in ("running", "queued")]
    if running:
        newest = running[0]
        now = f" {elapsed(newest)}" if newest.started_at else ""
        more = f" and {plural(len(running) - 1, 'other')}" if len(running) > 1 else ""
        return f"Jobs: {len(running)} running · {newest.title}{now}{more}"
    return f"Jobs: {len(rows)} recent · last: {outcome_phrase(rows[0])}"
