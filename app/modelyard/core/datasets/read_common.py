"""What every file reader shares: the settings, the errors, opening the file, detecting its format
and encoding, checking column names and building Arrow columns from Python values.

Every way a file can be unreadable ends in :class:`DatasetInputError`, whose message names the
file (and the row, line or column where that applies) and whose hint says what to do. All
opening of the source goes through :func:`open_binary`, so a missing, locked or unreadable
file is reported the same way by every format.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

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
                f"{_column_label(seen[key], letters)} and {_column_label(i, letters)}) in the header row.",
                hint="Rename the columns so that every name is different, then import the file again.")
        seen[key] = i


def no_rows_error(label: Any, n_cols: int) -> DatasetInputError:
    columns = f"{n_cols} column{'s' if n_cols != 1 else ''}"
    return DatasetInputError(f"{label} has column names ({columns}) but no data rows.",
                             hint="Add the data rows, or choose the file that holds the data.")


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
