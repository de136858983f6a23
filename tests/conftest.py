"""Shared fixtures. Every test runs headless, with its own config folder and store location."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:  # works from a plain checkout too
    sys.path.insert(0, str(ROOT / "app"))
if str(ROOT / "tests") not in sys.path:  # child processes import tests/jobfns.py by name
    sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real settings or default store."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("MODELYARD_STORE", str(home / "default-store"))
    monkeypatch.delenv("MODELYARD_DB_URL", raising=False)
    monkeypatch.setenv("MODELYARD_USER", "tester")


@pytest.fixture(autouse=True)
def _no_leaked_workers(request: pytest.FixtureRequest):
    """Fail any test that leaves a Python thread, a Qt pool worker or a child process running.

    A worker left behind outlives its widgets and can crash a later test (napari learnt this the
    hard way); so do leaked job processes.
    """
    before = {t.ident for t in threading.enumerate()}
    yield
    problems: list[str] = []
    if "PySide6.QtCore" in sys.modules:
        from modelyard.ui.common.jobrunner import JobRunner
        from PySide6.QtCore import QThreadPool

        for runner in list(JobRunner.instances()):
            if runner.active_thread_count():
                problems.append(f"{runner!r} still has {runner.active_thread_count()} worker(s) running")
        if "modelyard.ui.common.background" in sys.modules:
            from modelyard.ui.common.background import BackgroundReader

            for reader in BackgroundReader.instances():
                if reader.active_thread_count():
                    problems.append("a BackgroundReader still has a read running")
        if QThreadPool.globalInstance().activeThreadCount():
            problems.append("the global QThreadPool still has runnables")
    leaked = [
        t for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)  # type: ignore[attr-defined]
        and not t.daemon
    ]
    if leaked:
        problems.append(f"threads left running: {[t.name for t in leaked]}")
    children = multiprocessing.active_children()
    if children:
        problems.append(f"child processes left running: {[p.name for p in children]}")
        for p in children:
            p.kill()
    if problems:
        pytest.fail("Leaked background work: " + "; ".join(problems), pytrace=False)


# --------------------------------------------------------------------------- store fixtures


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Where the ``store`` fixture's store lives (not created until ``store`` is used)."""
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path):
    """A new, empty store in a temporary folder, closed after the test.

    Before closing, the datasets service forgets the snapshot files it holds open (if a test loaded
    it): they belong to this test's store, which no later test opens again. tests/core/experiments/
    test_runquery.py has its own module-scoped ``store`` (its runs are only read)."""
    from modelyard.core.store import Store

    s = Store.open(store_dir)
    try:
        yield s
    finally:
        service = sys.modules.get("modelyard.core.datasets.service")
        if service is not None:
            service.clear_caches()
        s.close()
