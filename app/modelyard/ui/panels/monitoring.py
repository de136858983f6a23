"""The Monitoring panel."""

from __future__ import annotations

from modelyard.ui.panels.base import Panel


class MonitoringPanel(Panel):
    title = "Monitoring"
    icon_name = "monitoring"
    empty_headline = "Nothing monitored yet"
    empty_body = (
        "Once a model is registered, drop a batch of new data on it here to check for drift against its training data, and retrain when the world has moved."
    )
