"""Running the CLI from tests: exit code and captured output.

Every run is checked for what a user must never see: a Python traceback or an "Unexpected
error" (a bug that escaped as one). :func:`cli` runs in-process; :func:`run_modelyard` runs
``python -m modelyard`` in a child process. A test that injects a bug on purpose passes
``bug_expected=True``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from modelyard.cli.main import build_parser, run_cli

APP_DIR = Path(__file__).resolve().parent.parent / "app"

NEVER_SHOWN = ("Traceback (most recent call last)", "Unexpected error")
# C0/C1 controls but line feed and tab, line/paragraph separators, bidirectional overrides
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_no_traceback(args: Any, *outputs: str) -> None:
    """Fail when any output of ``modelyard ARGS`` shows a traceback or an unexpected error, or holds a
    terminal control character (an escape sequence from a name would act on the user's terminal)."""
    for text in outputs:
        for marker in NEVER_SHOWN:
            assert marker not in text, (
                f"'modelyard {' '.join(map(str, args))}' printed {marker!r}, a bug a user must never see:\n{text}")
        controls = sorted({c for c in text if CONTROL.match(c)})
        assert not controls, f"'modelyard {' '.join(map(str, args))}' printed control characters {controls}:\n{text!r}"


# --------------------------------------------------------------------------- options named in messages

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_CLOSERS = ("'", '"', "`")
_ENDERS = (*_CLOSERS, ")", "]", ".", ",", ";")


@functools.cache
def parser_tree() -> argparse.ArgumentParser:
    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parser_options(parser: argparse.ArgumentParser) -> set[str]:
    """The options ``parser`` accepts; for a noun without its verb, those of any of its verbs."""
    opts = {s for a in parser._actions for s in a.option_strings}
    for sub in _subcommands(parser).values():
        opts |= parser_options(sub)
    return opts


def command_of(args: Sequence[str]) -> tuple[list[str], argparse.ArgumentParser]:
    """The command ``modelyard ARGS`` runs (e.g. ``['dataset', 'split']``) and its parser."""
    parser, path = parser_tree(), []
    for token in args:
        subs = _subcommands(parser)
        if token in subs:
            parser = subs[token]
            path.append(token)
    return path, parser


def option_mentions(text: str) -> list[tuple[str, list[str] | None]]:
    """Each ``--option`` in ``text`` with the command it is given to: the command of the
    ``modelyard NOUN VERB ...`` mention it follows (up to the mention's closing quote, the line's
    end or the next mention), else None (the command the message is about)."""
    found: list[tuple[str, list[str] | None]] = []
    for line in text.splitlines():
        command: list[str] | None = None
        parser: argparse.ArgumentParser | None = None
        for token in line.split():
            bare = token.strip("'\"`([{,.;:)]}")
            if bare == "modelyard":
                command, parser = [], parser_tree()
            elif command is not None and parser is not None and bare in _subcommands(parser):
                command.append(bare)
                parser = _subcommands(parser)[bare]
            for opt in OPTION.findall(token):
                found.append((opt, None if command is None else list(command)))
            if command is not None and token.endswith(_ENDERS):  # a closing quote, bracket, . , ;
                command, parser = None, None
    return found


def unknown_options(text: str, context: Sequence[str] | None) -> list[str]:
    """The options ``text`` names that the command they are given to does not know.

    An option inside a ``modelyard COMMAND ...`` mention is checked against that command (a
    noun alone: any of its verbs); any other against ``context`` (a command path), or, when the
    context is unknown (None), against every command of the CLI.
    """
    bad = []
    everything = parser_options(parser_tree())
    for opt, command in option_mentions(text):
        path = command if command is not None else context
        if path is None:
            known = everything
        else:
            _, parser = command_of(path)
            known = parser_options(parser)
        if opt not in known:
            where = f"'modelyard {' '.join(path)}'" if path is not None else "any command"
            bad.append(f"{opt} (not an option of {where})")
    return bad


def assert_hints_name_known_options(args: Sequence[str], err: str) -> None:
    """Every option a ``hint:`` line names is one the command it names (else the command run) knows."""
    path, _ = command_of(args)
    for line in err.splitlines():
        if line.startswith("hint: "):
            bad = unknown_options(line[len("hint: "):], path)
            assert not bad, f"'modelyard {' '.join(args)}' gave a hint naming {', '.join(bad)}: {line}"


# --------------------------------------------------------------------------- running the CLI


def cli(capsys: pytest.CaptureFixture[str], *args: str, bug_expected: bool = False) -> tuple[int, str, str]:
    """``modelyard ARGS`` -> (exit code, stdout, stderr)."""
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    if not bug_expected:
        assert_no_traceback(args, out, err)
    assert_hints_name_known_options(args, err)
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """``modelyard ARGS --json`` -> (exit code, parsed stdout, stderr)."""
    code, out, err = cli(capsys, *args, "--json")
    return code, json.loads(out), err


def subprocess_env() -> dict[str, str]:
    """The environment for a child ``python -m modelyard``: this checkout's package first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_modelyard(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m modelyard ARGS`` in a child process (text output captured), checked like :func:`cli`."""
    proc = subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True,
                          env=kwargs.pop("env", None) or subprocess_env(), timeout=timeout, **kwargs)
    assert_no_traceback(args, proc.stdout, proc.stderr)
    return proc
