"""CSV and reader edge cases found by hardening (issue 11): a stray quote, very long lines and values,
a delimiter that is also the quote, wrong encodings, a full disk and an Excel sheet that misstates its size.

Each case either imports exactly what the file holds or is refused with one message that names the file
and the line (or option) and leaves the store as it was.
"""

from __future__ import annotations

import errno
import re
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_helpers import cli
from factories import assert_store_unchanged, import_fails
from modelyard.core.datasets import service
from modelyard.core.datasets.read_common import DatasetInputError
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import Store


def imported(store: Store, path: Path, **options: object) -> tuple[dict, list[dict]]:
    outcome = run_job(store, service.import_spec(path, service.ImportOptions(**options)))
    assert outcome.ok, outcome.error
    rows = pq.read_table(service.snapshot_path(store, outcome.result["dataset_version_id"])).to_pylist()
    return outcome.result, rows


# --------------------------------------------------------------------------- an unclosed quote (item 2)


@pytest.mark.parametrize("ext,delim", [(".csv", ","), (".tsv", "\t")])
def test_a_stray_quote_is_refused_naming_the_line_where_it_opens(store: Store, tmp_path: Path, ext: str,
                                                                 delim: str) -> None:
    """1,000 rows; row 11 ends with an opening quote never closed: not 11 rows with 989 in one cell."""
    path = tmp_path / f"stray{ext}"
    lines = [delim.join(["id", "name", "city"])] + [delim.join([str(i), f"n{i}", f"c{i}"]) for i in range(1000)]
    lines[11] = delim.join(["10", "n10", '"'])  # data row 11 is line 12
    path.write_text("\n".join(lines) + "\n")
    outcome = import_fails(store, path)
    assert re.search(rf"{re.escape(str(path))}: the quoted value that starts on line 12 is never closed",
                     outcome.error), outcome.error
    assert "quote" in outcome.hint
    assert_store_unchanged(store)
    with pytest.raises(DatasetInputError, match="starts on line 12 is never closed"):
        service.sniff(path)  # the preview of a file read to its end says so too


@pytest.mark.parametrize("text,line", [
    ('a,b,c\n1,"x,y\n2,3,4\n5,6,7\n', 2),  # the open value swallows delimiters: a short row
    ("a,b\n1,2\n3,\"x", 3),  # on the last line, no line break after it
    ('a,b\n1,2\n3,"x""\n', 3),  # a doubled quote is a quote inside the value, not its end
    ('a,"b\n1,2\n', 1),  # in the header
    ('a,b\n1,"two\nlines"\n3,"x\n4,y\n', 4),  # after a value that legitimately spans lines
    ('a,b\r\n1,2\r\n3,"x\r\n4,y\r\n', 3),  # Windows line ends
    ('a,b\r1,2\r3,"x\r4,y\r', 3),  # old Mac line ends
])
def test_unclosed_quote_variants(store: Store, tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "q.csv"
    path.write_text(text, newline="")
    outcome = import_fails(store, path, delimiter=",", header=True)
    assert f"the quoted value that starts on line {line} is never closed" in outcome.error, outcome.error
    assert_store_unchanged(store)


def test_quotes_that_close_still_import(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text('a,b\n1,"two\nlines"\n2,"say ""hi"""\n3,"x"\n')
    result, rows = imported(store, path)
    assert result["n_rows"] == 3
    assert [r["b"] for r in rows] == ["two\nlines", 'say "hi"', "x"]


def test_preview_of_a_large_file_shows_an_open_quote_only_up_to_where_it_is_read(tmp_path: Path) -> None:
    """Beyond the preview's sample the quote may still close: sniffing does not refuse, importing decides."""
    path = tmp_path / "big.csv"
    path.write_text('a,b\n1,"x\n' + "2,y\n" * 200_000 + '"\n3,z\n')
    sniffed = service.sniff(path)
    assert sniffed.columns == ["a", "b"]
    assert any("The quoted value that starts on line 2 is still open" in n for n in sniffed.notes), sniffed.notes


# --------------------------------------------------------------------------- long lines and values (item 10)


def test_a_header_longer_than_a_block_without_rows_is_a_header_without_rows(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"{i:05d}_{'long name ' * 30}" for i in range(10_000)) + "\n")  # 3 MB, one line
    outcome = import_fails(store, path)
    assert f"{path} has column names (10000 columns) but no data rows" in outcome.error, outcome.error
    assert_store_unchanged(store)


def test_a_header_longer_than_a_block_with_rows_imports(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    name = "n" * 2_500_000  # one line of 2.5 MB before the first row
    path.write_text(f"id,{name}\n1,2\n3,4\n")
    assert service.sniff(path).columns == ["id", name]  # the preview reads the whole first line
    result, rows = imported(store, path)
    assert (result["n_rows"], result["n_cols"]) == (2, 2)
    assert rows == [{"id": 1, name: 2}, {"id": 3, name: 4}]


@pytest.mark.parametrize("where", ["first", "later"])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_value_over_a_block_imports(store: Store, tmp_path: Path, where: str, quoted: bool) -> None:
    big = ("word " * 400_000) if not quoted else ('line, with "quotes"\n' * 150_000)  # 2-3 MB
    cell = f'"{big.replace(chr(34), chr(34) * 2)}"' if quoted else big
    path = tmp_path / "big.csv"
    before = "".join(f"{i},short\n" for i in range(100_000)) if where == "later" else ""
    path.write_text("id,text\n" + before + f"-1,{cell}\n" + "7,after\n")
    assert service.sniff(path).columns == ["id", "text"]
    result, rows = imported(store, path)
    assert result["n_rows"] == len(before.splitlines()) + 2
    assert rows[-2] == {"id": -1, "text": big}
    assert rows[-1] == {"id": 7, "text": "after"}


# --------------------------------------------------------------------------- the dialect's options (item 10)


@pytest.mark.parametrize("options", [{"delimiter": '"'}, {"delimiter": "'", "quotechar": "'"},
                                     {"delimiter": ";", "quotechar": ";"}])
def test_delimiter_equal_to_quote_character_is_refused(store: Store, tmp_path: Path, options: dict) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n")
    outcome = import_fails(store, path, **options)
    assert "the delimiter and the quote character are both" in outcome.error.lower(), outcome.error
    assert "--delimiter" in outcome.hint and "--quote " in outcome.hint
    assert_store_unchanged(store)


# --------------------------------------------------------------------------- encodings (item 9)


@pytest.mark.parametrize("encoding,message", [
    ("nonsense", "Unknown text encoding 'nonsense'"),
    ("base64", "'base64' is not a text encoding"),
    ("rot13", "'rot13' is not a text encoding"),
    ("utf-16", "not valid utf-16 text at line 1"),
    ("utf-32", "not valid utf-32 text at line 1"),
    ("ascii", "not valid ascii text at line 2"),
])
def test_wrong_encoding_is_refused_with_one_line(store: Store, tmp_path: Path, encoding: str, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,city\nJosé,Zürich\n", encoding="utf-8")
    outcome = import_fails(store, path, encoding=encoding)
    assert message in outcome.error, outcome.error
    assert "--encoding" in outcome.hint or "utf-8" in outcome.hint
    assert_store_unchanged(store)
    with pytest.raises(DatasetInputError, match=re.escape(message)):
        service.sniff(path, {"encoding": encoding})


@pytest.mark.parametrize("encoding", ["nonsense", "utf-16", "base64"])
def test_cli_wrong_encoding_prints_one_line_and_a_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       encoding: str) -> None:
    root = tmp_path / "store"
    assert cli(capsys, "store", "init", str(root))[0] == 0
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n")
    code, out, err = cli(capsys, "--store", str(root), "dataset", "import", str(path), "--encoding", encoding)
    assert code == 1
    lines = [ln for ln in err.splitlines() if not ln.startswith("[")]  # (progress lines)
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    assert "Traceback" not in err and "Unexpected error" not in err


# --------------------------------------------------------------------------- a full disk (item 9)


def test_disk_full_while_writing_the_snapshot(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(200_000)))

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    outcome = import_fails(store, path)
    assert re.search(r"The disk is full: the snapshot of .*data\.csv could not be written to the store at ",
                     outcome.error), outcome.error
    assert "Free some disk space" in outcome.hint
    assert_store_unchanged(store)


# --------------------------------------------------------------------------- Excel: a sheet that misstates its size


def test_excel_sheet_whose_recorded_size_is_wrong_is_read_whole(store: Store, tmp_path: Path) -> None:
    """Some programs write a wrong "dimension" (A1:A1); read-only openpyxl would read just that cell."""
    openpyxl = pytest.importorskip("openpyxl")
    good = tmp_path / "good.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "name"])
    for i in range(30):
        ws.append([i, f"n{i}"])
    wb.save(good)
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, n = re.subn(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:A1" />', data)
                assert n == 1
            zout.writestr(item, data)
    result, rows = imported(store, bad)
    assert (result["n_rows"], result["n_cols"]) == (30, 2)
    assert rows[-1] == {"id": 29, "name": "n29"}
    assert service.sniff(bad).columns == ["id", "name"]



# --------------------------------------------------------------------------- JSON Lines: a line that is not one record


@pytest.mark.parametrize("text,message", [
    ('{"a": 1, "b": "x"}\nnull\n{"a": 2, "b": "y"}\n', "line 2 is not a JSON object"),  # not an empty row
    ('{"a": 1}{"a": 2}\n{"a": 3}\n', "line 1 is not valid JSON"),  # two records on one line
])
def test_json_lines_line_that_is_not_one_record_is_refused(store: Store, tmp_path: Path, text: str,
                                                           message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(text)
    outcome = import_fails(store, path)
    assert f"{path}: {message}" in outcome.error, outcome.error
    assert_store_unchanged(store)


def test_json_lines_empty_record_is_a_row_of_missing_values(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{}\n\n{"a": 2}\n')
    result, rows = imported(store, path)
    assert rows == [{"a": 1}, {"a": None}, {"a": 2}]
