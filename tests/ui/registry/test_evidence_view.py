"""The evidence view renders a snapshot document as a reviewer reads it (verdict in words, metrics
with intervals, the group table with a failing fairness gate marked, the charts, the card's
review fields), says what to do when there is nothing to show; the card editor saves the four
review fields with one comment through real keys and clicks; a registration in the window starts
the evidence job."""

from __future__ import annotations

from typing import Any

import pytest
from evidence_fixture import CARD, snapshot_document
from factories import settle
from modelyard.core.experiments import tracking
from modelyard.core.registry import cards
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.ui.registry.dialogs import NotesDialog
from modelyard.ui.registry.evidence_view import EvidenceView
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox
from test_ui_registry import click, make_run, panel_of, when_modal


@pytest.fixture
def view(qtbot) -> EvidenceView:
    v = EvidenceView()
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    qtbot.waitExposed(v)
    return v


def texts(model: Any, column: int) -> list[str]:
    return [model.data(model.index(r, column)) for r in range(model.rowCount())]


def test_a_snapshot_shows_its_verdict_metrics_groups_charts_and_fields(qtbot, view: EvidenceView) -> None:
    view.set_snapshot(snapshot_document(card=CARD | {"known_limitations": ""}))
    assert view.stack.currentWidget() is view.scroll
    banner = view.banner.text()
    assert "The gates block this promotion" in banner and "1 of 4 checks fail" in banner
    assert "accuracy gap between groups of sex is 0.083 (F 0.861, M 0.944), above the maximum 0.05." in banner
    assert "churn@v3 → champion (replacing churn@v2)" in banner
    # the gates as they were set (a replay shows its own thresholds)
    assert view.gates_label.text() == ("<i>Gates today:</i> min accuracy &gt;= 0.85 · beat the champion on accuracy (higher is "
                                       "better) · accuracy gap between groups of sex at most 0.05 · accuracy ratio "
                                       "between groups of age_band at least 0.8")
    assert view.notice.isHidden() and not view.evidence_box.isHidden()
    assert "4,000 held-out rows" in view.rows_label.text() and "1,000 bootstrap resamples" in view.rows_label.text()

    mm = view.metrics_model
    assert texts(mm, 0) == ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss (lower is better)"]
    assert mm.data(mm.index(0, 1)) == "0.912 [0.903, 0.921]" and mm.data(mm.index(0, 2)) == "0.897 [0.887, 0.907]"
    assert mm.data(mm.index(0, 3)) == "0.015 [0.008, 0.022]"
    assert texts(mm, 4) == ["better", "better", "better", "no clear difference", "better"]
    assert mm.headerData(2, Qt.Orientation.Horizontal) == "Champion churn@v2"

    # a table per sensitive column: a row per metric, a column per group, then the gap and the ratio
    (t1, sex, gm), (t2, band, bm) = view.group_views
    assert "By sex" in t1.text() and "By age_band" in t2.text() and sex.isVisible() and band.isVisible()
    assert gm.headers == ("Metric", "F (1,960)", "M (2,040)", "Gap", "Ratio")
    assert bm.headers == ("Metric", "18-30 (1,130)", "31-50 (1,720)", "51+ (1,150)", "Gap", "Ratio")
    assert texts(gm, 0) == ["accuracy", "f1 macro"] and gm.data(gm.index(0, 1)) == "0.861 [0.846, 0.876]"
    # the sex column's accuracy breaks its gate: its gap and ratio are marked, nothing else is
    assert gm.failing_cells() == [(0, 3), (0, 4)] and bm.failing_cells() == []
    assert (gm.data(gm.index(0, 3)), gm.data(gm.index(0, 4))) == ("✗ 0.083", "0.912")
    assert gm.data(gm.index(0, 3), Qt.ItemDataRole.BackgroundRole) is not None
    assert "Fails its fairness gate: gap 0.083 above the maximum 0.05." in gm.data(gm.index(0, 3),
                                                                                   Qt.ItemDataRole.ToolTipRole)
    for model, row, col in ((gm, 1, 3), (gm, 1, 4), (bm, 0, 4), (bm, 0, 5)):
        assert model.data(model.index(row, col), Qt.ItemDataRole.BackgroundRole) is None
        assert not model.data(model.index(row, col)).startswith("✗")
    assert bm.data(bm.index(0, 4)) == "0.012" and bm.data(bm.index(0, 5)) == "0.987"
    assert "accuracy by sex</b> fails its fairness gate" in view.groups_note.text()
    # every row shows: the tables are as tall as their rows
    assert band.height() >= band.rowHeight(0) * bm.rowCount() + band.horizontalHeader().height()

    card = view.card_label.text()
    assert "Monthly churn scoring" in card and "Known limitations</b> <span" in card and "not written" in card
    assert "near copies (r = 0.96)" in view.importance_note.text()

    # the charts once pyqtgraph is loaded: importance (most important on top), three PDPs, calibration
    qtbot.waitUntil(lambda: "calibrationPlot" in view.plots, timeout=20_000)
    imp = view.plots["importancePlot"]
    ticks = imp.getAxis("left")._tickLevels[0]
    assert [t for _, t in sorted(ticks)][-1] == "tenure_months" and [t for _, t in sorted(ticks)][0] == "noise"
    assert all(view.plots[f"pdpPlot{i}"].isVisible() for i in range(3))
    cal = view.plots["calibrationPlot"].getPlotItem().listDataItems()
    assert len(cal) == 2 and list(cal[0].getData()[0]) == [0, 1]  # the diagonal, then the curve
    assert view.charts_note.text() == ""


def test_a_fair_snapshot_passes_and_nothing_is_marked(qtbot, view: EvidenceView) -> None:
    view.set_snapshot(snapshot_document(fair=True, kind="decision"))
    assert "As it was when decided on 2026-12-06 14:05 by dana." in view.rows_label.text()  # a replay says so
    assert "The gates pass" in view.banner.text() and "block" not in view.banner.text()
    (_t, _v, gm), (_t2, _v2, bm) = view.group_views
    assert gm.failing_cells() == bm.failing_cells() == [] and "fails its fairness gate" not in view.groups_note.text()
    assert (gm.data(gm.index(0, 3)), gm.data(gm.index(0, 4))) == ("0.023", "0.976")
    assert "not written" not in view.card_label.text()


def test_empty_states_say_what_to_do(qtbot, view: EvidenceView) -> None:
    view.set_snapshot(None)
    assert view.stack.currentWidget() is view.empty and "Nothing to review yet" in view.empty.text()
    # no evidence: the verdict, the gates and the card still show, with what to do about the evidence
    view.set_snapshot(snapshot_document(evidence=False, card=CARD | {"ethical_considerations": ""}))
    assert view.stack.currentWidget() is view.scroll and view.evidence_box.isHidden()
    text = view.notice.text()
    assert "No evidence yet for churn@v3" in text and "modelyard model evidence churn@v3" in text
    assert "Compute evidence" in text and not view.notice.isHidden()
    assert "accuracy gap between groups of sex at most 0.05" in view.gates_label.text()
    assert "Ethical considerations</b> <span" in view.card_label.text()
    view.show_computing("churn@v3")
    assert view.stack.currentWidget() is view.empty
    assert "Evidence for churn@v3 is being computed…" in view.empty.text()
    # without a report the gate settings are put in words
    doc = snapshot_document(evidence=False)
    doc["gate_report"] = None
    view.set_snapshot(doc)
    assert view.gates_label.text() == ("<i>Gates today:</i> accuracy at least 0.85 · beat the champion on accuracy · accuracy gap "
                                       "between groups of sex at most 0.05 · accuracy ratio between groups of "
                                       "age_band at least 0.8")
    # a snapshot with evidence but without explanations says which are missing
    doc = snapshot_document()
    doc["evidence"]["partial_dependence"] = []
    doc["evidence"]["groups"] = []
    view.set_snapshot(doc)
    assert view.stack.currentWidget() is view.scroll and all(v.isHidden() for _t, v, _m in view.group_views)
    assert "No sensitive columns were marked" in view.groups_note.text()
    qtbot.waitUntil(lambda: "calibrationPlot" in view.plots, timeout=20_000)
    assert view.charts_note.text() == "Not computed: partial dependence."
    assert not any(view.plots[f"pdpPlot{i}"].isVisible() for i in range(3))


def make_version(store: Store) -> registry.ModelVersionInfo:
    with tracking.start_run("churn", store=store, spec={"model": "knn"}) as run:
        run.log_metrics({"accuracy": 0.9})
        run.log_bytes(b"stand-in", "model/model.joblib", kind="model")
    return registry.register(store, run.id, "churn")


def test_the_card_editor_saves_the_four_review_fields_with_one_comment(qtbot, window, store: Store) -> None:
    info = make_version(store)
    cards.set_card_notes(store, info.ref, intended_use="Old use.", notes="keep me", comment="first")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version(info.ref)
    settle(qtbot, window)
    seen: list[NotesDialog] = []
    failed: list[BaseException] = []

    def write(d: NotesDialog) -> None:
        seen.append(d)
        try:
            fill(d)
        except BaseException as exc:  # an assertion in a modal's callback must end the dialog, not hang it
            failed.append(exc)
            d.reject()

    def fill(d: NotesDialog) -> None:
        assert d.intended_use.toPlainText() == "Old use." and d.notes.toPlainText() == "keep me"
        assert "revision 1 of the card" in d.intro.text()
        assert "required" in d.titles["known_limitations"].text()
        assert "required before a promotion can be requested" in d.intro.text()
        assert "required" not in d.titles["intended_use"].text() and "required" not in d.titles["notes"].text()
        save = d.buttons.button(QDialogButtonBox.StandardButton.Save)
        d.intended_use.selectAll()
        qtbot.keyClicks(d.intended_use, "Monthly churn scoring.")
        qtbot.keyClicks(d.out_of_scope_uses, "Pricing <b>or</b> credit.")
        qtbot.keyClicks(d.known_limitations, "Trained on 2025 data.")
        assert "required" not in d.titles["known_limitations"].text()  # written: no longer marked
        qtbot.keyClicks(d.ethical_considerations, "Less accurate for women.")
        assert not save.isEnabled()  # a comment first
        qtbot.keyClicks(d.comment, "review fields")
        assert save.isEnabled()
        click(qtbot, save)

    when_modal(qtbot, NotesDialog, write)
    click(qtbot, panel.edit_notes_button)
    qtbot.waitUntil(lambda: bool(failed) or cards.model_card(store, info.ref)["notes_revision"] == 2, timeout=10_000)
    assert not failed, failed
    settle(qtbot, window)
    card = cards.model_card(store, info.ref)
    assert card["notes"] == {"intended_use": "Monthly churn scoring.", "out_of_scope_uses": "Pricing <b>or</b> credit.",
                             "known_limitations": "Trained on 2025 data.",
                             "ethical_considerations": "Less accurate for women.", "notes": "keep me"}
    latest = cards.card_history(store, info.ref)[0]
    assert latest["comment"] == "review fields" and latest["fields"] == list(cards.REVIEW_FIELDS)
    assert card["review_missing"] == []
    # the card in the window shows them, the user's markup as text
    qtbot.waitUntil(lambda: panel.card_browser is not None
                    and "Pricing <b>or</b> credit." in panel.card_browser.toPlainText(), timeout=5000)
    assert "required" not in panel.card_browser.toPlainText().split("Evidence for a promotion")[0]
    assert not window.shown_errors


def test_a_registration_in_the_window_starts_the_evidence_job(qtbot, window, store: Store) -> None:
    run_id = make_run(store, 0.9)
    panel = panel_of(window)
    panel.register_run(run_id, "churn", "first")
    qtbot.waitUntil(lambda: any(h.spec.kind == "registry.evidence" for h in window.runner.handles()), timeout=10_000)
    (handle,) = [h for h in window.runner.handles() if h.spec.kind == "registry.evidence"]
    assert handle.spec.params["ref"] == "churn@v1"
    qtbot.waitUntil(lambda: not window.runner.running(), timeout=60_000)
