"""Child-process functions of tests/core/store/test_postgres.py (spawned processes import them by name).

Each reports ``("ok", worker, details)`` or ``("error", worker, traceback)`` on ``queue``.
"""

from __future__ import annotations

import time
import traceback
from typing import Any


def open_old_store(root: str, db_url: str, worker: int, ready: Any, go: Any, queue: Any) -> None:
    """Open (and so upgrade) a store, starting when ``go`` is set; count the migration steps run here."""
    import logging

    try:
        import alembic.command  # noqa: F401 - imported before the start, so both start at once
        from modelyard.core.store import Store

        steps: list[str] = []

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().startswith("Running upgrade"):
                    steps.append(record.getMessage())

        log = logging.getLogger("alembic.runtime.migration")
        log.setLevel(logging.INFO)
        log.addHandler(Count())
        ready.set()
        go.wait(30)
        started = time.time()
        with Store.open(root, db_url=db_url) as store:
            revision = store.current_revision()
        queue.put(("ok", worker, {"steps": steps, "revision": revision, "started": started, "ended": time.time()}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put(("error", worker, traceback.format_exc()))


def log_and_register(root: str, db_url: str, worker: int, points: int, go: Any, queue: Any) -> None:
    """Log ``points`` metric points in a run (flushing as it goes), then register the run's model."""
    try:
        from modelyard.core.experiments import tracking
        from modelyard.core.registry import versions as registry
        from modelyard.core.store import Store

        with Store.open(root, db_url=db_url) as store:
            go.wait(30)
            with tracking.start_run("team", store=store, name=f"worker {worker}") as run:
                run.log_param("worker", worker)
                for i in range(points):
                    run.log_metric("loss", 1.0 / (i + 1), step=i)
                    if i % 10 == 9:
                        run.flush()
                run.log_bytes(f"model of worker {worker}".encode(), "model/model.joblib", kind="model")
            version = registry.register(store, run.id, "churn", comment=f"worker {worker}")
        queue.put(("ok", worker, {"run": run.id, "version": version.version}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put(("error", worker, traceback.format_exc()))


def import_rows(root: str, db_url: str, worker: int, content: int, go: Any, queue: Any) -> None:
    """Import a small frame (its rows decided by ``content``) into the dataset 'shared'."""
    try:
        import pandas as pd
        from modelyard.core.datasets.importing import import_frame
        from modelyard.core.store import Store

        frame = pd.DataFrame({"x": [content * 10 + i for i in range(20)], "y": [i % 2 for i in range(20)]})
        with Store.open(root, db_url=db_url) as store:
            go.wait(30)
            result = import_frame(store, frame, "shared", target="y")
        queue.put(("ok", worker, {"version": result["version"], "created": result["created"]}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put(("error", worker, traceback.format_exc()))
