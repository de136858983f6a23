"""Helpers every CLI noun shares: building commands, opening the store, output, foreground jobs.

Import rule: this module is imported by :mod:`modelyard.cli.main` at start-up, so it must
import nothing heavier than the standard library and :mod:`modelyard.core.common.errors` /
:mod:`modelyard.core.common.names` / :mod:`modelyard.core.common.paths`. The store, SQLAlchemy and the job machinery are imported inside
the functions that need them.

A noun module looks like this::

    from modelyard.cli._common import add_command, add_noun, open_store, print_json, wants_json

    def register(subparsers, common):
        noun = add_noun(subparsers, "thing", common, help="Work with things.")
        p = add_command(noun, "list", common, _list, help="List the things.")
        p.add_argument("--limit", type=positive_int, default=50)

    def _list(args) -> int:
        with open_store(args) as store:
            ...
        return 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import numbers
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import (  # noqa: F401 - fmt_bytes, fmt_duration: the commands print them
    display,
    fmt_bytes,
    fmt_duration,
)

if TYPE_CHECKING:
    from modelyard.core.jobs.runner import JobOutcome, JobSpec
    from modelyard.core.store import Store

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_GATE = 3

Handler = Callable[[argparse.Namespace], "int | None"]


# --------------------------------------------------------------------------- errors


class UsageError(ModelyardError):
    """The command line asks for something that cannot be (found after argparse). Exit code 2."""

    exit_code = EXIT_USAGE


class JobFailedError(ModelyardError):
    """A foreground job ended failed or cancelled; carries the job id for ``--json`` output."""

    def __init__(self, message: str, *, hint: str | None = None, job_id: int | None = None,
                 status: str = "failed", exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.job_id = job_id
        self.status = status
        self.exit_code = exit_code  # a gate that failed inside the job keeps its exit code 3


# --------------------------------------------------------------------------- building commands


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (examples, exit codes)."""


def add_noun(subparsers: Any, name: str, common: argparse.ArgumentParser, *, help: str,
             description: str | None = None) -> Any:
    """Add ``modelyard <name>`` and return the sub-parsers object its verbs are added to."""
    parser = subparsers.add_parser(name, parents=[common], help=help, description=description or help,
                                   formatter_class=HelpFormatter)
    verbs = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", title="commands")
    verbs.required = True
    return verbs


def add_command(verbs: Any, name: str, common: argparse.ArgumentParser, handler: Handler, *, help: str,
                description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:
    """Add ``modelyard <noun> <name>`` running ``handler(args) -> exit code`` and return its parser.

    The global options (``--store``, ``--db-url``, ``--json``, ``-v``) are accepted here too, so
    they may follow the command.
    """
    parser = verbs.add_parser(name, parents=[common], help=help, description=description or help,
                              epilog=epilog, formatter_class=HelpFormatter)
    parser.set_defaults(func=handler)
    return parser


MAX_ID = 2**63 - 1  # the largest id or count a database column holds


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts, limits and ids (1 to 2**63 - 1)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {value}")
    if value > MAX_ID:
        raise argparse.ArgumentTypeError(f"expected a number of at most {MAX_ID}, not {value}")
    return value


def seed_int(text: str) -> int:
    """argparse ``type=`` for a random seed (0 to 2**32 - 1, what numpy and scikit-learn accept)."""
    value = _whole_number(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is 0 to {2**32 - 1}, not {value}")
    return value


def number(text: str) -> float:
    """argparse ``type=`` for a finite number (shares, durations): 'nan' and 'inf' are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
    return value


def positive_number(text: str) -> float:
    """argparse ``type=`` for a finite number above 0 (timeouts, seconds)."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {text!r}")
    return value


def non_negative(text: str) -> float:
    """argparse ``type=`` for a finite number of at least 0 (days, seconds)."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, not {text!r}")
    return value


# --------------------------------------------------------------------------- the store


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def is_verbose(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "verbose", False))


def store_location(args: argparse.Namespace) -> Path:
    """``--store``, else ``MODELYARD_STORE``, else the platform's default store folder."""
    from modelyard.core.common.paths import resolve_store_dir

    return resolve_store_dir(getattr(args, "store", None) or None)


def store_is_default(args: argparse.Namespace) -> bool:
    """True when neither ``--store`` nor ``MODELYARD_STORE`` chose the store folder."""
    from modelyard.core.common.paths import STORE_ENV

    return not (getattr(args, "store", None) or os.environ.get(STORE_ENV))


def db_url(args: argparse.Namespace) -> str | None:
    """``--db-url``, else ``MODELYARD_DB_URL``, else None (the store's own SQLite file)."""
    from modelyard.core.common.paths import DB_URL_ENV

    return getattr(args, "db_url", None) or os.environ.get(DB_URL_ENV) or None


def open_store(args: argparse.Namespace, *, create: bool | None = None, sweep: bool = True) -> Store:
    """Open the store the global options name (use it as a context manager to close it).

    ``create`` defaults to False for a folder named by ``--store``/``MODELYARD_STORE`` or a
    database named by ``--db-url``/``MODELYARD_DB_URL`` (so a mistyped path or URL is an error
    with a hint, not a new empty store) and to True for the platform's default store with its
    own database (so a first run just works). ``store init`` passes True. ``sweep=False``
    skips marking dead processes' jobs and runs interrupted (``store verify`` must open a
    damaged database to report on it).
    """
    from modelyard.core.store import Store

    url = db_url(args)
    if create is None:
        create = store_is_default(args) and url is None
    # no --store / MODELYARD_STORE: a team store's own record says where its artifacts are
    location = None if store_is_default(args) else store_location(args)
    return Store.open(location, db_url=url, create=create, sweep=sweep)


# --------------------------------------------------------------------------- output


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return json_safe(value.to_json())
    return str(value)


def json_safe(data: Any) -> Any:
    """``data`` with every NaN or infinite number replaced by None (JSON has no such numbers;
    ``json.dumps`` would write the invalid ``NaN``/``Infinity``). NumPy numbers become Python ones."""
    if isinstance(data, bool | int | str) or data is None:
        return data
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    if isinstance(data, numbers.Integral):  # numpy integers
        return int(data)
    if isinstance(data, numbers.Real):  # numpy floats
        return json_safe(float(data))
    return data  # left to _json_default


def to_json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON text: non-finite numbers as null, datetimes as ISO 8601 text, other objects
    by their ``to_json()`` or as strings. Always valid JSON (``allow_nan=False`` proves it)."""
    return json.dumps(json_safe(data), indent=indent, default=_json_default, allow_nan=False)


def print_json(data: Any, *, file: IO[str] | None = None) -> None:
    """Print ``data`` as indented JSON on stdout (see :func:`to_json_text`)."""
    print(to_json_text(data), file=file or sys.stdout)


def eprint(*parts: Any) -> None:
    """Print to stderr (messages for people that must not mix with ``--json`` output)."""
    print(*parts, file=sys.stderr)


class SafeText:
    """A text stream that writes control characters as visible escapes (see
    :func:`modelyard.core.common.names.display`): line breaks and tabs pass, an ``ESC [ 2 J`` or a ``\\r``
    in a name does not act on the terminal. :func:`modelyard.cli.main.run_cli` puts one around
    stdout and stderr for the whole command, so every ``print`` of a name is safe; JSON output
    holds no control characters (json escapes them)."""

    def __init__(self, stream: IO[str]) -> None:
        self.raw = stream

    def write(self, text: str) -> int:
        return self.raw.write(display(text.replace("\r\n", "\n"), keep_newlines=True))

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer...
        return getattr(self.raw, name)


def raw_stream(stream: IO[str]) -> IO[str]:
    """The stream under a :class:`SafeText` (for the progress bar's own carriage returns)."""
    return stream.raw if isinstance(stream, SafeText) else stream


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return fmt_time(value)
    return display(str(value).replace("\n", " "))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, file: IO[str] | None = None,
                right: Iterable[int] = (), max_width: int = 48) -> None:
    """Print rows as columns aligned for people: a header line, then one line per row.

    ``right`` lists column indexes to right-align (numbers); cells longer than ``max_width``
    are cut with ``...``; None prints as an empty cell, datetimes in local time.
    """
    out = file or sys.stdout
    right_cols = set(right)
    text_rows = []
    for row in rows:
        cells = [_cell(v) for v in row]
        text_rows.append([c if len(c) <= max_width else c[: max_width - 3] + "..." for c in cells])
    widths = [len(h) for h in headers]
    for cells in text_rows:
        for i, c in enumerate(cells):
            widths[i] = max(widths[i], len(c))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if i in right_cols else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    print(line(list(headers)), file=out)
    for cells in text_rows:
        print(line(cells), file=out)


def print_kv(pairs: Mapping[str, Any] | Iterable[tuple[str, Any]], *, file: IO[str] | None = None,
             indent: int = 0) -> None:
    """Print ``key: value`` lines with the values aligned; multi-line values are indented below."""
    out = file or sys.stdout
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
    if not items:
        return
    width = max(len(k) for k, _ in items) + 1
    pad = " " * indent
    for key, value in items:
        text = _cell(value) if not isinstance(value, str) else display(value, keep_newlines=True)
        if "\n" in text:
            print(f"{pad}{key}:", file=out)
            for ln in text.rstrip("\n").splitlines():
                print(f"{pad}  {ln}", file=out)
        else:
            print(f"{pad}{(key + ':').ljust(width)} {text}".rstrip(), file=out)


def fmt_time(value: dt.datetime | None) -> str:
    """Local time, to the second (``2024-05-01 14:03:22``); empty for None."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone()
    return value.strftime("%Y-%m-%d %H:%M:%S")


def fmt_percent(fraction: float | None) -> str:
    """``42%``; empty for None."""
    return "" if fraction is None else f"{fraction * 100:.0f}%"


# --------------------------------------------------------------------------- foreground jobs


class TextProgress:
    """A :class:`~modelyard.core.jobs.runner.Reporter` that draws progress on a text stream.

    On a terminal: one line ``[#####.....]  42%  message`` redrawn in place, at most 10 times
    a second. Otherwise (a pipe or a log file): a plain ``[ 42%] message`` line whenever the
    message changes or progress passes another 10 % step (none at all when ``quiet``). Job log
    lines go to the stream when ``verbose``. Called from the job's thread; thread-safe.
    """

    BAR_WIDTH = 24
    MIN_REDRAW_S = 0.1

    def __init__(self, stream: IO[str], *, tty: bool | None = None, verbose: bool = False,
                 quiet: bool = False) -> None:
        self.stream = raw_stream(stream)  # the bar's "\r" must reach the terminal; messages are escaped here
        self.tty = _isatty(stream) if tty is None else tty
        self.verbose = verbose
        self.quiet = quiet
        self._lock = threading.Lock()
        self._fraction: float | None = None
        self._message = ""
        self._last_draw = 0.0
        self._drawn_len = 0  # length of the bar line on screen (0: none)
        self._pending = False
        self._plain_message: str | None = None
        self._plain_step: int | None = None
        self._started = time.monotonic()

    # Reporter protocol
    def progress(self, fraction: float | None, message: str) -> None:
        with self._lock:
            self._fraction, self._message = fraction, display(message or "")
            if self.tty:
                now = time.monotonic()
                if now - self._last_draw >= self.MIN_REDRAW_S:
                    self._draw(now)
                else:
                    self._pending = True
            elif not self.quiet:
                step = None if fraction is None else int(fraction * 10 + 1e-9)
                if self._message != self._plain_message or (
                        step is not None and (self._plain_step is None or step > self._plain_step)):
                    self._plain_message, self._plain_step = self._message, step
                    self._write(f"[{self._percent()}] {self._message}".rstrip() + "\n")

    def log(self, line: str) -> None:
        if not self.verbose:
            return
        with self._lock:
            self._clear()
            self._write(display(line, keep_newlines=True) + "\n")
            if self.tty:
                self._pending = True

    # other
    def note(self, text: str) -> None:
        """A message line (e.g. 'cancelling...') that does not disturb the bar."""
        with self._lock:
            self._clear()
            self._write(display(text, keep_newlines=True) + "\n")
            self._pending = self.tty

    def finish(self) -> None:
        """Draw the last state and end the bar's line."""
        with self._lock:
            if self.tty and (self._drawn_len or self._pending):
                self._draw(time.monotonic())
                self._write("\n")
                self._drawn_len = 0
            self._pending = False

    # drawing
    def _percent(self) -> str:
        return " --%" if self._fraction is None else f"{self._fraction * 100:3.0f}%"

    def _bar(self, now: float) -> str:
        w = self.BAR_WIDTH
        if self._fraction is None:  # unknown: a block bouncing along the bar
            span = 2 * (w - 3)
            pos = int((now - self._started) * 12) % span
            pos = pos if pos < w - 3 else span - pos
            return "." * pos + "###" + "." * (w - 3 - pos)
        filled = int(round(self._fraction * w))
        return "#" * filled + "." * (w - filled)

    def _draw(self, now: float) -> None:
        text = f"[{self._bar(now)}] {self._percent()}  {self._message}".rstrip()
        cols = shutil.get_terminal_size((80, 24)).columns
        if len(text) > cols - 1:
            text = text[: max(cols - 4, 10)] + "..."
        pad = " " * max(0, self._drawn_len - len(text))
        self._write("\r" + text + pad)
        self._drawn_len = len(text)
        self._last_draw = now
        self._pending = False

    def _clear(self) -> None:
        if self.tty and self._drawn_len:
            self._write("\r" + " " * self._drawn_len + "\r")
            self._drawn_len = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stderr: progress is not worth dying for
            pass


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def run_foreground(store: Store, spec: JobSpec, json_mode: bool = False, *, verbose: bool = False,
                   stream: IO[str] | None = None, cancel_event: threading.Event | None = None) -> JobOutcome:
    """Run ``spec`` now, drawing progress on stderr, and return its outcome.

    The job runs in a worker thread while this (main) thread waits, so Ctrl+C lands here: the
    first one sets the cancel event (the job is recorded 'cancelled' and the outcome says so),
    a second one stops waiting and raises KeyboardInterrupt (the job row is then left for the
    next ``Store.open`` to mark interrupted). ``verbose`` forwards the job's log lines to
    stderr; ``json_mode`` keeps the non-terminal progress lines out of logs of scripts.
    Turn the outcome into an exit code with :func:`raise_for_outcome`.
    """
    from modelyard.core.jobs.runner import run_job

    out = stream if stream is not None else sys.stderr
    reporter = TextProgress(out, verbose=verbose, quiet=json_mode)
    cancel = cancel_event or threading.Event()
    try:
        outcome = run_in_worker(lambda ev: run_job(store, spec, reporter=reporter, cancel_event=ev), cancel,
                                name=f"modelyard-cli-job-{spec.label}",
                                on_first=lambda: reporter.note("Cancelling... (press Ctrl+C again to stop waiting)"),
                                on_second=reporter.finish)
    finally:
        reporter.finish()
    return outcome


def run_in_worker(work: Callable[[threading.Event], Any], cancel: threading.Event, *, name: str,
                  on_first: Callable[[], None], on_second: Callable[[], None] | None = None) -> Any:
    """``work(cancel)`` on a worker thread while this (main) thread waits, so Ctrl+C lands here: the
    first one sets ``cancel`` and calls ``on_first`` (the work winds down and returns), a second one
    calls ``on_second`` and raises KeyboardInterrupt. Returns what ``work`` returned; re-raises
    what it raised."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name=name, daemon=True)
    interrupts = 0
    worker.start()
    # Poll with sleep rather than Thread.join(timeout): on Python 3.11 a KeyboardInterrupt that
    # lands inside join() can mark a still-running thread as stopped.
    while True:
        try:
            while not done.is_set():
                time.sleep(0.05)
            break
        except KeyboardInterrupt:
            interrupts += 1
            cancel.set()
            if interrupts == 1:
                on_first()
            else:
                if on_second is not None:
                    on_second()
                raise
    worker.join(5)
    if "error" in box:
        raise box["error"]
    return box["result"]


def raise_for_outcome(outcome: JobOutcome) -> None:
    """Raise :class:`JobFailedError` unless the job succeeded ('error: cancelled' when cancelled)."""
    if outcome.status == "succeeded":
        return
    if outcome.status == "cancelled":
        raise JobFailedError("cancelled", job_id=outcome.job_id, status="cancelled")
    hint = outcome.hint or f"'modelyard jobs show {outcome.job_id}' shows the job's log."
    raise JobFailedError(outcome.message, hint=hint, job_id=outcome.job_id, status=outcome.status,
                         exit_code=outcome.exit_code or 1)


def outcome_json(outcome: JobOutcome) -> dict[str, Any]:
    """The ``--json`` shape of a finished foreground job: ``{"job_id", "status", "result"}``."""
    return {"job_id": outcome.job_id, "status": outcome.status, "result": outcome.result}


def error_json(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """The ``--json`` shape of an error: ``{"error": {"message", "hint", "exit_code"[, "job_id"]}}``."""
    if isinstance(exc, ModelyardError):
        err: dict[str, Any] = {"message": exc.message, "hint": exc.hint, "exit_code": exit_code}
        if isinstance(exc, JobFailedError) and exc.job_id is not None:
            err["job_id"] = exc.job_id
    else:
        err = {"message": f"unexpected {type(exc).__name__}: {exc}", "hint": None, "exit_code": exit_code}
    return {"error": err}
