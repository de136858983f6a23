"""The five panels of the main window. Each is a :class:`Panel`; see docs/ui.md for conventions."""

from modelyard.ui.common.panel import Panel
from modelyard.ui.datasets.panel import DatasetsPanel
from modelyard.ui.experiments.panel import ExperimentsPanel
from modelyard.ui.monitoring.panel import MonitoringPanel
from modelyard.ui.pipelines.panel import PipelinesPanel
from modelyard.ui.registry.panel import RegistryPanel

ALL_PANELS: tuple[type[Panel], ...] = (DatasetsPanel, ExperimentsPanel, RegistryPanel, MonitoringPanel,
                                       PipelinesPanel)

__all__ = ["ALL_PANELS", "DatasetsPanel", "ExperimentsPanel", "MonitoringPanel", "Panel", "PipelinesPanel", "RegistryPanel"]
