"""The Experiments panel."""

from __future__ import annotations

from modelyard.ui.panels.base import Panel


class ExperimentsPanel(Panel):
    title = "Experiments"
    icon_name = "experiments"
    empty_headline = "No experiments yet"
    empty_body = (
        "Runs you train here, and runs logged from scripts and notebooks with <code>modelyard.start_run()</code>, appear in this panel live, ready to compare and reproduce."
    )
