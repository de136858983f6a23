"""``modelyard predict --stream NAME@ALIAS [--follow FILE]``: streaming scoring (see
:mod:`modelyard.core.serving.streaming`). Predictions go to standard output, one JSON line per
event; the counts to standard error at the end. Ctrl+C and SIGTERM stop it after the lines
already read are scored and written.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from modelyard.cli._common import UsageError, eprint, open_store, print_json, wants_json


def _check(args: argparse.Namespace) -> dict[str, Any] | None:
    """The usage errors of a --stream command line; returns the parsed --lookup-default."""
    if args.data is not None:
        raise UsageError(f"With --stream the events come from standard input or --follow FILE, not {args.data}.",
                         hint=f"e.g. modelyard predict --stream {args.ref} --follow {args.data}")
    if args.output:
        raise UsageError("-o is for batch scoring; a stream writes its predictions to standard output.",
                         hint=f"Redirect it: modelyard predict --stream {args.ref} > predictions.jsonl")
    if args.name:
        raise UsageError("--name is for batch scoring; a stream stores no dataset version.")
    if not args.follow and (args.from_end or args.idle_exit is not None):
        raise UsageError(f"{'--from-end' if args.from_end else '--idle-exit'} is for --follow FILE.")
    if bool(args.lookup) != bool(args.key):
        raise UsageError("--lookup DATASET and --key COL go together.",
                         hint="e.g. --lookup customer-features --key customer_id")
    if args.lookup_default is not None and not args.lookup:
        raise UsageError("--lookup-default is for --lookup DATASET --key COL.")
    if args.lookup_default is None:
        return None
    try:
        default = json.loads(args.lookup_default)
    except ValueError as exc:
        raise UsageError(f"--lookup-default is not JSON: {exc}.", hint="e.g. --lookup-default '{\"visits\": 0}'") \
            from None
    if not isinstance(default, dict):
        raise UsageError("--lookup-default must be a JSON object of the table's columns.",
                         hint="e.g. --lookup-default '{\"visits\": 0}'")
    return default


def _on_signals(stop: threading.Event) -> list[tuple[int, Any]]:
    """SIGINT and SIGTERM set ``stop`` (a graceful end); returns what to restore."""
    restore: list[tuple[int, Any]] = []
    if threading.current_thread() is not threading.main_thread():
        return restore
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            restore.append((sig, signal.signal(sig, lambda *_: stop.set())))
        except (ValueError, OSError):
            pass
    return restore


def stream(args: argparse.Namespace) -> int:
    default = _check(args)
    from modelyard.core.serving.follow import FollowSource, PipeSource
    from modelyard.core.serving.streaming import StreamStats, run_stream

    stop = threading.Event()
    stats = StreamStats()
    summary: dict[str, Any] = {}
    with open_store(args) as store:
        lookup = None
        if args.lookup:
            from modelyard.core.serving.lookup import FeatureLookup

            lookup = FeatureLookup(store, args.lookup, args.key, default=default)
        plog = None
        if args.log is not None:
            from modelyard.core.registry.versions import parse_ref
            from modelyard.core.serving.predlog import PredictionLog
            from modelyard.core.serving.routing import parse_share

            plog = PredictionLog(store, parse_ref(args.ref)[0], sample=parse_share(args.log), key_column=args.id_field)
        if args.follow:
            source: Any = FollowSource(args.follow, from_end=args.from_end, idle_exit=args.idle_exit, stop=stop)
        else:
            source = PipeSource(sys.stdin.fileno(), stop=stop)

        def started(info: dict[str, Any]) -> None:
            import gc

            # this process only streams from now on: what the imports and the model made stays, so
            # the collector's full passes skip it (they held an event 20-50 ms at times)
            gc.collect()
            gc.freeze()
            summary.update(info)
            what = f"following {args.follow}" if args.follow else "reading standard input"
            extra = f", looking features up in {lookup.ref} by '{lookup.key}'" if lookup is not None else ""
            eprint(f"Scoring events with {info['model']}, {what}{extra}. Ctrl+C stops.")

        restore = _on_signals(stop)
        try:
            summary.update(run_stream(store, args.ref, source, sys.stdout.buffer, id_field=args.id_field,
                                      batch=args.batch, lookup=lookup, strict=args.strict, stats=stats,
                                      on_started=started, prediction_log=plog))
        except BrokenPipeError:  # the reader went away (| head): what was scored was written
            summary.update(stats.snapshot())
            try:  # nothing more reaches the reader: no "broken pipe" when Python flushes at exit
                import os

                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except OSError:
                pass
        finally:
            for sig, handler in restore:
                signal.signal(sig, handler)
            if plog is not None:
                plog.close()  # what was handed over is written (or counted as dropped)
                summary["prediction_log"] = plog.counts()
    if isinstance(source, FollowSource):
        summary["rotations"], summary["truncations"] = source.rotations, source.truncations
    if wants_json(args):
        print_json(summary, file=sys.stderr)
        return 0
    lat = summary.get("latency_ms") or {}
    timing = (f"; latency p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms" if lat.get("p50") is not None else "")
    from modelyard.core.common.names import plural

    logged = summary.get("prediction_log")
    if logged:
        eprint(f"Prediction log: {plural(logged['logged_rows'], 'row')} logged, {logged['dropped_rows']:,} dropped, "
               f"{logged['sampled_out_rows']:,} sampled out.")
    eprint(f"{plural(summary.get('predictions', 0), 'prediction')}, {plural(summary.get('errors', 0), 'error line')} "
           f"({plural(summary.get('events', 0), 'event')} in {summary.get('elapsed_s', 0):.1f} s, "
           f"{summary.get('events_per_s') or 0:,.0f} per second{timing}).")
    return 0
