"""Dates and date-times written as text: which format a column uses, and converting it.

Readers hand over text columns as text (pyarrow only recognises ISO dates in CSV). This module
recognises the common written forms in every reader's output, the same way for CSV, JSON,
JSON Lines and Excel text cells:

==============  ==========================  ===================================
format          example                     note
==============  ==========================  ===================================
``YYYY-MM-DD``  2012-01-31, 2012-01-31T08:15:00Z   ISO 8601
``YYYY/MM/DD``  2012/01/31
``DD.MM.YYYY``  31.01.2012
``DD/MM/YYYY``  31/01/2012                  decided from the data (see below)
``MM/DD/YYYY``  01/31/2012                  decided from the data (see below)
``DD-MM-YYYY``  31-01-2012
==============  ==========================  ===================================

Each may carry a time after a space or ``T`` (``HH:MM``, ``HH:MM:SS``, fractions of a second,
``AM``/``PM``, and a ``Z`` or ``+02:00`` offset; values with an offset are stored in UTC).
Months and days may have one digit. A column is dates when every value that is not missing in
the first block read fits one format. Slash dates with the year last are day-first when some
day is over 12 (31/01/2012), month-first when some second part is over 12 (01/31/2012); when
every value fits both, the column is read month-first (:data:`AMBIGUOUS_DEFAULT`, as pandas and
US spreadsheets do), and the profile warns that the order was a guess.

A caller that knows how earlier data was read (scoring or checking a batch for a model) passes
``hints`` (``{column: format}``): among the formats that fit, the hinted one is used, so a batch
whose days are all 12 or less is read in the order the training data was.

The choice can be given per column (``ImportOptions.date_formats``: ``{column: format}``, the
key ``*`` for every date column, and the format ``text`` to keep a column as text).

A value that does not fit the column's format (detected or chosen) never becomes missing:
the whole column is kept as text and the profile carries a warning that names the column,
the row and the value (:class:`NotDates`; the import re-reads the file with the column as text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.common.errors import ModelyardError

TEXT = "text"
ALL_COLUMNS = "*"
AMBIGUOUS_DEFAULT = "MM/DD/YYYY"
DETECT_MAX_LENGTH = 40

_Y, _M, _D = r"(?P<Y>\d{4})", r"(?P<m>\d{1,2})", r"(?P<d>\d{1,2})"
DATE_FORMATS: dict[str, str] = {
    "YYYY-MM-DD": rf"{_Y}-{_M}-{_D}",
    "YYYY/MM/DD": rf"{_Y}/{_M}/{_D}",
    "DD.MM.YYYY": rf"{_D}\.{_M}\.{_Y}",
    "DD/MM/YYYY": rf"{_D}/{_M}/{_Y}",
    "MM/DD/YYYY": rf"{_M}/{_D}/{_Y}",
    "DD-MM-YYYY": rf"{_D}-{_M}-{_Y}",
}
FORMAT_CHOICES = (*DATE_FORMATS, TEXT)
_TIME = (r"(?:(?:T|\s+)(?P<H>\d{1,2}):(?P<Mi>\d{2})(?::(?P<S>\d{2})(?P<f>[.,]\d{1,9})?)?"
         r"\s*(?P<p>[AaPp][Mm])?\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?")


def _pattern(fmt: str) -> str:
    return rf"^\s*{DATE_FORMATS[fmt]}{_TIME}\s*$"


class DateOptionError(ModelyardError):
    """A date format option that cannot be used."""


class NotDates(Exception):  # noqa: N818 - a signal to the caller, not an error for the user
    """A value of a date column does not fit its format: the column is read again as text."""

    def __init__(self, column: str, fmt: str, row: int, value: str) -> None:
        super().__init__(f"column {column!r}: row {row} value {value!r} is not a date in the format {fmt}")
        self.column = column
        self.format = fmt
        self.row = row
        self.value = value

    def record(self) -> dict[str, Any]:
        return {"format": self.format, "row": self.row, "value": self.value[:80]}


def check_format(fmt: str, column: str | None = None) -> str:
    """The canonical spelling of a format name (case-insensitive), or an error naming it."""
    for name in FORMAT_CHOICES:
        if fmt.strip().upper() == name.upper():
            return name
    col = f" for column '{column}'" if column and column != ALL_COLUMNS else ""
    raise DateOptionError(f"'{fmt}'{col} is not a date format Modelyard knows.",
                          hint=f"Use one of {', '.join(FORMAT_CHOICES)} ('text' keeps the column as text).")


def check_formats(formats: Mapping[str, str] | None) -> dict[str, str]:
    return {str(col): check_format(str(fmt), str(col)) for col, fmt in (formats or {}).items()}


def parse_option(value: str) -> tuple[str, str]:
    """``COLUMN=FORMAT`` (or just ``FORMAT``, for every date column) as (column, format)."""
    text = value.strip()
    for name in FORMAT_CHOICES:
        if text.upper() == name.upper():
            return ALL_COLUMNS, name
    col, sep, fmt = text.rpartition("=")
    if not sep or not col.strip():
        raise DateOptionError(f"--date-format '{value}' is neither COLUMN=FORMAT nor a format.",
                              hint=f"For example --date-format 'order date=DD/MM/YYYY'; the formats are "
                                   f"{', '.join(FORMAT_CHOICES)}.")
    return col.strip(), check_format(fmt, col.strip())


# --------------------------------------------------------------------------- parsing


def _field(ext: pa.StructArray, name: str) -> pa.Array:
    return ext.field(name)


def _two(digits: pa.Array) -> pa.Array:
    return pc.utf8_lpad(digits, width=2, padding="0")


def _iso_strings(arr: pa.Array, fmt: str) -> tuple[pa.Array, pa.Array, bool]:
    """(ISO text per row, True where a present value does not fit, whether values carry an offset)."""
    ext = pc.extract_regex(arr, _pattern(fmt))
    present = pc.is_valid(arr)
    misfit = pc.and_(present, pc.invert(pc.is_valid(ext)))
    date = pc.binary_join_element_wise(_field(ext, "Y"), _two(_field(ext, "m")), _two(_field(ext, "d")), "-")
    hour_text = _field(ext, "H")
    has_time = pc.not_equal(hour_text, "")
    if not pc.any(has_time).as_py():
        return date, misfit, False
    raw_hours = pc.cast(pc.if_else(has_time, hour_text, "1"), pa.int32())
    ampm = pc.utf8_upper(_field(ext, "p"))
    is_pm, is_am = pc.equal(ampm, "PM"), pc.equal(ampm, "AM")
    # 12 AM is midnight and 1-11 PM are 13-23; with AM/PM the hour must be 1-12.
    bad_clock = pc.and_(pc.or_(is_pm, is_am), pc.or_(pc.greater(raw_hours, 12), pc.equal(raw_hours, 0)))
    hours = pc.if_else(pc.and_(is_pm, pc.less(raw_hours, 12)), pc.add(raw_hours, 12),
                       pc.if_else(pc.and_(is_am, pc.equal(raw_hours, 12)), 0, raw_hours))
    seconds = _field(ext, "S")
    seconds = pc.if_else(pc.equal(seconds, ""), "00", seconds)
    fraction = pc.utf8_slice_codeunits(pc.replace_substring(_field(ext, "f"), ",", "."), 0, 7)
    tz = _field(ext, "tz")
    clock = pc.binary_join_element_wise(_two(pc.cast(hours, pa.string())), _field(ext, "Mi"), seconds, ":")
    full = pc.binary_join_element_wise(date, pc.binary_join_element_wise(clock, fraction, tz, ""), " ")
    text = pc.if_else(has_time, full, date)
    misfit = pc.or_(misfit, pc.and_(present, pc.fill_null(bad_clock, False)))
    has_tz = pc.and_(present, pc.not_equal(tz, ""))
    aware = pc.any(pc.fill_null(has_tz, False)).as_py()
    if aware:  # every present value must carry an offset, or none may
        misfit = pc.or_(misfit, pc.and_(present, pc.invert(pc.fill_null(has_tz, False))))
    return text, misfit, bool(aware)


def _first_true(mask: pa.Array) -> int | None:
    idx = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if idx is None or idx < 0 else int(idx)


def _first_invalid_iso(text: pa.Array, aware: bool) -> int | None:
    for i, v in enumerate(text.to_pylist()):
        if v is None:
            continue
        try:
            parsed = dt.datetime.fromisoformat(v)
            if aware != (parsed.tzinfo is not None):
                return i
        except ValueError:
            return i
        try:
            pc.cast(pa.array([v]), pa.timestamp("us", "UTC" if aware else None))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


def parse(arr: pa.Array, fmt: str) -> tuple[pa.Array | None, int | None]:
    """(timestamps, None) when every present value of the text array ``arr`` fits ``fmt``,
    else (None, index of the first value that does not)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if len(arr) >= 64:
        # Dates repeat (a few thousand days): parse each different value once.
        encoded = pc.dictionary_encode(arr)
        if len(encoded.dictionary) <= len(arr) // 2:
            parsed, bad = _parse_values(encoded.dictionary, fmt)
            if parsed is None:
                return None, int(pc.index(encoded.indices, pa.scalar(bad, encoded.indices.type)).as_py())
            return pc.take(parsed, encoded.indices), None
    return _parse_values(arr, fmt)


def _parse_values(arr: pa.Array, fmt: str) -> tuple[pa.Array | None, int | None]:
    text, misfit, aware = _iso_strings(arr, fmt)
    bad = _first_true(misfit)
    if bad is not None:
        return None, bad
    kept = pc.if_else(pc.is_valid(arr), text, pa.scalar(None, pa.string()))
    target = pa.timestamp("us", "UTC") if aware else pa.timestamp("us")
    try:
        return pc.cast(kept, target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_invalid_iso(kept, aware)
        return None, 0 if bad is None else bad


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Guess:
    """The format of a text column: ``candidates`` all fit; ``format`` is the one used."""

    format: str
    candidates: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


_QUICK = {fmt: _pattern(fmt) for fmt in DATE_FORMATS}


def detect(arr: pa.Array) -> Guess | None:
    """The date format every present value of the text array ``arr`` fits, or None."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    values = arr.drop_null() if arr.null_count else arr
    if len(values) == 0:
        return None
    if pc.max(pc.utf8_length(values)).as_py() > DETECT_MAX_LENGTH:
        return None
    sample = pc.unique(values.slice(0, 200))
    candidates = []
    for fmt, pattern in _QUICK.items():
        if not pc.all(pc.match_substring_regex(sample, pattern)).as_py():
            continue
        parsed, _bad = parse(values, fmt)
        if parsed is not None:
            candidates.append(fmt)
    if not candidates:
        return None
    chosen = AMBIGUOUS_DEFAULT if AMBIGUOUS_DEFAULT in candidates else candidates[0]
    return Guess(chosen, tuple(candidates))


# --------------------------------------------------------------------------- a table's date columns


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


class DateColumns:
    """Decides each text column's date format on the first batch and converts every batch.

    ``formats`` are the user's choices (``{column: format}``; ``*`` for every column found to
    be dates; ``text`` to keep a column as text). ``as_text`` holds the columns kept as text
    because a value did not fit (the import restarts with them listed, see :class:`NotDates`).
    """

    def __init__(self, formats: Mapping[str, str] | None = None,
                 as_text: Mapping[str, Mapping[str, Any]] | None = None, *, label: str = "the file",
                 hints: Mapping[str, str] | None = None) -> None:
        self.formats = check_formats(formats)
        self.hints = dict(hints or {})
        self.label = label
        self.as_text = dict(as_text or {})
        self.chosen: dict[str, str] = {}
        self.guesses: dict[str, Guess] = {}
        self._decided = False
        self._rows = 0

    @property
    def decided(self) -> bool:
        return self._decided

    def check_columns(self, names: list[str]) -> None:
        missing = [c for c in self.formats if c != ALL_COLUMNS and c not in names]
        if missing:
            shown = ", ".join(f"'{n}'" for n in names[:20]) + (", ..." if len(names) > 20 else "")
            raise DateOptionError(f"A date format was given for column '{missing[0]}', but {self.label} has no "
                                  "such column.", hint=f"The columns are {shown}.")

    def forced_text(self) -> list[str]:
        """Columns a reader should deliver as text (so that its own date parsing does not run)."""
        return [c for c in self.formats if c != ALL_COLUMNS] + [c for c in self.as_text if c not in self.formats]

    def _decide(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._decided = True
        self.check_columns(list(batch.schema.names))
        default = self.formats.get(ALL_COLUMNS)
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if name in self.as_text or not _is_text(col.type):
                continue
            given = self.formats.get(name)
            if given == TEXT:
                continue
            guess = detect(col)
            if guess is not None:
                self.guesses[name] = guess
            if given is not None:
                self.chosen[name] = given
            elif guess is not None and default != TEXT:
                preferred = default if default is not None else self.hints.get(name)
                self.chosen[name] = preferred if preferred in guess.candidates else guess.format

    def convert(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
        """``batch`` with its date columns as timestamps; raises :class:`NotDates` for a misfit."""
        if not self._decided:
            if batch.num_rows == 0:
                return batch
            self._decide(batch)
        start, self._rows = self._rows, self._rows + batch.num_rows
        if not self.chosen:
            return batch
        names = batch.schema.names
        arrays = list(batch.columns)
        for i, name in enumerate(names):
            fmt = self.chosen.get(name)
            if fmt is None:
                continue
            col = arrays[i]
            if not _is_text(col.type):
                if pa.types.is_null(col.type):
                    arrays[i] = pa.nulls(len(col), pa.timestamp("us"))
                continue
            parsed, bad = parse(col, fmt)
            if parsed is None:
                value = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
                raise NotDates(name, fmt, start + (bad or 0) + 1, str(value[bad or 0].as_py()))
            arrays[i] = parsed
        if isinstance(batch, pa.Table):
            return pa.table(arrays, names=names)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per column: the format used (or None for text), whether it was given, the formats that fit,
        and, for a column kept as text, the value that did not fit."""
        out: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys([*self.guesses, *self.chosen, *self.as_text,
                                   *(c for c in self.formats if c != ALL_COLUMNS)]):
            guess = self.guesses.get(name)
            entry: dict[str, Any] = {
                "format": None if name in self.as_text else self.chosen.get(name),
                "given": name in self.formats,
                "detected": guess.format if guess else None,
                "candidates": list(guess.candidates) if guess else [],
            }
            if name in self.as_text:
                entry["not_dates"] = dict(self.as_text[name])
            out[name] = entry
        return out
