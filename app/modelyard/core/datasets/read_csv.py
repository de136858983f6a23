"""Reading CSV/TSV block by block with ``pyarrow.csv.open_csv`` (the GIL is released while a block
is parsed).

Types are inferred from the first block, and a later value that does not fit raises
:class:`~modelyard.core.datasets.read_common.TypePromotion` so the caller restarts the read with
that column's type widened. A line or quoted value longer than a block is read again with
larger blocks (up to :data:`~modelyard.core.datasets.read_common.MAX_CSV_BLOCK_BYTES`), and a
file that ends inside a quoted value is refused, naming the line where that value opens
(:class:`_QuoteTracker`), rather than read as one giant last value.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from modelyard.core.datasets.read_common import (
    _CONVERSION_ERROR,
    CSV_BLOCK_BYTES,
    CSV_BLOCK_GROWTH,
    FALSE_VALUES,
    MAX_CSV_BLOCK_BYTES,
    TRUE_VALUES,
    DatasetInputError,
    ReadSettings,
    Tick,
    TypePromotion,
    _os_error,
    arrow_encoding,
    check_column_names,
    describe_size,
    empty_batch,
    file_size,
    no_rows_error,
    open_binary,
    undecodable_error,
)
from modelyard.core.datasets.read_csv_sniff import _allow_long_fields, _QuoteTracker

# --------------------------------------------------------------------------- CSV reading


def _parse_options(s: ReadSettings, invalid: list[Any] | None) -> pacsv.ParseOptions:
    def on_invalid(row: Any) -> str:
        if invalid is None:
            return "skip"
        invalid.append(row)
        return "error"

    return pacsv.ParseOptions(delimiter=s.delimiter or ",", quote_char=s.quotechar, double_quote=True,
                              newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=on_invalid)


def _read_options(s: ReadSettings, *, block_size: int = CSV_BLOCK_BYTES) -> pacsv.ReadOptions:
    names = list(s.column_names) if s.column_names is not None else None
    return pacsv.ReadOptions(block_size=block_size, encoding=arrow_encoding(s.encoding), column_names=names,
                             use_threads=True)


def _convert_options(s: ReadSettings, column_types: dict[str, pa.DataType] | None) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=True,
                                column_types=column_types or {}, decimal_point=s.decimal_point, check_utf8=True)


def _value_kind(value: str, decimal_point: str) -> str:
    v = value.strip()
    if re.fullmatch(r"[+-]?\d+", v):
        return "int" if -(2**63) <= int(v) < 2**63 else "float"
    if decimal_point != ".":
        v = v.replace(decimal_point, ".")
    if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", v, re.I):
        return "float"
    if value in TRUE_VALUES or value in FALSE_VALUES:
        return "bool"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return "date"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", v):
        return "timestamp"
    return "string"


def _type_rank(t: pa.DataType) -> int:
    if pa.types.is_null(t):
        return 0
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_date(t):
        return 1
    if pa.types.is_floating(t) or pa.types.is_timestamp(t):
        return 2
    return 3


def widen(current: pa.DataType, value: str, decimal_point: str = ".") -> pa.DataType:
    """The narrowest type above ``current`` that also holds ``value`` (ending at string)."""
    kind = _value_kind(value, decimal_point)
    by_kind = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "date": pa.date32(),
               "timestamp": pa.timestamp("ns"), "string": pa.string()}
    if pa.types.is_null(current):
        new = by_kind[kind]
    elif pa.types.is_integer(current) and kind in ("int", "float"):
        new = pa.float64()
    elif pa.types.is_date(current) and kind == "timestamp":
        new = pa.timestamp("ns")
    else:
        new = pa.string()
    if _type_rank(new) <= _type_rank(current) and not pa.types.is_string(new):
        new = pa.string()
    return new


def _text_chunks(path: Path, s: ReadSettings, size: int = 1 << 20) -> Iterator[str]:
    encoding = codecs.lookup(s.encoding or "utf-8").name
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        first = True
        while chunk := text.read(size):
            if first and chunk.startswith("\ufeff"):
                chunk = chunk[1:]
            first = False
            yield chunk


def _open_quote_line(path: Path, s: ReadSettings) -> int | None:
    """The line where a quoted value starts that the file never closes, or None (reads the whole file)."""
    tracker = _QuoteTracker(s.delimiter or ",", s.quotechar)
    for chunk in _text_chunks(path, s):
        tracker.feed(chunk)
    return tracker.open_at_end()


def _last_line(path: Path) -> bytes:
    """The bytes after the file's last line break (empty when it ends with one)."""
    with open_binary(path) as fh:
        pos = fh.seek(0, io.SEEK_END)
        pieces: list[bytes] = []
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            piece = fh.read(step)
            cut = max(piece.rfind(b"\n"), piece.rfind(b"\r"))
            if cut >= 0:
                pieces.append(piece[cut + 1:])
                break
            pieces.append(piece)
        return b"".join(reversed(pieces))


def _may_end_in_open_quote(path: Path, s: ReadSettings, last_values: Sequence[Any]) -> bool:
    """False when the file surely does not end inside a quoted value (cheap: looks at the last record).

    A quoted value left open runs to the end of the file. If the file ends with a line break,
    that line break is inside the last value read; if it does not, and no value of the last
    record holds a line break, the last record is the file's last line, which is checked alone.
    """
    if any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in last_values):
        return True
    encoding = codecs.lookup(s.encoding or "utf-8").name.replace("utf-8-sig", "utf-8")  # (a BOM is stripped)
    if "\n\r".encode(encoding, errors="replace") != b"\n\r":  # UTF-16, UTF-32, EBCDIC: no cheap look
        return True
    tail = _last_line(path)
    if not tail:
        return False
    text = tail.decode(encoding, errors="replace").lstrip("\ufeff")
    tracker = _QuoteTracker(s.delimiter or ",", s.quotechar)
    tracker.feed(text)
    return tracker.open_at_end() is not None


def unclosed_quote_error(path: Path, s: ReadSettings, line: int) -> DatasetInputError:
    q = s.quotechar
    return DatasetInputError(
        f"{path}: the quoted value that starts on line {line} is never closed, so it would swallow the rest "
        f"of the file.",
        hint=f"Add the missing closing quote ({q}) on that line or remove the stray one (a quote inside a "
             f"quoted value is written twice: {q}{q}); if the file does not quote its values, choose another "
             f"quote character with --quote.")


def _check_quotes_closed(path: Path, s: ReadSettings, last_values: Sequence[Any]) -> None:
    if _may_end_in_open_quote(path, s, last_values):
        line = _open_quote_line(path, s)
        if line is not None:
            raise unclosed_quote_error(path, s, line)


def _find_ragged_row(path: Path, s: ReadSettings, expected: int) -> tuple[int, int, int, str] | None:
    """(line, data row, fields, text) of the first record whose field count is not ``expected``."""
    encoding = codecs.lookup(s.encoding or "utf-8").name
    _allow_long_fields()
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=s.delimiter or ",", quotechar=s.quotechar, doublequote=True)
        record = 0
        try:
            for row in reader:
                if not row:  # only an empty line is skipped (as pyarrow does): "" or spaces are a value
                    continue
                record += 1
                if len(row) != expected:
                    data_row = record - 1 if s.header else record
                    shown = (s.delimiter or ",").join(row)
                    return reader.line_num, data_row, len(row), shown[:80]
        except csv.Error:
            return None
    return None


def _first_record(path: Path, s: ReadSettings) -> list[str] | None:
    """The first non-blank record of the file as Python's csv reads it, or None."""
    _allow_long_fields()
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=codecs.lookup(s.encoding or "utf-8").name, errors="replace",
                                newline="")
        try:
            for row in csv.reader(text, delimiter=s.delimiter or ",", quotechar=s.quotechar, doublequote=True):
                if row and any(c.strip() for c in row):
                    return [c.lstrip("\ufeff") for c in row[:1]] + row[1:]
        except csv.Error:
            return None
    return None


def _ragged_error(path: Path, s: ReadSettings, invalid: list[Any], names: Sequence[str] | None) -> DatasetInputError:
    row = invalid[0]
    expected = row.expected_columns
    found = _find_ragged_row(path, s, expected)
    open_line = _open_quote_line(path, s)
    if open_line is not None and (found is None or found[0] >= open_line):
        return unclosed_quote_error(path, s, open_line)  # the open value swallowed delimiters: a short row
    delim = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(s.delimiter or ",", repr(s.delimiter))
    what = "the header" if s.header else "the first row"
    if found is not None:
        line, data_row, fields, text = found
        where = f"line {line} (data row {data_row}) has {fields} field{'s' if fields != 1 else ''}"
    else:
        where = f"a row has {row.actual_columns} field{'s' if row.actual_columns != 1 else ''}"
        text = (row.text or "")[:80]
    return DatasetInputError(
        f"{path}: {where} but {what} has {expected} columns: {text!r}.",
        hint=f"Fix that row (a missing or extra delimiter, or an unclosed quote), or check the delimiter "
             f"(read as {delim}; choose another with --delimiter).")


def _csv_error(path: Path, s: ReadSettings, exc: BaseException, invalid: list[Any],
               schema: pa.Schema | None) -> BaseException:
    if invalid:
        return _ragged_error(path, s, invalid, schema.names if schema is not None else None)
    if isinstance(exc, UnicodeError):
        return undecodable_error(path, s.encoding)
    text = str(exc)
    m = _CONVERSION_ERROR.search(text)
    if m and schema is not None:
        idx, value = int(m.group(1)), m.group(3)
        if idx < len(schema):
            fld = schema.field(idx)
            return TypePromotion(fld.name, fld.type, widen(fld.type, value, s.decimal_point), value)
    if "invalid UTF8" in text or "UTF8" in text or "decode" in text.lower():
        col = None
        m2 = re.search(r"In CSV column #(\d+)", text)
        if m2 and schema is not None and int(m2.group(1)) < len(schema):
            col = schema.names[int(m2.group(1))]
        return undecodable_error(path, s.encoding, col)
    open_line = _open_quote_line(path, s)
    if open_line is not None:  # what pyarrow makes of a value that never ends
        return unclosed_quote_error(path, s, open_line)
    if "Empty CSV file" in text:
        first = _first_record(path, s)
        if first is not None and s.header:  # (pyarrow's word for a header without a line break after it)
            return no_rows_error(path, len(first))
        return DatasetInputError(f"{path} is empty: there is no header and no data.",
                                 hint="Choose the file that holds the data.")
    return DatasetInputError(f"Cannot read {path} as CSV: {text}",
                             hint="Check the delimiter, quote character and encoding (they can be chosen "
                                  "with --delimiter, --encoding and --no-header).")


_BLOCK_TOO_SMALL = ("straddling object straddles two block boundaries", "Empty CSV file or block")


def _block_too_small(exc: BaseException) -> bool:
    return isinstance(exc, pa.ArrowInvalid) and any(m in str(exc) for m in _BLOCK_TOO_SMALL)


def _too_long_error(path: Path, s: ReadSettings, block: int) -> DatasetInputError:
    line = _open_quote_line(path, s)
    if line is not None:
        return unclosed_quote_error(path, s, line)
    return DatasetInputError(f"{path} has a line or quoted value longer than {describe_size(block)}, more than "
                             f"Modelyard reads in one piece.",
                             hint="Check the file for a stray quote, or save it as Parquet and import that.")


def csv_batches(path: Path, s: ReadSettings, tick: Tick, column_types: dict[str, pa.DataType] | None = None,
                size: int | None = None) -> Iterator[pa.RecordBatch]:
    """Stream ``path`` as record batches (one per block), reporting bytes read as progress.

    A line or quoted value longer than a block makes pyarrow fail: the file is then read again
    with larger blocks (the rows already handed out are skipped, their column types kept). A
    quoted value still open at the end of the file is refused, naming the line where it opens.
    """
    size = size or file_size(path) or 1
    block = CSV_BLOCK_BYTES
    handed_out = 0  # rows already yielded, by an earlier attempt with smaller blocks
    first_schema: pa.Schema | None = None
    while True:
        types = dict(column_types or {})
        if first_schema is not None and handed_out:
            types = {f.name: f.type for f in first_schema} | types
        invalid: list[Any] = []
        fh = open_binary(path)
        reader = None
        try:
            try:
                reader = pacsv.open_csv(fh, read_options=_read_options(s, block_size=block),
                                        parse_options=_parse_options(s, invalid),
                                        convert_options=_convert_options(s, types))
            except (pa.ArrowInvalid, UnicodeError) as exc:
                if _block_too_small(exc) and block < 4 * size:  # (4: text may grow as it is made UTF-8)
                    block = _grow_block(path, s, block)
                    continue
                raise _csv_error(path, s, exc, invalid, None) from None
            except OSError as exc:
                raise _os_error(path, exc) from exc
            schema = reader.schema
            if not handed_out:
                check_column_names(path, schema.names)
                for fld in schema:
                    if pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type):
                        raise undecodable_error(path, s.encoding, fld.name)
                first_schema = schema
            rows = 0
            last: pa.RecordBatch | None = None
            grown = False
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, UnicodeError) as exc:
                    if not invalid and _block_too_small(exc):
                        block = _grow_block(path, s, block)
                        grown = True
                        break
                    raise _csv_error(path, s, exc, invalid, schema) from None
                except OSError as exc:
                    raise _os_error(path, exc) from exc
                try:
                    done = fh.tell() / size
                except (OSError, ValueError):
                    done = None
                if batch.num_rows:
                    last = batch
                start = rows
                rows += batch.num_rows
                if rows <= handed_out:
                    continue  # handed out by the attempt before
                if start < handed_out:
                    batch = batch.slice(handed_out - start)
                tick(min(done, 1.0) if done is not None else None)
                handed_out = rows
                yield batch
            if grown:
                continue
            if not schema.names:
                raise DatasetInputError(f"{path} has no columns.", hint="Choose the file that holds the data.")
            if last is not None:
                last_values = [col[last.num_rows - 1].as_py() if pa.types.is_string(col.type) else None
                               for col in last.columns]
            else:
                last_values = list(schema.names) if s.header else []
            _check_quotes_closed(path, s, last_values)
            if rows == 0:
                raise no_rows_error(path, len(schema.names))
            # The empty batch carries the schema to the writer.
            yield empty_batch(schema)
            return
        finally:
            if reader is not None:
                try:
                    reader.close()
                except Exception:  # noqa: BLE001 - closing a failed reader is best effort
                    pass
            fh.close()


def _grow_block(path: Path, s: ReadSettings, block: int) -> int:
    """The next, larger block size; at the cap, the error that names the over-long line."""
    if block >= MAX_CSV_BLOCK_BYTES:
        raise _too_long_error(path, s, block)
    return min(block * CSV_BLOCK_GROWTH, MAX_CSV_BLOCK_BYTES)
