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

Every way a file can be unreadable ends in :class:`DatasetInputError`, whose message names the
file (and the row, line or column where that applies) and whose hint says what to do. All
opening of the source goes through :func:`open_binary`, so a missing, locked or unreadable
file is reported the same way by every format.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from modelyard.core.common.errors import ModelyardError

Tick = Callable[[float | None], None]

FORMATS = ("csv", "parquet", "excel", "json", "jsonl")
SNIFF_BYTES = 64 * 1024
PREVIEW_BYTES = 512 * 1024
CSV_BLOCK_BYTES = 1 << 20
# A line or quoted value longer than a block is read again with blocks this many times larger, up to the cap.
CSV_BLOCK_GROWTH = 4
MAX_CSV_BLOCK_BYTES = 256 << 20
# A quoted value still open this many lines after it starts, where the sniffed sample ends, gets a note.
OPEN_QUOTE_NOTE_LINES = 50
BATCH_ROWS = 65_536
EXCEL_TICK_ROWS = 2_000
MAX_JSON_PREVIEW_BYTES = 64 * 1024 * 1024

TEXT_EXTENSIONS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".psv": "|", ".txt": None, ".dat": None}
PARQUET_EXTENSIONS = {".parquet", ".pq", ".parq"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm"}
JSON_EXTENSIONS = {".json"}
JSONL_EXTENSIONS = {".jsonl", ".ndjson"}
SNIFF_DELIMITERS = ",;\t|"
# Values pyarrow.csv reads as booleans (its defaults), used when widening a column's type.
TRUE_VALUES = ("1", "True", "TRUE", "true")
FALSE_VALUES = ("0", "False", "FALSE", "false")

_MAGIC_COMPRESSED = {
    b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd",
}
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+):(?: Row #\d+:)? CSV conversion error to ([^:]+): invalid value '(.*)'\s*$", re.S)


class DatasetInputError(ModelyardError):
    """A file that cannot be imported as given: the message names the file and what is wrong."""


class TypePromotion(Exception):  # noqa: N818 - a signal to the caller, not an error for the user
    """A CSV value did not fit the type inferred from the first block: re-read with ``new_type``."""

    def __init__(self, column: str, old_type: pa.DataType, new_type: pa.DataType, value: str) -> None:
        super().__init__(f"column {column!r}: {value!r} does not fit {old_type}; widening to {new_type}")
        self.column = column
        self.old_type = old_type
        self.new_type = new_type
        self.value = value


@dataclass(frozen=True)
class ReadSettings:
    """How to read one file: the detected format and dialect after the user's overrides."""

    format: str
    delimiter: str | None = None
    quotechar: str = '"'
    encoding: str | None = None
    header: bool = True
    decimal_point: str = "."
    sheet: str | None = None
    column_names: tuple[str, ...] | None = None  # CSV without a header: column_1, column_2, ...
    sheets: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch with no rows that carries ``schema`` (so a header-only file still has columns)."""
    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


# --------------------------------------------------------------------------- opening


def describe_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"  # pragma: no cover


def _os_error(path: Path, exc: OSError) -> DatasetInputError:
    if isinstance(exc, FileNotFoundError):
        return DatasetInputError(
            f"{path} does not exist (any more).",
            hint="It may have been moved, renamed or deleted since it was chosen. Choose the file again.")
    if isinstance(exc, PermissionError):
        return DatasetInputError(
            f"Cannot read {path}: permission denied, or another program has locked the file.",
            hint="Close the program that has the file open (e.g. a spreadsheet), check that you may read "
                 "it, and import it again.")
    if isinstance(exc, IsADirectoryError):
        return DatasetInputError(f"{path} is a folder, not a file.", hint="Choose a data file inside it.")
    reason = exc.strerror or str(exc)
    return DatasetInputError(f"Cannot read {path}: {reason}.",
                             hint="Check that the file is on a reachable disk and import it again.")


def open_binary(path: Path) -> IO[bytes]:
    """Open the source for reading (unbuffered, so ``tell()`` is safe from another thread)."""
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise _os_error(path, exc) from exc


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    with open_binary(path) as fh:
        try:
            return fh.read(n)
        except OSError as exc:
            raise _os_error(path, exc) from exc


def file_size(path: Path) -> int:
    try:
        st = path.stat()
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if not path.is_file():
        raise DatasetInputError(f"{path} is not a regular file.", hint="Choose a data file.")
    return st.st_size


# --------------------------------------------------------------------------- detection


def looks_binary(sample: bytes) -> bool:
    """NUL bytes or many control characters: not text (UTF-16 with a BOM is checked before)."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13)) + sample.count(b"\x7f")
    return control > max(4, len(sample) // 50)


def detect_format(path: Path, head: bytes) -> str:
    """The format by extension and magic bytes; raises for a format Modelyard cannot read."""
    ext = path.suffix.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise DatasetInputError(
            f"{path} is an old-style Excel (.xls) or other Office file, which Modelyard cannot read.",
            hint="Open it in a spreadsheet program and save it as .xlsx or as CSV, then import that.")
    if head.startswith(b"PK\x03\x04"):
        if ext in EXCEL_EXTENSIONS or ext not in (TEXT_EXTENSIONS.keys() | JSON_EXTENSIONS | JSONL_EXTENSIONS | {".zip"}):
            return "excel"
        raise DatasetInputError(f"{path} is a ZIP archive, not a table.",
                                hint="Extract the data file from the archive and import that.")
    for magic, kind in _MAGIC_COMPRESSED.items():
        if head.startswith(magic):
            raise DatasetInputError(f"{path} is compressed ({kind}).",
                                    hint="Decompress it first, then import the file inside.")
    if ext in PARQUET_EXTENSIONS:
        raise DatasetInputError(f"{path} is not a valid Parquet file (it does not start with 'PAR1').",
                                hint="The file may be damaged or have the wrong extension.")
    if ext in EXCEL_EXTENSIONS:
        raise DatasetInputError(f"{path} is not a valid Excel workbook (it is not an .xlsx ZIP container).",
                                hint="Open it in a spreadsheet program and save it again as .xlsx or CSV.")
    has_bom16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not has_bom16 and looks_binary(head):
        raise DatasetInputError(
            f"{path} looks like a binary file, not text: Modelyard cannot read it as a table.",
            hint="Import a CSV, TSV, Parquet, Excel (.xlsx), JSON or JSON Lines file.")
    if ext in JSONL_EXTENSIONS:
        return "jsonl"
    if ext in JSON_EXTENSIONS:
        return _json_kind(head)
    return "csv"


def _json_kind(head: bytes) -> str:
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("{"):
        first, _, rest = text.partition("\n")
        try:
            json.loads(first)
        except ValueError:
            return "json"
        return "jsonl" if rest.lstrip().startswith("{") else "json"
    return "json"


# --------------------------------------------------------------------------- encoding


def detect_encoding(sample: bytes, *, at_eof: bool) -> tuple[str, str | None]:
    """The text encoding of a sample, and a note when it had to fall back from UTF-8."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", None
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=at_eof)
        return "utf-8", None
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252", "The file is not valid UTF-8; it was read as Windows-1252 (cp1252)."
    except UnicodeDecodeError:
        return "latin-1", "The file is not valid UTF-8; it was read as Latin-1 (ISO-8859-1)."


def arrow_encoding(encoding: str | None) -> str:
    """pyarrow's name: its fast path is 'utf8' (it skips a UTF-8 BOM itself)."""
    if encoding is None or codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return "utf8"
    return encoding


ENCODING_HINT = "Use a name such as utf-8, cp1252, latin-1 or utf-16 with --encoding."


def check_encoding(encoding: str) -> str:
    """The codec's name, refusing names that are unknown or not encodings of text (base64, rot13...)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise DatasetInputError(f"Unknown text encoding {encoding!r}.", hint=ENCODING_HINT) from None
    if not getattr(info, "_is_text_encoding", True):
        raise DatasetInputError(f"{encoding!r} is not a text encoding: it cannot be used to read a table.",
                                hint=ENCODING_HINT)
    try:  # every reader decodes with errors="replace" (the preview) and incrementally
        codecs.getincrementaldecoder(info.name)(errors="replace").decode(b"a", final=False)
    except Exception:  # noqa: BLE001 - codecs raise all kinds of errors for what they cannot do
        raise DatasetInputError(f"The encoding {encoding!r} cannot be used to read a file of text.",
                                hint=ENCODING_HINT) from None
    return info.name


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """(byte offset, 1-based line) of the first byte ``encoding`` cannot decode, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    lines = 1
    with open_binary(path) as fh:
        while True:
            chunk = fh.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # The decoder may hold a few bytes of the previous chunk: count from them too.
                start = max(exc.start - (len(exc.object) - len(chunk)), 0)
                bad = offset + start
                return bad, lines + chunk[:start].count(b"\n")
            except UnicodeError:  # e.g. UTF-16 or UTF-32 without the byte order mark they need
                return offset, lines
            if not chunk:
                return None
            lines += chunk.count(b"\n")
            offset += len(chunk)


def undecodable_error(path: Path, encoding: str | None, column: str | None = None) -> DatasetInputError:
    enc = codecs.lookup(encoding or "utf-8").name
    where = ""
    found = _first_undecodable(path, enc)
    if found is not None:
        where = f" at line {found[1]} (byte {found[0]})"
    col = f" in column '{column}'" if column else ""
    label = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8"}.get(enc, enc)
    if label == "UTF-8":
        hint = ("Import it again with its real encoding, e.g. '--encoding cp1252' (Windows) or "
                "'--encoding latin-1', or save the file as UTF-8.")
    else:
        hint = (f"{label} is not the file's encoding: import it again without --encoding (it is then detected) "
                f"or with its real one, e.g. '--encoding utf-8' or '--encoding cp1252'.")
    return DatasetInputError(f"{path} has bytes that are not valid {label} text{where}{col}.", hint=hint)


# --------------------------------------------------------------------------- CSV sniffing


def _decode_sample(path: Path, head: bytes, encoding: str, *, at_eof: bool) -> str:
    """The start of the file as text; bytes that ``encoding`` cannot decode are an error naming their line."""
    try:
        return codecs.getincrementaldecoder(encoding)().decode(head, final=at_eof)
    except UnicodeError:
        raise undecodable_error(path, encoding) from None


def _complete_lines(text: str, at_eof: bool) -> str:
    """``text`` up to its last line break (all of it at the end of the file, or when it has none)."""
    if at_eof:
        return text
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[: cut + 1] if cut >= 0 else text


_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


def _is_number(text: str) -> bool:
    return bool(_NUMBER.fullmatch(text.strip()))


def _guess_header(rows: list[list[str]]) -> bool:
    """True unless the first row looks like data: numbers where the columns hold numbers."""
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    header_votes = data_votes = 0
    for j, cell in enumerate(first):
        values = [r[j] for r in rest if j < len(r) and r[j].strip()]
        if not values or not all(_is_number(v) for v in values):
            continue
        if cell.strip() and not _is_number(cell):
            header_votes += 1
        elif _is_number(cell):
            data_votes += 1
    return header_votes > 0 or data_votes == 0


def _shape(text: str, delimiter: str, quotechar: str) -> tuple[float, int]:
    """(share of the first rows with as many fields as the first, fields in the first row)."""
    rows, _ = _csv_rows(text, delimiter, quotechar, 50)
    if not rows:
        return 0.0, 0
    width = len(rows[0])
    return sum(1 for r in rows if len(r) == width) / len(rows), width


def _sniff_delimiter(text: str, default: str) -> tuple[str, str]:
    """csv.Sniffer's guess, checked: the header and the rows must agree on the number of fields.

    A guess under which they disagree (say ';' inside the text of a one-column file) gives way
    to a delimiter under which they agree, else to the default. A guess that mostly agrees is
    kept, so that a genuinely ragged row is reported rather than hidden.
    """
    sample = text[:SNIFF_BYTES]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS)
        guess, sniffed_quote = dialect.delimiter, (dialect.quotechar or '"')
    except csv.Error:
        guess, sniffed_quote = default, '"'
    # The double quote unless the sniffed quote character fits the rows strictly better.
    quote, shape = '"', _shape(sample, guess, '"')
    if sniffed_quote != '"':
        other = _shape(sample, guess, sniffed_quote)
        if other[0] > shape[0]:
            quote, shape = sniffed_quote, other
    share, width = shape
    if share >= 0.9 and width > 1:
        return guess, quote
    for d in dict.fromkeys([default, *SNIFF_DELIMITERS]):
        if d == guess:
            continue
        d_share, d_width = _shape(sample, d, '"')
        if d_share == 1.0 and d_width > 1:
            return d, '"'
    if width > 1:
        return guess, quote
    return default, '"'


def _lines(text: str) -> list[str]:
    """The lines of ``text`` with their ends, split only where CSV ends lines: \\n, \\r\\n and \\r.

    (``str.splitlines`` also splits at form feeds, \\x1c-\\x1e and Unicode line separators, which
    are ordinary characters inside a CSV value.)
    """
    return io.StringIO(text, newline="").readlines()


def _allow_long_fields() -> None:
    """Python's csv refuses values over 128 kB by default; the import reads values up to its block cap."""
    if csv.field_size_limit() < MAX_CSV_BLOCK_BYTES:
        csv.field_size_limit(MAX_CSV_BLOCK_BYTES)


def _csv_rows(text: str, delimiter: str, quotechar: str, limit: int) -> tuple[list[list[str]], int]:
    """Up to ``limit`` non-blank records of ``text`` and how many lines they span."""
    _allow_long_fields()
    lines = _lines(text)
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar, doublequote=True, strict=False)
    rows: list[list[str]] = []
    used = 0
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append(row)
            used = reader.line_num
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows, used


def _decimal_point(rows: list[list[str]], delimiter: str) -> str:
    if delimiter != ";":
        return "."
    cells = [c.strip() for r in rows[1:] for c in r]
    comma = sum(1 for c in cells if re.fullmatch(r"[+-]?\d+,\d+", c))
    dot = sum(1 for c in cells if re.fullmatch(r"[+-]?\d+\.\d+", c))
    return "," if comma > dot else "."


def sniff_csv(path: Path, head: bytes, size: int, *, delimiter: str | None = None, quotechar: str | None = None,
              encoding: str | None = None, header: bool | None = None) -> ReadSettings:
    notes: list[str] = []
    at_eof = size <= len(head)
    if encoding:
        encoding = check_encoding(encoding)
    else:
        encoding, note = detect_encoding(head, at_eof=at_eof)
        if note:
            notes.append(note)
    text = _complete_lines(_decode_sample(path, head, encoding, at_eof=at_eof), at_eof)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DatasetInputError(f"{path} holds only blank lines: there is no table in it.",
                                hint="Choose the file that holds the data.")
    default_delim = TEXT_EXTENSIONS.get(path.suffix.lower()) or ","
    sniffed_delim, sniffed_quote = _sniff_delimiter(text, default_delim)
    delimiter = delimiter or sniffed_delim
    quotechar = quotechar or sniffed_quote
    if len(delimiter) != 1 or len(quotechar) != 1:
        raise DatasetInputError(f"The delimiter and quote character must each be one character "
                                f"(got {delimiter!r} and {quotechar!r}).",
                                hint="For a tab, give --delimiter tab or '\\t'.")
    if delimiter == quotechar:
        raise DatasetInputError(f"The delimiter and the quote character are both {delimiter!r}: one character "
                                f"cannot both separate values and quote them.",
                                hint="Choose another delimiter with --delimiter or another quote character with "
                                     "--quote (the usual quote is '\"').")
    if delimiter in "\r\n" or quotechar in "\r\n":
        raise DatasetInputError("A line break cannot be the delimiter or the quote character.",
                                hint="Choose another with --delimiter or --quote.")
    rows, _ = _csv_rows(text, delimiter, quotechar, 50)
    if not rows:
        raise DatasetInputError(f"{path} holds no rows.", hint="Choose the file that holds the data.")
    if not at_eof:  # (at the end of the file, the preview refuses an open quote)
        tracker = _QuoteTracker(delimiter, quotechar)
        tracker.feed(text)
        line = tracker.open_at_end()
        if line is not None and tracker.line - line > OPEN_QUOTE_NOTE_LINES:
            notes.append(f"The quoted value that starts on line {line} is still open {tracker.line - line} lines "
                         f"later, where the preview stops: if its closing quote is missing, the import will "
                         f"stop and say so.")
    if header is None:
        header = _guess_header(rows)
        if not header:
            notes.append("The first row looks like data, so the columns were named column_1, column_2, ...")
    names = None if header else tuple(f"column_{i + 1}" for i in range(len(rows[0])))
    return ReadSettings("csv", delimiter=delimiter, quotechar=quotechar, encoding=encoding, header=header,
                        decimal_point=_decimal_point(rows, delimiter), column_names=names, notes=tuple(notes))


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


# --------------------------------------------------------------------------- column names


def _column_label(i: int, letters: bool) -> str:
    if not letters:
        return str(i + 1)
    label = ""
    n = i + 1
    while n:
        n, r = divmod(n - 1, 26)
        label = chr(65 + r) + label
    return label


def check_column_names(path: Path, names: Sequence[Any], *, letters: bool = False, where: str = "") -> None:
    """Refuse empty and duplicate column names, naming the column (1-based, or Excel letters)."""
    where = f" ({where})" if where else ""
    for i, name in enumerate(names):
        if name is None or not str(name).strip():
            raise DatasetInputError(
                f"{path}{where}: column {_column_label(i, letters)} has no name in the header row.",
                hint="Give every column a name in the first row, or import without a header "
                     "(--no-header) to name the columns column_1, column_2, ...")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = str(name)
        if key in seen:
            raise DatasetInputError(
                f"{path}{where}: the column name '{key}' appears more than once (columns "
                f"{_column_label(seen[key], letters)} and {_column_label(i, letters)}).",
                hint="Rename the columns so that every name is different, then import the file again.")
        seen[key] = i


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


class _QuoteTracker:
    """Follows the quoting of CSV text fed in pieces, as pyarrow and Python's ``csv`` read it.

    A quote opens a quoted value only at the start of a field; inside one, a doubled quote is a
    quote character and a single one closes it (text after it up to the delimiter joins the
    value). Lines are counted the way an editor shows them: ``\\n``, ``\\r\\n`` and ``\\r`` each end one.
    Whole quoted values are matched by one regular expression and only a piece's last one decides
    the state, so a scan runs at the speed of ``re``, not of a Python loop over characters.
    """

    def __init__(self, delimiter: str, quotechar: str) -> None:
        self.delimiter, self.quote = delimiter, quotechar
        q, nq = re.escape(quotechar), f"[^{re.escape(quotechar)}]*"
        body = f"{nq}(?:{q}{q}{nq})*"
        self._rest = re.compile(f"{body}({q}?)")  # the rest of a quoted value, through its closing quote
        self._value = re.compile(f"(?<=[{re.escape(delimiter)}\r\n]){q}{body}({q}?)")  # a quoted value
        self.line = 1  # the line the next piece starts on
        self.in_quotes = False
        self.pending = False  # inside a quoted value, the piece before ended with a quote
        self.prev = "\n"  # the character before the next piece (a line break: a field starts there)
        self._open: tuple[str, int, int, str] | None = None  # the last value opened: (piece, where, line, prev)

    @staticmethod
    def _breaks(text: str, end: int, before: str) -> int:
        n = text.count("\n", 0, end) + text.count("\r", 0, end) - text.count("\r\n", 0, end)
        return n - 1 if end > 0 and before == "\r" and text.startswith("\n") else n

    def _after(self, m: re.Match[str], n: int) -> int:
        """Take the state after a (rest of a) quoted value ``m``; returns where unquoted text resumes."""
        if not m.group(1):
            self.in_quotes = True  # it runs to the end of the piece
        elif m.end() == n:
            self.in_quotes, self.pending = True, True  # a closing quote, or the first of ""
        else:
            self.in_quotes = False
        return m.end()

    def feed(self, text: str) -> None:
        if not text:
            return
        q, n, i = self.quote, len(text), 0
        if self.pending:
            self.pending = False
            if text[0] == q:
                i = 1  # "" across two pieces
            else:
                self.in_quotes = False
        if self.in_quotes:
            i = self._after(self._rest.match(text, i), n)  # type: ignore[arg-type] # (it always matches)
        elif text[0] == q and self.prev in (self.delimiter, "\r", "\n"):
            self._open = (text, 0, self.line, self.prev)
            i = self._after(self._rest.match(text, 1), n)  # type: ignore[arg-type]
        if not self.in_quotes:
            last = None
            for last in self._value.finditer(text, i):  # (its look-behind sees the text before ``i``)
                pass
            if last is not None:
                self._open = (text, last.start(), self.line, self.prev)
                self._after(last, n)
        self.line += self._breaks(text, n, self.prev)
        self.prev = text[-1]

    def open_at_end(self) -> int | None:
        """The line where a quoted value starts that is still open after everything fed, or None."""
        if not self.in_quotes or self.pending or self._open is None:
            return None
        text, pos, line, before = self._open
        return line + self._breaks(text, pos, before)


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


def no_rows_error(label: Any, n_cols: int) -> DatasetInputError:
    columns = f"{n_cols} column{'s' if n_cols != 1 else ''}"
    return DatasetInputError(f"{label} has column names ({columns}) but no data rows.",
                             hint="Add the data rows, or choose the file that holds the data.")


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


# --------------------------------------------------------------------------- building columns


def _to_text(v: Any) -> str:
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, default=str, ensure_ascii=False)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return str(v)


def column_from_values(values: list[Any]) -> pa.Array:
    """One typed Arrow column from Python values: one common type, else text."""
    kinds: set[str] = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, dt.datetime):
            kinds.add("datetime_tz" if v.tzinfo is not None else "datetime")
        elif isinstance(v, dt.date):
            kinds.add("date")
        elif isinstance(v, dt.time):
            kinds.add("time")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("other")
        if len(kinds) > 2:
            break
    try:
        if not kinds:
            return pa.nulls(len(values))
        if kinds == {"bool"}:
            return pa.array(values, pa.bool_())
        if kinds == {"int"}:
            try:
                return pa.array(values, pa.int64())
            except (pa.ArrowInvalid, OverflowError):
                return pa.array(values, pa.float64())
        if kinds <= {"int", "float"}:
            return pa.array([None if v is None else float(v) for v in values], pa.float64())
        if kinds <= {"datetime", "date"}:
            return pa.array([v if v is None or isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)
                             for v in values], pa.timestamp("us"))
        if kinds == {"datetime_tz"}:
            return pa.array([None if v is None else v.astimezone(dt.UTC) for v in values], pa.timestamp("us", "UTC"))
        if kinds == {"time"}:
            return pa.array(values, pa.time64("us"))
        if kinds == {"str"}:
            return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    return pa.array([None if v is None else _to_text(v) for v in values], pa.string())


def table_from_columns(names: list[str], columns: list[list[Any]]) -> pa.Table:
    return pa.table([column_from_values(c) for c in columns], names=names)


def table_from_records(path: Path, records: list[Any], *, where: Callable[[int], str]) -> pa.Table:
    names: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DatasetInputError(f"{path}: {where(i)} is not a JSON object (a record with named fields).",
                                    hint="Each record must be an object such as {\"a\": 1, \"b\": \"x\"}.")
        for k in rec:
            names.setdefault(str(k), None)
    if not names:
        raise DatasetInputError(f"{path} holds no fields: the records are empty.",
                                hint="Choose the file that holds the data.")
    cols = [[rec.get(n) for rec in records] for n in names]
    return table_from_columns(list(names), cols)


# --------------------------------------------------------------------------- Parquet


def parquet_batches(path: Path, tick: Tick, *, limit: int | None = None) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    fh = open_binary(path)
    try:
        try:
            pf = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise DatasetInputError(f"{path} is not a valid Parquet file: {exc}",
                                    hint="The file may be damaged or incomplete; export it again.") from None
        names = pf.schema_arrow.names
        if not names:
            raise DatasetInputError(f"{path} has no columns.", hint="Choose the file that holds the data.")
        check_column_names(path, names)
        total = max(pf.metadata.num_rows, 1)
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=min(limit or BATCH_ROWS, BATCH_ROWS)):
                done += batch.num_rows
                tick(done / total)
                yield batch
                if limit is not None and done >= limit:
                    return
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise DatasetInputError(f"Cannot read {path}: {exc}",
                                    hint="The Parquet file may be damaged or incomplete; export it again.") from None
        yield empty_batch(pf.schema_arrow)
    finally:
        fh.close()


# --------------------------------------------------------------------------- Excel


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise DatasetInputError("Reading Excel files needs the 'openpyxl' package, which is not installed.",
                                hint="Install it (pip install openpyxl), or save the sheet as CSV and import "
                                     "that.") from None
    return openpyxl


def _load_workbook(path: Path, fh: IO[bytes]) -> Any:
    openpyxl = _openpyxl()
    import zipfile

    try:
        return openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise DatasetInputError(f"{path} is not a valid Excel workbook ({exc}).",
                                hint="Open it in a spreadsheet program and save it again as .xlsx or CSV.") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises its own InvalidFileException and others
        raise DatasetInputError(f"{path} cannot be read as an Excel workbook ({type(exc).__name__}: {exc}).",
                                hint="Open it in a spreadsheet program and save it again as .xlsx or CSV.") from None


def excel_sheets(path: Path) -> list[str]:
    with open_binary(path) as fh:
        wb = _load_workbook(path, fh)
        try:
            return list(wb.sheetnames)
        finally:
            wb.close()


def pick_sheet(path: Path, sheets: Sequence[str], sheet: str | None) -> str:
    if not sheets:
        raise DatasetInputError(f"{path} has no sheets.", hint="Choose another workbook.")
    if sheet is None or sheet == "":
        return sheets[0]
    if sheet in sheets:
        return sheet
    if str(sheet).isdigit() and 1 <= int(sheet) <= len(sheets):
        return sheets[int(sheet) - 1]
    listed = ", ".join(f"'{s}'" for s in sheets)
    raise DatasetInputError(f"{path} has no sheet named '{sheet}'.",
                            hint=f"Its sheets are {listed}; choose one by name or number (1 = the first).")


_EXCEL_ERRORS = {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"}


def excel_batches(path: Path, s: ReadSettings, tick: Tick, *, limit: int | None = None) -> Iterator[pa.RecordBatch]:
    fh = open_binary(path)
    wb = _load_workbook(path, fh)
    try:
        ws = wb[s.sheet] if s.sheet else wb.worksheets[0]
        where = f"sheet '{ws.title}'"
        total = ws.max_row or 0  # as the file records it: only a guess for the progress
        if hasattr(ws, "reset_dimensions"):
            # Read-only openpyxl stops at the size the file records, which some programs write wrong
            # (say A1:A1): forget it so that every row and column that is there is read.
            ws.reset_dimensions()
        rows_iter = ws.iter_rows(values_only=True)
        rows: list[tuple[Any, ...]] = []
        for i, row in enumerate(rows_iter):
            if i % EXCEL_TICK_ROWS == 0:
                tick(min(i / total, 1.0) if total else None)
            rows.append(tuple(None if isinstance(v, str) and v in _EXCEL_ERRORS else v for v in row))
            if limit is not None and len(rows) > limit:
                break
        while rows and all(v is None or (isinstance(v, str) and not v.strip()) for v in rows[-1]):
            rows.pop()
        width = max((len(r) for r in rows), default=0)
        # Drop trailing columns that are empty everywhere (formatting often stretches the sheet).
        while width and all(len(r) < width or r[width - 1] is None for r in rows):
            width -= 1
        if width == 0:
            raise DatasetInputError(f"{path} ({where}) is empty: it has no columns.",
                                    hint="Choose the sheet that holds the data (--sheet NAME).")
        grid = [list(r[:width]) + [None] * (width - len(r)) for r in rows]
        if s.header:
            names = grid[0]
            check_column_names(path, names, letters=True, where=where)
            names = [str(n).strip() if isinstance(n, str) else _to_text(n) for n in names]
            check_column_names(path, names, letters=True, where=where)
            body = grid[1:]
        else:
            names = [f"column_{j + 1}" for j in range(width)]
            body = grid
        columns = [[r[j] for r in body] for j in range(width)]
        table = table_from_columns(names, columns)
        tick(1.0)
        yield from table.to_batches(max_chunksize=BATCH_ROWS)
        yield empty_batch(table.schema)
    finally:
        wb.close()
        fh.close()


# --------------------------------------------------------------------------- JSON


def _read_text(path: Path, encoding: str = "utf-8-sig") -> str:
    with open_binary(path) as fh:
        data = fh.read()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise undecodable_error(path, "utf-8") from None


def _json_table(path: Path, obj: Any) -> pa.Table:
    if isinstance(obj, list):
        if not obj:
            raise DatasetInputError(f"{path} holds an empty list: there are no records.",
                                    hint="Choose the file that holds the data.")
        return table_from_records(path, obj, where=lambda i: f"record {i + 1}")
    if isinstance(obj, dict):
        if set(obj) >= {"columns", "data"} and isinstance(obj["data"], list):  # pandas orient="split"
            names = [str(c) for c in obj["columns"]]
            check_column_names(path, names)
            rows = obj["data"]
            for i, r in enumerate(rows):
                if not isinstance(r, list) or len(r) != len(names):
                    raise DatasetInputError(f"{path}: data row {i + 1} has {len(r) if isinstance(r, list) else 1} "
                                            f"values but there are {len(names)} columns.",
                                            hint="Fix that row so it has one value per column.")
            return table_from_columns(names, [[r[j] for r in rows] for j in range(len(names))])
        if obj and all(isinstance(v, list) for v in obj.values()):  # {"a": [...], "b": [...]}
            lengths = {k: len(v) for k, v in obj.items()}
            if len(set(lengths.values())) > 1:
                desc = ", ".join(f"'{k}' {n}" for k, n in lengths.items())
                raise DatasetInputError(f"{path}: the column lists have different lengths ({desc}).",
                                        hint="Every column must have one value per row.")
            return table_from_columns([str(k) for k in obj], list(obj.values()))
        if obj and all(isinstance(v, dict) for v in obj.values()):  # pandas orient="index"
            return table_from_records(path, list(obj.values()), where=lambda i: f"record {i + 1}")
        if obj and not any(isinstance(v, list | dict) for v in obj.values()):  # one record
            return table_from_records(path, [obj], where=lambda i: "the record")
    raise DatasetInputError(
        f"{path} is JSON but not a table.",
        hint="Expected a list of records ([{\"a\": 1}, ...]), an object of column lists "
             "({\"a\": [1, 2]}), or JSON Lines (one record per line).")


def _jsonl_python(path: Path, tick: Tick, limit: int | None) -> pa.Table:
    records: list[Any] = []
    size = file_size(path) or 1
    done = 0
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            done += len(raw)
            if lineno % 5000 == 0:
                tick(done / size)
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DatasetInputError(f"{path} has bytes that are not valid UTF-8 text at line {lineno}.",
                                        hint="JSON must be UTF-8: save the file as UTF-8 and import it again.") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise DatasetInputError(f"{path}: line {lineno} is not valid JSON ({getattr(exc, 'msg', exc)}).",
                                        hint="Each line of a JSON Lines file must hold one complete JSON object.") from None
            if not isinstance(rec, dict):
                raise DatasetInputError(f"{path}: line {lineno} is not a JSON object.",
                                        hint="Each line of a JSON Lines file must hold one object such as "
                                             "{\"a\": 1, \"b\": \"x\"}.")
            records.append(rec)
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise DatasetInputError(f"{path} holds no records.", hint="Choose the file that holds the data.")
    return table_from_records(path, records, where=lambda i: f"record {i + 1}")


def _one_record_per_line(path: Path, table: pa.Table) -> bool:
    """False when pyarrow's reading may not be one record per line: it reads a line ``null`` as a row
    of missing values and two objects on one line as two rows (the Python reader refuses both)."""
    import pyarrow.compute as pc

    if table.num_rows and table.num_columns:
        missing = [pc.is_null(col) for col in table.columns]
        everywhere = missing[0]
        for m in missing[1:]:
            everywhere = pc.and_(everywhere, m)
        if pc.any(everywhere).as_py():
            return False  # (an empty object {} reads the same: the Python reader tells them apart)
    lf = cr = 0
    last = b"\n"
    with open_binary(path) as fh:
        while chunk := fh.read(4 << 20):
            lf += chunk.count(b"\n")
            cr += chunk.count(b"\r")
            last = chunk[-1:]
    return table.num_rows <= max(lf, cr) + (last not in (b"\n", b"\r"))


def json_batches(path: Path, s: ReadSettings, tick: Tick, *, limit: int | None = None,
                 column_types: dict[str, pa.DataType] | None = None) -> Iterator[pa.RecordBatch]:
    tick(0.0)
    if s.format == "jsonl":
        table = None
        if limit is None:
            import pyarrow.json as pajson

            # Columns asked for as text stay text (pyarrow would parse ISO dates itself).
            explicit = pa.schema(list((column_types or {}).items())) if column_types else None
            fh = open_binary(path)
            try:
                table = pajson.read_json(fh, read_options=pajson.ReadOptions(block_size=4 << 20),
                                         parse_options=pajson.ParseOptions(explicit_schema=explicit,
                                                                           unexpected_field_behavior="infer"))
            except (pa.ArrowInvalid, pa.ArrowException):
                table = None  # mixed types or a bad line: the Python reader says where
            finally:
                fh.close()
            if table is not None and not _one_record_per_line(path, table):
                table = None  # the Python reader refuses what pyarrow let through, naming the line
        if table is None:
            table = _jsonl_python(path, tick, limit)
    else:
        text = _read_text(path)
        try:
            obj = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            where = f" at line {line}" if line else ""
            raise DatasetInputError(f"{path} is not valid JSON{where} ({exc}).",
                                    hint="Fix the file, or export it again as JSON or CSV.") from None
        table = _json_table(path, obj)
    check_column_names(path, table.column_names)
    if limit is not None:
        table = table.slice(0, limit)
    tick(1.0)
    yield from table.to_batches(max_chunksize=BATCH_ROWS)
    yield empty_batch(table.schema)


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
