"""The import job: a file or a frame parsed into a Parquet snapshot, profiled, and recorded as a
dataset version in one write transaction (see :mod:`modelyard.core.datasets.service`).

Also the sample datasets (scikit-learn's bundled ones) and the dataset name rules.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.common.names import NAME_HINT, plural
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.common.procs import current_user
from modelyard.core.datasets import dates, read_common, readers
from modelyard.core.datasets.catalog import (
    SAMPLES,
    DatasetVersionInfo,
    _version_info,
    get_version,
)
from modelyard.core.datasets.profile import compute_profile, with_types
from modelyard.core.datasets.read_common import (
    DatasetInputError,
    ReadSettings,
    TypePromotion,
    empty_batch,
)
from modelyard.core.datasets.schema import SchemaError, infer_schema
from modelyard.core.datasets.snapshot import (
    ROW_GROUP_ROWS,
    SnapshotResult,
    SnapshotWriter,
)
from modelyard.core.datasets.specs import ImportOptions
from modelyard.core.datasets.versions import update_schema
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext
from modelyard.core.store import Store
from modelyard.core.store import models as m
from modelyard.core.store.records import audit
from modelyard.core.store.server import xact_lock

if TYPE_CHECKING:
    import pandas as pd


SNAPSHOT_MEDIA_TYPE = "application/vnd.apache.parquet"


DISK_FACTOR = 2.0
MAX_TYPE_RESTARTS = 64


NAME_MAX = 200

# Called inside the write transaction that records an imported version: (session, version id, created).
OnCommit = Callable[[Session, int, bool], None]

# Progress of an import: parsing + writing, then profiling, then the transaction.
PARSE_END = 0.7
PROFILE_END = 0.97


# --------------------------------------------------------------------------- helpers


class _Progress:
    """A phase's progress with a fixed message, through ``ctx.sub`` (no-op without a job)."""

    def __init__(self, ctx: JobContext | None) -> None:
        self.ctx = ctx

    def phase(self, start: float, end: float, message: str) -> Callable[[float | None], None]:
        if self.ctx is None:
            return lambda fraction: None
        part = ProgressSlice(self.ctx, start, end)  # the one sub-range helper (core/jobs/progress.py)
        return lambda fraction: part.progress(0.0 if fraction is None else fraction, message)

    def log(self, line: str) -> None:
        if self.ctx is not None:
            self.ctx.log(line)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ModelyardError("A dataset needs a name.", hint="Give one with --name.")
    if "@" in name:
        raise ModelyardError(f"Dataset names cannot contain '@' (got '{name}'): it separates the name from "
                             "the version, as in iris@v2.", hint="Choose another name with --name.")
    if len(name) > NAME_MAX:
        raise ModelyardError(f"The dataset name is too long ({len(name)} characters, at most {NAME_MAX}).",
                             hint="Choose a shorter name with --name.")
    return check_name_chars(name, "The dataset name", hint=f"{NAME_HINT} Choose another with --name.")


def default_name(path: Path) -> str:
    stem = path.name
    for ext in (path.suffix,):
        if ext and stem.lower().endswith(ext.lower()):
            stem = stem[: -len(ext)]
    stem = stem.replace("@", "_").strip() or "dataset"
    return "".join(c for c in stem if ord(c) >= 32)[:NAME_MAX]


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    except OSError:
        return None


def _result(info: DatasetVersionInfo, created: bool, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": info.name, "version": info.version, "ref": info.ref, "dataset_version_id": info.id,
        "created": created, "n_rows": info.n_rows, "n_cols": info.n_cols, "content_hash": info.content_hash,
        "target": info.target, "task": info.task, "parent_version": info.parent_version,
        "warnings": [w["message"] for w in info.warnings], **extra,
    }


def _delimiter(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    return {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}.get(value.lower(), value)


# --------------------------------------------------------------------------- importing


def _check_disk(store: Store, path: Path, size: int) -> None:
    free = shutil.disk_usage(store.root).free
    need = int(size * DISK_FACTOR)
    if free < need:
        raise DatasetInputError(
            f"Not enough free disk space to import {path} ({read_common.describe_size(size)}): the store at "
            f"{store.root} has {read_common.describe_size(free)} free and the import needs about "
            f"{read_common.describe_size(need)}.",
            hint="Free some disk space, or import into a store on a larger disk.")


def _settings_line(s: ReadSettings) -> str:
    if s.format == "csv":
        delim = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}.get(s.delimiter or ",",
                                                                                          repr(s.delimiter))
        parts = [f"delimiter {delim}", f"encoding {s.encoding}", "header row" if s.header else "no header row"]
        if s.decimal_point != ".":
            parts.append("decimal comma")
        return "Reading as CSV: " + ", ".join(parts) + "."
    if s.format == "excel":
        return f"Reading sheet '{s.sheet}' of an Excel workbook ({len(s.sheets)} sheet(s))."
    return f"Reading as {s.format}."


def import_dataset(ctx: JobContext, *, path: str, options: Mapping[str, Any] | None = None,
                   before_commit: Callable[[Path], None] | None = None,
                   date_hints: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Job: import the file at ``path`` as a new version of a dataset (see the module's docs).

    ``before_commit(snapshot_path)`` (for callers in Python, e.g. batch scoring) is called with
    the finished Parquet snapshot before anything is recorded; if it raises, nothing is.
    ``date_hints`` ({column: format}, e.g. :func:`date_formats_of` the training data) settle the
    order of day and month where the file's own values fit either.
    """
    store = ctx.store
    opts = ImportOptions.from_params(options)
    src = Path(path).expanduser()
    progress = _Progress(ctx)
    ctx.progress(0.0, f"Reading {src.name}")
    size = read_common.file_size(src)
    if size == 0:
        raise DatasetInputError(f"{src} is empty (0 bytes).", hint="Choose the file that holds the data.")
    _check_disk(store, src, size)
    settings = readers.resolve_settings(src, delimiter=_delimiter(opts.delimiter), quotechar=opts.quotechar,
                                        encoding=opts.encoding, header=opts.header, sheet=opts.sheet)
    ctx.log(_settings_line(settings))
    for note in settings.notes:
        ctx.log(note)
    name = check_name(opts.name or default_name(src))
    mtime = _mtime(src)
    tick = progress.phase(0.0, PARSE_END, f"Reading {src.name}")

    def batches(column_types: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
        return readers.iter_batches(src, settings, tick, column_types=column_types, size=size)

    source = {"path": str(src), "size": size, "mtime": mtime, "format": settings.format, "label": str(src)}
    return _import(store, progress, batches, name, opts.target, source, job_id=ctx.job_id,
                   before_commit=before_commit, date_formats=dates.check_formats(opts.date_formats),
                   date_hints=date_hints)


def import_frame(store: Store, df: pd.DataFrame, name: str, *, target: str | None = None,
                 source: Mapping[str, Any] | None = None, ctx: JobContext | None = None,
                 on_commit: OnCommit | None = None) -> dict[str, Any]:
    """Import a pandas frame as a dataset version (the sample datasets and scripts use this).

    ``source`` may give ``path``, ``format`` (default "pandas"), ``size`` and ``mtime`` to record.
    ``on_commit(session, dataset_version_id, created)`` is called inside the write transaction
    that records the version (or, when this content is already a version of the dataset, in a
    transaction of its own) so callers can record lineage edges and audit events atomically
    with it. Returns the same dict as the import job.
    """
    name = check_name(name)
    table = _table_from_frame(df)
    src = dict(source or {})
    src.setdefault("format", "pandas")
    src.setdefault("path", None)
    src.setdefault("size", None)
    src.setdefault("mtime", None)
    src.setdefault("label", src.get("path") or "the table")
    progress = _Progress(ctx)
    tick = progress.phase(0.0, PARSE_END, "Normalising the table")

    def batches(_column_types: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
        total = max(table.num_rows, 1)
        done = 0
        for b in table.to_batches(max_chunksize=ROW_GROUP_ROWS):
            done += b.num_rows
            tick(done / total)
            yield b
        yield empty_batch(table.schema)

    return _import(store, progress, batches, name, target, src, job_id=ctx.job_id if ctx else None,
                   on_commit=on_commit)


def _table_from_frame(df: pd.DataFrame) -> pa.Table:
    names = [str(c) for c in df.columns]
    read_common.check_column_names(Path("the table"), names)
    try:
        return pa.Table.from_pandas(df.set_axis(names, axis=1), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        cols = []
        for c in df.columns:
            try:
                cols.append(pa.Array.from_pandas(df[c]))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                cols.append(read_common.column_from_values(df[c].tolist()))
        return pa.table(cols, names=names)


def _build_snapshot(batches: Callable[[dict[str, pa.DataType]], Iterator[pa.RecordBatch]], tmp: Path,
                    progress: _Progress, date_formats: Mapping[str, str] | None = None,
                    label: str = "the table", date_hints: Mapping[str, str] | None = None,
                    ) -> tuple[SnapshotResult, dict[str, Any]]:
    """Stream ``batches`` into the snapshot at ``tmp``, restarting when a CSV column must widen or
    a date column must stay text. Returns the result and what was decided per date column
    (nothing when ``date_formats`` is None: the batches' types are kept as they are)."""
    column_types: dict[str, pa.DataType] = {}
    as_text: dict[str, dict[str, Any]] = {}
    for _attempt in range(MAX_TYPE_RESTARTS):
        writer = SnapshotWriter(tmp)
        conv = (dates.DateColumns(date_formats, as_text, label=label, hints=date_hints)
                if date_formats is not None else None)
        types = dict(column_types)
        if conv is not None:
            types.update({c: pa.string() for c in conv.forced_text() if c not in types})
        gen = batches(types)
        try:
            for batch in gen:
                writer.write(batch if conv is None else conv.convert(batch))
            return writer.close(), conv.summary() if conv is not None else {}
        except TypePromotion as p:
            column_types[p.column] = p.new_type
            progress.log(f"Column '{p.column}': value {p.value[:40]!r} does not fit {p.old_type}; "
                         f"reading the file again with the column as {p.new_type}.")
        except dates.NotDates as nd:
            as_text[nd.column] = nd.record()
            progress.log(f"Column '{nd.column}': row {nd.row:,} holds {nd.value[:40]!r}, which is not a date in the "
                         f"format {nd.format}; reading the file again with the column as text.")
        finally:
            gen.close()
            writer.abort()
    raise ModelyardError("The column types could not be settled after many attempts.",
                         hint="Save the file with consistent values per column, or as Parquet.")


def _snapshot_write_error(store: Store, label: str, exc: OSError) -> ModelyardError:
    """A failed write of the snapshot, e.g. a full disk, as one line and what to do."""
    from modelyard.core.common.outputs import disk_full

    if disk_full(exc):
        return ModelyardError(f"The disk is full: the snapshot of {label} could not be written to the store at "
                              f"{store.root}. Nothing was imported.",
                              hint="Free some disk space (an import needs about twice the file's size) and "
                                   "import it again.")
    reason = exc.strerror or str(exc)
    return ModelyardError(f"The snapshot of {label} could not be written to the store at {store.root}: {reason}. "
                          f"Nothing was imported.",
                          hint="Check that the store's folder is writable and its disk is connected, then import "
                               "it again.")


def _same_content(s: Session, dataset_id: int, content_hash: str) -> m.DatasetVersion | None:
    return s.scalar(select(m.DatasetVersion)
                    .where(m.DatasetVersion.dataset_id == dataset_id, m.DatasetVersion.content_hash == content_hash)
                    .order_by(m.DatasetVersion.version.desc()).limit(1))


def _existing_version(store: Store, name: str, content_hash: str) -> DatasetVersionInfo | None:
    with store.session() as s:
        ds = s.scalar(select(m.Dataset).where(m.Dataset.name == name))
        if ds is None or ds.deleted_at is not None:
            return None
        v = _same_content(s, ds.id, content_hash)
        return _version_info(s, v, profile=True) if v is not None else None


def _import(store: Store, progress: _Progress, batches: Callable[[dict[str, pa.DataType]], Iterator[pa.RecordBatch]],
            name: str, target: str | None, source: Mapping[str, Any], *, job_id: int | None,
            on_commit: OnCommit | None = None, before_commit: Callable[[Path], None] | None = None,
            date_formats: Mapping[str, str] | None = None, date_hints: Mapping[str, str] | None = None,
            ) -> dict[str, Any]:
    label = source.get("label") or "the table"
    started = time.perf_counter()
    with store.artifacts.temp_path(".parquet") as tmp:
        try:
            snap, found = _build_snapshot(batches, tmp, progress, date_formats, str(label), date_hints)
        except OSError as exc:  # reading errors are DatasetInputErrors by now: this is the writing
            raise _snapshot_write_error(store, label, exc) from None
        for col, info in found.items():
            if info["format"] is not None:
                how = "as given" if info["given"] else "detected"
                progress.log(f"Column '{col}': dates in the format {info['format']} ({how}).")
        if before_commit is not None:
            before_commit(tmp)
        parsed = time.perf_counter()
        if snap.n_rows == 0:
            raise read_common.no_rows_error(label, snap.n_cols)
        if target is not None and target not in snap.schema.names:
            shown = ", ".join(f"'{n}'" for n in snap.schema.names[:20])
            raise SchemaError(f"{label} has no column '{target}' to use as the target.",
                              hint=f"Its columns are {shown}{', ...' if snap.n_cols > 20 else ''}.")
        progress.log(f"Read {plural(snap.n_rows, 'row')} and {plural(snap.n_cols, 'column')} in {parsed - started:.2f} s "
                     f"(content {snap.content_hash[:12]}).")
        existing = _existing_version(store, name, snap.content_hash)
        if existing is not None and (target is None or existing.target == target):
            progress.log(f"{existing.ref} already holds exactly this data; nothing new was stored.")
            if on_commit is not None:
                with store.write() as s:
                    on_commit(s, existing.id, False)
            return _result(existing, False)
        if existing is not None:
            info = update_schema(store, existing.id, {"target": target},
                                 comment=f"Imported again with the target '{target}'.")
            return _result(info, True)
        tick = progress.phase(PARSE_END, PROFILE_END, "Profiling")
        tick(0.0)
        profile = compute_profile(tmp, tick=tick)
        progress.log(f"Profiled in {profile['seconds']:.2f} s.")
        for col in profile["columns"]:
            if col["name"] in found:
                col["dates"] = found[col["name"]]
        schema = infer_schema(profile, target)
        profile = with_types(profile, schema)
        tick(1.0)
        if progress.ctx is not None:
            progress.ctx.progress(PROFILE_END, "Saving the new version")  # the last point a cancel is felt
        info, created = _commit_import(store, tmp, snap, name, schema, profile, source, job_id, on_commit)
    if created:
        progress.log(f"Stored {info.ref} ({plural(info.n_rows, 'row')} x {plural(info.n_cols, 'column')}).")
    else:
        progress.log(f"{info.ref} already holds exactly this data; nothing new was stored.")
    return _result(info, created)


def _commit_import(store: Store, tmp: Path, snap: SnapshotResult, name: str, schema: dict[str, Any],
                   profile: dict[str, Any], source: Mapping[str, Any], job_id: int | None,
                   on_commit: OnCommit | None = None) -> tuple[DatasetVersionInfo, bool]:
    user = current_user()
    with store.write() as s:
        xact_lock(s, "dataset", name)  # PostgreSQL: one new dataset, one next version number
        ds = s.scalar(select(m.Dataset).where(m.Dataset.name == name))
        if ds is None:
            ds = m.Dataset(name=name, created_by=user)
            s.add(ds)
            s.flush()
            audit(s, "dataset", ds.id, "create", to_value=name)
        elif ds.deleted_at is not None:
            ds.deleted_at = None
            audit(s, "dataset", ds.id, "restore", to_value=name, comment="Imported into the deleted dataset's name.")
        same = _same_content(s, ds.id, snap.content_hash)
        if same is not None:  # stored by a concurrent import meanwhile
            if on_commit is not None:
                on_commit(s, same.id, False)
            return _version_info(s, same), False
        latest = s.scalar(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id)
                          .order_by(m.DatasetVersion.version.desc()).limit(1))
        sha = None
        for other in s.scalars(select(m.DatasetVersion.snapshot_sha256)
                               .where(m.DatasetVersion.content_hash == snap.content_hash,
                                      m.DatasetVersion.snapshot_sha256.is_not(None))):
            if other and store.artifacts.exists(other):
                sha = other
                break
        if sha is None:
            sha = store.artifacts.adopt(tmp, session=s, media_type=SNAPSHOT_MEDIA_TYPE).sha256
        number = (latest.version if latest else 0) + 1
        v = m.DatasetVersion(
            dataset_id=ds.id, version=number, parent_id=latest.id if latest else None,
            content_hash=snap.content_hash, snapshot_sha256=sha, n_rows=snap.n_rows, n_cols=snap.n_cols,
            source_path=source.get("path"), source_size=source.get("size"), source_mtime=source.get("mtime"),
            source_format=source.get("format"), schema=schema, profile=profile, target=schema.get("target"),
            task=schema.get("task"), created_by=user, job_id=job_id,
        )
        s.add(v)
        s.flush()
        audit(s, "dataset_version", v.id, "import", from_value=f"{name}@v{latest.version}" if latest else None,
               to_value=f"{name}@v{number}",
               details={"source_path": source.get("path"), "source_format": source.get("format"),
                        "content_hash": snap.content_hash, "snapshot_sha256": sha, "n_rows": snap.n_rows,
                        "n_cols": snap.n_cols, "job_id": job_id})
        if on_commit is not None:
            on_commit(s, v.id, True)
        return _version_info(s, v), True


def date_formats_of(store: Store, ref: str | int | None) -> dict[str, str]:
    """{column: format} of the columns a version read as dates from text (for ``date_hints``)."""
    if ref is None:
        return {}
    try:
        v = get_version(store, ref)
    except NotFoundError:
        return {}
    return {c["name"]: c["dates"]["format"] for c in (v.profile or {}).get("columns", [])
            if (c.get("dates") or {}).get("format")}


# --------------------------------------------------------------------------- samples


def sample_frame(name: str) -> tuple[pd.DataFrame, str]:
    """A scikit-learn bundled dataset as a frame (no download) and its target column."""
    if name not in SAMPLES:
        raise NotFoundError(f"There is no sample dataset '{name}'.", hint=f"Choose one of {', '.join(SAMPLES)}.")
    import sklearn.datasets

    loader, target, _ = SAMPLES[name]
    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    df = bunch.frame.copy()
    names = getattr(bunch, "target_names", None)
    if names is not None and len(names) and df["target"].dtype.kind in "iu":
        df["target"] = np.asarray(names, dtype=object)[df["target"].to_numpy()].astype(str)
    df = df.rename(columns={"target": target})
    return df, target


def import_sample(ctx: JobContext, *, name: str = "iris", dataset_name: str | None = None) -> dict[str, Any]:
    """Job: import one of scikit-learn's bundled datasets as a real dataset."""
    ctx.progress(0.0, f"Loading the {name} sample")
    df, target = sample_frame(name)
    loader = SAMPLES[name][0]
    return import_frame(ctx.store, df, dataset_name or name, target=target, ctx=ctx,
                        source={"path": f"sklearn.datasets.{loader}", "format": "sklearn",
                                "label": f"the {name} sample"})


def import_files(ctx: JobContext, *, paths: list[str], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Import several files with the same columns as one dataset version: their rows one after
    the other, in the order given (a pipeline's import of a glob or a folder). Returns the same
    dict as :func:`import_dataset`; a file with other columns is refused, naming it."""
    opts = ImportOptions.from_params(options)
    files = [Path(p) for p in paths]
    settings = [readers.resolve_settings(f, delimiter=_delimiter(opts.delimiter), quotechar=opts.quotechar,
                                         encoding=opts.encoding, header=opts.header, sheet=opts.sheet) for f in files]
    sizes = [read_common.file_size(f) for f in files]
    total = max(sum(sizes), 1)
    name = check_name(opts.name or default_name(files[0].parent))
    progress = _Progress(ctx)
    ctx.log(f"Importing {len(files)} files as one version of {name}: " + ", ".join(f.name for f in files))

    def batches(column_types: dict[str, Any]) -> Iterator[Any]:
        done = 0
        columns: list[str] | None = None
        for f, s, size in zip(files, settings, sizes, strict=True):
            tick = progress.phase(done / total * PARSE_END, (done + size) / total * PARSE_END,
                                  f"Reading {f.name}")
            for batch in readers.iter_batches(f, s, tick, column_types=column_types, size=size):
                if columns is None:
                    columns = list(batch.schema.names)
                elif list(batch.schema.names) != columns:
                    raise ModelyardError(f"{f} has other columns than {files[0].name}, so the two cannot be one "
                                         "dataset version.",
                                         hint=f"Give files with the columns {', '.join(columns[:10])}, or import them "
                                              "as separate steps.")
                if batch.num_rows or f is files[-1]:
                    yield batch
            done += size

    source = {"path": str(files[0].parent), "size": sum(sizes), "mtime": None, "format": settings[0].format,
              "label": f"{len(files)} files in {files[0].parent}"}
    return _import(ctx.store, progress, batches, name, opts.target, source, job_id=ctx.job_id,
                   date_formats=dates.check_formats(opts.date_formats))
