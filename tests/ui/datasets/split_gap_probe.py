"""Run in a fresh process by test_ui_datasets_flow.py: the longest main-thread gap while the user
creates the first stratified split (scikit-learn not imported before). Prints ``gap=<seconds>``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from modelyard.core.datasets import service
from modelyard.core.store import Store
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def wait(until, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not until():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        QApplication.processEvents()
        time.sleep(0.005)


def main(folder: str) -> None:
    _app = QApplication.instance() or QApplication([])  # kept alive while the probe runs
    store = Store.open(Path(folder) / "store")
    rng = np.random.default_rng(0)
    n = 2000
    service.import_frame(store, pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(list("abc"), n),
                                              "label": rng.choice(["yes", "no"], n)}), "probe", target="label")
    assert "sklearn" not in sys.modules, "the probe must start without scikit-learn"
    window = MainWindow(store, open_settings())
    window.resize(1024, 640)
    window.show()
    panel = window.datasets_panel
    window.show_panel(window.panels.index(panel))
    wait(lambda: panel.version is not None and not window.client.busy)
    QTest.qWait(3000)  # the idle warm-up has had its time
    panel.tabs.setCurrentWidget(panel.splits_tab)
    panel.split_method.setCurrentText("stratified")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    QTest.qWait(100)
    QTest.mouseClick(panel.split_button, __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.MouseButton.LeftButton)
    wait(lambda: panel.splits_model.rowCount() == 1 and not window.client.busy)
    QTest.qWait(200)
    timer.stop()
    gaps = np.diff(ticks)
    print(f"gap={gaps.max():.3f} sklearn={'sklearn' in sys.modules}", flush=True)
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.close()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
