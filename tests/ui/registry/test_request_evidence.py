"""The Request promotion dialog's "Compute evidence" starts the same evidence job a registration
starts, and the dialog follows it: when the job ends, the evidence shows as computed against the
champion and the button goes away. A real model on real held-out rows (the garden store)."""

from __future__ import annotations

from pathlib import Path

from factories import make_garden_store, open_window, settle, train_registered
from modelyard.core.registry.review import evidence, policy
from modelyard.ui.registry.request_dialog import RequestDialog
from PySide6.QtCore import Qt
from test_ui_registry import when_modal


def test_compute_evidence_in_the_request_dialog_runs_the_job_and_the_dialog_follows_it(qtbot, tmp_path: Path) -> None:
    store, champion = make_garden_store(tmp_path / "store")
    try:
        candidate = train_registered(store, "flowers", params={"C": 0.5})
        policy.set_review_required(store, True, comment="every promotion is reviewed")
        assert evidence.latest_evidence(store, candidate.ref) is None
        window = open_window(qtbot, store, (1024, 640))
        panel = window.panels[2]
        panel.refresh(select="flowers")
        qtbot.waitUntil(lambda: panel.version is not None and panel.version.ref == candidate.ref, timeout=15_000)
        settle(qtbot, window)
        seen: list[str] = []

        def compute_and_wait(d: RequestDialog) -> None:
            qtbot.waitUntil(lambda: d.readiness is not None, timeout=10_000)
            seen.append(d.evidence_label.text())
            assert d.evidence_button.isVisible() and d.evidence_button.isEnabled()
            qtbot.mouseClick(d.evidence_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: d.job is None and d.readiness is not None and d.readiness.evidence_ok,
                            timeout=120_000)
            seen.append(d.evidence_label.text())
            seen.append(str(d.evidence_button.isVisible()))
            d.reject()

        when_modal(qtbot, RequestDialog, compute_and_wait)
        panel.make_champion(candidate.ref)
        qtbot.waitUntil(lambda: len(seen) == 3, timeout=150_000)
        assert f"No evidence yet for {candidate.ref}" in seen[0]
        assert "Evidence computed" in seen[1] and champion.ref in seen[1]
        assert seen[2] == "False"
        stored = evidence.latest_evidence(store, candidate.ref)
        assert stored is not None and stored.champion == champion.ref
        assert stored.payload["rows"]["part"] == "test" and stored.payload["metrics"]
    finally:
        store.close()

