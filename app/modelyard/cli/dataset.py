"""``modelyard dataset import | sample | list | show | versions | profile | split | delete``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelyard.cli._common import (
    UsageError,
    add_command,
    add_noun,
    eprint,
    fmt_bytes,
    fmt_percent,
    is_verbose,
    number,
    open_store,
    outcome_json,
    print_json,
    print_kv,
    print_table,
    raise_for_outcome,
    run_foreground,
    seed_int,
    wants_json,
)

# Mirrors modelyard.core.datasets (not imported here: it pulls in pyarrow and SQLAlchemy at start-up).
SAMPLE_NAMES = ("iris", "wine", "breast_cancer", "diabetes")
SPLIT_METHODS = ("random", "stratified", "time")
# Mirrors modelyard.core.datasets.dates.DATE_FORMATS (for the help text).
DATE_FORMATS = ("YYYY-MM-DD", "YYYY/MM/DD", "DD.MM.YYYY", "DD/MM/YYYY", "MM/DD/YYYY", "DD-MM-YYYY")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "dataset", common, help="import, inspect, split and delete datasets",
                     description="Datasets: files imported as immutable, versioned snapshots (NAME@v1, "
                                 "NAME@v2, ...) with their schema and profile. NAME alone means the latest "
                                 "version.")
    p = add_command(verbs, "import", common, _import, help="import a CSV, TSV, Parquet, Excel or JSON file",
                    epilog="examples:\n  modelyard dataset import churn.csv --target churned\n"
                           "  modelyard dataset import export.txt --delimiter ';' --encoding cp1252\n"
                           "  modelyard dataset import book.xlsx --sheet 'Q3 sales' --name sales\n"
                           "  modelyard dataset import visits.csv --date-format 'visit date=DD/MM/YYYY'\n\n"
                           "date formats: " + ", ".join(DATE_FORMATS) + "; 'text' keeps a column as text.\n"
                           "Text columns whose values all fit one of them are read as dates (slash dates with\n"
                           "the year last: day-first when a day is over 12, else month-first); a column with a\n"
                           "value that does not fit its format is kept as text, with a warning naming the row.")
    p.add_argument("file", metavar="FILE", help="the file to import")
    p.add_argument("--name", help="the dataset's name (default: the file's name without its extension)")
    p.add_argument("--target", metavar="COL", help="the column to predict")
    p.add_argument("--delimiter", metavar="CHAR", help="CSV field separator (default: detected; 'tab' for a tab)")
    p.add_argument("--quote", metavar="CHAR", dest="quotechar", help="CSV quote character (default: detected)")
    p.add_argument("--encoding", help="text encoding, e.g. utf-8, cp1252, latin-1 (default: detected)")
    p.add_argument("--no-header", action="store_true",
                   help="the first row is data: name the columns column_1, column_2, ...")
    p.add_argument("--sheet", help="the Excel sheet, by name or number (default: the first)")
    p.add_argument("--date-format", action="append", dest="date_formats", metavar="[COLUMN=]FORMAT",
                   help="read COLUMN as dates in FORMAT, e.g. 'day=DD/MM/YYYY', or 'COLUMN=text' to keep it as "
                        "text; FORMAT alone applies to every date column (repeatable; default: detected)")

    p = add_command(verbs, "sample", common, _sample, help="import one of scikit-learn's bundled datasets",
                    epilog="example:\n  modelyard dataset sample wine")
    p.add_argument("sample", nargs="?", default="iris", choices=SAMPLE_NAMES, metavar="NAME",
                   help=f"one of {', '.join(SAMPLE_NAMES)} (default: iris)")
    p.add_argument("--name", help="the dataset's name (default: the sample's name)")

    add_command(verbs, "list", common, _list, help="list the datasets and their latest versions",
                epilog="example:\n  modelyard dataset list --json")

    p = add_command(verbs, "show", common, _show, help="show a version: source, schema, warnings and splits",
                    epilog="examples:\n  modelyard dataset show churn\n  modelyard dataset show churn@v2 --json")
    p.add_argument("ref", metavar="NAME[@vN]", help="a dataset (its latest version) or one version")

    p = add_command(verbs, "versions", common, _versions, help="list a dataset's versions",
                    epilog="example:\n  modelyard dataset versions churn")
    p.add_argument("name", metavar="NAME")

    p = add_command(verbs, "profile", common, _profile, help="show a version's per-column statistics",
                    epilog="example:\n  modelyard dataset profile churn@v1 --json")
    p.add_argument("ref", metavar="NAME[@vN]")

    p = add_command(verbs, "split", common, _split, help="define a train/test (and validation) split",
                    epilog="examples:\n  modelyard dataset split churn --test 0.2\n"
                           "  modelyard dataset split churn@v2 --test 0.2 --validation 0.1 --method stratified\n"
                           "  modelyard dataset split sales --test 0.25 --method time --column date")
    p.add_argument("ref", metavar="NAME[@vN]")
    p.add_argument("--test", type=number, required=True, metavar="SHARE", help="share of rows for testing, e.g. 0.2")
    p.add_argument("--validation", type=number, default=0.0, metavar="SHARE",
                   help="share of rows for validation (default: 0, none)")
    p.add_argument("--method", choices=SPLIT_METHODS, default="random", help="how rows are chosen (default: random)")
    p.add_argument("--column", metavar="COL",
                   help="stratify on COL (default: the target), or order by COL for --method time")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")

    p = add_command(verbs, "delete", common, _delete, help="delete a dataset (refused while models use it)",
                    epilog="example:\n  modelyard dataset delete old-churn")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true",
                   help="delete even though model versions or runs were trained on it (their data is kept)")


# --------------------------------------------------------------------------- formatting


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_warnings(warnings: list[Any]) -> None:
    for w in warnings:
        eprint(f"warning: {w['message'] if isinstance(w, dict) else w}")


def _import_result(result: dict[str, Any], job_id: int, what: str) -> None:
    ref = result["ref"]
    target = f", target '{result['target']}' ({result['task']})" if result.get("target") else ""
    if result.get("created"):
        parent = f", after v{result['parent_version']}" if result.get("parent_version") else ""
        print(f"Imported {what} as {ref}: {result['n_rows']:,} rows x {result['n_cols']} columns{target}{parent}. "
              f"(job {job_id})")
    else:
        print(f"{ref} already holds exactly this data: nothing new was stored. (job {job_id})")
    _print_warnings(result.get("warnings") or [])


# --------------------------------------------------------------------------- commands


def _import(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import dates, service

    date_formats = dict(dates.parse_option(v) for v in args.date_formats or []) or None
    opts = service.ImportOptions(delimiter=args.delimiter, quotechar=args.quotechar, encoding=args.encoding,
                                 header=False if args.no_header else None, sheet=args.sheet, name=args.name,
                                 target=args.target, date_formats=date_formats)
    with open_store(args) as store:
        outcome = run_foreground(store, service.import_spec(args.file, opts), wants_json(args),
                                 verbose=is_verbose(args))
    raise_for_outcome(outcome)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    _import_result(outcome.result or {}, outcome.job_id, Path(args.file).name)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        outcome = run_foreground(store, service.sample_spec(args.sample, args.name), wants_json(args),
                                 verbose=is_verbose(args))
    raise_for_outcome(outcome)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    _import_result(outcome.result or {}, outcome.job_id, f"the {args.sample} sample")
    return 0


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        datasets = service.list_datasets(store)
    if wants_json(args):
        print_json([d.to_json() for d in datasets])
        return 0
    if not datasets:
        print("No datasets yet. Import one with 'modelyard dataset import FILE', or try "
              "'modelyard dataset sample'.")
        return 0
    print_table(["NAME", "LATEST", "VERSIONS", "ROWS", "COLS", "TARGET", "TASK", "UPDATED"],
                [[d.name, f"v{d.latest_version}" if d.latest_version else "", d.n_versions, _num(d.n_rows),
                  d.n_cols, d.target, d.task, d.updated_at] for d in datasets],
                right=(2, 3, 4))
    return 0


def _type_label(sem_type: str, profile: dict[str, Any]) -> str:
    """The semantic type, with the format of dates that were read from text: "datetime (DD/MM/YYYY)"."""
    fmt = (profile.get("dates") or {}).get("format")
    return f"{sem_type} ({fmt})" if fmt else sem_type


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        v = service.get_version(store, args.ref)
        split_list = service.list_splits(store, v.id)
    if wants_json(args):
        data = v.to_json(profile=False)
        data["warnings"] = v.warnings
        data["splits"] = [sp.to_json() for sp in split_list]
        print_json(data)
        return 0
    source = v.source_path or ""
    if v.source_size is not None:
        source += f" ({fmt_bytes(v.source_size)}"
        source += f", modified {v.source_mtime.astimezone().strftime('%Y-%m-%d %H:%M')})" if v.source_mtime else ")"
    print_kv([
        ("dataset", v.ref + ("  (deleted)" if v.dataset_deleted else "")),
        ("rows", _num(v.n_rows)), ("columns", v.n_cols),
        ("target", f"{v.target} ({v.task})" if v.target else "(none)"),
        ("parent", f"v{v.parent_version}" if v.parent_version else ""),
        ("source", source), ("format", v.source_format or ""),
        ("content", v.content_hash), ("snapshot", v.snapshot_sha256 or ""),
        ("created", v.created_at), ("created by", v.created_by or ""), ("note", v.note or ""),
    ])
    profile_cols = {c["name"]: c for c in (v.profile or {}).get("columns", [])}
    print()
    print_table(["COLUMN", "TYPE", "ROLE", "DTYPE", "MISSING", "DISTINCT"],
                [[c["name"], _type_label(c["type"], profile_cols.get(c["name"], {})), c["role"], c["dtype"],
                  fmt_percent(profile_cols.get(c["name"], {}).get("missing_share")),
                  _num(profile_cols.get(c["name"], {}).get("distinct"))] for c in v.columns],
                right=(4, 5))
    if split_list:
        print()
        print_table(["SPLIT", "NAME", "METHOD", "SEED", "TRAIN", "VALIDATION", "TEST"],
                    [[sp.id, sp.name, sp.method, sp.seed, _num(sp.counts.get("train")),
                      _num(sp.counts.get("validation")), _num(sp.counts.get("test"))] for sp in split_list],
                    right=(0, 3, 4, 5, 6))
    if v.warnings:
        print()
        for w in v.warnings:
            print(f"warning: {w['message']}")
    return 0


def _versions(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        versions = service.list_versions(store, args.name)
    if wants_json(args):
        print_json([v.to_json(profile=False) for v in versions])
        return 0
    print_table(["VERSION", "ROWS", "COLS", "CONTENT", "PARENT", "TARGET", "SOURCE", "CREATED", "BY", "NOTE"],
                [[f"v{v.version}", _num(v.n_rows), v.n_cols, v.content_hash[:12],
                  f"v{v.parent_version}" if v.parent_version else "", v.target,
                  Path(v.source_path).name if v.source_path and v.source_format != "sklearn" else v.source_path,
                  v.created_at, v.created_by, v.note] for v in versions],
                right=(1, 2))
    return 0


def _profile(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        v = service.get_version(store, args.ref)
    profile = v.profile or {}
    if wants_json(args):
        print_json({"ref": v.ref, "dataset_version_id": v.id, **profile})
        return 0
    print_kv([
        ("dataset", v.ref), ("rows", _num(profile.get("rows"))), ("columns", profile.get("n_cols")),
        ("duplicate rows", f"{_num(profile.get('duplicates'))} ({fmt_percent(profile.get('duplicate_share'))})"),
        ("memory", fmt_bytes(profile.get("memory_bytes"))),
    ])
    print()
    rows = []
    for c in profile.get("columns", []):
        if c.get("top") and c.get("kind") in ("string", "boolean"):
            top = c["top"][0]
            summary = f"top {top['value']!r} x{top['count']:,}"
        else:
            summary = ""
        rows.append([c["name"], c.get("type") or c.get("kind"), _num(c.get("missing")), fmt_percent(c.get("missing_share")),
                     _num(c.get("distinct")), _num(c.get("min")), _num(c.get("max")), _num(c.get("mean")),
                     _num(c.get("std")), summary])
    print_table(["COLUMN", "TYPE", "MISSING", "%", "DISTINCT", "MIN", "MAX", "MEAN", "STD", "TOP"], rows,
                right=(2, 3, 4, 5, 6, 7, 8), max_width=30)
    for w in profile.get("warnings", []):
        print(f"warning: {w['message']}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    with open_store(args) as store:
        sp = service.create_split(store, args.ref, test=args.test, validation=args.validation, method=args.method,
                                  column=args.column, seed=args.seed)
    if wants_json(args):
        print_json(sp.to_json())
        return 0
    c = sp.counts
    val = f", validation {c.get('validation', 0):,}" if c.get("validation") else ""
    print(f"Split {sp.ref} '{sp.name}' (id {sp.id}): train {c.get('train', 0):,}{val}, test {c.get('test', 0):,} rows.")
    if sp.spec.get("rows_without_time"):
        eprint(f"warning: {sp.spec['rows_without_time']:,} rows have no time and were put in train.")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from modelyard.core.datasets import service

    if "@" in args.name:
        raise UsageError(f"'{args.name}' names a version; delete removes the whole dataset.",
                         hint="Give the dataset's name without @vN.")
    with open_store(args) as store:
        result = service.delete_dataset(store, args.name, force=args.force)
    if wants_json(args):
        print_json(result)
        return 0
    extra = " (forced: models or runs still refer to it; its data is kept for them)" if result["forced"] else ""
    print(f"Deleted dataset '{result['name']}' ({result['versions']} version(s)){extra}.")
    return 0
