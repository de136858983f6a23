"""Store upkeep jobs: verify every artifact against its hash, and compact the database."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select

from modelyard.core.errors import ModelyardError
from modelyard.core.jobs import JobContext, JobSpec
from modelyard.core.store import models as m
from modelyard.core.store.artifacts import CHUNK


def verify_spec() -> JobSpec:
    return JobSpec(func="modelyard.core.maintenance:verify_artifacts", title="Verify store artifacts",
                   kind="store.verify")


def compact_spec() -> JobSpec:
    return JobSpec(func="modelyard.core.maintenance:compact_database", title="Compact the store database",
                   kind="store.compact")


def verify_artifacts(ctx: JobContext) -> dict[str, Any]:
    """Re-hash every artifact the database knows and check it is present and unchanged.

    Fails (naming the first few damaged files) when any artifact is missing or its bytes no
    longer match its sha256; files in the folder that no record knows are reported as
    unreferenced, which is harmless.
    """
    store = ctx.store
    with store.session() as s:
        known = list(s.execute(select(m.Artifact.sha256, m.Artifact.size)).all())
    total_bytes = sum(size for _, size in known) or 1
    done_bytes = 0
    missing: list[str] = []
    corrupt: list[str] = []
    ctx.log(f"Checking {len(known)} artifacts ({total_bytes / 1e6:.1f} MB).")
    for i, (sha, size) in enumerate(known):
        ctx.progress(done_bytes / total_bytes, f"Artifact {i + 1} of {len(known)}")
        path = store.artifacts.path(sha)
        if not path.is_file():
            missing.append(sha)
            ctx.log(f"missing: {path}")
            continue
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                done_bytes += len(chunk)
                ctx.progress(done_bytes / total_bytes)
        if h.hexdigest() != sha:
            corrupt.append(sha)
            ctx.log(f"corrupt: {path} (its bytes hash to {h.hexdigest()[:12]}...)")
    known_set = {sha for sha, _ in known}
    unreferenced = [sha for sha, _ in store.artifacts.iter_files() if sha not in known_set]
    ctx.progress(1.0, "Done")
    result = {"checked": len(known), "missing": missing, "corrupt": corrupt, "unreferenced": len(unreferenced)}
    if missing or corrupt:
        parts = []
        if corrupt:
            parts.append(f"{len(corrupt)} damaged ({', '.join(c[:12] for c in corrupt[:3])}{'...' if len(corrupt) > 3 else ''})")
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(c[:12] for c in missing[:3])}{'...' if len(missing) > 3 else ''})")
        raise ModelyardError(
            f"{' and '.join(parts)} of {len(known)} artifacts in {store.artifacts.root}.",
            hint="Restore the store folder from a backup; the job log lists every affected file.",
        )
    ctx.log(f"All {len(known)} artifacts are intact.")
    return result


def compact_database(ctx: JobContext) -> dict[str, Any]:
    """VACUUM the SQLite database (or ANALYZE elsewhere) and report the size change."""
    store = ctx.store
    ctx.progress(None, "Compacting")
    db_file = store.sqlite_file
    before = db_file.stat().st_size if db_file is not None and db_file.exists() else None
    if store.is_sqlite:
        raw = store.engine.raw_connection()  # autocommit: VACUUM cannot run in a transaction
        try:
            raw.driver_connection.execute("VACUUM")
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    after = db_file.stat().st_size if db_file is not None and before is not None else None
    ctx.log(f"Database size: {before} -> {after} bytes." if before is not None else "Statistics refreshed.")
    ctx.progress(1.0, "Done")
    return {"bytes_before": before, "bytes_after": after}
