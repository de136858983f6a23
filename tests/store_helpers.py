"""Building stores with data in them and damaging or locking them, for the store tests."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def store_with_runs(root: Path, runs: int = 3) -> None:
    """A store at ``root`` with a few runs, each with 200 metric points and 200 params."""
    from modelyard.core.experiments import tracking
    from modelyard.core.store import Store

    with Store.open(root) as store:
        for r in range(runs):
            with tracking.start_run("exp", store=store, name=f"r{r}") as run:
                for i in range(200):
                    run.log_metric("loss", 1.0 / (i + 1), step=i)
                    run.log_param(f"p{i}", "x" * 80)


def _checkpointed(db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{db}{suffix}").exists(), "close every connection to the store first"


def corrupt_middle(db: Path, seed: int = 11) -> None:
    """Write 16 KiB of random bytes into the middle of the database file (the issue's probe)."""
    import random

    _checkpointed(db)
    size = db.stat().st_size
    assert size > 200_000
    with db.open("r+b") as fh:
        fh.seek(size // 2)
        fh.write(random.Random(seed).randbytes(16384))


def corrupt_table(db: Path, *tables: str) -> None:
    """Overwrite the root page of each table with random bytes: every read of it fails."""
    import random

    _checkpointed(db)
    with sqlite3.connect(db) as raw:
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        roots = [raw.execute("SELECT rootpage FROM sqlite_master WHERE type='table' AND name=?", (t,)).fetchone()[0]
                 for t in tables]
    raw.close()
    rnd = random.Random(7)
    with db.open("r+b") as fh:
        for page in roots:
            fh.seek((page - 1) * page_size)
            fh.write(rnd.randbytes(page_size))


def files(folder: Path) -> dict[str, bytes]:
    """Every file directly in ``folder``, with its bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def make_read_only(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)


def make_writable(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def without_write_permission() -> list[str]:
    """A command prefix under which file permissions apply to the child process.

    Tests often run as root, which ignores file modes; ``setpriv`` then drops the capability to
    override them (CAP_DAC_OVERRIDE), so a read-only folder is really read-only to the child.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a store read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")])
    return env


def run_without_write_permission(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in a process that file permissions apply to."""
    return subprocess.run([*without_write_permission(), sys.executable, *args], capture_output=True, text=True,
                          env=child_env(), timeout=120)


def run_together(procs: list, queue: object, go: object, timeout: float, readies: list | None = None) -> list[tuple]:
    """Start ``procs``, wait for each of ``readies`` (events the children set once set up), let them
    all go at once (``go``, an event they wait on) and return :func:`collect_reports`."""
    for p in procs:
        p.start()
    try:
        for ready in readies or []:
            assert ready.wait(60), "a child did not start"
        go.set()
    finally:
        reports = collect_reports(procs, queue, timeout=timeout)
    return reports


def collect_reports(procs: list, queue: object, timeout: float) -> list[tuple]:
    """Every child's report (within ``timeout``); children still running afterwards are killed."""
    reports = []
    try:
        deadline = time.monotonic() + timeout
        for _ in procs:
            reports.append(queue.get(timeout=max(0.1, deadline - time.monotonic())))
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        queue.close()
        queue.join_thread()
    errors = [r for r in reports if r[0] != "ok"]
    assert not errors, "a process failed:\n" + "\n".join(r[2] for r in errors)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return reports
