"""Datasets: every kind of bad input fails with a message that names the file and says what to do,
and leaves the store exactly as it was (no dataset, version or artifact rows, no artifact or temp files).
"""

from __future__ import annotations

import builtins
import os
import re
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import assert_store_unchanged, import_fails
from modelyard.core.datasets import importing, service
from modelyard.core.datasets.read_common import DatasetInputError
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import Store

# --------------------------------------------------------------------------- the cases

Case = Callable[[Path], tuple[Path, dict[str, Any], str]]


def empty_file(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "empty.csv"
    p.write_bytes(b"")
    return p, {}, r"empty\.csv is empty \(0 bytes\)"


def blank_lines(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "blank.csv"
    p.write_text("\n\n   \n")
    return p, {}, r"blank\.csv holds only blank lines"


def binary_file(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "photo.csv"
    p.write_bytes(bytes(range(256)) * 64)
    return p, {}, r"photo\.csv looks like a binary file"


def ragged_row(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "ragged.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")
    return p, {}, r"ragged\.csv: line 4 \(data row 3\) has 4 fields but the header has 3 columns: '7,8,9,10'"


def ragged_row_far_in(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "far.csv"
    with p.open("w") as fh:
        fh.write("a,b\n")
        for i in range(150_000):
            fh.write(f"{i},x{i}\n")
        fh.write("oops\n")
    return p, {}, r"far\.csv: line 150002 \(data row 150001\) has 1 field but the header has 2 columns"


def undecodable_forced_utf8(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "latin.csv"
    p.write_bytes("name,city\nJosé,Zürich\n".encode("cp1252"))
    return p, {"encoding": "utf-8"}, r"latin\.csv has bytes that are not valid UTF-8 text at line 2 \(byte 13\)"


def undecodable_after_the_sample(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "late.csv"
    with p.open("wb") as fh:
        fh.write(b"word,n\n")
        for i in range(20_000):
            fh.write(b"plain,%d\n" % i)
        fh.write(b"caf\xe9,1\n")
    return p, {}, r"late\.csv has bytes that are not valid UTF-8 text at line 20002 .* in column 'word'"


def duplicate_names(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "dupes.csv"
    p.write_text("id,price,id\n1,2,3\n")
    return p, {}, r"dupes\.csv: the column name 'id' appears more than once \(columns 1 and 3\)"


def empty_name(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "noname.csv"
    p.write_text("id,,price\n1,2,3\n")
    return p, {}, r"noname\.csv: column 2 has no name in the header row"


def header_only(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "header.csv"
    p.write_text("id,price,city\n")
    return p, {}, r"header\.csv has column names \(3 columns\) but no data rows"


def empty_sheet(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "book.xlsx"
    with pd.ExcelWriter(p) as xw:
        pd.DataFrame({"a": [1]}).to_excel(xw, sheet_name="data", index=False)
        pd.DataFrame().to_excel(xw, sheet_name="blank", index=False)
    return p, {"sheet": "blank"}, r"book\.xlsx \(sheet 'blank'\) is empty: it has no columns"


def excel_duplicate_names(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "twice.xlsx"
    pd.DataFrame([[1, 2]], columns=["x", "x "]).to_excel(p, index=False)
    return p, {}, r"twice\.xlsx \(sheet 'Sheet1'\): the column name 'x' appears more than once \(columns A and B\)"


def unknown_sheet(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "sheets.xlsx"
    pd.DataFrame({"a": [1]}).to_excel(p, index=False, sheet_name="Only")
    return p, {"sheet": "Missing"}, r"sheets\.xlsx has no sheet named 'Missing'"


def old_excel(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "legacy.xls"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    return p, {}, r"legacy\.xls is an old-style Excel"


def broken_parquet(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "broken.parquet"
    p.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")
    return p, {}, r"broken\.parquet is not a valid Parquet file"


def bad_json(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "bad.json"
    p.write_text('[{"a": 1},\n {"a": 2,}]')
    return p, {}, r"bad\.json is not valid JSON at line 2"


def bad_json_line(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    return p, {}, r"bad\.jsonl: line 3 is not valid JSON"


def json_not_a_table(d: Path) -> tuple[Path, dict[str, Any], str]:
    p = d / "scalar.json"
    p.write_text("42")
    return p, {}, r"scalar\.json is JSON but not a table"


def compressed(d: Path) -> tuple[Path, dict[str, Any], str]:
    import gzip

    p = d / "data.csv.gz"
    p.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    return p, {}, r"data\.csv\.gz is compressed \(gzip\)"


CASES: list[Case] = [
    empty_file, blank_lines, binary_file, ragged_row, ragged_row_far_in, undecodable_forced_utf8,
    undecodable_after_the_sample, duplicate_names, empty_name, header_only, empty_sheet, excel_duplicate_names,
    unknown_sheet, old_excel, broken_parquet, bad_json, bad_json_line, json_not_a_table, compressed,
]


EXCEL_CASES = {"empty_sheet", "excel_duplicate_names", "unknown_sheet"}


def make_case(case: Case, tmp_path: Path) -> tuple[Path, dict[str, Any], str]:
    if case.__name__ in EXCEL_CASES:
        pytest.importorskip("openpyxl")  # a dependency of Excel import
    return case(tmp_path)


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(case: Case, store: Store, tmp_path: Path) -> None:
    path, options, pattern = make_case(case, tmp_path)
    outcome = import_fails(store, path, **options)
    assert re.search(pattern, outcome.error), outcome.error
    assert str(path.parent) in outcome.error  # the full path of the file is named
    assert_store_unchanged(store)


SNIFF_CASES = [empty_file, blank_lines, binary_file, duplicate_names, empty_name, empty_sheet, unknown_sheet,
               old_excel, broken_parquet, bad_json, json_not_a_table, compressed]


@pytest.mark.parametrize("case", SNIFF_CASES, ids=[c.__name__ for c in SNIFF_CASES])
def test_sniff_reports_the_same_problems_before_importing(case: Case, tmp_path: Path) -> None:
    path, options, pattern = make_case(case, tmp_path)
    with pytest.raises(DatasetInputError) as err:
        service.sniff(path, options)
    assert re.search(pattern, str(err.value)), str(err.value)


# --------------------------------------------------------------------------- files that cannot be read


def test_locked_file(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file another program has locked (or we may not read): every open of it raises PermissionError.

    Running as root, permissions cannot stop us, so ``open`` itself refuses this one path; every
    reader opens its source through it (pyarrow reads from the file object we hand it).
    """
    src = tmp_path / "locked.csv"
    src.write_text("a,b\n1,2\n")
    sniffed = service.sniff(src)  # readable while the dialog looks at it...
    assert sniffed.columns == ["a", "b"]
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and Path(file) == src:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)  # ...then another program locks it
    outcome = import_fails(store, src)
    assert f"Cannot read {src}: permission denied, or another program has locked the file." in outcome.error
    assert "Close the program" in (outcome.hint or "")
    with pytest.raises(DatasetInputError, match="permission denied"):
        service.sniff(src)
    monkeypatch.undo()
    assert_store_unchanged(store)


def test_file_vanished_between_sniff_and_import(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "gone.csv"
    src.write_text("a,b\n1,2\n")
    spec = service.import_spec(src, service.sniff(src).options())
    src.unlink()
    outcome = run_job(store, spec)
    assert outcome.status == "failed"
    assert f"{src} does not exist (any more)." in outcome.error and "Choose the file again" in outcome.hint
    assert_store_unchanged(store)


def test_a_folder_is_not_a_file(store: Store, tmp_path: Path) -> None:
    outcome = import_fails(store, tmp_path)
    assert "is not a regular file" in outcome.error or "is a folder" in outcome.error
    assert_store_unchanged(store)


def test_file_larger_than_free_disk(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "huge.csv"
    src.write_text("a,b\n" + "1,2\n" * 50_000)  # 200 kB
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(importing.shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 150_000, 150_000))
    outcome = import_fails(store, src)
    assert re.search(rf"Not enough free disk space to import {re.escape(str(src))} \(200\.0 kB\): the store at "
                     rf".* has 150\.0 kB free and the import needs about 400\.0 kB\.", outcome.error), outcome.error
    assert "Free some disk space" in outcome.hint
    assert_store_unchanged(store)


def test_unknown_encoding_name(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a\n1\n")
    outcome = import_fails(store, src, encoding="klingon-8")
    assert "Unknown text encoding 'klingon-8'" in outcome.error
    assert_store_unchanged(store)


def test_bad_dataset_name(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a\n1\n")
    outcome = import_fails(store, src, name="sales@2024")
    assert "cannot contain '@'" in outcome.error
    assert_store_unchanged(store)


def test_cp1252_without_an_encoding_is_read_with_a_note(store: Store, tmp_path: Path) -> None:
    """Not bad input: undecodable as UTF-8 in the sample, so it falls back (and says so)."""
    src = tmp_path / "win.csv"
    src.write_bytes("name,city\nJosé,Zürich\n".encode("cp1252"))
    outcome = run_job(store, service.import_spec(src))
    assert outcome.ok, outcome.error
    assert service.load_frame(store, outcome.result["dataset_version_id"])["city"].tolist() == ["Zürich"]
