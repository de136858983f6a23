"""The Registry panel's tests share a window on the test's store, its error boxes collected."""

from __future__ import annotations

import pytest
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    for module in ("panel", "changes", "version_actions"):
        monkeypatch.setattr(f"modelyard.ui.registry.{module}.show_error",
                            lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.settings.setValue("confirm/quit_with_jobs", "false")  # teardown of a failed test must not prompt
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
