"""What every panel shares: a title and icon for the sidebar, a store to show, an empty state."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtWidgets import QStackedLayout, QWidget

from modelyard.core.jobs.runner import JobOutcome, JobSpec
from modelyard.core.store import Store
from modelyard.ui.common.client import CoreClient
from modelyard.ui.common.jobrunner import JobHandle, JobRunner
from modelyard.ui.common.widgets import EmptyState


class Panel(QWidget):
    title: ClassVar[str] = ""
    icon_name: ClassVar[str] = "info"
    empty_headline: ClassVar[str] = ""
    empty_body: ClassVar[str] = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{type(self).__name__}")
        self.store: Store | None = None
        self.runner: JobRunner | None = None
        self.client: CoreClient | None = None  # the window's client of the core (ui/common/client.py)
        self.stack = QStackedLayout(self)
        self.empty = EmptyState(self.icon_name, self.empty_headline, self.empty_body, self)
        self.stack.addWidget(self.empty)
        self.content = self.build_content()
        if self.content is not None:
            self.stack.addWidget(self.content)

    def build_content(self) -> QWidget | None:
        """The panel's real view, shown once the store has something for it. None until then."""
        return None

    def set_store(self, store: Store, runner: JobRunner, client: CoreClient | None = None) -> None:
        if self.runner is not None:
            self.runner.job_finished.disconnect(self.on_job_finished)
        if self.client is not None:
            self.client.changed.disconnect(self.on_changed)
        self.store, self.runner = store, runner
        self.client = client if client is not None else CoreClient(store, self)
        runner.job_finished.connect(self.on_job_finished)
        self.client.changed.connect(self.on_changed)
        self.refresh()

    def on_changed(self, topics: frozenset[str]) -> None:
        """Something in the store changed (``topics``: see ui/common/client.py); refresh what is shown."""

    @property
    def room(self) -> str:
        """The lifecycle room this panel shows (``modelyard.ui.<room>.panel``): what
        ``client.navigate`` names."""
        parts = type(self).__module__.split(".")
        return parts[2] if len(parts) > 3 and parts[:2] == ["modelyard", "ui"] else type(self).__name__

    def show_panel(self) -> None:
        """Ask the window to show this panel (through the client: never through the window)."""
        if self.client is not None:
            self.client.navigate.emit(self.room, None)

    def start_job(self, spec: JobSpec) -> JobHandle:
        """Run a job on the window's runner (the window shows and selects it in the Jobs dock
        when the runner says it started)."""
        assert self.runner is not None
        return self.runner.submit(spec)

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        """Any job of this store ended; panels refresh when it was one of theirs."""

    def has_content(self) -> bool:
        return False

    def refresh(self) -> None:
        show = self.content is not None and self.has_content()
        self.stack.setCurrentWidget(self.content if show else self.empty)

    def shutdown(self) -> None:
        """The window is closing: stop timers and wait for background reads."""

    def refresh_icons(self) -> None:
        self.empty.refresh_icon()
