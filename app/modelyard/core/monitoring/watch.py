"""Watch folders: a folder per registered model whose new data files are checked for drift.

Qt-free and light (no pandas or pyarrow): the window calls :func:`pending_files` on a timer and
starts a drift check job for each file it returns; ``modelyard monitor watch NAME --once`` (cron,
CI) does the same with :func:`process_pending`.

::

    from modelyard.core.monitoring import watch

    watch.set_watch_folder(store, "churn", "~/drops/churn", comment="the nightly export lands here")
    watch.watched_models(store)                       # [("churn", Path("/home/me/drops/churn"))]
    for path in watch.pending_files(store, "churn"):  # new files, settled, not checked yet
        runner.submit(watch.check_spec_for(store, "churn", path))
    for scan in watch.scan_folders(store):            # every watched model, one FolderScan each
        print(scan.model, scan.folder, scan.pending, scan.error)
    watch.process_pending(store, "churn")             # or: check them all now, in this thread
    watch.notification(result)                        # {"title", "message"} when a check found drift

The folder is kept in ``RegisteredModel.monitoring["watch_folder"]`` (an absolute path; the drift
settings keep it when they change). Setting or clearing it is audited (``set_watch_folder``).

**Which files.** Regular files directly in the folder (not in sub-folders) whose suffix is a
format the importer reads (CSV, TSV, TXT, Parquet, Excel, JSON, JSON Lines); not hidden (``.x``),
not temporary (``~$x``, ``x~``, ``.tmp``, ``.part``, ``.crdownload``...), not empty, and not
changed in the last :data:`SETTLE_S` seconds (a file still being written keeps changing; a copy
that pauses longer than that may be picked up early and its check fails on the truncated file,
which is then retried once the file changes again). "Changed" is the later of the modification
time and ``st_ctime`` (status change on POSIX, creation on Windows), so a file copied or moved in
with an old, preserved modification time still counts as new.

**What was already checked** needs no extra state: a file is done when a drift check job of this
model was created for exactly that path after the file last changed (the jobs table keeps each
job's ``batch_path``; jobs that were cancelled or interrupted do not count, so those files are
tried again; failed ones wait for the file to change), or when one of the model's checks, made after the file last changed,
read a batch imported from that path with the same size and modification time. A file written again
is checked again (so is one whose status changed: touched, or its permissions changed). Identical content under another name is checked too
(the import recognises the content and reuses the stored dataset version).

**Which version** is checked: the model's ``champion``, else its latest version.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.store import Store, records
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import threading

    from modelyard.core.jobs.runner import JobSpec, Reporter

__all__ = [
    "CHECK_KIND",
    "DATA_SUFFIXES",
    "FolderScan",
    "SETTLE_S",
    "WATCH_KEY",
    "check_spec_for",
    "checked_ref",
    "get_watch_folder",
    "is_candidate",
    "notification",
    "pending_files",
    "process_pending",
    "scan_folders",
    "set_watch_folder",
    "watched_models",
]

WATCH_KEY = "watch_folder"
CHECK_KIND = "drift.check"  # the kind of modelyard.core.monitoring.drift.check_spec's jobs
SETTLE_S = 2.0
# what modelyard.core.datasets.readers reads (not imported: it loads pyarrow)
DATA_SUFFIXES = frozenset({".csv", ".tsv", ".tab", ".psv", ".txt", ".dat", ".parquet", ".pq", ".parq", ".xlsx",
                           ".xlsm", ".json", ".jsonl", ".ndjson"})
TEMP_SUFFIXES = frozenset({".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock",
                           ".filepart", ".opdownload"})
RETRY_STATUSES = frozenset({"cancelled", "interrupted"})
MTIME_TOLERANCE_S = 0.001


# =========================================================================== the folder of a model


def _folder_of(model: m.RegisteredModel) -> Path | None:
    value = (model.monitoring or {}).get(WATCH_KEY)
    return Path(value) if isinstance(value, str) and value else None


def get_watch_folder(store: Store, name: str) -> Path | None:
    """The model's watch folder, or None."""
    from modelyard.core.registry.versions import model_of

    with store.session() as s:
        return _folder_of(model_of(s, name))


def set_watch_folder(store: Store, name: str, path: str | os.PathLike[str] | None, *,
                     comment: str | None = None) -> Path | None:
    """Watch ``path`` (an existing folder) for ``name``'s new data files; None stops watching.

    Audited as ``set_watch_folder`` (from the old folder to the new one). Returns the folder, as
    stored (absolute).
    """
    from modelyard.core.registry.versions import ENTITY, model_of

    folder: Path | None = None
    if path is not None and str(path).strip():
        folder = Path(os.path.expanduser(os.fspath(path))).resolve()
        if not folder.exists():
            raise ModelyardError(f"There is no folder {folder} to watch.",
                                 hint="Create the folder first (files dropped there are checked for drift).")
        if not folder.is_dir():
            raise ModelyardError(f"{folder} is a file, not a folder.",
                                 hint="Give the folder the data files are dropped into.")
    comment = comment.strip() or None if isinstance(comment, str) else None
    with store.write() as s:
        model = model_of(s, name)
        old = _folder_of(model)
        if old == folder:
            return folder
        monitoring = dict(model.monitoring or {})
        if folder is None:
            monitoring.pop(WATCH_KEY, None)
        else:
            monitoring[WATCH_KEY] = str(folder)
        model.monitoring = monitoring or None
        model.updated_at = m.utcnow()
        records.audit(s, ENTITY, model.id, "set_watch_folder", from_value=str(old) if old else None,
                      to_value=str(folder) if folder else None, comment=comment)
    return folder


def watched_models(store: Store) -> list[tuple[str, Path]]:
    """Every model with a watch folder, by name: ``[(name, folder)]``."""
    with store.session() as s:
        rows = s.execute(select(m.RegisteredModel.name, m.RegisteredModel.monitoring)
                         .where(m.RegisteredModel.monitoring.is_not(None))
                         .order_by(m.RegisteredModel.name)).all()
    out = []
    for name, monitoring in rows:
        value = (monitoring or {}).get(WATCH_KEY) if isinstance(monitoring, Mapping) else None
        if isinstance(value, str) and value:
            out.append((name, Path(value)))
    return out


def checked_ref(store: Store, name: str) -> str:
    """What a watched file is checked against: ``NAME@champion``, else ``NAME`` (the latest version)."""
    from modelyard.core.registry.versions import CHAMPION, model_of

    with store.session() as s:
        model = model_of(s, name)
        has_champion = s.get(m.ModelAlias, (model.id, CHAMPION)) is not None
        return f"{model.name}@{CHAMPION}" if has_champion else model.name


def check_spec_for(store: Store, name: str, path: str | os.PathLike[str], *, admit: bool = False,
                   source: str = "watch folder") -> JobSpec:
    """The drift check job of one file (the title says where it came from). ``admit``: refuse now,
    from the file's header, a file that is not a batch of the model's data
    (:func:`modelyard.core.monitoring.drift.admit.admit_batch`; the job refuses it anyway)."""
    from modelyard.core.monitoring import drift

    ref = checked_ref(store, name)
    if admit:
        from modelyard.core.monitoring.drift.admit import admit_batch
        from modelyard.core.registry.versions import get_version

        admit_batch(store, get_version(store, ref), path=path)
    return drift.check_spec(ref, batch_path=os.fspath(path),
                            title=f"Drift check of {ref}: {Path(path).name}" + (f" ({source})" if source else ""))


# =========================================================================== pending files


def is_candidate(path: Path) -> bool:
    """Whether a file's name makes it a data file to check (not hidden, temporary or of another kind)."""
    name = path.name
    if not name or name.startswith((".", "~")) or name.endswith("~"):
        return False
    suffix = path.suffix.lower()
    return suffix in DATA_SUFFIXES and suffix not in TEMP_SUFFIXES


def _scan(folder: Path, now: float, settle_s: float) -> list[tuple[Path, int, float, float]]:
    """(path, size, mtime, changed) of the settled candidate files of ``folder``, oldest first.

    ``changed`` is the later of the modification time and the status change time (``st_ctime``:
    on POSIX any write, rename or move into the folder sets it, and unlike the modification
    time a copy cannot preserve it; on Windows the creation time, new for a copied file)."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        raise ModelyardError(f"The watch folder {folder} does not exist any more.",
                             hint="Create it again, or set another folder.") from None
    except NotADirectoryError:
        raise ModelyardError(f"The watch folder {folder} is not a folder.", hint="Set another folder.") from None
    except PermissionError:
        raise ModelyardError(f"The watch folder {folder} cannot be read (permission denied).",
                             hint="Give your user read access to it, or set another folder.") from None
    for entry in entries:
        path = folder / entry.name
        if not is_candidate(path):
            continue
        try:
            if not entry.is_file(follow_symlinks=True):
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError:  # vanished or unreadable meanwhile
            continue
        changed = max(float(st.st_mtime), float(st.st_ctime))
        if st.st_size == 0 or changed > now - settle_s:
            continue  # empty, or still being written
        out.append((path, int(st.st_size), float(st.st_mtime), changed))
    out.sort(key=lambda t: (t[3], t[0].name))
    return out


def _stamp(mtime: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(mtime, tz=dt.UTC)


def _done(s: Any, model: m.RegisteredModel, files: list[tuple[Path, int, float, float]]) -> set[str]:
    """The paths among ``files`` that were already checked (or are being checked) since they last changed."""
    from modelyard.core.registry.versions import parse_ref

    if not files:
        return set()
    by_path = {str(p): (size, mtime, changed) for p, size, mtime, changed in files}
    done: set[str] = set()
    oldest = _stamp(min(changed for _, _, _, changed in files) - 1.0)
    # 1. check jobs for exactly this path, created after the file last changed
    for params, created, status in s.execute(
            select(m.Job.params, m.Job.created_at, m.Job.status)
            .where(m.Job.kind == CHECK_KIND, m.Job.created_at >= oldest)).all():
        if status in RETRY_STATUSES or not isinstance(params, Mapping):
            continue
        path = params.get("batch_path")
        if path not in by_path or path in done:
            continue
        try:
            job_model = parse_ref(str(params.get("model_ref") or ""))[0]
        except ModelyardError:
            continue
        if job_model == model.name and created >= _stamp(by_path[path][2]):
            done.add(path)
    # 2. the model's checks of a batch imported from this path, with the same size and time
    rest = [p for p in by_path if p not in done]
    if rest:
        for path, size, mtime, checked_at in s.execute(
                select(m.DatasetVersion.source_path, m.DatasetVersion.source_size, m.DatasetVersion.source_mtime,
                       m.MonitoringCheck.created_at)
                .join(m.MonitoringCheck, m.MonitoringCheck.batch_dataset_version_id == m.DatasetVersion.id)
                .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
                .where(m.ModelVersion.model_id == model.id, m.DatasetVersion.source_path.in_(rest))).all():
            want = by_path.get(path)
            if want is None or mtime is None or size != want[0] or checked_at < _stamp(want[2]):
                continue
            if abs(mtime.timestamp() - want[1]) <= MTIME_TOLERANCE_S:
                done.add(path)
    return done


def pending_files(store: Store, name: str, *, settle_s: float = SETTLE_S, now: float | None = None) -> list[Path]:
    """The data files in ``name``'s watch folder that are settled and not checked yet, oldest first.

    ``now`` (seconds since the epoch, default: the clock) and ``settle_s`` decide which files
    are still being written. An empty list when the model has no watch folder.
    """
    return _pending(store, name, settle_s, now)[1]


def _pending(store: Store, name: str, settle_s: float, now: float | None) -> tuple[Path | None, list[Path]]:
    from modelyard.core.registry.versions import model_of

    now = time.time() if now is None else float(now)
    with store.session() as s:
        model = model_of(s, name)
        folder = _folder_of(model)
        if folder is None:
            return None, []
        files = _scan(folder, now, settle_s)
        done = _done(s, model, files)
    return folder, [p for p, _, _, _ in files if str(p) not in done]


@dataclass(frozen=True)
class FolderScan:
    """One model's watch folder, scanned: its pending files, or why it could not be scanned."""

    model: str
    folder: Path | None  # None: the model watches no folder (or could not be read: see error)
    pending: list[Path] = field(default_factory=list)
    error: ModelyardError | None = None  # the folder is gone or unreadable, or the model unknown


def scan_folders(store: Store, names: str | Iterable[str] | None = None, *, settle_s: float = SETTLE_S,
                 now: float | None = None) -> Iterator[FolderScan]:
    """Scan the watch folders of ``names`` (default: every watched model), one model at a time as
    the caller iterates (files settle meanwhile), never raising for a model: a folder that cannot
    be read comes back with its ``error`` (the window skips it, the CLI shows it, and
    :func:`process_pending` raises it)."""
    if names is None:
        targets: list[tuple[str, Path | None]] = list(watched_models(store))
    else:
        targets = [(n, None) for n in ([names] if isinstance(names, str) else names)]
    for name, folder in targets:
        try:
            found, pending = _pending(store, name, settle_s, now)
        except ModelyardError as exc:
            yield FolderScan(name, folder, [], exc)
            continue
        yield FolderScan(name, found, pending)


# =========================================================================== checking them now


def notification(result: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> dict[str, str] | None:
    """What a desktop notification says about a check's result (the job's result dict), or None
    when there is nothing to tell (no drift)."""
    if not isinstance(result, Mapping) or result.get("verdict") != "drift":
        return None
    model = result.get("model") or "a model"
    what = f"{Path(path).name}: " if path is not None else (f"{result['batch_ref']}: " if result.get("batch_ref")
                                                             else "")
    drifted = list(result.get("drifted") or [])
    n = result.get("n_features")
    if drifted:
        shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
        body = f"{len(drifted)} of {plural(int(n), 'feature')} drift ({shown})" if n else f"drift in {shown}"
    else:
        reasons = list(result.get("reasons") or [])
        body = reasons[0].split(": ", 1)[-1] if reasons else "drift found"
    return {"title": f"Drift in {model}", "message": f"{what}{body}."}


def process_pending(store: Store, names: str | Iterable[str] | None = None, *, settle_s: float = SETTLE_S,
                    now: float | None = None, reporter: Reporter | None = None,
                    cancel_event: threading.Event | None = None) -> list[dict[str, Any]]:
    """Check every pending file of ``names`` (default: every watched model) now, one job each, in
    this thread. Returns one row per file: ``{"model", "path", "job_id", "status", "check_id",
    "verdict", "drifted", "error", "notification"}``, in the order they were checked."""
    from modelyard.core.jobs.runner import run_job

    out: list[dict[str, Any]] = []
    for scan in scan_folders(store, names, settle_s=settle_s, now=now):
        if scan.error is not None:
            raise scan.error
        name = scan.model
        for path in scan.pending:
            if cancel_event is not None and cancel_event.is_set():
                return out
            outcome = run_job(store, check_spec_for(store, name, path), reporter=reporter, cancel_event=cancel_event)
            result = outcome.result or {}
            out.append({"model": name, "path": str(path), "job_id": outcome.job_id, "status": outcome.status,
                        "check_id": result.get("check_id"), "verdict": result.get("verdict"),
                        "drifted": result.get("drifted") or [], "error": outcome.error,
                        "notification": notification(result, path) if outcome.ok else None})
    return out
