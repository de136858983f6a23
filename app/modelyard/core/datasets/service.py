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

This module holds the sniffing for the import dialog and re-exports the rest, which lives in
:mod:`.importing` (the import job, samples, name rules), :mod:`.versions` (schema edits,
deleting, splits), :mod:`.rows` (reading rows) and :mod:`.catalog` (queries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from modelyard.core.datasets import dates, read_common, readers, targets
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
from modelyard.core.datasets.importing import (  # noqa: F401 - re-exported: the public API
    SNAPSHOT_MEDIA_TYPE,
    _delimiter,
    _mtime,
    date_formats_of,
    default_name,
    import_dataset,
    import_frame,
    import_sample,
    sample_frame,
)
from modelyard.core.datasets.read_common import (
    DatasetInputError,
)
from modelyard.core.datasets.rows import (  # noqa: F401 - re-exported: the public API
    _to_display_frame,
    clear_caches,
    load_frame,
    read_rows,
    read_table_rows,
    snapshot_path,
)
from modelyard.core.datasets.schema import SchemaError
from modelyard.core.datasets.specs import ImportOptions, import_spec, sample_spec  # noqa: F401 - re-exported
from modelyard.core.datasets.versions import (  # noqa: F401 - re-exported: the public API
    SPLIT_MEDIA_TYPE,
    create_split,
    delete_dataset,
    load_split,
    update_schema,
)

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

PREVIEW_ROWS = 50
DATE_SAMPLE_ROWS = 5_000  # rows the import dialog's date detection looks at
EXCEL_DATE_SAMPLE_ROWS = 500  # (openpyxl reads about 20,000 cells a second)


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
    likely_target: str | None = None  # what the import dialog pre-selects (core/datasets/targets.py)

    def options(self, **overrides: Any) -> ImportOptions:
        """The detected settings as explicit :class:`ImportOptions` (plus ``overrides``)."""
        opts = ImportOptions(delimiter=self.delimiter, quotechar=self.quotechar, encoding=self.encoding,
                             header=self.header, sheet=self.sheet, name=self.suggested_name)
        for k, v in overrides.items():
            setattr(opts, k, v)
        return opts


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
    size = read_common.file_size(src)
    return SniffResult(
        path=str(src), format=settings.format, size=size,
        modified=_mtime(src) or dt.datetime.now(dt.UTC), delimiter=settings.delimiter,
        quotechar=settings.quotechar if settings.format == "csv" else None, encoding=settings.encoding,
        header=settings.header, sheets=list(settings.sheets), sheet=settings.sheet,
        columns=list(table.column_names), preview=_preview_frame(table), notes=list(settings.notes),
        suggested_name=default_name(src), dates=found,
        likely_target=targets.guess_target(list(table.column_names),
                                           _last_column_values(sample)),
    )


def _last_column_values(table: pa.Table) -> dict[str, list[Any]]:
    """The last column's values in the rows read (what guessing the target looks at)."""
    if not table.num_columns:
        return {}
    return {table.column_names[-1]: table.column(table.num_columns - 1).to_pylist()}


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
