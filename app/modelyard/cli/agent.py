"""``modelyard agent [--once] [--interval S] [--jobs N]``: fire the store's pipeline triggers."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from typing import Any

from modelyard.cli._common import (
    HelpFormatter,
    fmt_duration,
    fmt_time,
    open_store,
    positive_int,
    positive_number,
    to_json_text,
    wants_json,
)
from modelyard.core.common.names import display, plural

EPILOG = """\
Every S seconds the agent marks runs a dead process left running as interrupted, claims the
pipelines' due triggers (schedules, new files, drift checks) and runs them, and delivers the
notifications waiting for a retry. Two agents, or an agent and an open window, on one store never
run the same trigger twice. Ctrl+C (or SIGTERM) stops it: the runs still going are cancelled
(resume them with 'modelyard pipeline resume'). packaging/systemd/ has a user unit that keeps it
running.

examples:
  modelyard agent --store ~/team-store
  modelyard agent --once --json"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "agent", parents=[common], help="fire pipeline schedules and triggers (a headless machine, systemd)",
        description="Fire the store's pipeline triggers on a machine with no window: schedules, new files in "
                    "a folder and drift checks start their pipelines, exactly once each.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.set_defaults(func=_agent)
    p.add_argument("--once", action="store_true",
                   help="one pass: start what is due, wait for those runs, and exit (for cron or CI)")
    p.add_argument("--interval", type=positive_number, default=30.0, metavar="S",
                   help="seconds between passes (default: 30)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="pipeline runs at once (default: 1; the others wait queued)")


def _agent(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines.agent import run_agent

    json_mode = wants_json(args)
    stop = threading.Event()
    with open_store(args, sweep=False) as store:  # the agent's first pass sweeps, and says so
        if not json_mode:
            every = "one pass" if args.once else f"every {fmt_duration(args.interval)}"
            _line(f"Agent on the store at {store.display_location} ({every}, up to "
                  f"{plural(args.jobs, 'run')} at once)." + ("" if args.once else " Ctrl+C stops it."))
        with _stop_on_signals(stop):
            counts = run_agent(store, interval=args.interval, once=args.once, jobs=args.jobs, stop_event=stop,
                               out=_json_line if json_mode else _text_line)
    if json_mode:
        _json_line({"event": "stopped", **counts})
    else:
        _line(f"Agent stopped: {plural(counts['claimed'], 'run')} started, {counts['finished']} finished"
              + (f", {counts['failed']} not succeeded" if counts["failed"] else "") + ".")
    return 0


class _stop_on_signals:
    """While active, SIGINT and SIGTERM set ``stop`` (a second Ctrl+C stops waiting at once)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.saved: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.set()

    def __enter__(self) -> _stop_on_signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _line(text: str) -> None:
    print(text, flush=True)


def _json_line(event: dict[str, Any]) -> None:
    print(to_json_text(event, indent=None), flush=True)


def _text_line(event: dict[str, Any]) -> None:
    text = describe(event)
    if text:
        stamp = fmt_time(dt.datetime.fromisoformat(event["at"])) if event.get("at") else ""
        _line(f"{stamp}  {text}" if stamp else text)


def describe(event: dict[str, Any]) -> str | None:
    """One line for a person about an agent event."""
    kind, name = event.get("event"), display(str(event.get("pipeline") or ""))
    if kind == "claimed":
        return f"{name}: run {event.get('run_id')} started by {_cause(event)}."
    if kind == "adopted":
        return f"{name}: the agent that claimed {_cause(event)} stopped before running it; this one takes it over."
    if kind == "finished":
        status = event.get("status")
        took = f" in {fmt_duration(event['duration_s'])}" if event.get("duration_s") is not None else ""
        error = event.get("error")
        why = display(str(error)).splitlines()[0].rstrip(" .") if error and status != "succeeded" else ""
        return f"{name}: run {event.get('run_id')} {status}{took}" + (f": {why}" if why else "") + "."
    if kind == "skipped":
        count = int(event.get("count") or 0)
        many = f"the newest {count} of its many missed times" if event.get("capped") else plural(count, "missed time")
        return f"{name}: skipped {many} of the schedule '{event.get('cron')}' (its missed policy is skip)."
    if kind == "swept":
        count = int(event.get("count") or 0)
        return (f"Marked {plural(count, 'job or run', 'jobs and runs')} whose process had ended as interrupted "
                "('modelyard pipeline resume' continues a pipeline run).")
    if kind == "stopping":
        return f"Stopping: cancelling {plural(int(event.get('running') or 0), 'pipeline run')} still going."
    if kind == "left":
        return f"{name}: run {event.get('run_id')} left queued (stopped before its turn); the next agent starts it."
    if kind == "error":
        return display(str(event.get("message") or "an error"))
    return None


def _cause(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    if event.get("type") == "schedule":
        missed = int(detail.get("missed") or 0)
        due = detail.get("due") or event.get("fire_key")
        return (f"its schedule '{detail.get('cron')}' (due {due}"
                + (f"; {plural(missed, 'earlier time')} missed, run once" if missed else "") + ")")
    if event.get("type") == "new_file":
        return f"the new file {detail.get('path')}"
    if event.get("type") == "drift":
        return f"drift check {detail.get('check')} of {detail.get('version') or detail.get('model')}"
    return "its trigger"

