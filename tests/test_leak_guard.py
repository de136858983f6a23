"""The leak guard in conftest.py must really fail a test that leaves background work running."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
ROOT = CONFTEST.parent.parent


def _run_inner(pytester, monkeypatch, body: str):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")]))
    shutil.copy(CONFTEST, pytester.path / "conftest.py")
    pytester.makepyfile(test_inner=body)
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


def test_a_test_leaving_a_thread_running_fails(pytester, monkeypatch):
    result = _run_inner(pytester, monkeypatch, """
import threading, time
stop = threading.Event()
def test_leaks():
    threading.Thread(target=stop.wait, name="forgotten-worker").start()
def test_cleanup_after():
    stop.set()
""")
    result.stdout.fnmatch_lines(["*Leaked background work*forgotten-worker*"])
    assert result.ret != 0


def test_a_test_leaving_a_qt_pool_worker_running_fails(pytester, monkeypatch):
    result = _run_inner(pytester, monkeypatch, """
import threading
from modelyard.core.jobs.runner import JobSpec
from modelyard.core.store import Store
from modelyard.ui.common.jobrunner import JobRunner

runner_box = []
def test_leaks_a_pool_worker(qtbot, tmp_path):
    runner = JobRunner(Store.open(tmp_path / "s"))
    runner_box.append(runner)
    runner.submit(JobSpec("ui_jobfns:ticking", "tick", {"seconds": 3}))
def test_cleanup_after():
    runner_box[0].shutdown()
""")
    result.stdout.fnmatch_lines(["*Leaked background work*JobRunner*worker(s) running*"])
    assert result.ret != 0
