"""The Pipelines panel's fixtures: a window over a new store, and pipeline files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def window(qtbot, store, monkeypatch):
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow

    errors: list[str] = []
    for module in ("panel", "sources"):
        monkeypatch.setattr(f"modelyard.ui.pipelines.{module}.show_error",
                            lambda parent, title, exc: errors.append(f"{title}: {exc} {getattr(exc, 'hint', '') or ''}"))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.settings.setValue("confirm/quit_with_jobs", "false")
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a pipeline file (dedented YAML) into the test's folder; returns its path."""

    def write(text: str, name: str = "pipeline.yml", folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write
