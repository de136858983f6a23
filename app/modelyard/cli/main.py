"""``modelyard <noun> <command> ...``: the parser, global options, dispatch and error handling.

Start-up is kept fast: importing this module loads only the standard library and
:mod:`modelyard.core.common.errors`; each command imports the store (SQLAlchemy...) when it runs.
To add a noun, write ``modelyard/cli/<noun>.py`` with ``register(subparsers, common_parent)``
and add it to :data:`NOUN_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from modelyard._version import __version__
from modelyard.cli._common import (
    EXIT_FAILURE,
    HelpFormatter,
    SafeText,
    error_json,
    print_json,
    to_json_text,
)
from modelyard.core.common.errors import ModelyardError

# The nouns, in the order ``modelyard --help`` lists them. Each module exposes
# ``register(subparsers, common_parent)``.
NOUN_MODULES: list[str] = [
    "modelyard.cli.store",
    "modelyard.cli.jobs",
    "modelyard.cli.dataset",
    "modelyard.cli.experiment",
    "modelyard.cli.run",
    "modelyard.cli.train",
    "modelyard.cli.model",
    "modelyard.cli.bundle",
    "modelyard.cli.predict",
    "modelyard.cli.serve",
    "modelyard.cli.monitor",
    "modelyard.cli.pipeline",
    "modelyard.cli.notify",
    "modelyard.cli.team",
    "modelyard.cli.agent",
]

# Options the GUI accepts too (each takes a value): ``modelyard --store DIR`` opens the GUI on DIR.
GUI_OPTIONS: tuple[str, ...] = ("--store", "--db-url")
_NO_GUI_FLAGS = frozenset({"--version", "-h", "--help"})

EPILOG = """\
The store is the folder named by --store, else $MODELYARD_STORE, else the platform's
default data folder; --db-url (else $MODELYARD_DB_URL) puts its database on a server.
Global options may come before or after the command.

exit codes:
  0  success
  1  failure (the error is printed on stderr; with --json also on stdout)
  2  usage error (a bad command line)
  3  a gate or check did not pass

Run 'modelyard' with no command to open the desktop app.
See docs/cli.md for every command and its --json output."""


def wants_gui(args: Sequence[str]) -> bool:
    """True when ``args`` ask for the desktop app: nothing but GUI options (``--store DIR``...).

    Any command word, ``--version``, ``-h``/``--help`` or another option means the command
    line (which reports a usage error for options that need a command). macOS's ``-psn_...``
    argument from the Finder is ignored.
    """
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _NO_GUI_FLAGS:
            return False
        if arg in GUI_OPTIONS:
            if i + 1 >= len(args):
                return False  # missing value: let argparse say so
            i += 2
            continue
        if any(arg.startswith(opt + "=") for opt in GUI_OPTIONS) or arg.startswith("-psn_"):
            i += 1
            continue
        return False  # a command, '--', or an option only the CLI knows
    return True


def _common_parent() -> argparse.ArgumentParser:
    """Global options, added to every parser so they may come before or after the command.

    Defaults are SUPPRESS so a sub-parser that did not see an option does not overwrite what
    the main parser saw; read them with ``getattr(args, name, default)`` (see _common).
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options")
    group.add_argument("--store", metavar="DIR", default=argparse.SUPPRESS,
                       help="the store folder (default: $MODELYARD_STORE, else the platform's data folder)")
    group.add_argument("--db-url", metavar="URL", dest="db_url", default=argparse.SUPPRESS,
                       help="SQLAlchemy URL of the store's database (default: $MODELYARD_DB_URL, "
                            "else the SQLite file in the store folder)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print machine-readable JSON on stdout")
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="also print jobs' log lines on stderr")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_parent()
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Modelyard: carry a small team's machine-learning models through their whole life.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"modelyard {__version__}")
    nouns = parser.add_subparsers(dest="noun", metavar="COMMAND", title="commands")
    nouns.required = True
    for name in NOUN_MODULES:
        importlib.import_module(name).register(nouns, common)
    return parser


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILURE


def _report(exc: BaseException, exit_code: int, json_mode: bool) -> None:
    if json_mode:
        try:
            print_json(error_json(exc, exit_code))
        except (OSError, ValueError):
            pass
    if isinstance(exc, ModelyardError):
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
    else:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)


def run_cli(args: Sequence[str] | None = None) -> int:
    """Parse ``args`` (default: ``sys.argv[1:]``), run the command and return its exit code."""
    argv = list(sys.argv[1:] if args is None else args)
    parser = build_parser()
    out, err = sys.stdout, sys.stderr
    # Whatever a command prints (names from the store or a bundle, messages echoing them) cannot
    # act on the terminal: control characters are written as escapes.
    sys.stdout, sys.stderr = SafeText(out), SafeText(err)
    try:
        try:
            ns = parser.parse_args(argv)
        except SystemExit as exc:  # usage error (2), or --help / --version (0)
            return _exit_code(exc.code)
        return _run(ns, bool(getattr(ns, "json", False)))
    finally:
        sys.stdout, sys.stderr = out, err


def _run(ns: argparse.Namespace, json_mode: bool) -> int:
    try:
        return int(ns.func(ns) or 0)
    except SystemExit as exc:  # a handler called parser.error() or sys.exit()
        return _exit_code(exc.code)
    except ModelyardError as exc:
        code = int(getattr(exc, "exit_code", EXIT_FAILURE))
        _report(exc, code, json_mode)
        return code
    except KeyboardInterrupt:
        if json_mode:
            print(to_json_text({"error": {"message": "cancelled", "hint": None, "exit_code": EXIT_FAILURE}}))
        print("error: cancelled", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # e.g. 'modelyard jobs list | head': stop quietly
        _silence_stdout()
        return EXIT_FAILURE
    except OSError as exc:  # a file or disk problem no command turned into a message: still one line
        from modelyard.core.common.outputs import file_error

        _report(file_error(exc), EXIT_FAILURE, json_mode)
        if getattr(ns, "verbose", False):
            traceback.print_exception(exc, file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - a bug: say so, with the traceback
        _report(exc, EXIT_FAILURE, json_mode)
        return EXIT_FAILURE


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main() -> int:
    return run_cli(sys.argv[1:])
