"""``modelyard monitor labels|live``: labels joined later to a served model's prediction log, and
the log read in windows (traffic, latency, errors, input drift, realised performance, champion vs
challenger) with the "N of the last M windows" drift alert."""

from __future__ import annotations

import argparse
import re
from typing import Any

from modelyard.cli._common import (
    EXIT_GATE,
    UsageError,
    add_command,
    fmt_percent,
    open_store,
    positive_int,
    print_json,
    print_table,
    wants_json,
)


def register_live(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(verbs, "labels", common, _labels, help="join labels that arrived later to a model's prediction log",
                    epilog="examples:\n  modelyard monitor labels outcomes.csv --key id\n"
                           "  modelyard monitor labels outcomes.parquet --key order_id --model churn --label churned\n\n"
                           "Each row of FILE names a logged prediction by its key (the key the server logged, or the\n"
                           "input column of that name) and gives its true outcome. The labels are stored beside the\n"
                           "log; 'modelyard monitor live NAME' then shows realised performance per window.")
    p.add_argument("file", metavar="FILE", help="a CSV, TSV, Parquet or JSON Lines file with a key and a label column")
    p.add_argument("--key", required=True, metavar="COLUMN", help="the column that names each prediction")
    p.add_argument("--model", metavar="NAME", help="the registered model (needed when several have a log)")
    p.add_argument("--label", metavar="COLUMN",
                   help="the column with the true outcome (default: the model's target, else 'label')")
    p = add_command(verbs, "live", common, _live, help="a served model's prediction log in windows (exit 3 on an alert)",
                    epilog="examples:\n  modelyard monitor live churn\n  modelyard monitor live churn --window day --json\n"
                           "  modelyard monitor live churn --window 10000 --alert 3/5 --notify\n\n"
                           "Per window: requests/s, latency p50/p99, error rate, versions, input drift against the\n"
                           "training reference, and accuracy (or mean absolute error) where labels were joined.\n"
                           "exit codes: 0 no alert, 3 drift in N of the last M windows, 1 error")
    p.add_argument("name", metavar="NAME", help="the registered model that was served with a prediction log")
    p.add_argument("--window", default="hour", metavar="hour|day|N",
                   help="an hour (default), a day, or N logged rows per window")
    p.add_argument("--alert", default="2/3", metavar="N/M",
                   help="alert when N of the last M windows drifted (default 2/3)")
    p.add_argument("--last", type=positive_int, default=24, metavar="K", help="show the newest K windows (default 24)")
    p.add_argument("--notify", action="store_true",
                   help="when the rule holds, record the alert once per window, notify, and fire 'on: live_drift' "
                        "pipeline triggers")


def parse_alert(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:/|of)\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--alert must be N/M with 1 <= N <= M, such as 2/3, not {text!r}.")
    return int(match.group(1)), int(match.group(2))


def _labels(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring import live

    with open_store(args) as store:
        out = live.add_labels(store, args.file, key=args.key, model=args.model, label=args.label)
    if wants_json(args):
        print_json(out)
        return 0
    skipped = f" ({out['skipped']:,} rows without a key or label left out)" if out["skipped"] else ""
    print(f"Stored {out['labels']:,} labels of {out['model']} from {out['file']} by {out['key']} "
          f"(label column {out['label']}){skipped}; they match {out['matched_rows']:,} logged predictions.")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _live(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring import live

    alert = parse_alert(args.alert)
    with open_store(args) as store:
        report = live.live_report(store, args.name, window=args.window, alert=alert, last=args.last)
        fired = live.check_alerts(store, args.name, report=report) if args.notify else None
    if wants_json(args):
        print_json({**report, "alert_recorded": fired})
        return EXIT_GATE if report["alert"]["alerting"] else 0
    if not report["files"]:
        print(f"{args.name} has no prediction log yet: serve it with --log to record its requests.")
        return 0
    print(f"{report['model']}: {report['rows']:,} logged rows in {report['windows_total']} windows of "
          f"{report['window_label']} (newest {len(report['windows'])} shown).")
    regression = report.get("task") == "regression"
    rows = []
    for w in report["windows"]:
        d = w.get("drift") or {}
        shown = (w.get("performance") or {}).get("mae" if regression else "accuracy")
        rows.append([w["start"], f"{w['rows']:,}", "-" if w["requests_per_s"] is None else f"{w['requests_per_s']:.2f}",
                     _ms(w["latency_ms"]["p50"]), _ms(w["latency_ms"]["p99"]), fmt_percent(w["error_rate"]),
                     d.get("verdict") or "-", ", ".join(d.get("drifted") or [])[:40] or "-",
                     "-" if shown is None else f"{shown:.4g}" if regression else fmt_percent(shown)])
    print_table(["window start", "rows", "req/s", "p50 ms", "p99 ms", "errors", "drift", "drifted",
                 "MAE" if regression else "accuracy"], rows)
    if len(report["routes"]) > 1:
        print()
        print_table(["route", "rows", "p50 ms", "p99 ms", "errors", "labelled", "accuracy", "MAE"],
                    [[k, f"{r['rows']:,}", _ms(r["latency_ms"]["p50"]), _ms(r["latency_ms"]["p99"]),
                      fmt_percent(r["error_rate"]), f"{r['labelled']:,}", fmt_percent(r["accuracy"]),
                      "-" if r["mae"] is None else f"{r['mae']:.4g}"] for k, r in report["routes"].items()])
        if report["agreement"]:
            print(f"Champion and shadow agree on {fmt_percent(report['agreement']['share'])} of "
                  f"{report['agreement']['pairs']:,} requests.")
    rule = report["alert"]
    if rule["alerting"]:
        print(f"ALERT: input drift in {rule['drifted_of_last']} of the last {rule['m']} windows "
              f"(rule: {rule['n']} of {rule['m']})." + (" Recorded and notified." if fired else ""))
        return EXIT_GATE
    print(f"No alert: {rule['drifted_of_last']} of the last {rule['m']} windows drifted (rule: {rule['n']} of {rule['m']}).")
    return 0
