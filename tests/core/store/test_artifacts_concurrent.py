"""Members writing the same artifact into one folder at the same moment (a team store's share): each
write goes to a temp file and is renamed into place under its hash, so both succeed, a reader never
sees half a file, and the bytes are stored once (issue 15)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select
from store_helpers import child_env

_WRITER = r"""
import hashlib, json, os, sys, time
from pathlib import Path
from modelyard.core.store import Store

root, go, seed, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
blobs = [hashlib.sha256(f"blob-{i}".encode()).digest() * (1 << 16) for i in range(rounds)]  # 2 MiB each
with Store.open(root, create=False) as store:
    while not go.exists():
        time.sleep(0.005)
    made = []
    for i, data in enumerate(blobs):
        if i % 2:  # with the record, in one write transaction ...
            with store.write() as s:
                ref = store.artifacts.put_bytes(data, session=s)
        else:      # ... and without one (a put whose row comes later)
            ref = store.artifacts.put_bytes(data)
        seen = hashlib.sha256(store.artifacts.read_bytes(ref.sha256)).hexdigest()
        assert seen == ref.sha256, f"read back {seen} for {ref.sha256}"
        made.append(ref.created)
print(json.dumps({"created": made}))
"""


def test_processes_writing_the_same_artifacts_at_once_store_each_once(tmp_path: Path, db_url: str | None) -> None:
    root = tmp_path / "share"
    Store.open(root, create=True).close()
    go, rounds, writers = tmp_path / "go", 6, 4
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(go), str(w), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
             for w in range(writers)]
    time.sleep(1.0)  # let them import and open the store
    go.touch()
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert all(len(r["created"]) == rounds for r in results)
    with Store.open(root, create=False) as store:
        files = dict(store.artifacts.iter_files())
        for sha, path in files.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha  # whole, never half a file
        assert len(files) == rounds
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(m.Artifact)) == rounds // 2  # recorded once each
        assert not store.artifacts.stale_temp_files() and not list(store.artifacts.tmp.iterdir())
