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
sys.path.insert(0, str(ROOT / "tests"))
tmp = Path(tempfile.mkdtemp(prefix="modelyard-shots-"))
os.environ["MODELYARD_CONFIG_DIR"] = str(tmp / "config")
os.environ["MODELYARD_USER"] = "ada"

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from modelyard.core import maintenance  # noqa: E402
from modelyard.core.jobs import JobSpec  # noqa: E402
from modelyard.core.store import Store  # noqa: E402
from modelyard.ui.app import create_application  # noqa: E402
from modelyard.ui.main_window import MainWindow  # noqa: E402
from modelyard.ui.settings import open_settings  # noqa: E402


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> None:
    app = create_application()
    store = Store.open(tmp / "team-store")
    with store.write() as s:
        for i in range(5):
            store.artifacts.put_bytes(os.urandom(200_000 + i), session=s)
    window = MainWindow(store, open_settings())
    window.resize(1280, 800)
    window.show()
    for spec in (maintenance.verify_spec(), maintenance.compact_spec()):
        h = window.start_job(spec)
        while h.running:
            wait(20)
    h = window.start_job(JobSpec("ui_jobfns:refuse", "Import dataset sales.csv", {"path": "sales.csv"}))
    while h.running:
        wait(20)
    running = window.start_job(JobSpec("ui_jobfns:ticking", "Train random forest on churn v3", {"seconds": 10}))
    wait(2600)
    window.jobs_panel.select_job(running.job_id)
    wait(200)
    window.grab().save(str(HERE / "main-window.png"))
    for i, name in enumerate(("datasets", "experiments", "registry", "monitoring")):
        window.show_panel(i)
        wait(50)
        window.grab().save(str(HERE / f"panel-{name}.png"))
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.close()
    store.close()
    QApplication.processEvents()
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
