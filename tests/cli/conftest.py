"""Fixtures of the CLI tests: ``store_dir`` is a store the CLI has initialised."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelyard.cli.main import run_cli


@pytest.fixture
def store_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A freshly initialised store folder (``modelyard store init``; its output is discarded)."""
    root = tmp_path / "store"
    assert run_cli(["store", "init", str(root)]) == 0
    capsys.readouterr()
    return root
