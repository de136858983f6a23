"""Opening the window loads none of the heavy libraries on the main thread, even over a store with data.

Start-up must stay under 1.5 s (tests/benchmarks/startup.py); pandas, pyarrow, scikit-learn and
pyqtgraph alone take about a second to import. Panels load them when first shown or used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
import modelyard.ui.common.warmup as warmup

class _Pending:  # background imports never finish here: whatever loads, the main thread loaded it
    def is_alive(self):
        return True

warmup.start = lambda modules=(): _Pending()
from modelyard.core.store import Store
store = Store.open(sys.argv[1])
from PySide6.QtWidgets import QApplication
from modelyard.ui.app import create_application
from modelyard.ui.main_window import MainWindow
from modelyard.ui.common.settings import open_settings
app = create_application()
window = MainWindow(store, open_settings())
window.show()
import time
for _ in range(50):
    app.processEvents()
deadline = time.monotonic() + 30  # the answers are delivered on turns of their own (a 1 ms timer)
while window.datasets_panel.datasets_model.rowCount() == 0 and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.005)
heavy = sorted(k for k in ("pandas", "pyarrow", "numpy", "sklearn", "pyqtgraph", "alembic") if k in sys.modules)
print("HEAVY", heavy, window.datasets_panel.datasets_model.rowCount())
window.close()
"""

SEED = r"""
import sys
import pandas as pd
from modelyard.core.store import Store
from modelyard.core.experiments import tracking
from modelyard.core.datasets.service import import_frame
store = Store.open(sys.argv[1])
import_frame(store, pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"]}), "tiny")
with tracking.start_run("exp", store=store) as run:
    run.log_metric("f1", 0.5)
"""


def test_opening_the_window_over_a_populated_store_loads_no_heavy_library(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "app"), "QT_QPA_PLATFORM": "offscreen",
           "MODELYARD_CONFIG_DIR": str(tmp_path / "config")}
    store = str(tmp_path / "store")
    subprocess.run([sys.executable, "-c", SEED, store], env=env, check=True, timeout=120)
    out = subprocess.run([sys.executable, "-c", SCRIPT, store], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("HEAVY"))
    assert line == "HEAVY [] 1", line
