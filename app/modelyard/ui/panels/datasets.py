"""The Datasets panel."""

from __future__ import annotations

from modelyard.ui.panels.base import Panel


class DatasetsPanel(Panel):
    title = "Datasets"
    icon_name = "datasets"
    empty_headline = "No datasets yet"
    empty_body = (
        "Every model starts from an immutable dataset version. Drop a CSV, Parquet or Excel file here, or use <b>File › Import Dataset</b>, to create version v1 with its schema and profile."
    )
