"""Modelyard: the whole life of a small team's machine-learning models, on the desktop.

``import modelyard`` is cheap and Qt-free. The GUI lives in :mod:`modelyard.ui`, the
command line in :mod:`modelyard.cli`, and everything they share in :mod:`modelyard.core`.
"""

from modelyard._version import __version__

__all__ = ["__version__"]
