"""The normalised table: canonical column types, its content hash, and its Parquet snapshot.

Normalisation maps every source type to one of a few canonical Arrow types, so the same data
read from CSV, Parquet, Excel, JSON or a pandas frame becomes the same table:

=========================================  ===============================
source                                     snapshot
=========================================  ===============================
any integer (uint64 when it fits)          int64
any float, decimal                         float64
bool                                       bool
string, large_string, dictionary, null     string (all missing for null)
date, timestamp (any unit)                 timestamp[us] (time zone kept)
time                                       time64[us]
duration                                   duration[us]
binary                                     binary
struct, list, map, ...                     string (JSON text)
=========================================  ===============================

The content hash is a sha256 over the column names and types and, per column, three streams
(validity, values or value lengths, and string bytes) that are fed batch by batch. Each stream
depends only on the sequence of values, never on where batches, chunks or row groups begin, so
the hash is independent of the file name, its format and its layout.

:class:`SnapshotWriter` writes the normalised batches to Parquet in row groups of exactly
:data:`ROW_GROUP_ROWS` rows (the last one shorter), which is what lets
:func:`modelyard.core.datasets.service.read_rows` fetch any page by reading one or two row
groups. Writing and hashing run on a helper thread so they overlap with parsing.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelyard.core.common.errors import ModelyardError

ROW_GROUP_ROWS = 65_536
HASH_VERSION = "modelyard-table-v1"
PARQUET_COMPRESSION = "snappy"
QUEUE_BATCHES = 4


# --------------------------------------------------------------------------- normalisation


def normal_type(t: pa.DataType) -> pa.DataType:
    """The canonical type of a source type (see the module's table)."""
    if pa.types.is_dictionary(t):
        return normal_type(t.value_type)
    if pa.types.is_boolean(t):
        return pa.bool_()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or _is_string_view(t):
        return pa.string()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", t.tz)
    if pa.types.is_date(t):
        return pa.timestamp("us")
    if pa.types.is_time(t):
        return pa.time64("us")
    if pa.types.is_duration(t):
        return pa.duration("us")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    return pa.string()  # nested and anything else: JSON text


def _is_string_view(t: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(t))


def _json_text(arr: pa.Array) -> pa.Array:
    def dump(v: Any) -> str | None:
        return None if v is None else json.dumps(v, default=str, ensure_ascii=False)

    return pa.array([dump(v) for v in arr.to_pylist()], pa.string())


def normalize_array(arr: pa.Array | pa.ChunkedArray, name: str = "") -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    src = arr.type
    dst = normal_type(src)
    if src == dst:
        return arr
    if pa.types.is_dictionary(src):
        arr = arr.dictionary_decode()
        return normalize_array(arr, name)
    if pa.types.is_null(src):
        return pa.nulls(len(arr), pa.string())
    nested = pa.types.is_nested(src) or pa.types.is_union(src) or pa.types.is_map(src)
    if dst == pa.string() and nested:
        return _json_text(arr)
    try:
        safe = not (pa.types.is_timestamp(src) or pa.types.is_time(src) or pa.types.is_duration(src)
                    or pa.types.is_decimal(src))
        if pa.types.is_date(src):
            return pc.cast(pc.cast(arr, pa.timestamp("s")), dst)
        return pc.cast(arr, dst, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if pa.types.is_integer(src):
            raise ModelyardError(f"Column '{name}' holds integers too large for 64 bits ({exc}).",
                                 hint="Convert that column to floating point or text before importing.") from None
        if dst == pa.string():
            return _json_text(arr)
        raise ModelyardError(f"Column '{name}' of type {src} cannot be imported ({exc}).",
                             hint="Convert it to numbers, text or dates before importing.") from None


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, normal_type(f.type)) for f in schema])


def normalize_batch(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    names = batch.schema.names
    cols = [normalize_array(batch.column(i), names[i]) for i in range(len(names))]
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema([pa.field(n, c.type) for n, c in zip(names, cols, strict=True)]))


def _bits(buf: pa.Buffer | None, offset: int, n: int, default: bool) -> np.ndarray:
    if buf is None:
        return np.full(n, default, dtype=bool)
    raw = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=offset + n, bitorder="little")
    return raw[offset:].astype(bool)


def validity(arr: pa.Array) -> np.ndarray:
    """True where ``arr`` has a value (numpy bool), read from its validity bitmap."""
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    if pa.types.is_null(arr.type):
        return np.zeros(len(arr), dtype=bool)
    return _bits(arr.buffers()[0], arr.offset, len(arr), True)


def to_numpy(arr: pa.Array, fill: Any = None) -> np.ndarray:
    """A boolean, integer or float array as numpy without pyarrow's pandas-based path.

    (``Array.to_numpy``, ``fill_null`` and ``pa.scalar`` import pandas on first use: half a
    second for a command-line import.) Zero-copy and read-only when there are no nulls;
    nulls become ``fill``. Other types, or nulls without ``fill``, take pyarrow's conversion.
    """
    t = arr.type
    n = len(arr)
    if pa.types.is_boolean(t):
        values = _bits(arr.buffers()[1], arr.offset, n, False)
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        kind = "f" if pa.types.is_floating(t) else ("i" if pa.types.is_signed_integer(t) else "u")
        dtype = np.dtype(f"{kind}{t.bit_width // 8}")
        buf = arr.buffers()[1]
        values = (np.zeros(n, dtype=dtype) if buf is None or n == 0
                  else np.frombuffer(buf, dtype=dtype, count=n, offset=arr.offset * dtype.itemsize))
    else:
        return arr.to_numpy(zero_copy_only=False)
    if arr.null_count:
        if fill is None:
            return arr.to_numpy(zero_copy_only=False)
        values = values.copy()
        values[~validity(arr)] = fill
    return values


# --------------------------------------------------------------------------- content hash


class TableHasher:
    """sha256 of a normalised table, independent of how it is cut into batches."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._h = [(hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in schema]

    def update(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for i, arr in enumerate(batch.columns):
            self._update_column(i, arr)

    def _update_column(self, i: int, arr: pa.Array) -> None:
        h_valid, h_values, h_data = self._h[i]
        n = len(arr)
        if n == 0:
            return
        if arr.null_count:
            h_valid.update(validity(arr).astype(np.uint8).tobytes())
        else:
            h_valid.update(b"\x01" * n)
        t = arr.type
        if pa.types.is_string(t) or pa.types.is_binary(t):
            bufs = arr.buffers()
            offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset: arr.offset + n + 1]
            lengths = np.diff(offsets).astype(np.int32)
            if arr.null_count:
                nulls = ~validity(arr)
                if lengths[nulls].any():  # bytes under null slots (rare): drop them first
                    arr = pc.if_else(arr.is_valid(), arr, pa.scalar(b"" if pa.types.is_binary(t) else "", t))
                    bufs = arr.buffers()
                    offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset: arr.offset + n + 1]
                    lengths = np.diff(offsets).astype(np.int32)
            h_values.update(lengths.tobytes())
            if bufs[2] is not None and offsets[-1] > offsets[0]:
                h_data.update(memoryview(bufs[2])[int(offsets[0]): int(offsets[-1])])
            return
        if pa.types.is_null(t):
            return
        if pa.types.is_boolean(t):
            values = to_numpy(arr, fill=False).astype(np.uint8)
        else:
            if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
                arr = arr.view(pa.int64()) if t.bit_width == 64 else pc.cast(arr, pa.int64())
            values = to_numpy(arr, fill=0)
        h_values.update(np.ascontiguousarray(values).tobytes())

    def hexdigest(self) -> str:
        h = hashlib.sha256(HASH_VERSION.encode())
        h.update(json.dumps([[f.name, str(f.type)] for f in self.schema], ensure_ascii=False).encode())
        h.update(str(self.rows).encode())
        for h_valid, h_values, h_data in self._h:
            h.update(h_valid.digest() + h_values.digest() + h_data.digest())
        return h.hexdigest()


def content_hash(table: pa.Table) -> str:
    """The content hash of a whole table (normalising it first)."""
    batches = [normalize_batch(b) for b in table.to_batches()]
    schema = normalize_schema(table.schema)
    hasher = TableHasher(schema)
    for b in batches:
        hasher.update(b)
    return hasher.hexdigest()


# --------------------------------------------------------------------------- the snapshot writer


def encoding_plan(first: pa.RecordBatch) -> tuple[list[str], dict[str, str]]:
    """Which columns to dictionary-encode, and each column's compression, judged on the first batch.

    Text, and numbers or times with few different values, are dictionary-encoded and
    compressed (they shrink a lot); other numbers (measurements, which barely compress) are
    written plain and uncompressed, which halves the time to write and to read them back.
    """
    dictionary: list[str] = []
    compression: dict[str, str] = {}
    for name, col in zip(first.schema.names, first.columns, strict=True):
        t = col.type
        if pa.types.is_string(t) or pa.types.is_binary(t):
            dictionary.append(name)
            compression[name] = PARQUET_COMPRESSION
        elif pa.types.is_boolean(t):
            compression[name] = "none"
        else:
            sample = col.slice(0, 10_000)
            few = len(sample) == 0 or len(pc.unique(sample)) <= max(16, len(sample) // 10)
            if few:
                dictionary.append(name)
            compression[name] = PARQUET_COMPRESSION if few else "none"
    return dictionary, compression


@dataclass(frozen=True)
class SnapshotResult:
    n_rows: int
    n_cols: int
    schema: pa.Schema
    content_hash: str


class SnapshotWriter:
    """Normalise, hash and write batches to a Parquet file, on a helper thread.

    ``write(batch)`` hands a batch to the helper (blocking when it is :data:`QUEUE_BATCHES`
    behind) and re-raises any error the helper met; ``close()`` finishes the file and returns
    its :class:`SnapshotResult`; ``abort()`` stops the helper and leaves the file for the caller
    to delete. The helper thread is always joined by ``close`` or ``abort``.
    """

    def __init__(self, path: Path, *, threaded: bool = True) -> None:
        self.path = path
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None
        self._hasher: TableHasher | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue[pa.RecordBatch | None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if threaded:
            self._queue = queue.Queue(maxsize=QUEUE_BATCHES)
            self._thread = threading.Thread(target=self._run, name="modelyard-snapshot-writer", daemon=True)
            self._thread.start()

    # -- the caller's side
    def write(self, batch: pa.RecordBatch) -> None:
        self._raise_pending()
        if self._queue is None:
            self._consume(batch)
            return
        while True:
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:
                self._raise_pending()

    def close(self) -> SnapshotResult:
        if self._queue is not None:
            self._put_sentinel()
            self._join()
        self._raise_pending()
        if self._schema is None:
            raise ModelyardError("The file holds no columns.", hint="Choose the file that holds the data.")
        self._flush(final=True)
        assert self._writer is not None and self._hasher is not None
        self._writer.close()
        self._writer = None
        return SnapshotResult(self._hasher.rows, len(self._schema), self._schema, self._hasher.hexdigest())

    def abort(self) -> None:
        self._stop.set()
        if self._queue is not None:
            while True:  # make room for the sentinel
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._put_sentinel()
            self._join()
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the file is thrown away anyway
                pass
            self._writer = None

    # -- the helper's side
    def _put_sentinel(self) -> None:
        assert self._queue is not None
        while self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            self._stop.set()
            raise err

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._stop.is_set() or self._error is not None:
                continue
            try:
                self._consume(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc

    def _consume(self, batch: pa.RecordBatch) -> None:
        batch = normalize_batch(batch)
        if self._schema is None:
            self._schema = batch.schema
            self._hasher = TableHasher(self._schema)
            dictionary, compression = encoding_plan(batch)
            # No column statistics: snapshots are read by row group, never filtered, and the
            # statistics cost a quarter of the writing time.
            self._writer = pq.ParquetWriter(self.path, self._schema, compression=compression,
                                            use_dictionary=dictionary or False, write_statistics=False)
        elif batch.schema != self._schema:
            batch = batch.cast(self._schema)
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        assert self._writer is not None
        assert self._writer is not None and self._hasher is not None
        table = pa.Table.from_batches(self._pending, schema=self._schema)
        full = table.num_rows if final else (table.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
        if full:
            # Hash whole row groups: a few large calls cost far less than many per small batch.
            block = table.slice(0, full).combine_chunks()
            for b in block.to_batches(max_chunksize=ROW_GROUP_ROWS):
                self._hasher.update(b)
            self._writer.write_table(block, row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(full)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows
