"""Load the heavy libraries on a background thread once the window is idle.

pandas, pyarrow and pyqtgraph take about a second to import. Imported on the main thread the
first time a dataset is shown, they froze the window for ~400 ms; imported here shortly after
start-up, while the user is still looking at the window, the main thread sees at most one
hiccup of ~70 ms (C-extension initialisation holds the GIL) and later first uses are instant.
Start-up itself does not wait for any of this.
"""

from __future__ import annotations

import importlib
import threading

HEAVY_MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "pyqtgraph",
    "modelyard.core.datasets.service",
)


def start(modules: tuple[str, ...] = HEAVY_MODULES) -> threading.Thread:
    """Import ``modules`` on a daemon thread (an import the main thread needs meanwhile just waits
    for this one to finish). Returns the thread; joining it is optional."""

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a missing optional module must not kill the app
                pass

    thread = threading.Thread(target=work, name="modelyard-warmup", daemon=True)
    thread.start()
    return thread
