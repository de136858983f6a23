"""Reading files as tables: format detection, CSV sniffing and streaming readers.

Formats: CSV/TSV (delimiter, quoting, header and encoding sniffed, every one overridable),
Parquet, Excel ``.xlsx`` (openpyxl, one sheet), JSON (a list of records, an object of column
lists, or pandas' "split" layout) and JSON Lines.

Every reader is a generator of :class:`pyarrow.RecordBatch` that calls ``tick(fraction)`` as it
goes (the job's progress, which is also its cancellation point). CSV is parsed by
``pyarrow.csv.open_csv`` block by block (the GIL is released while a block is parsed); its types
are inferred from the first block, and a later value that does not fit raises
:class:`TypePromotion` so the caller restarts the read with that column's type widened. A line
or quoted value longer than a block is read again with larger blocks (up to
:data:`MAX_CSV_BLOCK_BYTES`), and a file that ends inside a quoted value is refused, naming the
line where that value opens (:class:`_QuoteTracker`), rather than read as one giant last value.

The formats live in their own modules (:mod:`.read_csv_sniff`, :mod:`.read_csv`,
:mod:`.read_parquet`, :mod:`.read_excel`, :mod:`.read_json`) over what they share
(:mod:`.read_common`: settings, errors, opening, detection, column checks); this module resolves
the settings of a file and dispatches to its reader.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from modelyard.core.datasets.read_common import (
    CSV_BLOCK_GROWTH,
    FORMATS,
    MAX_CSV_BLOCK_BYTES,
    MAX_JSON_PREVIEW_BYTES,
    PREVIEW_BYTES,
    DatasetInputError,
    ReadSettings,
    Tick,
    check_column_names,
    detect_format,
    file_size,
    read_head,
    undecodable_error,
)
from modelyard.core.datasets.read_csv import (
    _convert_options,
    _csv_error,
    _parse_options,
    _read_options,
    csv_batches,
    unclosed_quote_error,
)
from modelyard.core.datasets.read_csv_sniff import (
    _complete_lines,
    _csv_rows,
    _decode_sample,
    _lines,
    _QuoteTracker,
    sniff_csv,
)
from modelyard.core.datasets.read_excel import excel_batches, excel_sheets, pick_sheet
from modelyard.core.datasets.read_json import json_batches
from modelyard.core.datasets.read_parquet import parquet_batches

# --------------------------------------------------------------------------- settings


def resolve_settings(path: Path, *, delimiter: str | None = None, quotechar: str | None = None,
                     encoding: str | None = None, header: bool | None = None,
                     sheet: str | None = None) -> ReadSettings:
    """Detect the format and dialect of ``path`` (reading only its first bytes), after overrides."""
    size = file_size(path)
    if size == 0:
        raise DatasetInputError(f"{path} is empty (0 bytes).", hint="Choose the file that holds the data.")
    head = read_head(path)
    fmt = detect_format(path, head)
    if fmt == "csv":
        return sniff_csv(path, head, size, delimiter=delimiter, quotechar=quotechar, encoding=encoding,
                         header=header)
    if fmt == "excel":
        sheets = excel_sheets(path)
        chosen = pick_sheet(path, sheets, sheet)
        return ReadSettings("excel", header=True if header is None else header, sheet=chosen, sheets=tuple(sheets))
    if fmt in ("json", "jsonl"):
        if not head.decode("utf-8-sig", errors="replace").strip():
            raise DatasetInputError(f"{path} holds only blank space: there is no table in it.",
                                    hint="Choose the file that holds the data.")
        return ReadSettings(fmt, encoding="utf-8")
    return ReadSettings(fmt)


# --------------------------------------------------------------------------- dispatch


def iter_batches(path: Path, s: ReadSettings, tick: Tick, *, column_types: dict[str, pa.DataType] | None = None,
                 size: int | None = None) -> Iterator[pa.RecordBatch]:
    """The batches of ``path`` read as ``s`` says. The last batch may be empty (it carries the schema)."""
    if s.format == "csv":
        return csv_batches(path, s, tick, column_types, size)
    if s.format == "parquet":
        return parquet_batches(path, tick)
    if s.format == "excel":
        return excel_batches(path, s, tick)
    if s.format in ("json", "jsonl"):
        return json_batches(path, s, tick, column_types=column_types)
    raise DatasetInputError(f"Unknown format {s.format!r}.", hint=f"Use one of {', '.join(FORMATS)}.")


def _no_tick(_fraction: float | None) -> None:
    pass


def preview_table(path: Path, s: ReadSettings, rows: int = 50,
                  column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """The first ``rows`` rows as the import would parse them, reading only the start of the file."""
    if s.format == "csv":
        size = file_size(path)
        want = PREVIEW_BYTES
        while True:  # at least the whole first line (a header may be longer than the preview's bytes)
            head = read_head(path, want)
            at_eof = size <= len(head)
            text = _decode_sample(path, head, s.encoding or "utf-8", at_eof=at_eof)
            if at_eof or "\n" in text or "\r" in text or want >= MAX_CSV_BLOCK_BYTES:
                break
            want *= CSV_BLOCK_GROWTH
        text = _complete_lines(text, at_eof)
        if text.startswith("\ufeff"):
            text = text[1:]
        if at_eof:  # the whole file is here: a quote it never closes is refused, as the import refuses it
            tracker = _QuoteTracker(s.delimiter or ",", s.quotechar)
            tracker.feed(text)
            if (line := tracker.open_at_end()) is not None:
                raise unclosed_quote_error(path, s, line)
        _, used = _csv_rows(text, s.delimiter or ",", s.quotechar, rows + (1 if s.header else 0))
        lines = _lines(text)[:used]
        data = "".join(lines).encode("utf-8")
        s_utf8 = replace(s, encoding="utf-8")
        try:
            table = pacsv.read_csv(io.BytesIO(data), read_options=_read_options(s_utf8, block_size=len(data) + 1),
                                   parse_options=_parse_options(s_utf8, None),
                                   convert_options=_convert_options(s_utf8, column_types))
        except (pa.ArrowInvalid, UnicodeError) as exc:
            raise _csv_error(path, s, exc, [], None) from None
        for fld in table.schema:
            if pa.types.is_binary(fld.type):
                raise undecodable_error(path, s.encoding, fld.name)
        check_column_names(path, table.column_names)
        return table.slice(0, rows)
    if s.format == "parquet":
        gen = parquet_batches(path, _no_tick, limit=rows)
    elif s.format == "excel":
        gen = excel_batches(path, s, _no_tick, limit=rows)
    elif s.format == "jsonl":
        gen = json_batches(path, s, _no_tick, limit=rows)
    else:
        if file_size(path) > MAX_JSON_PREVIEW_BYTES:
            return pa.table({})
        gen = json_batches(path, s, _no_tick, limit=rows)
    try:
        batches = list(gen)
    finally:
        gen.close()
    return pa.Table.from_batches(batches).slice(0, rows)
