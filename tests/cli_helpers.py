"""Running the CLI from tests: exit code and captured output.

Every run is checked for what a user must never see: a Python traceback or an "Unexpected
error" (a bug that escaped as one). :func:`cli` runs in-process; :func:`run_modelyard` runs
``python -m modelyard`` in a child process. A test that injects a bug on purpose passes
``bug_expected=True``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelyard.cli.main import run_cli

APP_DIR = Path(__file__).resolve().parent.parent / "app"

NEVER_SHOWN = ("Traceback (most recent call last)", "Unexpected error", "error: unexpected ")


def assert_no_traceback(args: Any, *outputs: str) -> None:
    """Fail when any output of ``modelyard ARGS`` shows a traceback or an unexpected error."""
    for text in outputs:
        for marker in NEVER_SHOWN:
            assert marker not in text, (
                f"'modelyard {' '.join(map(str, args))}' printed {marker!r}, a bug a user must never see:\n{text}")


def cli(capsys: pytest.CaptureFixture[str], *args: str, bug_expected: bool = False) -> tuple[int, str, str]:
    """``modelyard ARGS`` -> (exit code, stdout, stderr)."""
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    if not bug_expected:
        assert_no_traceback(args, out, err)
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
