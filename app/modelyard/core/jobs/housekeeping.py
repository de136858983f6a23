"""Store upkeep jobs: verify the database and every artifact, remove unreferenced files, compact."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.store import models as m
from modelyard.core.store.artifacts import (
    CHUNK,
    lock_artifact,
    newest_mtime,
    remove_path,
    tree_size,
)

# gc leaves alone artifact files younger than this (a put may be about to record them) ...
GC_GRACE_S = 3600.0
# ... and other machines' temp files touched in the last day (their pids cannot be checked here).
OTHER_HOST_TEMP_AGE_S = 24 * 3600.0
_GC_BATCH = 200


def verify_spec() -> JobSpec:
    return JobSpec.for_kind("store.verify", "Verify store artifacts")


def gc_spec(*, dry_run: bool = False, grace_seconds: float = GC_GRACE_S) -> JobSpec:
    return JobSpec.for_kind("store.gc", "List unreferenced store files" if dry_run else "Remove unreferenced store files",
                            {"dry_run": dry_run, "grace_seconds": float(grace_seconds)})


def compact_spec() -> JobSpec:
    return JobSpec.for_kind("store.compact", "Compact the store database")


def verify_artifacts(ctx: JobContext) -> dict[str, Any]:
    """Check the database (SQLite's integrity check), then re-hash every artifact it knows.

    Fails when the database is damaged (naming the first problem), or (naming the first few
    files) when any artifact is missing or its bytes no longer match its sha256; files in the
    folder that no record knows are reported as unreferenced, which is harmless
    (``modelyard store gc`` removes them).
    """
    store = ctx.store
    ctx.progress(None, "Checking the database")
    ctx.log(f"Checking the database {store.sqlite_file or store.display_location}.")
    problems = store.check_integrity()
    if problems:
        raise database_damaged(store, problems, log=ctx.log)
    ctx.log("The database is intact." if store.is_sqlite else "The database server checks its own integrity.")
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
    result = {"database": "ok" if store.is_sqlite else "not checked", "checked": len(known), "missing": missing,
              "corrupt": corrupt, "unreferenced": len(unreferenced)}
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


def database_damaged(store: Any, problems: list[str], log: Any = None) -> ModelyardError:
    """The error for a database SQLite's integrity check finds damaged (each problem logged)."""
    from modelyard.core.common.errors import StoreDamagedError

    for p in problems:
        if log is not None:
            log(f"database: {p}")
    return StoreDamagedError(
        f"The store database {store.sqlite_file or store.display_location} is damaged: SQLite's integrity check "
        f"found {len(problems)}{'+' if len(problems) >= 100 else ''} problem(s), the first: {problems[0]}.",
        hint="Restore the store folder from a backup (a modelyard.db.before-*.bak file is a copy made before the "
             "last upgrade); until then, reading the damaged records fails.")


# --------------------------------------------------------------------------- gc


def find_garbage(store: Any, grace_seconds: float = GC_GRACE_S) -> tuple[list[dict[str, Any]], int]:
    """Files gc would remove, and how many unreferenced files it leaves because they are young.

    Artifact files (named by a sha256) that no artifact row names and that are older than
    ``grace_seconds``; temp files of this machine's dead processes; other machines' temp files
    untouched for a day. Each item: ``{"path", "kind": "artifact"|"temp", "bytes"}``.
    """
    with store.session() as s:
        known = set(s.scalars(select(m.Artifact.sha256)))
    cutoff = time.time() - grace_seconds
    found: list[dict[str, Any]] = []
    young = 0
    for name, path in store.artifacts.iter_files():
        if name in known or not store.artifacts.is_digest(name) or not path.is_file():
            continue
        if newest_mtime(path) > cutoff:
            young += 1
            continue
        found.append({"path": str(path), "kind": "artifact", "bytes": tree_size(path)})
    for path in store.artifacts.stale_temp_files(max(grace_seconds, OTHER_HOST_TEMP_AGE_S)):
        found.append({"path": str(path), "kind": "temp", "bytes": tree_size(path)})
    return found, young


def collect_garbage(ctx: JobContext, dry_run: bool = False, grace_seconds: float = GC_GRACE_S) -> dict[str, Any]:
    """Remove (or with ``dry_run`` only list) what :func:`find_garbage` finds.

    Safe while other processes use the store: each unreferenced artifact file is removed inside
    a write transaction (on SQLite, holding the write lock a put with a session takes before it
    places its file), after checking again that no row names it and that it is still older than
    the grace period.
    """
    store = ctx.store
    ctx.progress(None, "Looking for unreferenced files")
    found, young = find_garbage(store, grace_seconds)
    for item in found:
        ctx.log(f"{'would remove' if dry_run else 'removing'} {item['kind']}: {item['path']} ({item['bytes']} bytes)")
    if young:
        ctx.log(f"{young} unreferenced artifact file(s) younger than {grace_seconds:g} s left alone.")
    removed = found if dry_run else _remove(ctx, found, grace_seconds)
    ctx.progress(1.0, "Done")
    return {"dry_run": dry_run, "files": removed, "count": len(removed),
            "bytes": sum(item["bytes"] for item in removed), "left_young": young}


def _remove(ctx: JobContext, found: list[dict[str, Any]], grace_seconds: float) -> list[dict[str, Any]]:
    store = ctx.store
    removed: list[dict[str, Any]] = []
    artifacts = [item for item in found if item["kind"] == "artifact"]
    for start in range(0, len(artifacts), _GC_BATCH):
        ctx.check_cancelled()
        batch = artifacts[start:start + _GC_BATCH]
        by_sha = {Path(item["path"]).parent.name + Path(item["path"]).name: item for item in batch}
        with store.write() as s:
            # the first statement takes the write lock (SQLite), or each hash's lock (PostgreSQL; a
            # hash a put is recording now is kept): puts with a session wait until we commit
            busy = {sha for sha in by_sha if not lock_artifact(s, sha, wait=False)}
            referenced = set(s.scalars(select(m.Artifact.sha256).where(m.Artifact.sha256.in_(list(by_sha)))))
            cutoff = time.time() - grace_seconds
            for sha, item in by_sha.items():
                path = Path(item["path"])
                if sha in busy or sha in referenced or not path.is_file() or newest_mtime(path) > cutoff:
                    ctx.log(f"kept (in use again): {path}")
                    continue
                path.unlink(missing_ok=True)
                removed.append(item)
        ctx.progress(min(1.0, (start + len(batch)) / max(1, len(found))), f"Removed {len(removed)} files")
    for item in found:
        if item["kind"] == "temp":
            remove_path(Path(item["path"]))
            removed.append(item)
    return removed


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
