"""Fuzz: generated CSV text, well formed or not, is imported exactly as Python's ``csv`` reads it, or refused.

The text mixes quoted and unquoted values holding quotes, delimiters and line breaks, ragged rows,
blank lines, stray quotes, the three line ends (\\n, \\r\\n, \\r), with or without a last line break,
in UTF-8 (with and without a BOM), Windows-1252 and UTF-16. The dialect (delimiter, quote, header)
is given, as a user would after looking at the preview; the encoding is given or detected.

The oracle is Python's ``csv`` module (not strict, double quotes), plus one question it does not
answer by itself: does the text end inside a quoted value? (Reading one more line after the end
tells: it is swallowed into the last value if so.) For each file exactly one of these must hold:

* every record has as many fields as the header and no quote is left open: the import succeeds
  with exactly those rows and values (cells pyarrow reads as missing, such as "" and NA, are None;
  numbers and booleans are compared as the text they were read from);
* otherwise it is refused with a :class:`ModelyardError` whose message names a line (or, for a
  header that is not usable, the header row) -- never a different row count in silence.

150 examples take a few seconds; MODELYARD_FUZZ_EXAMPLES=5000 searches harder.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelyard.core.datasets import service
from modelyard.core.datasets.read_common import FALSE_VALUES, TRUE_VALUES
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import Store

# pyarrow.csv's default null values (strings_can_be_null and quoted_strings_can_be_null are on)
NULLS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA",
         "NULL", "NaN", "n/a", "nan", "null"}
SENTINEL = "\x1fend-of-file\x1f"


@st.composite
def csv_files(draw: st.DrawFn) -> dict[str, Any]:
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    quote = draw(st.sampled_from(['"', '"', "'"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    n_cols = draw(st.integers(1, 4))
    alphabet = st.sampled_from(["x", "y", "é", " ", "0", "1", "7", "NA", delim, quote, "\n", "\r", eol])
    text = st.lists(alphabet, max_size=6).map("".join)

    def cell() -> str:
        value = draw(text)
        if draw(st.booleans()):  # quoted, with quotes inside doubled
            return quote + value.replace(quote, quote * 2) + quote
        return value

    header = [f"c{j}" if j % 2 == 0 or delim == "," else f"{quote}c {j}{quote}" for j in range(n_cols)]
    lines = [delim.join(header)]
    for _ in range(draw(st.integers(0, 6))):
        width = n_cols if draw(st.integers(0, 5)) else draw(st.integers(1, n_cols + 1))  # now and then ragged
        lines.append(delim.join(cell() for _ in range(width)))
        if draw(st.integers(0, 7)) == 0:
            lines.append("")  # a blank line
    body = eol.join(lines) + (eol if draw(st.booleans()) else "")
    if draw(st.integers(0, 3)) == 0:  # a stray quote somewhere
        at = draw(st.integers(0, len(body)))
        body = body[:at] + quote + body[at:]
    given_encoding = None if encoding in ("utf-8", "utf-8-sig", "utf-16") and draw(st.booleans()) else encoding
    return {"text": body, "delimiter": delim, "quotechar": quote, "encoding": encoding, "given": given_encoding}


def python_reads(text: str, delimiter: str, quotechar: str) -> tuple[list[list[str]], bool]:
    """(records without empty lines, whether the last one ends inside a quoted value)."""
    reader = csv.reader(io.StringIO(text + "\n" + SENTINEL, newline=""), delimiter=delimiter, quotechar=quotechar,
                        doublequote=True, strict=False)
    rows = list(reader)
    open_quote = rows[-1] != [SENTINEL]
    return [r for r in (rows if open_quote else rows[:-1]) if r], open_quote


def same_value(got: Any, cell: str) -> bool:
    if cell in NULLS:
        return got is None
    if isinstance(got, bool):
        return (cell.strip() in TRUE_VALUES and got) or (cell.strip() in FALSE_VALUES and not got)
    if isinstance(got, int | float):
        want = float(cell)
        return got == want or (math.isnan(want) and math.isnan(got))
    return got == cell


def test_generated_csv_is_imported_as_python_reads_it_or_refused_naming_a_line(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    counter = itertools.count()

    @settings(max_examples=int(os.environ.get("MODELYARD_FUZZ_EXAMPLES", 150)), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(csv_files())
    def check(f: dict[str, Any]) -> None:
        k = next(counter)
        path = tmp_path / f"f{k}.csv"
        path.write_bytes(f["text"].encode(f["encoding"]))
        records, open_quote = python_reads(f["text"], f["delimiter"], f["quotechar"])
        options = service.ImportOptions(name=f"f{k}", delimiter=f["delimiter"], quotechar=f["quotechar"],
                                        encoding=f["given"], header=True)
        outcome = run_job(store, service.import_spec(path, options))
        shown = f"{f['text']!r} ({f['encoding']})"
        header_ok = len(set(records[0])) == len(records[0]) and all(n.strip() for n in records[0])
        complete = records[:-1] if open_quote else records
        shaped = header_ok and all(len(r) == len(records[0]) for r in complete)
        well_formed = not open_quote and shaped and len(records) > 1
        if not well_formed:
            assert not outcome.ok, f"imported {outcome.result and outcome.result['n_rows']} rows from {shown}"
            assert outcome.error and "Unexpected error" not in outcome.error, (outcome.error, shown)
            assert re.search(r"\bline \d+|header row|no data rows|holds no rows|only blank", outcome.error), \
                (outcome.error, shown)
            if open_quote and shaped:  # nothing wrong before the open quote: that is what is named
                assert re.search(r"starts on line \d+ is never closed", outcome.error), (outcome.error, shown)
            return
        assert outcome.ok, (outcome.error, shown)
        header, data = records[0], records[1:]
        snapshot = pq.read_table(service.snapshot_path(store, outcome.result["dataset_version_id"]))
        assert snapshot.column_names == header, shown
        assert snapshot.num_rows == len(data), (snapshot.to_pylist(), data, shown)
        for j, name in enumerate(header):
            got = snapshot.column(name).to_pylist()
            for i, (g, row) in enumerate(zip(got, data, strict=True)):
                assert same_value(g, row[j]), (name, i, g, row[j], shown)

    try:
        check()
    finally:
        store.close()


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(['"', '"', ",", ";", "\n", "\r", "\r\n", "x", " "]), max_size=40).map("".join),
       st.lists(st.integers(0, 40), max_size=5), st.sampled_from([",", ";"]))
def test_the_quote_scan_agrees_with_python_csv_however_the_text_is_cut(text: str, cuts: list[int],
                                                                       delimiter: str) -> None:
    """The scan behind the unclosed-quote check reads 1 MB pieces: a cut anywhere must not change its answer."""
    from modelyard.core.datasets.read_csv_sniff import _QuoteTracker

    _, open_quote = python_reads(text, delimiter, '"')
    whole = _QuoteTracker(delimiter, '"')
    whole.feed(text)
    pieces = _QuoteTracker(delimiter, '"')
    at = 0
    for cut in sorted({c for c in cuts if c <= len(text)}) + [len(text)]:
        pieces.feed(text[at:cut])
        at = cut
    assert (whole.open_at_end() is not None) == open_quote, text
    assert pieces.open_at_end() == whole.open_at_end() and pieces.line == whole.line, (text, cuts)
    if open_quote:  # the line named is the one holding the quote that opened the last value
        line = whole.open_at_end()
        assert line is not None
        lines = io.StringIO(text, newline="").readlines()
        assert '"' in lines[line - 1], (text, line)


def test_a_quoted_header_that_swallows_a_line_names_the_header_row(tmp_path: Path) -> None:
    """Found by the fuzz test above: a quote opened in the header and closed on line 2 makes a
    header with a repeated name; the message must say it is the header row."""
    store = Store.open(tmp_path / "store")
    path = tmp_path / "swallowed.csv"
    path.write_text('"c0,c1,c2\n"x",x,x\n')
    options = service.ImportOptions(name="swallowed", delimiter=",", quotechar='"', encoding="utf-8", header=True)
    outcome = run_job(store, service.import_spec(path, options))
    assert not outcome.ok
    assert re.search(r"swallowed\.csv: the column name 'x' appears more than once \(columns 2 and 3\) in the "
                     r"header row", outcome.error), outcome.error
