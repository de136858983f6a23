"""Load the heavy libraries on a background thread once the window is idle.

pandas, pyarrow and pyqtgraph take about a second to import. Imported on the main thread the
first time a dataset is shown, they froze the window for ~400 ms; imported here shortly after
start-up, while the user is still looking at the window, the main thread sees at most one
hiccup of ~70 ms (C-extension initialisation holds the GIL) and later first uses are instant.
Start-up itself does not wait for any of this.

pyqtgraph's import reads every name of PySide6's QtCore, QtGui and QtWidgets, and PySide6
creates its classes and their enums lazily, on first access, in code that is not safe against
the main thread using Qt at the same moment (a segfault in the test suite, in ``enum`` under
pyqtgraph's ``_copy_attrs``). So before the thread imports pyqtgraph, the main thread touches
those names itself, a hundred per event-loop turn (~8 ms each, ~90 ms in all), and the thread
waits for that to finish.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator

HEAVY_MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "pyqtgraph",
    "modelyard.core.datasets.service",
    # a stratified split (Datasets) and every training use it: imported on the job's worker thread
    # at the first split, its C extensions held the GIL and stalled the main thread ~100 ms then
    "sklearn.model_selection",
    # Monitoring › Live reads its report on the client's thread: imported there the first time, the
    # live view's modules (scipy.stats through the drift statistics) held the main thread ~200 ms
    "modelyard.core.monitoring.live",
)
NEEDS_QT_PRIMED = ("pyqtgraph",)
PRIME_NAMES_PER_TURN = 100

qt_primed = threading.Event()
warmed = threading.Event()  # set when a warm-up has imported its modules (ui/common/collector.py)
_priming = False


def _qt_names() -> Iterator[None]:
    from PySide6 import QtCore, QtGui, QtWidgets

    for module in (QtCore, QtGui, QtWidgets):
        for count, name in enumerate(dir(module), start=1):
            getattr(module, name)  # creates the class (and its enums) on this, the main, thread
            if count % PRIME_NAMES_PER_TURN == 0:
                yield


def prime_qt_bindings() -> None:
    """Create PySide6's lazily made classes on the calling (main) thread, a slice per event-loop
    turn; :data:`qt_primed` is set when done. Calling it again does nothing."""
    global _priming
    if _priming or qt_primed.is_set():
        return
    _priming = True
    from PySide6.QtCore import QCoreApplication

    from modelyard.ui.common.turns import next_turn

    steps = _qt_names()

    def step() -> None:
        try:
            next(steps)
        except StopIteration:
            qt_primed.set()
            return
        next_turn(QCoreApplication.instance(), step)  # the window's timers run between the slices

    step()


def start(modules: tuple[str, ...] = HEAVY_MODULES) -> threading.Thread:
    """Import ``modules`` on a daemon thread (an import the main thread needs meanwhile just waits
    for this one to finish). Call it from the main thread. Returns the thread; joining it is
    optional (it waits for the main thread's event loop before importing pyqtgraph)."""
    if any(name in NEEDS_QT_PRIMED for name in modules):
        prime_qt_bindings()

    def work() -> None:
        for name in modules:
            if name in NEEDS_QT_PRIMED:
                qt_primed.wait()
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a missing optional module must not kill the app
                pass
        warmed.set()  # any warm-up: the collector freezes what is loaded by then (a panel's small one is first)

    thread = threading.Thread(target=work, name="modelyard-warmup", daemon=True)
    thread.start()
    return thread
