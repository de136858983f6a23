"""``modelyard run list | show | delete | restore | purge``: tracked runs from the command line."""

from __future__ import annotations

import argparse
import math
from typing import Any

from modelyard.cli._common import (
    add_command,
    add_noun,
    fmt_duration,
    non_negative,
    open_store,
    positive_int,
    print_json,
    print_kv,
    print_table,
    wants_json,
)

MAX_METRIC_COLUMNS = 6


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "run", common, help="list, inspect and delete tracked runs",
                     description="List, inspect, delete and restore the runs recorded with "
                                 "modelyard.start_run() in scripts and notebooks, or trained in the app.")
    p = add_command(verbs, "list", common, _list, help="list runs, newest first",
                    epilog="examples:\n"
                           "  modelyard run list --experiment churn --limit 20\n"
                           "  modelyard run list --filter 'metrics.f1 > 0.8 and params.model = \"rf\"' "
                           "--order-by 'metrics.f1 DESC'")
    p.add_argument("--experiment", metavar="NAME", action="append",
                   help="only runs of this experiment (repeat for several)")
    p.add_argument("--filter", metavar="EXPR", help="a filter expression (see docs/cli.md)")
    p.add_argument("--order-by", metavar="ORDER", action="append", dest="order_by",
                   help="e.g. 'metrics.f1 DESC' (repeat for ties; default: newest first)")
    p.add_argument("--limit", type=positive_int, default=100, metavar="N", help="show at most N runs (default: 100)")
    p.add_argument("--deleted", action="store_true", help="list the runs in the trash instead")
    p = add_command(verbs, "show", common, _show, help="show one run: params, metrics, tags, artifacts",
                    epilog="example:\n  modelyard run show 3fa9c1d2 --json")
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters")
    p = add_command(verbs, "delete", common, _delete, help="move a run (and its nested runs) to the trash",
                    epilog="example:\n  modelyard run delete 3fa9c1d2")
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters")
    p = add_command(verbs, "restore", common, _restore, help="bring a run back from the trash",
                    epilog="example:\n  modelyard run restore 3fa9c1d2")
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters")
    p = add_command(verbs, "purge", common, _purge,
                    help="remove runs in the trash for good, with artifact files nothing else uses",
                    epilog="example:\n  modelyard run purge --older-than 30")
    p.add_argument("--older-than", type=non_negative, metavar="DAYS", dest="older_than",
                   help="only runs deleted at least DAYS days ago (default: all)")
    from modelyard.cli.train import register_reproduce  # the verb lives with training

    register_reproduce(verbs, common)


# --------------------------------------------------------------------------- list


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.experiments import tracking

    with open_store(args) as store:
        frame = tracking.search_runs(args.experiment, filter=args.filter, order_by=args.order_by,
                                     max_results=args.limit, include_deleted="only" if args.deleted else False,
                                     store=store)
    records = tracking.run_records(frame)
    if wants_json(args):
        print_json(records)
        return 0
    if not records:
        print("No runs in the trash." if args.deleted else "No runs" + (" match the filter." if args.filter else "."))
        return 0
    metric_keys = sorted({k for r in records for k in r["metrics"]})
    shown = metric_keys[:MAX_METRIC_COLUMNS]
    headers = ["RUN ID", "EXPERIMENT", "NAME", "STATUS", "STARTED", "DURATION"] + [k.upper() for k in shown]
    rows = []
    for r in records:
        rows.append([r["run_id"][:12], r["experiment"], r["name"] or "", r["status"], _local(r["start_time"]),
                     fmt_duration(r["duration_s"])] + [_num(r["metrics"].get(k)) for k in shown])
    print_table(headers, rows, right=[5] + list(range(6, 6 + len(shown))))
    if len(metric_keys) > len(shown):
        print(f"({len(metric_keys) - len(shown)} more metrics: see --json or 'modelyard run show')")
    return 0


def _local(iso: str | None) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(iso) if iso else None


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}"


# --------------------------------------------------------------------------- show


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.experiments import tracking

    with open_store(args) as store:
        info = tracking.get_run(args.run_id, store=store)
    if wants_json(args):
        print_json(info.to_json())
        return 0
    pairs: list[tuple[str, Any]] = [
        ("run id", info.id), ("experiment", info.experiment), ("name", info.name or ""), ("status", info.status),
        ("started", info.start_time), ("ended", info.end_time), ("duration", fmt_duration(info.duration_s)),
        ("user", info.user or ""), ("source", " ".join(x for x in (info.source_type, info.source) if x)),
        ("parent run", info.parent_id or ""), ("host", info.host or ""),
    ]
    if info.deleted_at is not None:
        pairs.append(("deleted", info.deleted_at))
    print_kv(pairs)
    for title, values in (("params", info.params), ("metrics", {k: _num(v) for k, v in info.metrics.items()}),
                          ("tags", info.tags)):
        print(f"{title}:" if values else f"{title}: (none)")
        print_kv(values, indent=2)
    print("artifacts:" if info.artifacts else "artifacts: (none)")
    if info.artifacts:
        from modelyard.cli._common import fmt_bytes

        for a in info.artifacts:
            print(f"  {a.path}  {fmt_bytes(a.size)}  {a.kind or ''}  {a.sha256[:12]}".rstrip())
    if info.error:
        print("error:")
        for line in info.error.rstrip("\n").splitlines():
            print(f"  {line}")
    return 0


# --------------------------------------------------------------------------- trash


def _delete(args: argparse.Namespace) -> int:
    from modelyard.core.experiments import tracking

    with open_store(args) as store:
        info = tracking.get_run(args.run_id, store=store)
        moved = tracking.delete_run(info.id, store=store)
    if wants_json(args):
        print_json({"run_id": info.id, "deleted": True, "runs": moved})
        return 0
    extra = f" with {moved - 1} nested run(s)" if moved > 1 else ""
    if moved == 0:
        print(f"Run {info.id[:12]} was already in the trash.")
    else:
        print(f"Moved run {info.id[:12]}{extra} to the trash. 'modelyard run restore {info.id[:12]}' brings it back.")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from modelyard.core.experiments import tracking

    with open_store(args) as store:
        info = tracking.get_run(args.run_id, store=store)
        restored = tracking.restore_run(info.id, store=store)
    if wants_json(args):
        print_json({"run_id": info.id, "deleted": False, "runs": restored})
        return 0
    if restored == 0:
        print(f"Run {info.id[:12]} is not in the trash.")
    else:
        print(f"Restored run {info.id[:12]}" + (f" and {restored - 1} related run(s)." if restored > 1 else "."))
    return 0


def _purge(args: argparse.Namespace) -> int:
    import datetime as dt

    from modelyard.core.experiments import tracking

    # (more than 1,000 years is the same as 1,000 years: nothing is that old, and the date stays valid)
    older = dt.timedelta(days=min(args.older_than, 365_000)) if args.older_than is not None else None
    with open_store(args) as store:
        result = tracking.purge_deleted(store, older_than=older)
    if wants_json(args):
        print_json(result)
        return 0
    from modelyard.cli._common import fmt_bytes

    print(f"Purged {result['runs']} run(s) and {result['artifacts']} artifact file(s) "
          f"({fmt_bytes(result['bytes'])}).")
    if result["kept"]:
        print(f"Kept {len(result['kept'])} run(s) in the trash that registered model versions come from.")
    return 0
