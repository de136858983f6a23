"""``modelyard train ...``: train a model on a dataset version as a tracked run; and the hook
that adds ``modelyard run reproduce RUN_ID`` to the ``run`` noun (see :func:`register_reproduce`).

``train`` is a command without verbs: ``modelyard train --dataset iris --model random_forest``.
The training runs in a child process (Ctrl+C cancels it at once and the run is recorded
cancelled). Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from modelyard.cli._common import (
    EXIT_GATE,
    HelpFormatter,
    UsageError,
    add_command,
    is_verbose,
    number,
    open_store,
    outcome_json,
    positive_int,
    positive_number,
    print_json,
    print_kv,
    print_table,
    raise_for_outcome,
    run_foreground,
    seed_int,
    wants_json,
)

# Mirrors modelyard.core.experiments.training (not imported here: it pulls in SQLAlchemy at start-up).
TASKS = ("classification", "regression")
SEARCH_METHODS = ("grid", "random", "optuna")
SPLIT_METHODS = ("random", "stratified", "time")

TRAIN_EPILOG = """\
examples:
  modelyard train --dataset iris --model random_forest --param n_estimators=300 --cv 5
  modelyard train --dataset churn@v3 --target churned --model hist_gradient_boosting \\
                  --search random --trials 20 --experiment churn --slice region
  modelyard train --dataset churn --model hist_gradient_boosting --cv 5 \\
                  --search optuna --trials 100 --timeout 600      (TPE, pruning on the folds)
  modelyard train --spec train.yaml                 (the same as a file kept in git)
  modelyard train --list-models --task regression
  modelyard train --show-params svm --json

The run's id is printed (and with --json the whole result); 'modelyard run show RUN_ID'
shows what was recorded, 'modelyard run reproduce RUN_ID' retrains it and compares.
A dataset named without @vN is its latest version when the job runs (and when it is
reproduced); NAME@vN pins the version."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "train", parents=[common], help="train a model on a dataset (a tracked run)",
        description="Train a scikit-learn model from the catalogue on a dataset version, with optional "
                    "cross-validation and hyperparameter search, and record it as a run: params, metrics, "
                    "evaluation plots, the fitted pipeline and everything needed to reproduce it.",
        epilog=TRAIN_EPILOG, formatter_class=HelpFormatter)
    p.set_defaults(func=_train)
    what = p.add_argument_group("what to train")
    what.add_argument("--dataset", metavar="NAME[@vN]", help="the dataset (NAME alone: its latest version)")
    what.add_argument("--target", metavar="COL", help="the column to predict (default: the dataset's target)")
    what.add_argument("--task", choices=TASKS, help="classification or regression (default: from the target); "
                                                    "with --list-models, only that task's models")
    what.add_argument("--model", metavar="NAME", help="a model of the catalogue (see --list-models)")
    what.add_argument("--param", metavar="KEY=VALUE", action="append", default=[], dest="params",
                      help="a hyperparameter (repeat for several; see --show-params MODEL)")
    what.add_argument("--preprocess", metavar="COL=STEP", action="append", default=[],
                      help="override a column's preprocessing: numeric, onehot, ordinal, boolean, datetime "
                           "or drop (repeat for several)")
    what.add_argument("--spec", metavar="FILE", help="read the training spec from a YAML or JSON file "
                                                     "(options given here override it)")
    how = p.add_argument_group("how")
    how.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation on the training rows")
    how.add_argument("--search", choices=SEARCH_METHODS,
                     help="hyperparameter search; each trial is a child run (optuna: TPE with pruning, docs/scale.md)")
    how.add_argument("--trials", type=positive_int, metavar="N",
                     help="the search's trial budget (random: default 10; grid: default all; optuna: default 20, "
                          "or none with --timeout)")
    how.add_argument("--timeout", type=positive_number, metavar="S",
                     help="--search optuna: start no trial after S seconds (with --trials: whichever comes first)")
    how.add_argument("--no-pruning", action="store_false", dest="pruning", default=None,
                     help="--search optuna: let every trial run all its cross-validation folds")
    how.add_argument("--search-metric", metavar="METRIC", dest="search_metric",
                     help="what the search optimises (default: accuracy, or rmse for regression)")
    how.add_argument("--cluster", metavar="WHERE",
                     help="where a search's trials and the cross-validation folds run: serial, local, local:N, "
                          "auto, or a Dask scheduler's address (tcp://host:8786); default: $MODELYARD_CLUSTER, "
                          "the store's preference, else auto (docs/scale.md)")
    how.add_argument("--split", type=positive_int, metavar="ID", dest="split_id",
                     help="use a stored split (default: make one with --test/--validation/--split-method)")
    how.add_argument("--test", type=number, metavar="SHARE", help="test share of a new split (default 0.2)")
    how.add_argument("--validation", type=number, metavar="SHARE", help="validation share of a new split")
    how.add_argument("--split-method", choices=SPLIT_METHODS, dest="split_method",
                     help="how a new split is made (default: stratified for classification, else random)")
    how.add_argument("--split-column", metavar="COL", dest="split_column",
                     help="the column a new split is ordered by (--split-method time; default: the only date "
                          "column) or stratified on (default: the target)")
    how.add_argument("--seed", type=seed_int, metavar="N", help="the seed of the model, split and search (default 0)")
    how.add_argument("--slice", metavar="COL", action="append", default=[], dest="slices",
                     help="report metrics per value of this column, e.g. region or sex (repeat for several)")
    rec = p.add_argument_group("recording")
    rec.add_argument("--experiment", metavar="NAME", help="the experiment (default: the dataset's name)")
    rec.add_argument("--name", metavar="NAME", dest="run_name", help="the run's name (default: the model)")
    rec.add_argument("--tag", metavar="KEY=VALUE", action="append", default=[], dest="tags",
                     help="a tag of the run (repeat for several)")
    cat = p.add_argument_group("the catalogue")
    cat.add_argument("--list-models", action="store_true", dest="list_models", help="list the models and exit")
    cat.add_argument("--show-params", metavar="MODEL", dest="show_params",
                     help="show a model's hyperparameters (types, ranges, defaults) and exit")


def register_reproduce(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``reproduce`` to the ``run`` noun: call it from ``modelyard.cli.run.register`` with the
    noun's verbs (argparse refuses a second registration of the noun ``run`` from here)."""
    p = add_command(verbs, "reproduce", common, _reproduce,
                    help="retrain a run from its recorded spec and data, and compare metric by metric",
                    epilog="Exit code 3 when a metric differs; the report says which recorded fact differs "
                           "(data hash, dataset version, split, package versions...).\n\n"
                           "examples:\n  modelyard run reproduce 3fa9c1d2\n"
                           "  modelyard run reproduce 3fa9c1d2 --recorded-data --json")
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters")
    p.add_argument("--recorded-data", action="store_true", dest="recorded_data",
                   help="train on the dataset version the run used, even when its spec names the dataset "
                        "without a version (default: as the spec says, so new data shows as a difference)")


# --------------------------------------------------------------------------- helpers


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must look like KEY=VALUE, not {item!r}.")
        out[key.strip()] = value.strip()
    return out


def _cluster(args: argparse.Namespace, from_file: Any) -> str | None:
    """``--cluster``, else the spec file's ``cluster:`` (checked now: a typo is a usage error)."""
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.experiments.training.engine import parse_cluster

    value, source = (args.cluster, "--cluster") if args.cluster else (from_file, f"{args.spec}: cluster")
    if value in (None, ""):
        return None
    try:
        return parse_cluster(str(value), source).text
    except ModelyardError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None


def _build_spec(args: argparse.Namespace) -> Any:
    """The spec from the file and the options; the file's ``cluster:`` (where the fits run, not part
    of the spec) is kept in ``args.cluster_choice``."""
    from modelyard.core.experiments.training.catalogue import get_model
    from modelyard.core.experiments.training.spec import TrainSpec, read_spec_file

    data: dict[str, Any] = read_spec_file(args.spec) if args.spec else {}
    args.cluster_choice = _cluster(args, data.pop("cluster", None))
    if args.dataset:
        data["dataset"] = args.dataset
    if args.target:
        data["target"] = args.target
    if args.task:
        data["task"] = args.task
    if args.model:
        data["model"] = args.model
    if args.params:
        data["params"] = {**(data.get("params") or {}), **_pairs(args.params, "--param")}
    if args.preprocess:
        data["preprocessing"] = {**(data.get("preprocessing") or {}), **_pairs(args.preprocess, "--preprocess")}
    if args.cv is not None:
        data["cv"] = args.cv
    optuna_only = {"--timeout": args.timeout, "--no-pruning": args.pruning}
    if args.search or args.trials or args.search_metric or any(v is not None for v in optuna_only.values()):
        given_search = data.get("search") or {}
        search = {"method": given_search} if isinstance(given_search, str) else dict(given_search)
        if args.search:
            search["method"] = args.search
        if not search.get("method"):
            raise UsageError("--trials, --search-metric, --timeout and --no-pruning need --search grid, random or "
                             "optuna (--timeout and --no-pruning: optuna).")
        given = [name for name, v in optuna_only.items() if v is not None]
        if given and search["method"] != "optuna":
            raise UsageError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --search optuna "
                             f"(the search is {search['method']}).")
        if args.trials:
            search["trials"] = args.trials
        if args.timeout is not None:
            search["timeout"] = args.timeout
        if args.pruning is not None:
            search["pruning"] = args.pruning
        if args.search_metric:
            search["metric"] = args.search_metric
        data["search"] = search
    new_split = (args.test, args.validation, args.split_method, args.split_column)
    if args.split_id is not None:
        if any(v is not None for v in new_split):
            raise UsageError("--split ID uses a stored split; do not combine it with --test, --validation, "
                             "--split-method or --split-column.")
        data["split"] = {"id": args.split_id}
    elif any(v is not None for v in new_split):
        split = dict(data.get("split") or {})
        split.pop("id", None)
        for key, value in (("test", args.test), ("validation", args.validation), ("method", args.split_method),
                           ("column", args.split_column)):
            if value is not None:
                split[key] = value
        data["split"] = split
    if args.seed is not None:
        data["seed"] = args.seed
    if args.slices:
        data["slice_columns"] = list(dict.fromkeys([*(data.get("slice_columns") or []), *args.slices]))
    if args.experiment:
        data["experiment"] = args.experiment
    if args.run_name:
        data["run_name"] = args.run_name
    if args.tags:
        data["tags"] = {**(data.get("tags") or {}), **_pairs(args.tags, "--tag")}
    if not data.get("dataset") and not data.get("dataset_version_id"):
        raise UsageError("Which dataset? Give --dataset NAME[@vN] (or a --spec file).")
    if not data.get("model"):
        raise UsageError("Which model? Give --model NAME; 'modelyard train --list-models' lists them.")
    get_model(str(data["model"]), data.get("task"))  # a typo fails here, before any job starts
    data["source"] = "cli"
    data["cwd"] = os.getcwd()
    return TrainSpec.from_json(data)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models(args)
    if args.show_params:
        return _show_params(args)
    spec = _build_spec(args)
    from modelyard.core.experiments.training.spec import train_spec_job

    outcome = run_training_job(args, train_spec_job(spec, cluster=args.cluster_choice))
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    _print_result(outcome.result or {})
    return 0


def _print_result(r: dict[str, Any]) -> None:
    print(f"Trained {r['model']} on {r['dataset']} (target '{r['target']}', {r['task']}): run {r['run_id']} "
          f"in experiment '{r['experiment']}'.")
    print(f"{r['n_train']:,} training rows, {r['n_test']:,} test rows, {r['duration_s']:.1f} s.")
    search = r.get("search")
    if search:
        best = search["best"]
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        pruned = sum(t.get("status") == "pruned" for t in search["trials"])
        print(f"{search['method'].capitalize()} search: best of {len(search['trials'])} trials"
              + (f" ({pruned} pruned)" if pruned else "")
              + f" is trial {best['trial']} ({search['metric']} {_fmt(best['score'])}): {params}.")
    print("test metrics:")
    print_kv({k: _fmt(v) for k, v in (r.get("metrics") or {}).items()}, indent=2)
    if r.get("validation"):
        print("validation metrics:")
        print_kv({k: _fmt(v) for k, v in r["validation"].items()}, indent=2)
    if r.get("cv"):
        print("cross-validation (mean of the folds):")
        print_kv({k: _fmt(v) for k, v in r["cv"].items()}, indent=2)


def _list_models(args: argparse.Namespace) -> int:
    from modelyard.core.experiments.training.catalogue import list_models

    models = list_models(args.task)
    if wants_json(args):
        print_json([e.to_json() for e in models])
        return 0
    print_table(["MODEL", "NAME", "TASKS", "DESCRIPTION"],
                [[e.key, e.name, ", ".join(e.tasks), e.description] for e in models], max_width=90)
    return 0


def _show_params(args: argparse.Namespace) -> int:
    from modelyard.core.experiments.training.catalogue import (
        default_search_space,
        get_model,
        param_form,
    )

    entry = get_model(args.show_params, args.task)
    task = args.task or entry.tasks[0]
    form = param_form(entry.key, task)
    if wants_json(args):
        print_json({"model": entry.key, "name": entry.name, "task": task, "params": [f.to_json() for f in form],
                    "search_space": default_search_space(entry.key, task)})
        return 0
    print(f"{entry.name} ({entry.key}, {task}): {entry.class_path(task).replace(':', '.')}")
    rows = []
    for f in form:
        allowed = f.describe()
        rows.append([f.name, f.kind + (" or None" if f.nullable and f.kind != "none" else ""), repr(f.default),
                     allowed, f.help])
    print_table(["PARAM", "KIND", "DEFAULT", "ALLOWED", "HELP"], rows, max_width=60)
    if len(entry.tasks) > 1 and not args.task:
        print(f"(for {entry.tasks[1]}: --show-params {entry.key} --task {entry.tasks[1]})")
    return 0


# --------------------------------------------------------------------------- run reproduce


def _reproduce(args: argparse.Namespace) -> int:
    from modelyard.core.common.errors import GateFailed
    from modelyard.core.experiments.training.reproduce import reproduce_spec

    spec = reproduce_spec(args.run_id, data="recorded" if args.recorded_data else "spec", source="cli",
                          cwd=os.getcwd())
    with open_store(args) as store:
        outcome = run_foreground(store, spec, wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    r = outcome.result or {}
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0 if r.get("matches") else EXIT_GATE
    print(f"Reproduced run {r['run_id']} as run {r['new_run_id']}.")
    print_table(["METRIC", "RECORDED", "REPRODUCED", "SAME"],
                [[m["key"], _fmt(m["recorded"]), _fmt(m["reproduced"]), "yes" if m["equal"] else "NO"]
                 for m in r.get("metrics", [])], right=[1, 2])
    if r.get("differences"):
        print("recorded facts that differ:")
        print_table(["FACT", "RECORDED", "NOW"], [[d["fact"], _fmt(d["recorded"]), _fmt(d["now"])]
                                                 for d in r["differences"]], max_width=70)
    if not r.get("matches"):
        raise GateFailed(r.get("summary") or "The run was not reproduced.",
                         hint="The facts above that differ explain it; --recorded-data trains on the exact "
                              "dataset version the run used.")
    print(r.get("summary", ""))
    return 0


def run_training_job(args: argparse.Namespace, spec: Any) -> Any:
    """Run a job that trains (in a child process) in the foreground and raise for a failed outcome
    (the runner ends the runs a cancelled or dead child left running)."""
    with open_store(args) as store:
        outcome = run_foreground(store, spec, wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    return outcome
