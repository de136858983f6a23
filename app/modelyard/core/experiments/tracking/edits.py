"""Changing recorded runs: tags of any run, a user's edit of a run's tags and note (audited),
and the trash (delete, restore, purge)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select, update

from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments.tracking.active import ActiveRun, _resolve_run
from modelyard.core.experiments.tracking.stores import _store
from modelyard.core.experiments.tracking.values import _check_key, _text
from modelyard.core.experiments.tracking.writes import _full_disk_is_an_error, _upsert
from modelyard.core.store import Store
from modelyard.core.store import models as m
from modelyard.core.store.records import audit

# =========================================================================== changing finished runs


def set_tags(run_id: str | ActiveRun, tags: Mapping[str, Any], *,
             store: Store | str | os.PathLike[str] | None = None) -> None:
    """Set (or, with a None value, remove) tags of any run, running or finished."""
    if isinstance(run_id, ActiveRun) and not run_id.ended and all(v is not None for v in tags.values()):
        run_id.set_tags(tags)
        run_id.flush()
        return
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    rows = {_check_key(k, "tag"): (None if v is None else _text(v, k, "tag")) for k, v in tags.items()}
    with _full_disk_is_an_error("the tags"), st.write() as s:
        pk = _resolve_run(s, run_id).id
        drop = [k for k, v in rows.items() if v is None]
        if drop:
            s.execute(delete(m.Tag).where(m.Tag.run_id == pk, m.Tag.key.in_(drop)))
        _upsert(st, s, m.Tag.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in rows.items() if v is not None],
                ["run_id", "key"], ["value"])
        s.execute(update(m.Run).where(m.Run.id == pk).values(heartbeat_at=m.utcnow()))


NOTE_TAG = "modelyard.note"  # a run's free-text note (as MLflow keeps its own in a tag)


def run_note(info: Any) -> str:
    """The note of a run (a RunInfo), or ""."""
    return str((getattr(info, "tags", None) or {}).get(NOTE_TAG) or "")


def edit_run(run_id: str | ActiveRun, *, tags: Mapping[str, Any] | None = None, note: str | None = None,
             store: Store | str | os.PathLike[str] | None = None, comment: str | None = None) -> dict[str, Any]:
    """A user's edit of a run: set tags (a None value removes one) and/or its note ("" removes it),
    in one transaction with one audit entry naming each change (``{key: [before, after]}``).
    Returns the changes (empty when nothing changed)."""
    wanted: dict[str, str | None] = {}
    for k, v in (tags or {}).items():
        if _check_key(k, "tag") == NOTE_TAG:
            raise ModelyardError(f"The tag {NOTE_TAG!r} holds the run's note.", hint="Edit the note instead.")
        wanted[k] = None if v is None else _text(v, k, "tag")
    if note is not None:
        wanted[NOTE_TAG] = _text(note.strip(), NOTE_TAG, "tag") if note.strip() else None
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    if isinstance(run_id, ActiveRun):
        run_id.flush()
    with _full_disk_is_an_error("the run's tags"), st.write() as s:
        run = _resolve_run(s, run_id)
        before = dict(s.execute(select(m.Tag.key, m.Tag.value).where(m.Tag.run_id == run.id,
                                                                     m.Tag.key.in_(list(wanted)))).all())
        changes = {k: [before.get(k), v] for k, v in wanted.items() if before.get(k) != v}
        if not changes:
            return {}
        drop = [k for k, (_, v) in changes.items() if v is None]
        if drop:
            s.execute(delete(m.Tag).where(m.Tag.run_id == run.id, m.Tag.key.in_(drop)))
        _upsert(st, s, m.Tag.__table__, [{"run_id": run.id, "key": k, "value": v}
                                         for k, (_, v) in changes.items() if v is not None],
                ["run_id", "key"], ["value"])
        s.execute(update(m.Run).where(m.Run.id == run.id).values(heartbeat_at=m.utcnow()))  # live views notice
        audit(s, "run", run.uuid, "edit", comment=comment,
              details={"tags": {("note" if k == NOTE_TAG else k): v for k, v in changes.items()}})
        return changes


def _descendants(s: Any, pks: list[int]) -> list[int]:
    out: list[int] = []
    frontier = list(pks)
    seen = set(pks)
    while frontier:
        children = s.scalars(select(m.Run.id).where(m.Run.parent_run_id.in_(frontier))).all()
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
        out += frontier
    return out


def delete_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> int:
    """Move a run, and its nested runs, to the trash. Returns how many runs were moved."""
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    now = m.utcnow()
    with st.write() as s:
        run = _resolve_run(s, run_id)
        pks = [run.id] + _descendants(s, [run.id])
        res = s.execute(update(m.Run).where(m.Run.id.in_(pks), m.Run.deleted_at.is_(None))
                        .values(deleted_at=now, heartbeat_at=now))  # heartbeat: live views notice
        audit(s, "run", run.uuid, "delete", from_value=None, to_value="trash", details={"runs": len(pks)})
        return res.rowcount or 0


def restore_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> int:
    """Bring a run back from the trash, with the nested runs deleted along with it and its
    deleted parents. Returns how many runs were restored."""
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    with st.write() as s:
        run = _resolve_run(s, run_id)
        if run.deleted_at is None:
            return 0
        when = run.deleted_at
        pks = [run.id] + [pk for pk in _descendants(s, [run.id])
                          if s.scalar(select(m.Run.deleted_at).where(m.Run.id == pk)) == when]
        parent = run.parent_run_id
        while parent is not None:  # a nested run cannot be visible under a hidden parent
            prow = s.get(m.Run, parent)
            if prow is None or prow.deleted_at is None:
                break
            pks.append(prow.id)
            parent = prow.parent_run_id
        res = s.execute(update(m.Run).where(m.Run.id.in_(pks))
                        .values(deleted_at=None, heartbeat_at=m.utcnow()))  # heartbeat: live views notice
        audit(s, "run", run.uuid, "restore", from_value="trash", to_value=None, details={"runs": len(pks)})
        return res.rowcount or 0


def purge_deleted(store: Store | str | os.PathLike[str] | None = None, older_than: Any = None) -> dict[str, Any]:
    """Remove runs in the trash for good, with their values and the artifact files no other
    record uses (run artifacts, dataset snapshots and splits, model versions).

    ``older_than``: a ``timedelta`` (or seconds) — only runs deleted at least that long ago.
    Runs a registered model version comes from stay in the trash (reported as ``kept``).
    Returns ``{"runs", "artifacts", "bytes", "kept"}``.
    """
    st = _store(store)
    cutoff = None
    if older_than is not None:
        delta = older_than if isinstance(older_than, dt.timedelta) else dt.timedelta(seconds=float(older_than))
        cutoff = m.utcnow() - delta
    with st.write() as s:
        q = select(m.Run.id, m.Run.uuid).where(m.Run.deleted_at.is_not(None))
        if cutoff is not None:
            q = q.where(m.Run.deleted_at <= cutoff)
        rows = s.execute(q).all()
        used = set(s.scalars(select(m.ModelVersion.run_id).where(m.ModelVersion.run_id.in_([r.id for r in rows]))))
        kept = [r.uuid for r in rows if r.id in used]
        pks = [r.id for r in rows if r.id not in used]
        if not pks:
            return {"runs": 0, "artifacts": 0, "bytes": 0, "kept": kept}
        shas = set(s.scalars(select(m.RunArtifact.sha256).where(m.RunArtifact.run_id.in_(pks))))
        # live runs nested in a purged one stay, at the top level
        s.execute(update(m.Run).where(m.Run.parent_run_id.in_(pks), m.Run.id.not_in(pks)).values(parent_run_id=None))
        for chunk in _chunks(pks, 500):
            for table in (m.Metric, m.LatestMetric, m.Param, m.Tag, m.RunArtifact):
                s.execute(delete(table).where(table.run_id.in_(chunk)))
            s.execute(update(m.Run).where(m.Run.parent_run_id.in_(chunk)).values(parent_run_id=None))
            s.execute(delete(m.Run).where(m.Run.id.in_(chunk)))
        unused: list[tuple[str, int]] = []
        if shas:
            referenced: set[str] = set()
            for col in (m.RunArtifact.sha256, m.DatasetVersion.snapshot_sha256, m.DatasetSplit.assignment_sha256,
                        m.ModelVersion.model_sha256):
                referenced |= set(s.scalars(select(col).where(col.in_(shas))))
            gone = shas - referenced
            if gone:
                unused = list(s.execute(select(m.Artifact.sha256, m.Artifact.size).where(m.Artifact.sha256.in_(gone))).all())
                s.execute(delete(m.Artifact).where(m.Artifact.sha256.in_(gone)))
        audit(s, "run", "*", "purge",
              details={"runs": [r.uuid for r in rows if r.id not in used], "artifacts": len(unused)})
    for sha, _size in unused:  # after the commit: a rolled-back purge must keep its files
        st.artifacts.path(sha).unlink(missing_ok=True)
    return {"runs": len(pks), "artifacts": len(unused), "bytes": int(sum(sz for _, sz in unused)), "kept": kept}


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
