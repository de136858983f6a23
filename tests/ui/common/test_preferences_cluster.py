"""Preferences: "Searches run on" is checked, kept, and handed to the training jobs the window starts
(they inherit MODELYARD_CLUSTER; core/experiments/training/engine.py reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelyard.ui.common import dialogs
from PySide6.QtCore import QSettings, Qt


def test_a_cluster_typed_in_preferences_is_checked_kept_and_given_to_jobs(
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_CLUSTER", raising=False)
    monkeypatch.setattr(dialogs, "_ENV_AT_START", None)
    settings = QSettings(str(tmp_path / "modelyard.ini"), QSettings.Format.IniFormat)
    dialog = dialogs.PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    ok = dialog.findChild(dialogs.QDialogButtonBox).button(dialogs.QDialogButtonBox.StandardButton.Ok)

    qtbot.mouseClick(dialog.cluster_edit, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.cluster_edit, "ftp://sched")
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.cluster_error.isVisible()  # not accepted
    assert dialog.cluster_error.text().startswith("Searches run on: 'ftp://sched' is not a cluster.")
    assert "tcp://host:8786" in dialog.cluster_error.text()

    dialog.cluster_edit.selectAll()
    qtbot.keyClicks(dialog.cluster_edit, "10.0.0.5:8786")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert settings.value("training/cluster") == "tcp://10.0.0.5:8786"
    assert dialogs.os.environ["MODELYARD_CLUSTER"] == "tcp://10.0.0.5:8786"

    again = dialogs.PreferencesDialog(settings)
    qtbot.addWidget(again)
    assert again.cluster_edit.text() == "tcp://10.0.0.5:8786"
    again.cluster_edit.clear()
    again.accept()
    assert settings.value("training/cluster") == "" and "MODELYARD_CLUSTER" not in dialogs.os.environ
