"""``modelyard serve NAME@ALIAS [--port N]``: serve a registered model over HTTP (MLflow's protocol).

A command without verbs. It runs in the foreground until Ctrl+C (or SIGTERM, or the end of
stdin with ``--stop-on-eof``), then finishes the requests in flight and records ``serve_stop``.
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from modelyard.cli._common import (
    HelpFormatter,
    UsageError,
    eprint,
    non_negative,
    open_store,
    positive_int,
    positive_number,
    print_json,
    to_json_text,
    wants_json,
)

EPILOG = """\
examples:
  modelyard serve churn@champion --port 8080
  modelyard serve churn@v3 --port 0                (a free port; the URL is printed)
  curl -s http://127.0.0.1:8080/invocations -H 'Content-Type: application/json' \\
       -d '{"dataframe_records": [{"age": 42, "plan": "pro"}]}'

endpoints:
  POST /invocations   dataframe_split, dataframe_records, instances, inputs (JSON) or CSV
                      -> {"predictions": [...]}; bad input -> 400 {"error_code", "message", "field"}
  GET  /ping, /health, /version, /metadata (signature, version), /stats (requests, latency),
       /metrics (Prometheus' text format)
  GET, POST /admin/route   the canary or shadow: {"canary": "challenger", "share": "10%"},
                      {"share": "20%"}, {"shadow": "challenger"} or {"end": true}

Served through an alias (NAME@champion) or as NAME (the latest version), the server follows
the alias: when it moves, the new version is loaded and swapped in without failing a request.
It listens on 127.0.0.1 only unless --host says otherwise; for a team's network give it a
token (--token-file) and a certificate (--cert, --key):
  modelyard serve churn@champion --host 0.0.0.0 --token-file ~/.modelyard/serve.token \\
       --cert serve.pem --key serve-key.pem
  curl -s https://host:8080/invocations -H "Authorization: Bearer $(cat ~/.modelyard/serve.token)" ...

canary and shadow (the challenger is an alias or vN of the same model):
  modelyard serve churn@champion --canary challenger=10%
  curl -s http://127.0.0.1:8080/admin/route -d '{"share": "25%"}'     (or '{"end": true}')

limits: a body over --max-body (32M) is refused with 413 before it is read; a connection that
sends nothing for --idle-timeout seconds (10) is closed; at most --max-connections (128) are
open: a new one closes the one idle longest, or gets 503 when every one is mid-request."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "serve", parents=[common], help="serve a registered model over HTTP (MLflow's scoring protocol)",
        description="Serve a registered model version over HTTP with MLflow's REST scoring protocol, "
                    "following its alias as it moves.", epilog=EPILOG, formatter_class=HelpFormatter)
    p.set_defaults(func=_serve)
    p.add_argument("ref", metavar="NAME[@ALIAS|@vN]", help="what to serve: NAME@champion follows the alias")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every "
                        "interface)")
    p.add_argument("--port", type=_port, default=8080, help="the port (default 8080; 0 picks a free one)")
    p.add_argument("--poll", type=non_negative, default=0.5, metavar="SECONDS",
                   help="how often to check whether the alias moved (default 0.5)")
    p.add_argument("--max-body", type=_size, default=None, metavar="SIZE", dest="max_body",
                   help="the largest request body, in bytes or with K, M or G (1024-based; default 32M); a larger "
                        "one is refused with 413 before it is read")
    p.add_argument("--idle-timeout", type=positive_number, default=None, metavar="SECONDS", dest="idle_timeout",
                   help="close a connection that sends nothing for this long (default 10)")
    p.add_argument("--max-connections", type=positive_int, default=None, metavar="N", dest="max_connections",
                   help="the most connections open at once, one thread each (default 128): a new one closes the "
                        "connection idle longest, or is answered 503 when every one is mid-request")
    net = p.add_argument_group("beyond this machine")
    net.add_argument("--token-file", default=None, metavar="FILE", dest="token_file",
                     help="require 'Authorization: Bearer <token>' on every request but /ping and /health (401 "
                          "without it); the token is FILE's first line, and FILE must be readable by its owner only "
                          "(chmod 600 FILE)")
    net.add_argument("--cert", default=None, metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    net.add_argument("--key", default=None, metavar="FILE", help="the private key of --cert (PEM)")
    route = p.add_argument_group("canary and shadow")
    route.add_argument("--canary", default=None, metavar="VERSION=SHARE",
                       help="answer that share of the requests with another version of the model: an alias or vN, "
                            "such as challenger=10%% (change it or end it while serving: POST /admin/route)")
    route.add_argument("--shadow", default=None, metavar="VERSION",
                       help="also score every request with this version (an alias or vN) after answering with the "
                            "served one; both go to the prediction log")
    hooks = p.add_argument_group("feature lookup and prediction log")
    hooks.add_argument("--lookup", default=None, metavar="DATASET[@vN]",
                       help="enrich each request with the columns of this dataset version, joined by --lookup-key "
                            "(a newer version is swapped in as it is published)")
    hooks.add_argument("--lookup-key", default=None, metavar="COL", dest="lookup_key",
                       help="the key column of --lookup (a request must carry it; an unknown key is a 400 naming it)")
    hooks.add_argument("--lookup-default", default=None, metavar="JSON", dest="lookup_default",
                       help="the features of an unknown key, as a JSON object (default: refuse it with 400)")
    hooks.add_argument("--log", nargs="?", const="100%", default=None, metavar="SHARE",
                       help="log each request's inputs, output, latency and version into the store (all, or a "
                            "sampled share such as 10%%), off the request thread")
    hooks.add_argument("--log-key", default=None, metavar="COL", dest="log_key",
                       help="the request column logged as each row's key, to join labels later (default: "
                            "--lookup-key)")
    p.add_argument("--ready-json", action="store_true", dest="ready_json",
                   help="print one JSON line on stdout when listening ({\"event\": \"ready\", \"url\", ...}), "
                        "then one per event (swapped, stopped): for programs that start the server")
    p.add_argument("--stop-on-eof", action="store_true", dest="stop_on_eof",
                   help="stop when stdin closes (for programs that start the server)")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "GIB": 1024**3}


def _size(text: str) -> int:
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = _UNITS.get(match.group(2).upper()) if match else None
    if match is None or unit is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 32M, 512K or 1048576, not {text!r}")
    value = int(float(match.group(1)) * unit)
    if value < 1:
        raise argparse.ArgumentTypeError(f"the size must be at least 1 byte, not {text!r}")
    return value


def _line(event: dict[str, Any]) -> None:
    try:
        sys.stdout.write(to_json_text(event, indent=None) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _serve(args: argparse.Namespace) -> int:
    from modelyard.core.serving.server import ModelServer

    stop = threading.Event()
    ready_json = bool(args.ready_json)

    def on_event(event: dict[str, Any]) -> None:
        if ready_json:
            _line(event)
        if event["event"] == "swapped":
            eprint(f"Now serving {event['to']} (was {event['from']}; loaded in {event['load_s']:.2f} s).")
        elif event["event"] == "swap_failed":
            eprint(f"warning: {event['error']}")

    options = _network_options(args)  # the token file and the certificate are checked before the store opens
    with open_store(args) as store:
        limits = {k: v for k in ("max_body", "idle_timeout", "max_connections") if (v := getattr(args, k)) is not None}
        options.update(_hook_options(args, store))
        server = ModelServer(store, args.ref, host=args.host, port=args.port, poll_interval=args.poll,
                             on_event=on_event, **limits, **options)
        try:
            server.start()
        except BaseException:
            if server.prediction_log is not None:
                server.prediction_log.close()
            raise
        try:
            cur = server.current
            info = {"event": "ready", "url": server.url, "host": server.host, "port": server.port,
                    "pid": server.stats()["pid"], "ref": args.ref, "model": cur.info.name,
                    "version": cur.info.version, "model_version_id": cur.info.id, "alias": server.alias,
                    "fast_path": cur.fast is not None, "max_body": server.max_body,
                    "idle_timeout_s": server.idle_timeout, "max_connections": server.max_connections,
                    "https": server.ssl_context is not None, "token": server.token is not None,
                    "route": server.route.describe() if server.route is not None else None,
                    "lookup": server.lookup.describe() if server.lookup is not None else None,
                    "prediction_log": server.prediction_log is not None}
            if ready_json:
                _line(info)
            if not server.loopback and server.token is None:
                eprint(f"warning: listening on {args.host}: other machines can reach this model without a token; "
                       "give --token-file FILE to require one.")
            elif not server.loopback and server.ssl_context is None:
                eprint(f"warning: listening on {args.host} over plain HTTP: the token crosses the network "
                       "unencrypted; give --cert FILE --key FILE to serve HTTPS.")
            if server.route is not None:
                r = server.route
                eprint(f"{'Canary' if r.mode == 'canary' else 'Shadow'}: {r.model.ref}"
                       + (f" answers {r.share:.1%} of the requests." if r.mode == "canary"
                          else " scores every request after the served version answers."))
            follow = f", following '{server.alias}'" if server.alias else (
                ", following the latest version" if server.watching else "")
            eprint(f"Serving {cur.ref}{follow} at {server.url} (POST /invocations). Press Ctrl+C to stop.")
            if args.stop_on_eof:
                threading.Thread(target=_wait_for_eof, args=(stop,), name="modelyard-serve-stdin",
                                 daemon=True).start()
            previous = _on_sigterm(stop)
            try:
                while not stop.wait(0.25):
                    pass
            except KeyboardInterrupt:
                pass
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        finally:
            eprint("Stopping...")
            server.shutdown()
        stats = server.stats()
    if ready_json:
        _line({"event": "stopped", **stats})
    elif wants_json(args):
        print_json(stats)
    lat = stats["latency_ms"]
    eprint(f"Stopped. {stats['requests']:,} requests ({stats['errors']:,} errors)"
           + (f", p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms." if lat["p50"] is not None else "."))
    return 0


def _network_options(args: argparse.Namespace) -> dict[str, Any]:
    """``token`` and ``ssl_context`` from --token-file, --cert and --key; --canary/--shadow parsed."""
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.serving import auth, routing

    out: dict[str, Any] = {}
    if args.token_file:
        out["token"] = auth.read_token_file(args.token_file)
    if bool(args.cert) != bool(args.key):
        raise UsageError("HTTPS needs both --cert FILE and --key FILE.")
    if args.cert:
        out["ssl_context"] = auth.server_ssl_context(args.cert, args.key)
    if args.canary and args.shadow:
        raise UsageError("Give --canary or --shadow, not both.")
    if args.canary:
        try:
            out["canary"] = routing.parse_canary(args.canary)
        except ModelyardError as exc:  # a malformed option: a usage error (exit 2)
            raise UsageError(exc.message, hint=exc.hint) from None
    if args.shadow:
        out["shadow"] = args.shadow
    return out


def _hook_options(args: argparse.Namespace, store: Any) -> dict[str, Any]:
    """``lookup``, ``prediction_log`` and ``log_key`` from --lookup, --lookup-key, --log and --log-key."""
    import json

    from modelyard.core.registry.versions import parse_ref
    from modelyard.core.serving.routing import parse_share

    out: dict[str, Any] = {}
    if bool(args.lookup) != bool(args.lookup_key):
        raise UsageError("--lookup DATASET needs --lookup-key COL (the column that joins a request to its "
                             "features), and --lookup-key needs --lookup.")
    if args.lookup:
        from modelyard.core.serving.lookup import FeatureLookup

        default = None
        if args.lookup_default is not None:
            try:
                default = json.loads(args.lookup_default)
            except ValueError as exc:
                raise UsageError(f"--lookup-default is not JSON: {exc}.") from None
            if not isinstance(default, dict):
                raise UsageError("--lookup-default must be a JSON object of column names and values.")
        out["lookup"] = FeatureLookup(store, args.lookup, args.lookup_key, default=default)
    if args.log is not None:
        from modelyard.core.serving.predlog import PredictionLog

        out["prediction_log"] = PredictionLog(store, parse_ref(args.ref)[0], sample=parse_share(args.log))
    if args.log_key:
        out["log_key"] = args.log_key
    return out


def _wait_for_eof(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError, AttributeError):
        pass
    stop.set()


def _on_sigterm(stop: threading.Event) -> Any:
    """Make SIGTERM a graceful stop; returns the handler to restore (None if unchanged)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None
    try:
        return signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except (ValueError, OSError):
        return None
