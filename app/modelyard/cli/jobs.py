"""``modelyard jobs list | show``: the record of background and foreground work."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli._common import (
    add_command,
    add_noun,
    fmt_duration,
    fmt_percent,
    open_store,
    positive_int,
    print_json,
    print_kv,
    print_table,
    to_json_text,
    wants_json,
)

# Mirrors modelyard.core.jobs.runner (not imported here: it pulls in SQLAlchemy at start-up).
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "jobs", common, help="list and inspect jobs",
                     description="List and inspect jobs: the recorded runs of long work (imports, "
                                 "training, checks, store maintenance), with their progress, error and log.")
    p = add_command(verbs, "list", common, _list, help="list jobs, newest first",
                    epilog="example:\n  modelyard jobs list --status failed --limit 10")
    p.add_argument("--status", choices=STATUSES, help="only jobs with this status")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N",
                   help="show at most N jobs (default: 50)")
    p = add_command(verbs, "show", common, _show, help="show one job: its fields, error and log",
                    epilog="example:\n  modelyard jobs show 12 --json")
    p.add_argument("job_id", type=positive_int, metavar="ID", help="the job's number (see 'jobs list')")


def _job_json(record: Any) -> dict[str, Any]:
    d = record.to_json()
    d["duration_s"] = record.duration_s
    return d


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.jobs.runner import list_jobs

    with open_store(args) as store:
        records = list_jobs(store, limit=args.limit, status=args.status)
    if wants_json(args):
        print_json([_job_json(r) for r in records])
        return 0
    if not records:
        print("No jobs" + (f" with status {args.status}." if args.status else "."))
        return 0
    print_table(
        ["ID", "STATUS", "KIND", "TITLE", "PROGRESS", "STARTED", "DURATION"],
        [[r.id, r.status, r.kind, r.title, fmt_percent(r.progress), r.started_at, fmt_duration(r.duration_s)]
         for r in records],
        right=(0, 4, 6),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.jobs.runner import get_job

    with open_store(args) as store:
        record, log = get_job(store, args.job_id)
    params, result = record.params, record.result
    if wants_json(args):
        data = _job_json(record)
        data.update(params=params, result=result, log=log)
        print_json(data)
        return 0
    pairs: list[tuple[str, Any]] = [
        ("id", record.id), ("kind", record.kind), ("title", record.title), ("status", record.status),
        ("progress", fmt_percent(record.progress)), ("message", record.message or ""),
        ("created", record.created_at), ("started", record.started_at), ("ended", record.ended_at),
        ("duration", fmt_duration(record.duration_s)), ("actor", record.actor or ""),
        ("host", record.host or ""), ("pid", record.pid if record.pid is not None else ""),
        ("params", to_json_text(params, indent=None) if params else ""),
        ("result", to_json_text(result, indent=None) if result is not None else ""),
    ]
    print_kv(pairs)
    if record.error:
        print("error:")
        for line in record.error.rstrip("\n").splitlines():
            print(f"  {line}")
    print("log:" if log.strip() else "log: (empty)")
    for line in log.rstrip("\n").splitlines():
        print(f"  {line}")
    return 0
