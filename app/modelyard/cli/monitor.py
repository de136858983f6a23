"""``modelyard monitor check|list|show|config|retrain|report|watch|labels|live``: drift checks of batches against a
model's training data, retraining from a check, HTML reports, watch folders, and the live view of a served
model's prediction log (:mod:`modelyard.cli.monitor_live`)."""

from __future__ import annotations

import argparse
import copy
import os
from typing import Any

from modelyard.cli._common import (
    EXIT_GATE,
    UsageError,
    add_command,
    add_noun,
    fmt_time,
    is_verbose,
    non_negative,
    open_store,
    outcome_json,
    positive_int,
    print_json,
    print_kv,
    print_table,
    raise_for_outcome,
    run_foreground,
    wants_json,
)
from modelyard.core.common.errors import ModelyardError

THRESHOLD_KEYS = ("p_value", "min_effect", "wasserstein", "js", "psi")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "monitor", common, help="check batches for drift against a model's training data",
                     description="Compare a new batch of data with the data a model version was trained on: "
                                 "per-feature tests, schema problems, target and prediction drift, performance "
                                 "when the batch has the target, and a domain classifier. Checks are stored with "
                                 "the settings they were decided with.")
    p = add_command(verbs, "check", common, _check, help="check a batch file or dataset version (exit 3 on drift)",
                    epilog="examples:\n  modelyard monitor check churn@champion march.csv\n"
                           "  modelyard monitor check churn@v3 churn-batches@v2 --json\n"
                           "  modelyard monitor check churn march.parquet --threshold psi=0.25 --test age=psi "
                           "--critical age\n"
                           "  modelyard monitor check churn march.csv --fail-on warning\n\n"
                           "exit codes: 0 ok (or warning), 3 drift (with --fail-on warning also warning), 1 error")
    p.add_argument("ref", metavar="NAME[@vN|@ALIAS]", help="the model version whose training data is the reference")
    p.add_argument("data", metavar="DATA", help="a data file (imported as a version of NAME-batches), or a "
                                                "dataset version (NAME@vN)")
    p.add_argument("--threshold", action="append", default=[], metavar="KEY=VALUE",
                   help=f"a threshold for this check: one of {', '.join(THRESHOLD_KEYS)}, or a column name "
                        "(that column's test threshold); repeat for several")
    p.add_argument("--test", action="append", default=[], metavar="COLUMN=TEST",
                   help="the test of one column: ks, wasserstein, chisquare, js, psi or auto")
    p.add_argument("--critical", action="append", default=[], metavar="COLUMN",
                   help="a column whose drift alone makes the dataset drift (repeat for several)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                   help="any setting for this check, e.g. rule.drift_share=0.3 or multivariate.enabled=false")
    p.add_argument("--dataset", metavar="NAME", help="the dataset to import the batch file into "
                                                     "(default: NAME-batches)")
    p.add_argument("--fail-on", choices=("drift", "warning"), default="drift", dest="fail_on",
                   help="the verdict that exits with 3 (default: drift)")
    p = add_command(verbs, "list", common, _list, help="list a model's checks, newest first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many (default 50)")
    p = add_command(verbs, "show", common, _show, help="show one check: every feature, problem and finding",
                    epilog="example:\n  modelyard monitor show 12 --json")
    p.add_argument("check_id", metavar="CHECK_ID", type=positive_int)
    p = add_command(verbs, "config", common, _config, help="show or change a model's drift settings",
                    epilog="examples:\n  modelyard monitor config churn\n"
                           "  modelyard monitor config churn --set thresholds.psi=0.25 --set features.age.test=psi "
                           "--comment 'age is skewed'\n"
                           "  modelyard monitor config churn --critical age --comment 'age drives pricing'\n"
                           "  modelyard monitor config churn --reset --comment 'back to the defaults'")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                   help="set a setting (dotted key, JSON value), e.g. rule.drift_share=0.3")
    p.add_argument("--unset", action="append", default=[], metavar="KEY", help="go back to the default of a setting")
    p.add_argument("--critical", action="append", default=[], metavar="COLUMN", help="mark a column critical")
    p.add_argument("--not-critical", action="append", default=[], metavar="COLUMN", dest="not_critical",
                   help="unmark a critical column")
    p.add_argument("--reset", action="store_true", help="forget every setting (back to the defaults)")
    p.add_argument("--comment", help="why (required to change the settings; audited)")
    _register_retrain_report_watch(verbs, common)
    from modelyard.cli.monitor_live import register_live

    register_live(verbs, common)


# --------------------------------------------------------------------------- settings helpers


def _set_path(cfg: dict[str, Any], path: list[str], value: Any) -> None:
    node = cfg
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _unset_path(cfg: dict[str, Any], path: list[str]) -> bool:
    node: Any = cfg
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return False
    if isinstance(node, dict) and path[-1] in node:
        del node[path[-1]]
        return True
    return False


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from modelyard.core.monitoring.drift.config import parse_assignment

    cfg: dict[str, Any] = {}
    for text in args.sets:
        path, value = parse_assignment(text)
        _set_path(cfg, path, value)
    for text in args.threshold:
        path, value = parse_assignment(text)
        key = ".".join(path)
        if key in THRESHOLD_KEYS:
            _set_path(cfg, ["thresholds", key], value)
        else:
            _set_path(cfg, ["features", key, "threshold"], value)
    for text in args.test:
        path, value = parse_assignment(text)
        _set_path(cfg, ["features", ".".join(path), "test"], value)
    if args.critical:
        cfg["critical"] = list(dict.fromkeys([*cfg.get("critical", []), *args.critical]))
    return cfg


# --------------------------------------------------------------------------- check


def _check(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring.drift import check as drift_check
    from modelyard.core.monitoring.drift.config import get_config, validate_config
    from modelyard.core.registry import versions as registry

    overrides = validate_config(_overrides(args))
    with open_store(args) as store:
        info = registry.get_version(store, args.ref)
        if args.critical:  # the model's own critical columns stay critical
            overrides["critical"] = list(dict.fromkeys([*get_config(store, info.name)["critical"],
                                                        *overrides["critical"]]))
        if os.path.exists(args.data):
            spec = drift_check.check_spec(info.ref, batch_path=os.path.abspath(args.data), config=overrides,
                                          dataset_name=args.dataset)
        else:
            from modelyard.core.datasets import service

            try:
                dv = service.get_version(store, args.data)
            except ModelyardError as exc:  # neither a file nor a dataset version: say both
                raise UsageError(f"{args.data!r} is neither a file nor a dataset version.",
                                 hint="Give a data file (CSV, Parquet, Excel, JSON) or a dataset version "
                                      "such as churn-batches@v2.") from exc
            spec = drift_check.check_spec(info.ref, batch_dataset_version_id=dv.id, config=overrides)
        outcome = run_foreground(store, spec, wants_json(args), verbose=is_verbose(args))
        raise_for_outcome(outcome)
        result = outcome.result or {}
        full = drift_check.get_check(store, int(result["check_id"]))
    failing = ("drift",) if args.fail_on == "drift" else ("drift", "warning")
    code = EXIT_GATE if full["verdict"] in failing else 0
    if wants_json(args):
        print_json({**outcome_json(outcome), "check": full})
        return code
    _print_check(full)
    return code


# --------------------------------------------------------------------------- printing


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}g}"
    return str(value)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _print_check(c: dict[str, Any], *, all_features: bool = True) -> None:
    batch = c.get("batch") or {}
    ref = c.get("reference") or {}
    print(f"Check {c['id']} of {c['ref']}: {c['verdict'].upper()}")
    drifted = c.get("drifted") or []
    print_kv([("batch", f"{c.get('batch_ref') or ''} ({batch.get('n_rows', 0):,} rows)"),
              ("reference", (f"{'training rows' if ref.get('source') == 'rows' else 'reference profile'} "
                            f"({(ref.get('n_rows') or 0):,} rows)")),
              ("drifting features", f"{len(drifted)} of {c.get('n_features') or 0} ({_share(c.get('drift_share'))})"
                                    + (f": {', '.join(drifted)}" if drifted else "")),
              ("checked", fmt_time_text(c.get("created_at")))])
    if c.get("reasons"):
        print("findings:")
        for reason in c["reasons"]:
            print(f"  {reason}")
    rows = []
    for f in c.get("features") or []:
        if not all_features and not f.get("drift"):
            continue
        p = f.get("p_adjusted") if f.get("p_adjusted") is not None else f.get("p_value")
        rows.append([f["name"], f["kind"], f.get("test") or f.get("status"), _num(f.get("statistic")), _num(p),
                     _num(f.get("effect")), _num(f.get("threshold")), "DRIFT" if f.get("drift") else
                     ("" if f.get("status") == "checked" else f.get("status")),
                     "critical" if f.get("critical") else ""])
    if rows:
        print()
        print_table(["FEATURE", "KIND", "TEST", "STATISTIC", "P-VALUE", "EFFECT", "THRESHOLD", "DRIFT", ""], rows,
                    right=[3, 4, 5, 6])
    if c.get("schema"):
        print("\nschema problems:")
        for p in c["schema"]:
            print(f"  [{p['severity']}] {p['message']}")
    t = c.get("target")
    if t:
        print(f"\ntarget '{t['name']}': {'DRIFT' if t.get('drift') else 'stable'} ({t.get('reason')})")
    pr = c.get("prediction")
    if pr:
        print(f"predictions ({pr.get('output')}s, {pr.get('rows', 0):,} rows): "
              f"{'DRIFT' if pr.get('drift') else 'stable'} ({pr.get('reason')})")
    perf = c.get("performance")
    if perf:
        print(f"performance on {perf.get('rows', 0):,} rows with the target:"
              + (" WORSE" if perf.get("degraded") else ""))
        print_table(["METRIC", "RECORDED", "BATCH", "CHANGE", ""],
                    [[r["metric"], _num(r.get("recorded"), 4), _num(r.get("batch"), 4), _num(r.get("change"), 3),
                      "degraded" if r.get("degraded") else ("decides" if r.get("decides") else "")]
                     for r in perf.get("metrics") or []], right=[1, 2, 3])
    mv = c.get("multivariate")
    if mv:
        print(f"domain classifier: ROC AUC {mv['auc']:.3f} (threshold {mv['threshold']:.3g}, "
              f"{mv['n_reference']:,} reference and {mv['n_batch']:,} batch rows) "
              f"{'DRIFT' if mv.get('drift') else 'indistinguishable'}")
    for what, why in (c.get("skipped") or {}).items():
        print(f"skipped {what}: {why}")


def fmt_time_text(iso: str | None) -> str:
    import datetime as dt

    if not iso:
        return ""
    try:
        return fmt_time(dt.datetime.fromisoformat(iso))
    except ValueError:
        return iso


# --------------------------------------------------------------------------- list, show


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring.drift import check as drift_check

    with open_store(args) as store:
        checks = drift_check.list_checks(store, args.name, limit=args.limit)
    if wants_json(args):
        print_json(checks)
        return 0
    if not checks:
        print(f"No drift checks of {args.name} yet. Run one with 'modelyard monitor check {args.name} FILE'.")
        return 0
    print_table(["ID", "CHECKED", "MODEL", "BATCH", "ROWS", "VERDICT", "DRIFT SHARE", "DRIFTING"],
                [[c["id"], fmt_time_text(c["created_at"]), c["ref"], c.get("batch_ref") or "",
                  f"{c['batch_rows']:,}" if c.get("batch_rows") is not None else "", c["verdict"],
                  _share(c.get("drift_share")), ", ".join(c.get("drifted") or [])] for c in checks], right=[0, 4, 6])
    return 0


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring.drift import check as drift_check

    with open_store(args) as store:
        full = drift_check.get_check(store, args.check_id)
    if wants_json(args):
        print_json(full)
        return 0
    _print_check(full)
    return 0


# --------------------------------------------------------------------------- config


def _config(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring.drift.config import (
        default_config,
        get_config,
        parse_assignment,
        set_config,
        stored_config,
    )

    changing = bool(args.sets or args.unset or args.critical or args.not_critical or args.reset)
    with open_store(args) as store:
        if changing:
            stored = {} if args.reset else copy.deepcopy(stored_config(store, args.name))  # watch_folder is kept
            for text in args.unset:
                path = [p for p in text.strip().split(".") if p]
                if not path or not _unset_path(stored, path):
                    raise UsageError(f"{text!r} is not set for {args.name}, so it cannot be unset.",
                                     hint=f"'modelyard monitor config {args.name}' shows what is set.")
            for text in args.sets:
                path, value = parse_assignment(text)
                _set_path(stored, path, value)
            if args.critical or args.not_critical:
                current = list(stored.get("critical") or [])
                current = [c for c in dict.fromkeys([*current, *args.critical]) if c not in args.not_critical]
                stored["critical"] = current
            effective = set_config(store, args.name, stored, comment=args.comment)
        else:
            effective = get_config(store, args.name)
        stored_now = stored_config(store, args.name)
    if wants_json(args):
        print_json({"model": args.name, "config": effective, "stored": stored_now})
        return 0
    if changing:
        print(f"Drift settings of {args.name} saved.")
    defaults = default_config()
    print_kv(_flatten(effective, defaults))
    return 0


def _flatten(cfg: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        base = defaults.get(key) if isinstance(defaults, dict) else None
        if key == "features" and not prefix and isinstance(value, dict):
            for feat, spec in value.items():
                out.append((f"{name}.{feat}", ", ".join(f"{k}={v}" for k, v in spec.items())))
            if not value:
                out.append((name, "(none)"))
        elif isinstance(value, dict) and value:
            out.extend(_flatten(value, base if isinstance(base, dict) else {}, name + "."))
        else:
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out.append((name, text + ("" if value == base else "   (set)")))
    return out


# --------------------------------------------------------------------------- retrain, report, watch


def _register_retrain_report_watch(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(verbs, "retrain", common, _retrain,
                    help="retrain a checked model on the check's data and register it as challenger",
                    epilog="examples:\n  modelyard monitor retrain 12\n"
                           "  modelyard monitor retrain 12 --data reference+batch --comment 'March drift'\n\n"
                           "The recorded training spec of the checked version is trained on the batch (or the\n"
                           "reference followed by the batch); the new model and the champion are evaluated on the\n"
                           "same most recent batch rows, and the new version becomes 'challenger' with the\n"
                           "comparison in the audit log. The champion never moves: promote it yourself with\n"
                           "'modelyard model alias NAME@vN champion --comment ...'.")
    p.add_argument("check_id", metavar="CHECK_ID", type=positive_int)
    p.add_argument("--data", choices=("batch", "reference+batch"), default="batch",
                   help="train on the batch alone (default) or on the reference rows followed by the batch")
    p.add_argument("--comment", help="a note added to the audit comment")
    p = add_command(verbs, "report", common, _report, help="export a check as a self-contained HTML report",
                    epilog="examples:\n  modelyard monitor report 12\n  modelyard monitor report 12 -o march.html\n\n"
                           "The file embeds its charts and styles: it opens in any browser, without Modelyard.")
    p.add_argument("check_id", metavar="CHECK_ID", type=positive_int)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="the file (or folder) to write (default: drift-check-CHECK_ID.html here)")
    p = add_command(verbs, "watch", common, _watch, help="set, show or process a model's watch folder",
                    epilog="examples:\n"
                           "  modelyard monitor watch churn --folder ~/drops/churn --comment 'nightly export'\n"
                           "  modelyard monitor watch churn              (the folder and its files not checked yet)\n"
                           "  modelyard monitor watch churn --once       (check them now; for cron or CI)\n"
                           "  modelyard monitor watch --once             (every watched model)\n"
                           "  modelyard monitor watch                    (the watched models)\n"
                           "  modelyard monitor watch churn --clear --comment 'no more drops'\n\n"
                           "While the app runs, files dropped into a watched folder are checked automatically.\n"
                           "exit codes with --once: 0 no drift, 3 a check found drift, 1 a check failed")
    p.add_argument("name", metavar="NAME", nargs="?", help="the registered model")
    p.add_argument("--folder", metavar="DIR", help="watch this folder (it must exist)")
    p.add_argument("--clear", action="store_true", help="stop watching")
    p.add_argument("--comment", help="a note for the audit log")
    p.add_argument("--once", action="store_true", help="check the files not checked yet now, then exit")
    p.add_argument("--settle", type=non_negative, default=None, metavar="SECONDS",
                   help="files changed less than this long ago are still being written (default 2)")


def _retrain(args: argparse.Namespace) -> int:
    from modelyard.cli.train import run_training_job
    from modelyard.core.monitoring import retraining

    spec = retraining.retrain_spec(args.check_id, data=args.data, comment=args.comment, source="cli")
    with open_store(args) as store:  # say at once, in one line, why a check cannot be retrained from
        blocker = retraining.retrain_blocker(store, args.check_id)
    if blocker:
        raise ModelyardError(blocker)
    outcome = run_training_job(args, spec)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    r = outcome.result or {}
    print(f"Retrained {r.get('checked_version')} on {r.get('dataset')}: {r.get('ref')} is the challenger "
          f"(run {str(r.get('run_id'))[:12]}, {r.get('n_train', 0):,} training rows).")
    print(r.get("comparison", ""))
    print(f"The champion did not move. To promote: modelyard model alias {r.get('ref')} champion --comment '...'")
    return 0


def _report(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring import reports

    target = args.output or f"drift-check-{args.check_id}.html"
    with open_store(args) as store:
        path = reports.export_check_html(store, args.check_id, os.path.abspath(os.path.expanduser(target)))
    if wants_json(args):
        print_json({"check_id": args.check_id, "path": str(path)})
    else:
        print(f"Wrote the report of check {args.check_id} to {path}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from modelyard.core.monitoring import watch

    if args.folder and args.clear:
        raise UsageError("--folder and --clear cannot be used together.")
    if (args.folder or args.clear) and not args.name:
        raise UsageError("Name the model whose watch folder to set: modelyard monitor watch NAME --folder DIR.")
    settle = watch.SETTLE_S if args.settle is None else max(0.0, args.settle)
    with open_store(args) as store:
        if args.folder or args.clear:
            folder = watch.set_watch_folder(store, args.name, None if args.clear else args.folder,
                                            comment=args.comment)
            if not args.once:
                if wants_json(args):
                    print_json({"model": args.name, "folder": str(folder) if folder else None})
                else:
                    print(f"{args.name} watches {folder}." if folder else f"{args.name} watches no folder.")
                return 0
        if args.once:
            return _watch_once(store, args, settle)
        if args.name is None:
            rows = [{"model": scan.model, "folder": str(scan.folder),
                     "pending": scan.error.message if scan.error is not None else len(scan.pending)}
                    for scan in watch.scan_folders(store, settle_s=settle)]
            if wants_json(args):
                print_json(rows)
            elif not rows:
                print("No model watches a folder. Set one with 'modelyard monitor watch NAME --folder DIR'.")
            else:
                print_table(["MODEL", "FOLDER", "NOT CHECKED YET"], [[r["model"], r["folder"], r["pending"]]
                                                                     for r in rows], max_width=80)
            return 0
        scan = next(watch.scan_folders(store, args.name, settle_s=settle))
        if scan.error is not None:
            raise scan.error
        folder, files = scan.folder, [str(p) for p in scan.pending]
    if wants_json(args):
        print_json({"model": args.name, "folder": str(folder) if folder else None, "pending": files})
    elif folder is None:
        print(f"{args.name} watches no folder. Set one with 'modelyard monitor watch {args.name} --folder DIR'.")
    else:
        print(f"{args.name} watches {folder}: {len(files)} file(s) not checked yet.")
        for f in files:
            print(f"  {f}")
    return 0


def _watch_once(store: Any, args: argparse.Namespace, settle: float) -> int:
    import sys

    from modelyard.cli._common import TextProgress
    from modelyard.core.monitoring import watch

    names = [args.name] if args.name else None
    reporter = TextProgress(sys.stderr, verbose=is_verbose(args), quiet=wants_json(args))
    rows = watch.process_pending(store, names, settle_s=settle, reporter=reporter)
    reporter.finish()
    failed = [r for r in rows if r["status"] != "succeeded"]
    drifted = [r for r in rows if r["verdict"] == "drift"]
    code = 1 if failed else (EXIT_GATE if drifted else 0)
    if wants_json(args):
        print_json({"checked": rows, "exit_code": code})
        return code
    if not rows:
        print("No new files to check.")
        return 0
    print_table(["MODEL", "FILE", "CHECK", "VERDICT", "DRIFTING"],
                [[r["model"], os.path.basename(r["path"]), r["check_id"] or f"job {r['job_id']}",
                  r["verdict"] or r["status"].upper(), ", ".join(r["drifted"])] for r in rows], max_width=60)
    for r in failed:
        first = (r["error"] or "").strip().splitlines()[:1]
        print(f"{os.path.basename(r['path'])}: {r['status']}" + (f": {first[0]}" if first else ""))
    return code
