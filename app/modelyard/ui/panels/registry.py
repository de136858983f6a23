"""The Registry panel."""

from __future__ import annotations

from modelyard.ui.panels.base import Panel


class RegistryPanel(Panel):
    title = "Registry"
    icon_name = "registry"
    empty_headline = "No registered models yet"
    empty_body = (
        "Register the best run of an experiment to give it versions, aliases such as <i>champion</i>, an audit trail, and a verified bundle to share or serve."
    )
