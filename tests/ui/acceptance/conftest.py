"""Fixtures of the acceptance tests: a populated store (built once per module with the real core
services) and the real main window over it at a given size."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from factories import open_window  # noqa: F401 - the acceptance tests import it from here

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # fit.py and tour.py, for the screenshot script's imports too
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What tests/factories.build_populated_store makes, plus a bundle of churn@v2 (``bundle``)
    and ``work`` (a folder for the files a test writes). The store is closed after the module."""
    from factories import build_populated_store
    from tour import export_bundle

    root = tmp_path_factory.mktemp("populated")
    made = build_populated_store(root / "store", root / "work")
    made["work"] = root / "work"
    made["bundle"] = export_bundle(made["store"], made["versions"]["challenger"], root / "work" / "churn-v2.mybundle")
    yield made
    service = sys.modules.get("modelyard.core.datasets.service")
    if service is not None:
        service.clear_caches()
    made["store"].close()


def close_window(window: Any) -> None:
    """Close the window (its jobs cancelled, its reads joined) unless pytest-qt did."""
    import shiboken6

    if shiboken6.isValid(window):  # pytest-qt may have closed it already (qtbot.addWidget)
        window.close()
