"""A registry change decided on what another member has since changed is refused in the Registry
panel: the stale bar names who changed the model and when, nothing is overwritten, and Reload
shows the model as it is now."""

from __future__ import annotations

import re

import pytest
from factories import settle
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.ui.registry.dialogs import ChangeDialog, GatesDialog
from PySide6.QtWidgets import QPushButton
from test_ui_registry import click, comment_and_ok, panel_of, version_rows, when_modal

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def three_versions(store: Store) -> None:
    for i in range(3):
        with tracking.start_run("churn", store=store, name=f"r{i}") as run:
            run.log_metrics({"accuracy": 0.8 + i / 100, "f1": 0.7 + i / 100})
            run.log_bytes(f"model {i}".encode(), "model/model.joblib", kind="model")  # never loaded here
        registry.register(store, run.id, "churn")
    registry.set_alias(store, "churn@v1", "champion", comment="first")


def by_alice(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Another member's change, made behind the panel's back (the panel does not refresh)."""
    monkeypatch.setenv("MODELYARD_USER", "alice")
    try:
        change()
    finally:
        monkeypatch.setenv("MODELYARD_USER", "tester")


def showing_three_versions(qtbot, window, store):
    """The Registry panel showing churn@v2 of :func:`three_versions`."""
    three_versions(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version("churn@v2")
    settle(qtbot, window)
    return panel


def test_a_stale_champion_move_is_refused_with_who_and_when_and_reload_shows_the_new_state(
        qtbot, window, store, monkeypatch) -> None:
    panel = showing_three_versions(qtbot, window, store)
    assert panel.model_revision == 1 and not panel.stale_bar.isVisible()

    def decide_while_alice_moves_it(d: ChangeDialog) -> None:
        assert "<b>champion</b> is on v1" in d.summary.text()  # what bob decides on
        by_alice(monkeypatch, lambda: registry.set_alias(store, "churn@v3", "champion", comment="alice: v3"))
        comment_and_ok(qtbot, "bob: v2 is better", "champion")(d)

    before = registry.timeline(store, "churn")
    when_modal(qtbot, ChangeDialog, decide_while_alice_moves_it)
    click(qtbot, panel.alias_button)
    qtbot.waitUntil(panel.stale_bar.isVisible, timeout=5000)
    settle(qtbot, window)
    text = panel.stale_bar.text()
    assert re.fullmatch(rf"Your change \(churn@v2 as champion\) was not made: alice moved champion to churn@v3 at {WHEN}, "
                        r"after you loaded churn\. "
                        r"Reload to see the model as it is now, then decide again\.", text), text
    assert registry.get_version(store, "churn@champion").ref == "churn@v3"  # alice's move stands
    assert len(registry.timeline(store, "churn")) == len(before) + 1  # alice's, and nothing of bob's
    assert ("v1", "champion", "") in version_rows(panel)  # the panel still shows what bob saw
    assert not window.shown_errors  # the bar, not an error box

    reload = panel.stale_bar.findChild(QPushButton, "staleReloadButton")
    click(qtbot, reload)
    qtbot.waitUntil(lambda: ("v3", "champion", "") in version_rows(panel), timeout=5000)
    settle(qtbot, window)
    assert not panel.stale_bar.isVisible()
    assert panel.model_revision == 2 and "<b>champion</b> → v3" in panel.facts.text()

    # decided again on the reloaded model: it goes through
    panel.select_version("churn@v2")
    settle(qtbot, window)
    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "bob: v2 after all", "champion"))
    click(qtbot, panel.alias_button)
    qtbot.waitUntil(lambda: registry.get_version(store, "churn@champion").ref == "churn@v2", timeout=5000)
    settle(qtbot, window)
    assert not panel.stale_bar.isVisible() and not window.shown_errors


def test_stale_gates_and_stage_changes_are_refused_in_the_bar(qtbot, window, store, monkeypatch) -> None:
    panel = showing_three_versions(qtbot, window, store)

    def gates_after_alice(d: GatesDialog) -> None:
        by_alice(monkeypatch, lambda: registry.set_stage(store, "churn@v1", "Production", comment="alice: live"))
        d.min_checks["accuracy"].setChecked(True)
        qtbot.keyClicks(d.comment, "bob's policy")
        click(qtbot, next(b for b in d.buttons.buttons() if d.buttons.buttonRole(b).name == "AcceptRole"))

    when_modal(qtbot, GatesDialog, gates_after_alice)
    click(qtbot, panel.gates_button)
    qtbot.waitUntil(panel.stale_bar.isVisible, timeout=5000)
    settle(qtbot, window)
    assert re.match(rf"Your change \(the gates of churn\) was not made: alice moved v1 to Production at {WHEN}, "
                    r"after you loaded churn\.",
                    panel.stale_bar.text())
    assert registry.get_model(store, "churn").gates is None

    click(qtbot, panel.stale_bar.reload_button)
    qtbot.waitUntil(lambda: not panel.stale_bar.isVisible() and ("v1", "champion", "Production")
                    in version_rows(panel), timeout=5000)
    settle(qtbot, window)

    def stage_after_alice(d: ChangeDialog) -> None:
        by_alice(monkeypatch, lambda: registry.set_alias(store, "churn@v2", "challenger", comment="alice: try v2"))
        comment_and_ok(qtbot, "bob stages v2", "Staging")(d)

    when_modal(qtbot, ChangeDialog, stage_after_alice)
    click(qtbot, panel.stage_button)
    qtbot.waitUntil(panel.stale_bar.isVisible, timeout=5000)
    settle(qtbot, window)
    assert panel.stale_bar.text().startswith("Your change (churn@v2 to Staging) was not made: alice put challenger on churn@v2 at ")
    assert registry.get_version(store, "churn@v2").stage == "None"
    click(qtbot, panel.stale_bar.close_button)  # closing changes nothing either
    assert not panel.stale_bar.isVisible() and not window.shown_errors
