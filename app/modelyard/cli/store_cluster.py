"""``modelyard store cluster [WHERE | --unset]``: show or set where this store's searches run.

The store's preference (``store_meta`` ``training.cluster``) is the third place a training job
looks, after ``--cluster`` and ``$MODELYARD_CLUSTER`` (core/experiments/training/engine.py,
docs/scale.md). Setting it needs the right to manage the store and is audited.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from modelyard.cli._common import (
    UsageError,
    add_command,
    open_store,
    print_json,
    wants_json,
)

CHOICES = "serial, local, local:N, auto, or a Dask scheduler's address such as tcp://host:8786"


def add_store_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    """``modelyard store cluster`` (cli/store.py calls this with its sub-parsers)."""
    p = add_command(verbs, "cluster", common, _cluster,
                    help="show or set where this store's searches and cross-validations run",
                    description="Show or set the store's cluster preference: where a search's trials and a "
                                "cross-validation's folds run when neither --cluster nor $MODELYARD_CLUSTER "
                                "says (docs/scale.md). Setting it needs the right to manage the store; audited.",
                    epilog="examples:\n  modelyard store cluster\n"
                           "  modelyard store cluster tcp://10.0.0.5:8786\n"
                           "  modelyard store cluster local:4\n"
                           "  modelyard store cluster --unset\n"
                           "exit codes: 0 done, 1 refused (your role), 2 a value that is not a cluster")
    p.add_argument("where", nargs="?", metavar="WHERE", help=f"the new preference: {CHOICES}")
    p.add_argument("--unset", action="store_true",
                   help="forget the preference (searches then run where $MODELYARD_CLUSTER says, else auto)")


def _cluster(args: argparse.Namespace) -> int:
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.experiments.training import engine

    if args.unset and args.where is not None:
        raise UsageError(f"Give WHERE ({args.where}) or --unset, not both.",
                         hint="'modelyard store cluster --unset' forgets the preference.")
    new = None
    if args.where is not None:
        try:
            new = engine.parse_cluster(args.where, "WHERE").text
        except ModelyardError as exc:
            raise UsageError(f"WHERE: {args.where!r} is not a cluster.", hint=f"Use {CHOICES}.") from exc
    with open_store(args) as store:
        if new is not None or args.unset:
            engine.set_cluster_preference(store, new)
        preference = engine.get_cluster_preference(store)
        chosen = engine.choose_cluster(store)
    env = os.environ.get(engine.ENV_VAR, "").strip() or None
    if wants_json(args):
        print_json({"preference": preference, "cluster": chosen.text, "source": _source(chosen.source),
                    "environment": env})
        return 0
    now = " now" if (new is not None or args.unset) else ""
    rows = f"{engine.AUTO_MIN_ROWS:,} training rows"
    if preference is None:
        fallback = f"where {engine.ENV_VAR} says" if env else f"on auto (a local cluster from {rows})"
        print(f"This store{now} has no cluster preference: searches run {fallback}.")
    else:
        auto = f" (a local cluster from {rows}, else here)" if preference == "auto" else ""
        print(f"This store's searches{now} run on {preference}{auto}.")
    if env and chosen.source == engine.ENV_VAR and env != preference:
        print(f"In this shell {engine.ENV_VAR}={env} comes first: searches started here run on {chosen.text}.")
    return 0


def _source(source: str) -> str:
    """Where the choice in force comes from, as a key: environment | store | default."""
    from modelyard.core.experiments.training import engine

    if source == engine.ENV_VAR:
        return "environment"
    return "store" if source == engine.STORE_SOURCE else "default"
