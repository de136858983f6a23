"""A desktop notification: the system tray's balloon where there is one, and always a line in the
window's status bar (``client.message``). Panels that notify (Monitoring's watch folders, a
pipeline run that failed) share this."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from modelyard.ui.common import theme

STATUS_BAR_MS = 15_000


def desktop_notify(owner: QWidget, tray: QSystemTrayIcon | None, title: str, message: str,
                   client: Any = None) -> QSystemTrayIcon | None:
    """Show ``title``: ``message``; returns the tray icon (made on first use, owned by ``owner``;
    pass it back next time), or None where the desktop has no tray."""
    if QSystemTrayIcon.isSystemTrayAvailable():
        if tray is None:
            tray = QSystemTrayIcon(theme.icon("app"), owner)
            tray.show()
        tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 10_000)
    if client is not None:
        client.message.emit(f"{title}: {message}", STATUS_BAR_MS)  # the window's status bar
    return tray
