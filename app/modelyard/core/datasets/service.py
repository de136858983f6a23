"""Datasets: the public API (the GUI and the CLI use exactly these functions).

Everything returns plain dataclasses, dicts, pandas frames or numpy arrays, never ORM objects.

Import (a job: progress, cancel)::

    result = sniff(path)                          # format, dialect, sheets, 50-row preview
    spec = import_spec(path, ImportOptions(name="churn", target="churned"))
    outcome = run_job(store, spec)                # -> import_dataset(ctx, path=..., options=...)
    outcome.result  # {"dataset", "version", "ref", "dataset_version_id", "created", "n_rows", "n_cols", ...}

An import parses the file block by block into a normalised Arrow table, writes it as a
Parquet snapshot (row groups of 65,536 rows) to the store's tmp folder while hashing it,
profiles it, infers its schema, and then records everything in one write transaction
(``adopt`` moves the snapshot into the artifact folder inside that transaction, and a
rollback removes it again). A failure or a cancel anywhere leaves nothing behind: no
dataset, no version, no artifact row or file, no temp file.

The same content imported again into the same dataset returns the existing version
(``created: False``). Different content becomes the next version, whose parent is the
previous latest. The same content under another name is a new dataset that shares the
snapshot artifact.

Versions are immutable: :func:`update_schema` creates a child version that shares its
parent's snapshot. :func:`delete_dataset` soft-deletes (``deleted_at``) and refuses, unless
forced, while a model version or a run refers to one of its versions. Creates and deletes
are written to the audit log.
"""

from __future__ import annotations

import bisect
import datetime as dt
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.common.names import NAME_HINT
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.common.procs import current_user
from modelyard.core.datasets import dates, readers, splits
from modelyard.core.datasets.catalog import (  # noqa: F401 - re-exported: the public API
    SAMPLES,
    DatasetInfo,
    DatasetVersionInfo,
    SplitInfo,
    _find_dataset,
    _find_version,
    _iso,
    _split_info,
    _version_info,
    get_split,
    get_version,
    list_datasets,
    list_splits,
    list_versions,
    parse_ref,
)
from modelyard.core.datasets.profile import compute_profile, with_types
from modelyard.core.datasets.readers import (
    DatasetInputError,
    ReadSettings,
    TypePromotion,
    empty_batch,
)
from modelyard.core.datasets.schema import SchemaError, apply_changes, infer_schema
from modelyard.core.datasets.snapshot import (
    ROW_GROUP_ROWS,
    SnapshotResult,
    SnapshotWriter,
)
from modelyard.core.datasets.specs import ImportOptions, import_spec, sample_spec  # noqa: F401 - re-exported
from modelyard.core.jobs.runner import JobContext
from modelyard.core.store import Store
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ImportOptions", "SniffResult", "DatasetInfo", "DatasetVersionInfo", "SplitInfo", "SAMPLES",
    "sniff", "import_spec", "import_dataset", "import_frame", "sample_spec", "import_sample",
    "list_datasets", "get_version", "list_versions", "read_rows", "load_frame", "snapshot_path",
    "update_schema", "delete_dataset", "create_split", "load_split", "list_splits", "get_split",
    "parse_ref", "read_table_rows", "clear_caches", "sample_frame", "DatasetInputError", "SchemaError",
    "date_formats_of",
]

SNAPSHOT_MEDIA_TYPE = "application/vnd.apache.parquet"
SPLIT_MEDIA_TYPE = "application/x-npz"
DISK_FACTOR = 2.0
MAX_TYPE_RESTARTS = 64
PREVIEW_ROWS = 50
DATE_SAMPLE_ROWS = 5_000  # rows the import dialog's date detection looks at
EXCEL_DATE_SAMPLE_ROWS = 500  # (openpyxl reads about 20,000 cells a second)
NAME_MAX = 200

# Called inside the write transaction that records an imported version: (session, version id, created).
OnCommit = Callable[[Session, int, bool], None]

# Progress of an import: parsing + writing, then profiling, then the transaction.
PARSE_END = 0.7
PROFILE_END = 0.97


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class SniffResult:
    """What the import dialog shows before importing: the detected settings and a preview."""

    path: str
    format: str
    size: int
    modified: dt.datetime
    delimiter: str | None
    quotechar: str | None
    encoding: str | None
    header: bool
    sheets: list[str]
    sheet: str | None
    columns: list[str]
    preview: pd.DataFrame = field(repr=False)
    notes: list[str]
    suggested_name: str
    # Per text column holding dates: {"format": used (None: kept as text), "given", "detected",
    # "candidates": the formats every value fits, "not_dates": the value that did not fit}.
    dates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options(self, **overrides: Any) -> ImportOptions:
        """The detected settings as explicit :class:`ImportOptions` (plus ``overrides``)."""
        opts = ImportOptions(delimiter=self.delimiter, quotechar=self.quotechar, encoding=self.encoding,
                             header=self.header, sheet=self.sheet, name=self.suggested_name)
        for k, v in overrides.items():
            setattr(opts, k, v)
        return opts


# --------------------------------------------------------------------------- helpers


class _Progress:
    """Maps a phase's 0..1 onto a slice of the job's progress (no-op without a job)."""

    def __init__(self, ctx: JobContext | None) -> None:
        self.ctx = ctx

    def phase(self, start: float, end: float, message: str) -> Callable[[float | None], None]:
        def tick(fraction: float | None) -> None:
            if self.ctx is not None:
                f = start if fraction is None else start + (end - start) * fraction
                self.ctx.progress(f, message)

        return tick

    def log(self, line: str) -> None:
        if self.ctx is not None:
            self.ctx.log(line)


def _audit(s: Session, entity_type: str, entity_id: int | str, action: str, *, from_value: str | None = None,
           to_value: str | None = None, comment: str | None = None, details: dict[str, Any] | None = None) -> None:
    s.add(m.AuditEvent(actor=current_user(), entity_type=entity_type, entity_id=str(entity_id), action=action,
                       from_value=from_value, to_value=to_value, comment=comment, details=details))


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


# --------------------------------------------------------------------------- sniffing


def _preview_frame(table: pa.Table) -> pd.DataFrame:
    from modelyard.core.datasets.snapshot import normalize_batch

    if table.num_columns == 0:
        import pandas as pd

        return pd.DataFrame()
    batches = [normalize_batch(b) for b in table.to_batches()]
    if batches:
        table = pa.Table.from_batches(batches)
    else:
        from modelyard.core.datasets.snapshot import normalize_schema

        table = normalize_schema(table.schema).empty_table()
    return _to_display_frame(table)


def sniff(path: str | Path, options: ImportOptions | Mapping[str, Any] | None = None) -> SniffResult:
    """Detect the format and dialect of ``path`` and parse its first rows, for the import dialog.

    Reads only the start of the file (a Parquet file's metadata and first row group; an
    Excel workbook's chosen sheet up to the 51st row). ``options`` overrides what was detected
    (delimiter, quote character, encoding, header, sheet). Raises :class:`DatasetInputError`
    with a message for the user when the file cannot be imported.
    """
    opts = ImportOptions.from_params(options)
    src = Path(path).expanduser()
    settings = readers.resolve_settings(src, delimiter=_delimiter(opts.delimiter), quotechar=opts.quotechar,
                                        encoding=opts.encoding, header=opts.header, sheet=opts.sheet)
    formats = dates.check_formats(opts.date_formats)
    forced = {c: pa.string() for c in formats if c != dates.ALL_COLUMNS}
    rows = EXCEL_DATE_SAMPLE_ROWS if settings.format == "excel" else DATE_SAMPLE_ROWS
    sample = readers.preview_table(src, settings, rows, column_types=forced)
    table, found = _preview_dates(sample, formats, str(src))
    table = table.slice(0, PREVIEW_ROWS)
    size = readers.file_size(src)
    return SniffResult(
        path=str(src), format=settings.format, size=size,
        modified=_mtime(src) or dt.datetime.now(dt.UTC), delimiter=settings.delimiter,
        quotechar=settings.quotechar if settings.format == "csv" else None, encoding=settings.encoding,
        header=settings.header, sheets=list(settings.sheets), sheet=settings.sheet,
        columns=list(table.column_names), preview=_preview_frame(table), notes=list(settings.notes),
        suggested_name=default_name(src), dates=found,
    )


def _preview_dates(table: pa.Table, formats: Mapping[str, str], label: str) -> tuple[pa.Table, dict[str, Any]]:
    """``table`` with its date columns converted as the import will, and what was decided per column."""
    as_text: dict[str, dict[str, Any]] = {}
    for _ in range(table.num_columns + 1):
        conv = dates.DateColumns(formats, as_text, label=label)
        try:
            converted = conv.convert(table) if table.num_rows else table
        except dates.NotDates as nd:
            as_text[nd.column] = nd.record()
            continue
        if not table.num_rows:
            conv.check_columns(table.column_names)
        return converted, conv.summary()
    return table, {}  # pragma: no cover - each round settles one more column


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
            f"Not enough free disk space to import {path} ({readers.describe_size(size)}): the store at "
            f"{store.root} has {readers.describe_size(free)} free and the import needs about "
            f"{readers.describe_size(need)}.",
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
    size = readers.file_size(src)
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
    readers.check_column_names(Path("the table"), names)
    try:
        return pa.Table.from_pandas(df.set_axis(names, axis=1), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        cols = []
        for c in df.columns:
            try:
                cols.append(pa.Array.from_pandas(df[c]))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                cols.append(readers.column_from_values(df[c].tolist()))
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
            raise readers.no_rows_error(label, snap.n_cols)
        if target is not None and target not in snap.schema.names:
            shown = ", ".join(f"'{n}'" for n in snap.schema.names[:20])
            raise SchemaError(f"{label} has no column '{target}' to use as the target.",
                              hint=f"Its columns are {shown}{', ...' if snap.n_cols > 20 else ''}.")
        progress.log(f"Read {snap.n_rows:,} rows and {snap.n_cols} columns in {parsed - started:.2f} s "
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
        progress.log(f"Stored {info.ref} ({info.n_rows:,} rows x {info.n_cols} columns).")
    else:
        progress.log(f"{info.ref} already holds exactly this data; nothing new was stored.")
    return _result(info, created)


def _commit_import(store: Store, tmp: Path, snap: SnapshotResult, name: str, schema: dict[str, Any],
                   profile: dict[str, Any], source: Mapping[str, Any], job_id: int | None,
                   on_commit: OnCommit | None = None) -> tuple[DatasetVersionInfo, bool]:
    user = current_user()
    with store.write() as s:
        ds = s.scalar(select(m.Dataset).where(m.Dataset.name == name))
        if ds is None:
            ds = m.Dataset(name=name, created_by=user)
            s.add(ds)
            s.flush()
            _audit(s, "dataset", ds.id, "create", to_value=name)
        elif ds.deleted_at is not None:
            ds.deleted_at = None
            _audit(s, "dataset", ds.id, "restore", to_value=name, comment="Imported into the deleted dataset's name.")
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
        _audit(s, "dataset_version", v.id, "import", from_value=f"{name}@v{latest.version}" if latest else None,
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


# --------------------------------------------------------------------------- queries


# --------------------------------------------------------------------------- reading rows

_CACHE_LOCK = threading.Lock()
_SNAPSHOT_PATHS: dict[tuple[str, int], Path] = {}
_FILES: OrderedDict[Path, tuple[pq.ParquetFile, list[int]]] = OrderedDict()
_GROUPS: OrderedDict[tuple[Path, int], pa.Table] = OrderedDict()
MAX_OPEN_FILES = 8
MAX_CACHED_GROUPS = 4


def snapshot_path(store: Store, ref: str | int) -> Path:
    """The Parquet snapshot file of a version (read it, never write it)."""
    if isinstance(ref, int):
        key = (str(store.root), ref)
        with _CACHE_LOCK:
            hit = _SNAPSHOT_PATHS.get(key)
        if hit is not None and hit.is_file():  # (a store re-created in the same folder reuses ids)
            return hit
    with store.session() as s:
        v = _find_version(s, ref)
        sha, vid, label = v.snapshot_sha256, v.id, f"version {v.id}"
    if sha is None:
        raise NotFoundError(f"Dataset {label} has no snapshot file.", hint="Import the data again.")
    path = store.artifacts.path(sha)
    if not path.is_file():
        raise NotFoundError(f"The snapshot of dataset {label} is missing from the store ({path}).",
                            hint="'modelyard store verify' checks every artifact; import the data again.")
    with _CACHE_LOCK:
        _SNAPSHOT_PATHS[(str(store.root), vid)] = path
    return path


def _open_file(path: Path) -> tuple[pq.ParquetFile, list[int]]:
    entry = _FILES.get(path)
    if entry is not None:
        _FILES.move_to_end(path)
        return entry
    pf = pq.ParquetFile(path)
    starts = [0]
    for i in range(pf.metadata.num_row_groups):
        starts.append(starts[-1] + pf.metadata.row_group(i).num_rows)
    _FILES[path] = (pf, starts)
    while len(_FILES) > MAX_OPEN_FILES:
        _, (old, _s) = _FILES.popitem(last=False)
        old.close()
    return pf, starts


def _row_group(path: Path, pf: pq.ParquetFile, i: int) -> pa.Table:
    key = (path, i)
    table = _GROUPS.get(key)
    if table is not None:
        _GROUPS.move_to_end(key)
        return table
    table = pf.read_row_group(i)
    _GROUPS[key] = table
    while len(_GROUPS) > MAX_CACHED_GROUPS:
        _GROUPS.popitem(last=False)
    return table


def _to_display_frame(table: pa.Table) -> pd.DataFrame:
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)


def read_table_rows(store: Store, dataset_version_id: int, start: int, count: int,
                    columns: list[str] | None = None) -> pa.Table:
    """Rows ``start`` .. ``start + count - 1`` of a version as an Arrow table (see :func:`read_rows`)."""
    path = snapshot_path(store, int(dataset_version_id))
    with _CACHE_LOCK:
        pf, starts = _open_file(path)
        n = starts[-1]
        start = max(0, min(int(start), n))
        stop = max(start, min(n, start + max(0, int(count))))
        if stop == start:
            table = pf.schema_arrow.empty_table()
        else:
            first = bisect.bisect_right(starts, start) - 1
            last = bisect.bisect_right(starts, stop - 1) - 1
            pieces = []
            for g in range(first, last + 1):
                group = _row_group(path, pf, g)
                lo = max(start - starts[g], 0)
                hi = min(stop - starts[g], group.num_rows)
                pieces.append(group.slice(lo, hi - lo))
            table = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
    if columns is not None:
        table = table.select(columns)
    return table


def read_rows(store: Store, dataset_version_id: int, start: int, count: int,
              columns: list[str] | None = None) -> pd.DataFrame:
    """Rows ``start`` .. ``start + count - 1`` of a version's snapshot, as a frame for display.

    Reads only the row groups that hold those rows (the open file and the last few decoded row
    groups are cached), so paging through a million rows stays smooth. Integers and booleans
    keep their type with missing values (pandas' nullable Int64 and boolean). Thread-safe.
    """
    return _to_display_frame(read_table_rows(store, dataset_version_id, start, count, columns))


def load_frame(store: Store, ref: str | int, columns: list[str] | None = None) -> pd.DataFrame:
    """A whole version as a pandas frame (for training: plain numpy dtypes, NaN for missing)."""
    return pq.read_table(snapshot_path(store, ref), columns=columns).to_pandas()


def clear_caches() -> None:
    """Forget open snapshot files and cached row groups (e.g. before a store is closed)."""
    with _CACHE_LOCK:
        for pf, _ in _FILES.values():
            pf.close()
        _FILES.clear()
        _GROUPS.clear()
        _SNAPSHOT_PATHS.clear()


# --------------------------------------------------------------------------- schema edits


def update_schema(store: Store, version_ref: str | int, changes: Mapping[str, Any], *,
                  comment: str | None = None) -> DatasetVersionInfo:
    """A new version with ``changes`` applied to the schema of ``version_ref`` (its parent).

    ``changes``: ``{"columns": {name: {"type": T, "role": R}}, "target": name or None,
    "task": "classification" | "regression"}`` (any subset). The new version shares the
    parent's snapshot; its profile warnings are recomputed. When nothing changes, the version
    itself is returned and nothing is written.
    """
    parent = get_version(store, version_ref)
    if parent.schema is None or parent.profile is None:
        raise SchemaError(f"{parent.ref} has no schema to change.", hint="Import the data again.")
    new_schema = apply_changes(parent.schema, parent.profile, changes)
    if new_schema == parent.schema:
        return parent
    new_profile = with_types(parent.profile, new_schema)
    with store.write() as s:
        top = s.scalar(select(func.max(m.DatasetVersion.version))
                       .where(m.DatasetVersion.dataset_id == parent.dataset_id)) or 0
        v = m.DatasetVersion(
            dataset_id=parent.dataset_id, version=top + 1, parent_id=parent.id, content_hash=parent.content_hash,
            snapshot_sha256=parent.snapshot_sha256, n_rows=parent.n_rows, n_cols=parent.n_cols,
            source_path=parent.source_path, source_size=parent.source_size, source_mtime=parent.source_mtime,
            source_format=parent.source_format, schema=new_schema, profile=new_profile,
            target=new_schema.get("target"), task=new_schema.get("task"), note=comment, created_by=current_user(),
        )
        s.add(v)
        s.flush()
        _audit(s, "dataset_version", v.id, "update_schema", from_value=parent.ref,
               to_value=f"{parent.name}@v{top + 1}", comment=comment, details={"changes": _jsonable(changes)})
        return _version_info(s, v)


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------- deleting


def delete_dataset(store: Store, name: str, *, force: bool = False, comment: str | None = None) -> dict[str, Any]:
    """Soft-delete dataset ``name`` (hidden, data kept). Refused while models or runs use it, unless forced."""
    name = parse_ref(name)[0]
    with store.write() as s:
        ds = _find_dataset(s, name)
        ids = list(s.scalars(select(m.DatasetVersion.id).where(m.DatasetVersion.dataset_id == ds.id)))
        numbers = dict(s.execute(select(m.DatasetVersion.id, m.DatasetVersion.version)
                                 .where(m.DatasetVersion.dataset_id == ds.id)).all())
        model_versions = [
            {"model": mname, "version": ver, "dataset_version": f"{name}@v{numbers[dvid]}"}
            for mname, ver, dvid in s.execute(
                select(m.RegisteredModel.name, m.ModelVersion.version, m.ModelVersion.dataset_version_id)
                .join(m.RegisteredModel, m.RegisteredModel.id == m.ModelVersion.model_id)
                .where(m.ModelVersion.dataset_version_id.in_(ids))
                .order_by(m.RegisteredModel.name, m.ModelVersion.version))
        ] if ids else []
        runs = [
            {"run": uuid, "name": rname, "dataset_version": f"{name}@v{numbers[dvid]}"}
            for uuid, rname, dvid in s.execute(
                select(m.Run.uuid, m.Run.name, m.Run.dataset_version_id)
                .where(m.Run.dataset_version_id.in_(ids), m.Run.deleted_at.is_(None)).order_by(m.Run.id))
        ] if ids else []
        checks = s.scalar(select(func.count()).select_from(m.MonitoringCheck).where(or_(
            m.MonitoringCheck.batch_dataset_version_id.in_(ids),
            m.MonitoringCheck.reference_dataset_version_id.in_(ids)))) if ids else 0
        referenced = bool(model_versions or runs)
        if referenced and not force:
            parts = []
            if model_versions:
                shown = ", ".join(f"{mv['model']} v{mv['version']}" for mv in model_versions[:5])
                more = f" and {len(model_versions) - 5} more" if len(model_versions) > 5 else ""
                parts.append(f"model version(s) {shown}{more}")
            if runs:
                shown = ", ".join(r["name"] or r["run"][:8] for r in runs[:5])
                more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
                parts.append(f"run(s) {shown}{more}")
            raise ModelyardError(
                f"Dataset '{name}' was not deleted: it was used to train {' and by '.join(parts)}.",
                hint="Those records would lose their data. Delete with --force to hide the dataset anyway "
                     "(its files are kept for them).")
        ds.deleted_at = m.utcnow()
        details = {"forced": force, "versions": len(ids), "model_versions": model_versions, "runs": runs,
                   "monitoring_checks": checks or 0}
        _audit(s, "dataset", ds.id, "delete", from_value=name, comment=comment, details=details)
    return {"name": name, "deleted": True, "forced": bool(force and referenced), "versions": len(ids),
            "model_versions": model_versions, "runs": runs}


# --------------------------------------------------------------------------- splits


def _split_name(method: str, test: float, validation: float, seed: int, column: str | None) -> str:
    name = f"{method}-test{test:g}" + (f"-val{validation:g}" if validation else "") + \
        (f"-by-{column}" if column else "") + f"-seed{seed}"
    if len(name) > 100:
        import hashlib

        name = name[:83] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name


def create_split(store: Store, version_ref: str | int, *, test: float, validation: float = 0.0,
                 method: str = "random", column: str | None = None, seed: int = 0,
                 name: str | None = None) -> SplitInfo:
    """Define and store a train/test (and validation) split of a version.

    ``method``: random, stratified (by ``column``, default the target) or time (ordered by
    ``column``, default the only datetime column). The same parameters give the same split:
    asking again returns the stored one.
    """
    v = get_version(store, version_ref)
    if method not in splits.METHODS:
        raise splits.SplitError(f"Unknown split method '{method}'.", hint=f"Use one of {', '.join(splits.METHODS)}.")
    names = [c["name"] for c in v.columns]
    if method == "stratified" and column is None:
        column = v.target
        if column is None:
            raise splits.SplitError(f"{v.ref} has no target to stratify on.",
                                    hint="Set the dataset's target first, or name the column: "
                                         "'modelyard dataset split NAME --method stratified --column COL'.")
    if method == "time" and column is None:
        dates = [c["name"] for c in v.columns if c.get("type") == "datetime"]
        if len(dates) != 1:
            raise splits.SplitError(f"A time split of {v.ref} needs the time column"
                                    + (f" (it has {len(dates)} date/time columns)." if dates else "."),
                                    hint="Name it: 'modelyard dataset split NAME --method time --column COL', "
                                         "or 'modelyard train ... --split-method time --split-column COL' "
                                         "(split: {method: time, column: COL} in a training spec).")
        column = dates[0]
    if method == "random":
        column = None
    if column is not None and column not in names:
        raise splits.SplitError(f"{v.ref} has no column '{column}'.",
                                hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    split_name = name or _split_name(method, test, validation, seed, column)
    splits.part_sizes(v.n_rows, test, validation)  # refuse bad shares before reading anything
    with store.session() as s:
        existing = s.scalar(select(m.DatasetSplit).where(m.DatasetSplit.dataset_version_id == v.id,
                                                         m.DatasetSplit.name == split_name))
        if existing is not None:
            same = (existing.method == method and existing.seed == seed
                    and (existing.spec or {}).get("test") == test
                    and (existing.spec or {}).get("validation") == validation
                    and (existing.spec or {}).get("column") == column)
            if same:
                return _split_info(s, existing)
            raise splits.SplitError(f"{v.ref} already has a different split named '{split_name}'.",
                                    hint="Choose another name.")
    values = None
    if column is not None:
        values = pq.read_table(snapshot_path(store, v.id), columns=[column]).column(0)
    assignment, facts = splits.make_assignment(v.n_rows, test=test, validation=validation, method=method,
                                               seed=seed, column=column, values=values)
    spec = {"test": test, "validation": validation, "column": column, "n_rows": v.n_rows, **facts}
    with store.write() as s:
        existing = s.scalar(select(m.DatasetSplit).where(m.DatasetSplit.dataset_version_id == v.id,
                                                         m.DatasetSplit.name == split_name))
        if existing is not None:  # made by someone else meanwhile, from the same parameters
            return _split_info(s, existing)
        ref = store.artifacts.put_bytes(splits.to_bytes(assignment), session=s, media_type=SPLIT_MEDIA_TYPE)
        sp = m.DatasetSplit(dataset_version_id=v.id, name=split_name, method=method, seed=seed, spec=spec,
                            assignment_sha256=ref.sha256)
        s.add(sp)
        s.flush()
        _audit(s, "dataset_split", sp.id, "create", to_value=f"{v.ref}:{split_name}", details=spec)
        return _split_info(s, sp)


def load_split(store: Store, split_id: int) -> dict[str, np.ndarray]:
    """The row indices (into the version's rows, ascending) of train, validation and test."""
    info = get_split(store, split_id)
    if info.assignment_sha256 is None or not store.artifacts.exists(info.assignment_sha256):
        raise NotFoundError(f"The row assignment of split {split_id} is missing from the store.",
                            hint="'modelyard store verify' checks every artifact; create the split again.")
    return splits.indices(splits.from_bytes(store.artifacts.read_bytes(info.assignment_sha256)))
