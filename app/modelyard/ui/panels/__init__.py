"""The four panels of the main window. Each is a :class:`Panel`; see docs/ui.md for conventions."""

from modelyard.ui.panels.base import Panel
from modelyard.ui.panels.datasets import DatasetsPanel
from modelyard.ui.panels.experiments import ExperimentsPanel
from modelyard.ui.panels.monitoring import MonitoringPanel
from modelyard.ui.panels.registry import RegistryPanel

ALL_PANELS: tuple[type[Panel], ...] = (DatasetsPanel, ExperimentsPanel, RegistryPanel, MonitoringPanel)

__all__ = ["ALL_PANELS", "DatasetsPanel", "ExperimentsPanel", "MonitoringPanel", "Panel", "RegistryPanel"]
