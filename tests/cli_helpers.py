"""Running the CLI in-process from tests: exit code and captured output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from modelyard.cli.main import run_cli


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``modelyard ARGS`` -> (exit code, stdout, stderr)."""
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """``modelyard ARGS --json`` -> (exit code, parsed stdout, stderr)."""
    code, out, err = cli(capsys, *args, "--json")
    return code, json.loads(out), err
