"""Render the real window offscreen to the PNGs used by README.md and docs/.

    python docs/screenshots/make_screenshots.py

Uses a throwaway store and config folder; runs real jobs so the Jobs dock shows real rows.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "app"))
tmp = Path(tempfile.mkdtemp(prefix="modelyard-shots-"))
os.environ["MODELYARD_CONFIG_DIR"] = str(tmp / "config")
os.environ["MODELYARD_USER"] = "ada"

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from modelyard.core import maintenance  # noqa: E402
from modelyard.core.store import Store  # noqa: E402
from modelyard.ui.app import create_application  # noqa: E402
from modelyard.ui.main_window import MainWindow  # noqa: E402
from modelyard.ui.settings import open_settings  # noqa: E402


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#1e1f22"), (QPalette.ColorRole.WindowText, "#dfe1e5"),
        (QPalette.ColorRole.Base, "#2b2d30"), (QPalette.ColorRole.AlternateBase, "#313338"),
        (QPalette.ColorRole.Text, "#dfe1e5"), (QPalette.ColorRole.Button, "#2b2d30"),
        (QPalette.ColorRole.ButtonText, "#dfe1e5"), (QPalette.ColorRole.Highlight, "#2f65ca"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.PlaceholderText, "#8c8f94"),
    ):
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText, QPalette.ColorRole.Text):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f737a"))
    return pal


def run_to_end(window: MainWindow, spec) -> None:
    handle = window.start_job(spec)
    while handle.running:
        wait(20)


def main() -> None:
    app = create_application()
    store = Store.open(tmp / "team-store")
    # Real jobs only: a verify that finds a damaged artifact, a compact, and a verify caught
    # mid-way through 400 MB of artifacts.
    with store.write() as s:
        damaged = store.artifacts.put_bytes(b"model v1" * 1000, session=s)
    store.artifacts.path(damaged.sha256).write_bytes(b"tampered")
    window = MainWindow(store, open_settings())
    window.resize(1280, 800)
    window.show()
    run_to_end(window, maintenance.verify_spec())
    store.artifacts.path(damaged.sha256).write_bytes(b"model v1" * 1000)  # restored from backup
    run_to_end(window, maintenance.compact_spec())
    with store.write() as s:
        for i in range(40):
            store.artifacts.put_bytes(i.to_bytes(4, "big") * 2_500_000, session=s)
    running = window.start_job(maintenance.verify_spec())
    while running.running and (running.fraction or 0) < 0.35:
        QApplication.processEvents()
    window.jobs_panel.select_job(running.job_id)
    window.grab().save(str(HERE / "main-window.png"))
    while running.running:
        wait(20)
    for i, name in enumerate(("datasets", "experiments", "registry", "monitoring")):
        window.show_panel(i)
        wait(50)
        window.grab().save(str(HERE / f"panel-{name}.png"))
    window.show_panel(0)
    window.jobs_panel.select_job(running.job_id - 2)  # the failed verify, with its error
    app.setPalette(dark_palette())
    wait(100)
    window.grab().save(str(HERE / "main-window-dark.png"))
    window.close()
    store.close()
    QApplication.processEvents()
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
