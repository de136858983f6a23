"""``modelyard store info | init | verify | gc | compact | review | cluster``."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli import review as review_cli
from modelyard.cli import store_cluster
from modelyard.cli._common import (
    add_command,
    add_noun,
    db_url,
    fmt_bytes,
    is_verbose,
    open_store,
    outcome_json,
    print_json,
    raise_for_outcome,
    run_foreground,
    store_is_default,
    store_location,
    wants_json,
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "store", common, help="create, inspect and maintain the store",
                     description="Create, inspect and maintain the store (a folder with a database "
                                 "and content-addressed artifact files).")
    add_command(verbs, "info", common, _info, help="show where the store is and what it holds",
                epilog="example:\n  modelyard store info --store ~/team-store --json")
    p = add_command(verbs, "init", common, _init, help="create a store (or upgrade an existing one)",
                    epilog="examples:\n  modelyard store init ~/my-store\n"
                           "  modelyard store init --db-url postgresql+psycopg://alice@db.example/modelyard "
                           "--artifacts /mnt/share/modelyard\n(a team store: docs/team.md)")
    p.add_argument("dir", nargs="?", metavar="DIR",
                   help="the folder (default: --store, else $MODELYARD_STORE, else the platform's data folder)")
    p.add_argument("--artifacts", metavar="DIR",
                   help="a team store (with --db-url postgresql+psycopg://...): the folder every member can reach "
                        "(a network share) for the artifacts; recorded in the store, so members open it by its URL")
    add_command(verbs, "verify", common, _verify,
                help="check the database and re-hash every artifact file; report damage (exit 1 if any)",
                epilog="example:\n  modelyard store verify -v")
    p = add_command(verbs, "gc", common, _gc,
                    help="remove artifact files no record uses, and temp files of dead processes",
                    epilog="examples:\n  modelyard store gc --dry-run\n  modelyard store gc --grace 0")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, with sizes; remove nothing")
    p.add_argument("--grace", type=_minutes, default=60.0, metavar="MINUTES",
                   help="leave unreferenced files younger than this alone (default 60): a write in progress "
                        "may be about to record them")
    add_command(verbs, "compact", common, _compact, help="compact the database (SQLite VACUUM)",
                epilog="example:\n  modelyard store compact")
    review_cli.add_store_verbs(verbs, common)  # store review: whether every promotion needs a request
    store_cluster.add_store_verbs(verbs, common)  # store cluster: where the store's searches run


def _minutes(text: str) -> float:
    """argparse ``type=`` for ``--grace``: a number of minutes, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of minutes of 0 or more, not {text}")
    return value


# --------------------------------------------------------------------------- info

_INFO_LABELS = [
    ("location", "location"),
    ("database", "database"),
    ("backend", "backend"),
    ("schema_revision", "schema revision"),
    ("store_id", "store id"),
    ("created_with", "created with"),
    ("modelyard_version", "modelyard version"),
    ("running_jobs", "running jobs"),
]


def _info(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.info()
    if wants_json(args):
        print_json(info)
        return 0
    pairs: list[tuple[str, Any]] = [(label, info.get(key)) for key, label in _INFO_LABELS]
    pairs.append(("artifact bytes", f"{fmt_bytes(info.get('artifact_bytes'))} ({info.get('artifact_bytes')} bytes)"))
    if info.get("free_disk_bytes") is not None:
        pairs.append(("free disk", fmt_bytes(info["free_disk_bytes"])))
    pairs.append(("counts", ""))
    labels = [label for label, _ in pairs] + [f"  {k}" for k in info.get("counts", {})]
    width = max(len(x) for x in labels) + 1
    for label, value in pairs:
        print(f"{(label + ':').ljust(width)} {'' if value is None else value}".rstrip())
    for key, count in info.get("counts", {}).items():
        print(f"{('  ' + key + ':').ljust(width)} {count}")
    return 0


# --------------------------------------------------------------------------- init


def _init(args: argparse.Namespace) -> int:
    from modelyard.core.store import DB_FILENAME, Store

    url = db_url(args)
    on_server = bool(url) and not str(url).startswith("sqlite")
    if args.artifacts is not None or (on_server and not args.dir and store_is_default(args)):
        return _init_team(args, url)
    root = store_location(argparse.Namespace(store=args.dir)) if args.dir else store_location(args)
    existed = (root / DB_FILENAME).is_file() if url is None else None
    with Store.open(root, db_url=url, create=True) as store:
        revision = store.current_revision()
        store_id = store.meta().get("store_id")
        location, display = str(store.root), store.display_location
        database = store.engine.url.render_as_string(hide_password=True)
    created = None if existed is None else not existed
    if wants_json(args):
        print_json({"location": location, "database": database, "created": created,
                    "schema_revision": revision, "store_id": store_id})
        return 0
    if created:
        print(f"Created a new Modelyard store at {display}.")
    elif created is False:
        print(f"{display} is already a Modelyard store (schema revision {revision}); it is ready to use.")
    else:
        print(f"The Modelyard store at {display} is ready (schema revision {revision}).")
    return 0


def _init_team(args: argparse.Namespace, url: str | None) -> int:
    """``store init --db-url URL --artifacts DIR``: a team store (core/store/teamstore.py)."""
    from modelyard.cli._common import UsageError
    from modelyard.core.store.teamstore import init_team_store, url_without_password

    if not url or str(url).startswith("sqlite"):
        raise UsageError("--artifacts is for a team store, whose database is on a PostgreSQL server.",
                         hint="Give --db-url postgresql+psycopg://USER@HOST/DATABASE too; a SQLite store keeps its "
                              "artifacts in its own folder ('modelyard store init DIR').")
    if args.artifacts is None:
        raise UsageError("A team store needs --artifacts DIR: the folder every member can reach for the artifacts.",
                         hint="e.g. modelyard store init --db-url URL --artifacts /mnt/share/modelyard (docs/team.md).")
    if args.dir and store_location(argparse.Namespace(store=args.dir)) != store_location(
            argparse.Namespace(store=args.artifacts)):
        raise UsageError(f"Give the artifacts folder once: DIR ({args.dir}) and --artifacts ({args.artifacts}) differ.",
                         hint="For a team store, use --artifacts DIR alone.")
    store, done = init_team_store(url, args.artifacts)
    with store:
        revision = store.current_revision()
        store_id = store.meta().get("store_id")
    if wants_json(args):
        print_json({"location": str(done.artifacts_dir), "database": done.database, "created": done.created,
                    "schema_revision": revision, "store_id": store_id, "artifacts_dir": str(done.artifacts_dir)})
        return 0
    what = "Created the team store" if done.created else "The team store is ready:"
    print(f"{what} {done.database}, artifacts in {done.artifacts_dir} (schema revision {revision}).")
    print(f"Members open it with: modelyard --db-url {url_without_password(url)} "
          "(each with their own login; add them with 'modelyard team add').")
    return 0


# --------------------------------------------------------------------------- verify / compact


def _verify(args: argparse.Namespace) -> int:
    from modelyard.core.common.errors import StoreDamagedError
    from modelyard.core.jobs import housekeeping as maintenance

    with open_store(args, sweep=False) as store:  # reading jobs and runs to sweep them may hit the damage
        try:
            outcome = run_foreground(store, maintenance.verify_spec(), wants_json(args), verbose=is_verbose(args))
        except StoreDamagedError:
            # too damaged to record the job: check the database here and say what is wrong
            problems = store.check_integrity()
            if not problems:
                raise
            raise maintenance.database_damaged(store, problems) from None
    raise_for_outcome(outcome)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    r = outcome.result or {}
    extra = (f"; {r['unreferenced']} unreferenced file(s) can be removed with 'modelyard store gc'"
             if r.get("unreferenced") else "")
    database = "The database and all" if r.get("database") == "ok" else "All"
    print(f"{database} {r.get('checked', 0)} artifacts are intact{extra}. (job {outcome.job_id})")
    return 0


def _gc(args: argparse.Namespace) -> int:
    from modelyard.cli._common import print_table
    from modelyard.core.jobs import housekeeping as maintenance

    spec = maintenance.gc_spec(dry_run=args.dry_run, grace_seconds=args.grace * 60)
    with open_store(args) as store:
        outcome = run_foreground(store, spec, wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    r = outcome.result or {}
    files = r.get("files") or []
    if args.dry_run and files:
        print_table(["SIZE", "KIND", "PATH"], [(fmt_bytes(f["bytes"]), f["kind"], f["path"]) for f in files],
                    right=[0], max_width=4096)
    total = f"{r.get('count', 0)} file(s) ({fmt_bytes(r.get('bytes', 0))})"
    if not files:
        print(f"Nothing to remove. (job {outcome.job_id})")
    elif args.dry_run:
        print(f"Would remove {total}; run without --dry-run to remove them. (job {outcome.job_id})")
    else:
        print(f"Removed {total}. (job {outcome.job_id})")
    if r.get("left_young"):
        print(f"Left {r['left_young']} unreferenced file(s) younger than {args.grace:g} minutes alone "
              "(a write may still record them); see --grace.")
    return 0


def _compact(args: argparse.Namespace) -> int:
    from modelyard.core.jobs import housekeeping as maintenance

    with open_store(args) as store:
        outcome = run_foreground(store, maintenance.compact_spec(), wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    r = outcome.result or {}
    before, after = r.get("bytes_before"), r.get("bytes_after")
    if before is not None and after is not None:
        print(f"Compacted the database: {fmt_bytes(before)} -> {fmt_bytes(after)}. (job {outcome.job_id})")
    else:
        print(f"Refreshed the database statistics. (job {outcome.job_id})")
    return 0
