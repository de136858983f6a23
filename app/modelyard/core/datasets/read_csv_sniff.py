"""CSV sniffing: the delimiter, quote character, header row and decimal point of a text file."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

from modelyard.core.datasets.read_common import (
    MAX_CSV_BLOCK_BYTES,
    OPEN_QUOTE_NOTE_LINES,
    SNIFF_BYTES,
    SNIFF_DELIMITERS,
    TEXT_EXTENSIONS,
    DatasetInputError,
    ReadSettings,
    check_encoding,
    detect_encoding,
    undecodable_error,
)

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


# --------------------------------------------------------------------------- quoting


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
