"""Reading one sheet of an Excel ``.xlsx`` workbook (openpyxl, read-only)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from modelyard.core.datasets.read_common import (
    BATCH_ROWS,
    EXCEL_TICK_ROWS,
    DatasetInputError,
    ReadSettings,
    Tick,
    _to_text,
    check_column_names,
    empty_batch,
    open_binary,
    table_from_columns,
)

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
