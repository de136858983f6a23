"""Guards against Qt-binding releases with bugs that crash Modelyard.

PySide6 6.12.0's ``Signal.emit`` drops one reference to ``True`` per call; after a few hundred
progress signals the interpreter aborts with "bool_dealloc: deallocating True or False".
pyproject.toml excludes it; this test fails loudly if such a build is installed anyway.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Emitter(QObject):
    progressed = Signal(object, str)
e = Emitter()
e.progressed.connect(lambda f, m: None)
before = sys.getrefcount(True)
for _ in range(2000):
    e.progressed.emit(0.5, "step")
print(sys.getrefcount(True) - before)
"""


def test_signal_emit_keeps_reference_counts_balanced():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert proc.returncode == 0, f"the Qt binding crashed the interpreter:\n{proc.stderr[-2000:]}"
    assert int(proc.stdout.strip()) >= -10, "Signal.emit leaks a reference to True: use another PySide6 release"
