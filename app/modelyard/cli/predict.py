"""``modelyard predict NAME@ALIAS DATA [-o OUT]``: batch scoring, recorded as a dataset version;
``modelyard predict --stream NAME@ALIAS [--follow FILE]``: streaming scoring, one line per event.

A command without verbs. DATA is a file (imported first, as its own dataset version) or a
dataset version (NAME@vN, or NAME for its latest). The predictions are stored as a new version
of a dataset (``<model>-predictions`` unless ``--name``), linked to the model version and the
input; ``-o`` also writes them to a CSV or Parquet file. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelyard.cli._common import (
    HelpFormatter,
    UsageError,
    eprint,
    is_verbose,
    non_negative,
    open_store,
    outcome_json,
    positive_int,
    print_json,
    raise_for_outcome,
    run_foreground,
    wants_json,
)

EPILOG = """\
examples:
  modelyard predict churn@champion march.csv -o march-scored.csv
  modelyard predict churn@v3 customers@v7 --name customers-scored --json
  modelyard predict churn@champion april.parquet --strict     (unseen categories are an error)
  tail -f events.jsonl | modelyard predict --stream churn@champion > scored.jsonl
  modelyard predict --stream churn@champion --follow events.jsonl --id-field event_id
  modelyard predict --stream fraud@champion --lookup customer-features --key customer_id

The input is checked against the model's signature first: missing columns, wrong types and
(with --strict) categories never seen in training are errors naming the columns, and nothing
is written; extra columns are ignored by the model and kept in the output. The output holds
the input's columns, then 'prediction' and, for classifiers, 'proba_<class>' per class.

With --stream, each line of standard input (or of the --follow'ed file) is one event, a JSON
object; each gets one JSON line on standard output, in order: {"id": ..., "prediction": ...,
"proba_<class>": ...}, or {"line": N, "id": ..., "error": "...", "field": ...} for a line that
cannot be scored (the stream goes on). The counts are printed on standard error at the end
(Ctrl+C, SIGTERM, the end of the input, or --idle-exit)."""

OUTPUT_SUFFIXES = (".csv", ".parquet")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "predict", parents=[common], help="score a file or dataset version with a model (batch)",
        description="Score a file or a dataset version with a registered model version. The predictions become "
                    "a new dataset version linked to both, and optionally a file.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.set_defaults(func=_predict)
    p.add_argument("ref", metavar="NAME[@ALIAS|@vN]", help="the model version (NAME@champion, NAME@v3, NAME)")
    p.add_argument("data", metavar="DATA", nargs="?",
                   help="a data file (CSV, Parquet, Excel, JSON...) or a dataset NAME[@vN] (not with --stream)")
    p.add_argument("-o", "--output", metavar="OUT", help="also write the predictions to this .csv or .parquet file")
    p.add_argument("--name", metavar="DATASET", help="the dataset the predictions go to (default: <model>-predictions)")
    p.add_argument("--strict", action="store_true", help="refuse categories the model never saw in training")
    st = p.add_argument_group("streaming (--stream)")
    st.add_argument("--stream", action="store_true",
                    help="score JSON lines one event at a time, from standard input or --follow FILE")
    st.add_argument("--follow", metavar="FILE",
                    help="follow FILE as it grows, like tail -F (survives rotation and truncation)")
    st.add_argument("--from-end", action="store_true", help="with --follow: only lines written from now on")
    st.add_argument("--idle-exit", metavar="S", type=non_negative,
                    help="with --follow: stop after S seconds without a new line (default: never)")
    st.add_argument("--id-field", metavar="FIELD", default="id",
                    help="the event field copied to its prediction as 'id' (default: id)")
    st.add_argument("--batch", metavar="N", type=positive_int, default=256,
                    help="score at most N waiting events at once (default: 256)")
    st.add_argument("--lookup", metavar="DATASET[@vN]",
                    help="enrich each event with this dataset's columns by --key (NAME follows its latest version)")
    st.add_argument("--key", "--lookup-key", dest="key", metavar="COL",
                    help="with --lookup: the column that holds the keys (--lookup-key, as serve names it, also works)")
    st.add_argument("--lookup-default", metavar="JSON",
                    help="with --lookup: the row for an unknown key, as a JSON object (default: an error line)")
    st.add_argument("--log", metavar="SHARE", nargs="?", const="100%",
                    help="log each event's input and prediction (or a share, e.g. 10%%) for live monitoring")


def _predict(args: argparse.Namespace) -> int:
    streaming = [o for o, v in (("--follow", args.follow), ("--from-end", args.from_end),
                                ("--idle-exit", args.idle_exit), ("--lookup", args.lookup), ("--key", args.key),
                                ("--lookup-default", args.lookup_default), ("--log", args.log)) if v]
    if args.stream:
        from modelyard.cli.predict_stream import stream

        return stream(args)
    if streaming:
        raise UsageError(f"{streaming[0]} is for streaming.", hint="Add --stream, e.g. modelyard predict --stream "
                                                                   f"{args.ref} {streaming[0]} ...")
    if args.data is None:
        raise UsageError("Name the DATA to score: a file or a dataset NAME@vN.",
                         hint=f"e.g. modelyard predict {args.ref} march.csv, or --stream for JSON lines.")
    out_path = Path(args.output).expanduser() if args.output else None
    if out_path is not None:
        if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise UsageError(f"-o {args.output}: the output must end in .csv or .parquet.",
                             hint="e.g. -o predictions.csv")
        if out_path.is_dir():
            raise UsageError(f"-o {args.output} is a folder; give a file name.")
    from modelyard.core.serving import scoring

    if out_path is not None:
        from modelyard.core.common.outputs import check_output_folder

        check_output_folder(out_path)  # before scoring: a folder that cannot be written records nothing

    source = Path(args.data).expanduser()
    with open_store(args) as store:
        if source.is_file():
            spec = scoring.score_spec(args.ref, path=source, output_name=args.name, strict=args.strict)
        else:
            _check_data_ref(store, args.data)
            spec = scoring.score_spec(args.ref, dataset=args.data, output_name=args.name, strict=args.strict)
        outcome = run_foreground(store, spec, wants_json(args), verbose=is_verbose(args))
        raise_for_outcome(outcome)
        result = outcome.result or {}
        written = None
        if out_path is not None:
            from modelyard.core.datasets.service import load_frame

            frame = load_frame(store, int(result["output"]["dataset_version_id"]))
            written = scoring.write_table_file(frame, out_path)
    for w in result.get("warnings", []):
        if w.get("kind") != "extra_columns":
            eprint(f"warning: {w['message']}")
    if wants_json(args):
        data = outcome_json(outcome)
        data["output_path"] = str(written) if written else None
        print_json(data)
        return 0
    print(scoring.describe_result(result))
    if written is not None:
        print(f"Wrote {written}.")
    return 0


def _check_data_ref(store: Any, text: str) -> None:
    """DATA is not a file: it must name a dataset version (a clear error for a mistyped path)."""
    from modelyard.core.common.errors import NotFoundError
    from modelyard.core.datasets.service import get_version

    try:
        get_version(store, text)
    except NotFoundError as exc:
        looks_like_file = any(sep in text for sep in ("/", "\\")) or Path(text).suffix != ""
        if looks_like_file and "@" not in text:
            raise UsageError(f"There is no file {text}.",
                             hint="Check the path, or name a dataset as NAME@vN.") from None
        raise UsageError(f"{text!r} is neither a file nor a dataset version: {exc.message}",
                         hint=exc.hint or "'modelyard dataset list' lists the datasets.") from None
