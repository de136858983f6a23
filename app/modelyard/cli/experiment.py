"""``modelyard experiment list``: the experiments runs are grouped in."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli._common import (
    add_command,
    add_noun,
    open_store,
    print_json,
    print_table,
    wants_json,
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "experiment", common, help="list experiments",
                     description="List the experiments that tracked runs are grouped in "
                                 "(created by modelyard.start_run(experiment=...) on first use).")
    add_command(verbs, "list", common, _list, help="list experiments with their run counts",
                epilog="example:\n  modelyard experiment list --json")


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.experiments import tracking

    with open_store(args) as store:
        exps = tracking.list_experiments(store=store)
    if wants_json(args):
        print_json([e.to_json() for e in exps])
        return 0
    if not exps:
        print("No experiments yet. Runs logged with modelyard.start_run() create them.")
        return 0
    print_table(["ID", "NAME", "RUNS", "LAST RUN", "CREATED"],
                [[e.id, e.name, e.runs, e.last_run_at, e.created_at] for e in exps], right=(0, 2))
    return 0
