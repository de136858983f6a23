"""``modelyard pipeline validate|run|resume|list|runs|show|add|schedules``: pipeline files (YAML kept
beside a team's code) checked, run on the job system with live step lines, resumed, and listed.

``run`` runs the graph in a worker thread while this (main) thread waits, so Ctrl+C lands here: the
first one cancels the run (its running steps are stopped, it is recorded ``cancelled``, exit 1), a
second one stops waiting (the run is then marked ``interrupted`` by the next ``Store.open`` and can
be resumed). Exit codes of ``run``/``resume``: 0 succeeded, 1 failed/cancelled/interrupted, 3 a gate
or a drift check blocked it. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from modelyard.cli._common import (
    EXIT_FAILURE,
    UsageError,
    add_command,
    add_noun,
    error_json,
    fmt_duration,
    is_verbose,
    open_store,
    positive_int,
    print_json,
    print_kv,
    print_table,
    run_in_worker,
    wants_json,
)
from modelyard.cli.monitor import fmt_time_text

STEP_END_WORDS = {"succeeded": "succeeded", "cached": "cached", "failed": "FAILED", "blocked": "BLOCKED",
                  "skipped": "skipped", "cancelled": "cancelled", "interrupted": "interrupted"}

RUN_EPILOG = """\
examples:
  modelyard pipeline run pipeline.yml
  modelyard pipeline run churn-nightly --param data=incoming/march.csv --jobs 2
  modelyard pipeline run pipeline.yml --force --json > run.json

Each step's state is printed on stderr as it changes ('load: running', 'load: cached'...); -v adds
the steps' log lines. A step whose inputs did not change since an earlier run is not run again
(cached; --force reruns every step). --param values are read as JSON when they parse (numbers,
true/false, lists), else as text; relative paths are relative to the pipeline file's folder.
Ctrl+C cancels the run (recorded 'cancelled').

exit codes: 0 succeeded, 1 failed or cancelled, 3 a gate or a drift check blocked the run"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "pipeline", common, help="validate, run and inspect pipelines (YAML recipes)",
                     description="Pipelines chain the lifecycle's steps (import, split, train, gate, register, "
                                 "bundle, score, serve, check, retrain, python, shell) in a YAML file kept beside "
                                 "your code. See docs/pipelines.md for the format and docs/ci.md for CI.")
    p = add_command(verbs, "validate", common, _validate,
                    help="check pipeline files without running them (exit 1 when one is invalid)",
                    epilog="examples:\n  modelyard pipeline validate pipeline.yml\n"
                           "  modelyard pipeline validate pipelines/*.yml --json\n\n"
                           "Every problem is printed as FILE:LINE:COLUMN: message, with a hint. Nothing is "
                           "written to the store (no store is needed).")
    p.add_argument("files", metavar="FILE", nargs="+", help="a pipeline file (YAML)")
    p = add_command(verbs, "run", common, _run, help="run a pipeline file or a listed pipeline", epilog=RUN_EPILOG)
    p.add_argument("pipeline", metavar="FILE|NAME", help="a pipeline file, or the name of a listed pipeline")
    _run_options(p)
    p.add_argument("--param", metavar="KEY=VALUE", action="append", default=[], dest="params",
                   help="a pipeline parameter for this run (repeat for several)")
    p.add_argument("--force", action="store_true", help="run every step, even those whose inputs did not change")
    p = add_command(verbs, "resume", common, _resume,
                    help="run a failed, cancelled or interrupted run again from where it stopped",
                    epilog="example:\n  modelyard pipeline resume 12\n\n"
                           "A new run reuses the outputs of the steps that succeeded and runs the others.\n"
                           "exit codes: as for 'pipeline run'")
    p.add_argument("run_id", metavar="RUN_ID", type=positive_int, help="the pipeline run (see 'pipeline runs')")
    _run_options(p, default_jobs=None)
    add_command(verbs, "list", common, _list, help="list the pipelines the store knows",
                epilog="A pipeline is listed when it is first run or added ('pipeline add FILE').")
    p = add_command(verbs, "runs", common, _runs, help="list pipeline runs, newest first",
                    epilog="examples:\n  modelyard pipeline runs\n  modelyard pipeline runs churn-nightly --limit 5")
    p.add_argument("name", metavar="NAME", nargs="?", help="only this pipeline's runs")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="show at most N runs (default: 20)")
    p = add_command(verbs, "show", common, _show, help="show a pipeline run: its steps, outputs and errors",
                    epilog="examples:\n  modelyard pipeline show 12\n  modelyard pipeline show 12 --log search")
    p.add_argument("run_id", metavar="RUN_ID", type=positive_int, help="the pipeline run (see 'pipeline runs')")
    p.add_argument("--log", metavar="STEP", help="print this step's log instead")
    p = add_command(verbs, "add", common, _add, help="list a pipeline file in the store (the app and the agent "
                                                     "then find it, its schedules and triggers)",
                    epilog="example:\n  modelyard pipeline add pipelines/nightly.yml\n\n"
                           "The file is validated first; an invalid file is not listed (exit 1).")
    p.add_argument("file", metavar="FILE", help="the pipeline file (YAML)")
    p = add_command(verbs, "schedules", common, _schedules,
                    help="switch a pipeline's schedules and triggers on or off",
                    epilog="example:\n  modelyard pipeline schedules churn-nightly off")
    p.add_argument("name", metavar="NAME", help="a listed pipeline")
    p.add_argument("state", choices=("on", "off"))


def _run_options(p: argparse.ArgumentParser, *, default_jobs: int | None = 1) -> None:
    p.add_argument("--jobs", type=positive_int, default=default_jobs, metavar="N",
                   help="run up to N independent steps at once (default: "
                        + ("1" if default_jobs else "as the resumed run") + ")")


# --------------------------------------------------------------------------- problems


def _print_problems(problems: list[Any], *, file: IO[str] | None = None) -> None:
    out = file or sys.stderr
    for problem in problems:
        print(str(problem), file=out)


def _invalid(exc: Any, json_mode: bool) -> int:
    """Report a :class:`PipelineInvalid`: every problem on stderr (and in the JSON); exit 1."""
    if json_mode:
        data = error_json(exc, EXIT_FAILURE)
        data["problems"] = [p.to_json() for p in exc.problems]
        print_json(data)
    _print_problems(exc.problems)
    n = len(exc.problems)
    print(f"error: the pipeline has {n} problem{'s' if n != 1 else ''}; nothing was run or recorded.",
          file=sys.stderr)
    return EXIT_FAILURE


def _validate(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines.loading import validate_file

    problems = [p for f in args.files for p in validate_file(f)]
    if wants_json(args):
        print_json({"valid": not problems, "files": list(args.files), "problems": [p.to_json() for p in problems]})
    _print_problems(problems)
    if problems:
        if not wants_json(args):
            n = len(problems)
            print(f"{n} problem{'s' if n != 1 else ''} found.", file=sys.stderr)
        return EXIT_FAILURE
    if not wants_json(args):
        print(", ".join(args.files) + (" is" if len(args.files) == 1 else " are") + " valid.")
    return 0


# --------------------------------------------------------------------------- live step lines


class StepLines:
    """A :class:`~modelyard.core.pipelines.runner.PipelineReporter` writing one line per step state
    change on ``stream`` (``search: running``, ``search: succeeded (4.1s)``); with ``verbose`` the
    steps' log lines (``search | ...``); on a terminal (and not ``quiet``) a step's progress message
    when it changes, at most once a second per step. Called from the runner's threads; thread-safe."""

    PROGRESS_EVERY_S = 1.0

    def __init__(self, stream: IO[str], *, verbose: bool = False, quiet: bool = False, tty: bool | None = None):
        self.stream = stream
        self.verbose = verbose
        self.quiet = quiet
        try:
            self.tty = bool(stream.isatty()) if tty is None else tty
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._last_progress: dict[str, tuple[float, str]] = {}

    def step(self, name: str, status: str) -> None:
        now = time.monotonic()
        with self._lock:
            if status == "running":
                self._started[name] = now
                self._write(f"{name}: running")
                return
            word = STEP_END_WORDS.get(status, status)
            began = self._started.pop(name, None)
            took = f" ({fmt_duration(now - began)})" if began is not None and status != "cached" else ""
            self._write(f"{name}: {word}{took}")

    def log(self, name: str, line: str) -> None:
        if self.verbose:
            with self._lock:
                self._write(f"{name} | {line.rstrip()}")

    def progress(self, name: str, fraction: float | None, message: str) -> None:
        if self.quiet or not (self.tty or self.verbose) or not message:
            return
        now = time.monotonic()
        with self._lock:
            last = self._last_progress.get(name)
            if last is not None and (last[1] == message or now - last[0] < self.PROGRESS_EVERY_S):
                return
            self._last_progress[name] = (now, message)
            pct = "" if fraction is None else f" {fraction * 100:.0f}%"
            self._write(f"{name}:{pct} {message}")

    def note(self, text: str) -> None:
        with self._lock:
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr is no reason to stop a pipeline
            pass


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def wait_cancellable(work: Callable[[threading.Event], Any], reporter: StepLines) -> Any:
    """Run ``work(cancel_event)`` in a worker thread and return its result; the first Ctrl+C (or
    SIGTERM: how CI systems stop a job) sets the event and waits for the work to wind down, a second
    one raises KeyboardInterrupt."""
    import signal

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt) if main else None
    try:
        return _wait(work, reporter)
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _wait(work: Callable[[threading.Event], Any], reporter: StepLines) -> Any:
    return run_in_worker(work, threading.Event(), name="modelyard-cli-pipeline",
                         on_first=lambda: reporter.note("Cancelling the run... (press Ctrl+C again to stop waiting)"))


# --------------------------------------------------------------------------- run, resume


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": v}``; values as JSON when they parse, else as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param must look like KEY=VALUE, not {item!r}.",
                             hint="For example: --param data=incoming/march.csv")
        out[key.strip()] = _param_value(value.strip())
    return out


def _looks_like_file(text: str) -> bool:
    return os.path.exists(text) or text.lower().endswith((".yml", ".yaml")) or os.sep in text


def _load_listed(store: Any, what: str) -> Any:
    """A listed pipeline: its file when it is still there (so the run uses what is in git), else the
    spec recorded when it was listed."""
    from modelyard.core.pipelines import catalog
    from modelyard.core.pipelines.loading import load_pipeline

    info = catalog.get_pipeline(store, what)
    if info.path and os.path.isfile(info.path):
        return load_pipeline(info.path)
    print(f"note: {info.path} is gone; running {what} as it was listed.", file=sys.stderr)
    return catalog.pipeline_spec(store, what)


def _run(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines.loading import load_pipeline
    from modelyard.core.pipelines.spec import PipelineInvalid

    params = parse_params(args.params)
    reporter = StepLines(sys.stderr, verbose=is_verbose(args), quiet=wants_json(args))
    try:
        # a file is read (and refused with every problem) before the store is opened
        pipeline = load_pipeline(args.pipeline) if _looks_like_file(args.pipeline) else None
        with open_store(args) as store:
            if pipeline is None:
                pipeline = _load_listed(store, args.pipeline)
            outcome = _execute(store, pipeline, params, args, reporter)
            return _finish(store, args, outcome)
    except PipelineInvalid as exc:
        return _invalid(exc, wants_json(args))


def _execute(store: Any, pipeline: Any, params: dict[str, Any], args: argparse.Namespace,
             reporter: StepLines) -> Any:
    from modelyard.core.pipelines.runner import run_pipeline

    return wait_cancellable(
        lambda cancel: run_pipeline(store, pipeline, params=params or None, jobs=args.jobs, force=args.force,
                                    reporter=reporter, cancel_event=cancel), reporter)


def _resume(args: argparse.Namespace) -> int:
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.pipelines import catalog
    from modelyard.core.pipelines.runner import resume_run

    reporter = StepLines(sys.stderr, verbose=is_verbose(args), quiet=wants_json(args))
    with open_store(args) as store:
        old = catalog.get_run(store, args.run_id)
        if old.status == "succeeded":  # said here with the command to run instead
            raise ModelyardError(f"Run {old.id} of {old.pipeline} succeeded: there is nothing to resume.",
                                 hint=f"Run it again with 'modelyard pipeline run {old.pipeline}' (only the steps "
                                      f"whose inputs changed) or 'modelyard pipeline run {old.pipeline} --force'.")
        outcome = wait_cancellable(
            lambda cancel: resume_run(store, args.run_id, jobs=args.jobs, reporter=reporter, cancel_event=cancel),
            reporter)
        return _finish(store, args, outcome)


def _finish(store: Any, args: argparse.Namespace, outcome: Any) -> int:
    """Print a finished run (its steps and outputs; with --json the whole run) and return its exit code."""
    from modelyard.core.pipelines import catalog

    run = catalog.get_run(store, outcome.run_id).to_json()
    code = int(outcome.exit_code)
    if wants_json(args):
        print_json(run)
    else:
        _print_steps(run)
    if code != 0 or outcome.status != "succeeded":
        _print_failure(run, outcome)
    elif not wants_json(args):
        ran = sum(1 for s in run["steps"] if s["status"] == "succeeded")
        cached = sum(1 for s in run["steps"] if s["status"] == "cached")
        print(f"Run {run['id']} of {run['pipeline']} succeeded in {fmt_duration(run.get('duration_s')) or '0s'} "
              f"({_count(ran, 'step')} ran, {cached} cached).")
    return code


def _print_failure(run: dict[str, Any], outcome: Any) -> None:
    status = outcome.status
    bad = [s for s in run["steps"] if s["status"] in ("failed", "blocked", "cancelled", "interrupted")]
    what = {"blocked": "was blocked", "cancelled": "was cancelled", "interrupted": "was interrupted"}.get(
        status, status if status != "failed" else "failed")
    print(f"error: run {run['id']} of {run['pipeline']} {what}"
          + (f": {_first_line(outcome.error or run.get('error'))}" if (outcome.error or run.get("error")) else "."),
          file=sys.stderr)
    said = _first_line(outcome.error or run.get("error"))
    for s in bad:
        if s.get("error") and _first_line(s["error"]) not in said:
            print(f"  {s['name']} ({s['status']}): {_first_line(s['error'])}", file=sys.stderr)
    if bad:
        print(f"hint: 'modelyard pipeline show {run['id']} --log {bad[0]['name']}' shows the step's log"
              + ("; 'modelyard pipeline resume " + str(run["id"]) + "' runs it again from there."
                 if status in ("failed", "cancelled", "interrupted") else "."), file=sys.stderr)


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _short(value: Any, width: int = 60) -> str:
    """A value in a table cell: mappings as ``k=v, ...``, run ids cut to 12 characters, long lists
    counted, everything cut at ``width``."""
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, 40)}" for k, v in value.items() if v is not None and v != [] and v != {})
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list | tuple):
        text = ", ".join(_short(v, 24) for v in value) if len(value) <= 3 else f"{len(value)} items"
    elif isinstance(value, str) and _RUN_ID.match(value):
        text = value[:12]
    else:
        text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_steps(run: dict[str, Any]) -> None:
    print_table(["STEP", "KIND", "STATUS", "TRIES", "DURATION", "OUTPUTS"],
                [[s["name"], s["kind"], s["status"], s.get("attempts") or "", fmt_duration(s.get("duration_s")),
                  _short(s.get("outputs"), 100)] for s in sorted(run["steps"], key=lambda s: s.get("position", 0))],
                right=[3, 4], max_width=100)


# --------------------------------------------------------------------------- list, runs, show, add, schedules


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines import catalog

    with open_store(args) as store:
        infos = [i.to_json() for i in catalog.list_pipelines(store)]
    if wants_json(args):
        print_json(infos)
        return 0
    if not infos:
        print("No pipelines yet. List one with 'modelyard pipeline add FILE' or run it with "
              "'modelyard pipeline run FILE'.")
        return 0
    rows = []
    for i in infos:
        last = i.get("last_run") or {}
        rows.append([i["name"], len(i.get("steps") or []), _triggers_text(i), "on" if i.get("schedules_enabled") else
                     "off", (f"{last.get('status')} {fmt_time_text(last.get('started_at'))}" if last else "never"),
                     i["path"] + ("  (changed since listed)" if i.get("file_changed") else "")])
    print_table(["NAME", "STEPS", "TRIGGERS", "SCHEDULES", "LAST RUN", "FILE"], rows, right=[1], max_width=80)
    return 0


def _triggers_text(info: dict[str, Any]) -> str:
    parts = []
    for t in info.get("triggers") or []:
        if t.get("type") == "schedule":
            parts.append(f"cron {t.get('cron')}")
        elif t.get("type") == "new_file":
            parts.append(f"new file in {os.path.basename(str(t.get('folder') or '').rstrip(os.sep)) or '?'}")
        elif t.get("type") == "drift":
            parts.append(f"drift of {t.get('model')}")
        elif t.get("type") == "live_drift":
            parts.append(f"live drift of {t.get('model')}")
    return ", ".join(parts)


def _runs(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines import catalog

    with open_store(args) as store:
        if args.name:
            catalog.get_pipeline(store, args.name)  # an unknown name is an error with a hint, not "no runs"
        runs = [r.to_json() for r in catalog.list_runs(store, pipeline=args.name, limit=args.limit)]
    if wants_json(args):
        print_json(runs)
        return 0
    if not runs:
        print(f"No runs of {args.name} yet." if args.name else "No pipeline runs yet.")
        return 0
    print_table(["RUN", "PIPELINE", "STATUS", "TRIGGER", "STARTED", "DURATION", "STEPS"],
                [[r["id"], r["pipeline"], r["status"], _trigger_text(r.get("trigger")),
                  fmt_time_text(r.get("started_at")), fmt_duration(r.get("duration_s")), _counts_text(r.get("counts"))]
                 for r in runs], right=[0, 5])
    return 0


def _trigger_text(trigger: Any) -> str:
    if not isinstance(trigger, dict):
        return "manual"
    kind = trigger.get("type") or "manual"
    if kind == "resume" and trigger.get("run"):
        return f"resume of {trigger['run']}"
    return str(kind)


def _counts_text(counts: Any) -> str:
    if not isinstance(counts, dict):
        return ""
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines import catalog

    with open_store(args) as store:
        if args.log:
            text = catalog.step_log(store, args.run_id, args.log)
            if wants_json(args):
                print_json({"run_id": args.run_id, "step": args.log, "log": text})
            else:
                sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
            return 0
        run = catalog.get_run(store, args.run_id).to_json()
    if wants_json(args):
        print_json(run)
        return 0
    pairs = [("run", run["id"]), ("pipeline", run["pipeline"]), ("status", run["status"]),
             ("trigger", _trigger_text(run.get("trigger"))), ("started", fmt_time_text(run.get("started_at"))),
             ("ended", fmt_time_text(run.get("ended_at"))), ("duration", fmt_duration(run.get("duration_s"))),
             ("exit code", "" if run.get("exit_code") is None else run["exit_code"]),
             ("resumed from", run.get("resumed_from") or ""),
             ("params", _short(run.get("params"), 100)), ("error", run.get("error") or "")]
    print_kv([(k, v) for k, v in pairs if v != ""])
    print()
    _print_steps(run)
    said = _first_line(run.get("error"))
    for s in run["steps"]:
        if s.get("error") and _first_line(s["error"]) not in said:
            print(f"{s['name']}: {_first_line(s['error'])}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines import catalog
    from modelyard.core.pipelines.spec import PipelineInvalid

    with open_store(args) as store:
        try:
            info = catalog.add_pipeline_file(store, args.file).to_json()
        except PipelineInvalid as exc:
            return _invalid(exc, wants_json(args))
    if wants_json(args):
        print_json(info)
        return 0
    triggers = _triggers_text(info)
    print(f"Listed {info['name']} ({_count(len(info.get('steps') or []), 'step')}) from {info['path']}"
          + (f"; triggers: {triggers}." if triggers else "."))
    return 0


def _schedules(args: argparse.Namespace) -> int:
    from modelyard.core.pipelines import catalog

    on = args.state == "on"
    with open_store(args) as store:
        catalog.set_schedules_enabled(store, args.name, on)
        info = catalog.get_pipeline(store, args.name).to_json()
    if wants_json(args):
        print_json(info)
        return 0
    print(f"The schedules and triggers of {info['name']} are {'on' if info.get('schedules_enabled') else 'off'}.")
    return 0
