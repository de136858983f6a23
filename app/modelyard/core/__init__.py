"""The Qt-free heart of Modelyard: the store, jobs and the services built on them.

Nothing under ``modelyard.core`` may import Qt, pyqtgraph or :mod:`modelyard.ui`; an
import-linter contract in ``pyproject.toml`` and ``tests/test_architecture.py`` enforce it.
"""
