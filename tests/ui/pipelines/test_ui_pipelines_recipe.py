"""The lifecycle as one recipe (import -> search -> gate -> register -> bundle -> check): the example
shipped in docs/examples/churn-pipeline/ run from the window — the Run button, the steps changing
colour, the history row, the records as buttons — and the same file through the Python API on
another store (tests/cli/test_pipeline_example.py runs it through the CLI): the same records each
way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from factories import settle_panel as settle
from modelyard.core.pipelines import catalog
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from panel_driving import click_node, fill_run_dialog, names, panel_of
from PySide6.QtCore import Qt

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "churn-pipeline"


def record_types(run: dict) -> dict[str, list[str]]:
    return {s["name"]: sorted(r["type"] for r in s.get("records") or []) for s in run["steps"]}


def test_the_example_run_from_the_window_makes_what_the_python_api_makes(qtbot, window, tmp_path):
    folder = tmp_path / "churn-pipeline"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("bundles", "__pycache__"))
    path = folder / "pipeline.yml"
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["churn-example"], timeout=10_000)
    settle(panel)
    assert ("search", "gate") in panel.graph.edges and ("gate", "register") in panel.graph.edges
    seen = fill_run_dialog(qtbot, {})  # the defaults, as the CLI runs it
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "param_min_accuracy=0.7" in seen
    qtbot.waitUntil(lambda: panel.graph.state_of("search") == "running", timeout=60_000)
    assert panel.graph.state_of("import") == "succeeded"
    assert panel.graph.state_of("register") == "pending"
    qtbot.waitUntil(lambda: (panel.run or {}).get("status") in ("succeeded", "failed", "blocked"), timeout=240_000)
    assert panel.run["status"] == "succeeded", panel.run.get("error")
    assert set(panel.graph.states().values()) == {"succeeded"}
    qtbot.waitUntil(lambda: [r.get("status") for r in panel.runs_model.rows] == ["succeeded"], timeout=10_000)
    assert panel.run["params"]["min_accuracy"] == 0.7
    # the register step's record shows its version in the Registry
    click_node(panel, "register")
    qtbot.waitUntil(lambda: any("churn@v1" in b.text() for b in panel.step_view.record_buttons), timeout=10_000)
    window_run = panel.run
    store = window.store
    champion = registry.get_version(store, "churn@champion")
    assert champion.ref == "churn@v1"
    assert list((folder / "bundles").glob("*.mybundle"))
    assert not panel.notifications

    # a gate it cannot pass: the search is reused, the gate blocks, what follows it is skipped
    panel.run_pipeline({"min_accuracy": 0.999}, ask=False)
    qtbot.waitUntil(lambda: (panel.run or {}).get("status") in ("succeeded", "failed", "blocked")
                    and panel.run["id"] != window_run["id"], timeout=120_000)
    assert panel.run["status"] == "blocked", panel.run.get("error")
    states = panel.graph.states()
    assert (states["search"], states["gate"], states["register"]) == ("cached", "blocked", "skipped")
    qtbot.waitUntil(lambda: bool(panel.notifications), timeout=10_000)
    title, message = panel.notifications[0]
    assert "churn-example" in title and "blocked" in title and "gate" in message
    assert registry.get_version(store, "churn@champion").ref == "churn@v1"  # nothing registered

    # the same file through the Python API, on a store of its own
    import modelyard

    other = Store.open(tmp_path / "other-store", create=True)
    try:
        outcome = modelyard.run_pipeline(path, store=other)
        assert outcome.status == "succeeded", outcome.error
        api_run = catalog.get_run(other, outcome.run_id).to_json()
        assert {s["name"]: s["status"] for s in api_run["steps"]} == \
            {s["name"]: s["status"] for s in window_run["steps"]}
        assert record_types(api_run) == record_types(window_run)
        assert registry.get_version(other, "churn@champion").ref == champion.ref
        step = {s["name"]: s for s in window_run["steps"]}
        other_step = {s["name"]: s for s in api_run["steps"]}
        assert step["import"]["outputs"]["content_hash"] == other_step["import"]["outputs"]["content_hash"]
        assert step["check"]["outputs"]["verdict"] == other_step["check"]["outputs"]["verdict"]
    finally:
        other.close()
