"""Reading JSON (a list of records, an object of column lists, or pandas' "split" layout) and
JSON Lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelyard.core.datasets.read_common import (
    BATCH_ROWS,
    DatasetInputError,
    ReadSettings,
    Tick,
    check_column_names,
    empty_batch,
    file_size,
    open_binary,
    table_from_columns,
    table_from_records,
    undecodable_error,
)

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
