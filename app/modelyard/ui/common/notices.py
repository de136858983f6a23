"""A desktop notice: a tray message where the desktop has a system tray, else the window's status bar.

Panels call :func:`notify` with a title and one line (what happened, what to do). The tray icon
is made on first use, owned by the widget's window (one per window), and shows the app's icon.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QSystemTrayIcon, QWidget

NOTICE_MS = 15_000  # how long a tray message or the status-bar line stays


def _tray(widget: QWidget) -> QSystemTrayIcon:
    window = widget.window()
    tray = window.findChild(QSystemTrayIcon, "modelyardTray")
    if tray is None:
        tray = QSystemTrayIcon(window.windowIcon(), window)
        tray.setObjectName("modelyardTray")
        tray.setToolTip("Modelyard")
        tray.show()
    return tray


def notify(widget: QWidget, title: str, line: str, client: Any = None) -> str:
    """Show ``title``/``line`` as a desktop notice for ``widget``'s window; returns where it went
    ("tray" or "status bar")."""
    if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
        _tray(widget).showMessage(title, line, QSystemTrayIcon.MessageIcon.Information, NOTICE_MS)
        return "tray"
    if client is not None:
        client.message.emit(f"{title}: {line}", NOTICE_MS)
    else:
        from PySide6.QtWidgets import QMainWindow

        window = widget.window()
        if isinstance(window, QMainWindow):
            window.statusBar().showMessage(f"{title}: {line}", NOTICE_MS)
    return "status bar"
