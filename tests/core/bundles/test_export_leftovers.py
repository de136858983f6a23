"""A bundle export runs in a child process; when it is killed (cancelled), the half-written file it
left beside the target is removed, and nothing else is."""

from __future__ import annotations

import os
import time

from modelyard.core import bundles
from modelyard.core.jobs import kinds
from modelyard.core.store import models as m


def test_a_killed_export_leaves_no_half_written_bundle(store, tmp_path):
    assert kinds.get("bundle.export").process, "the export runs in a child (the window's main thread never waits)"
    target = tmp_path / "churn-v2.mybundle"
    with store.write() as s:
        job = m.Job(kind="bundle.export", title="Export churn@v2", status="cancelled",
                    params={"ref": "churn@v2", "path": str(target)})
        s.add(job)
        s.flush()
        job_id = job.id
    half = tmp_path / ".churn-v2.mybundle.k2j4x9.tmp"
    half.write_bytes(b"PK\x03\x04 half a zip")
    older = tmp_path / ".other.mybundle.old.tmp"  # a leftover from before this job: not ours
    older.write_bytes(b"old")
    old = time.time() - 3600
    os.utime(older, (old, old))
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's file")

    removed = bundles.remove_export_leftovers(store, job_id, "cancelled")

    assert removed == [str(half)]
    assert not half.exists() and older.exists() and mine.exists() and not target.exists()
