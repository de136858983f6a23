"""Profiling a snapshot: per-column statistics, the dataset's duplicates and memory, warnings.

The profile is computed from the Parquet snapshot one column at a time (string columns are
read dictionary-encoded), on two threads, so memory stays at about one column and a 1,000,000
x 20 table takes about a second. Counts (missing, distinct, duplicates, category counts) are
exact; quantiles are exact too (numpy's partition).

Profile JSON (stored in ``DatasetVersion.profile``)::

    {"version": 1, "rows": 150, "n_cols": 5, "duplicates": 1, "duplicate_share": 0.0067,
     "memory_bytes": 6150,
     "columns": [{"name", "dtype", "kind", "type", "count", "missing", "missing_share", "distinct",
                  "min", "max", "mean", "std", "quantiles": {"5%": ...}, "integral",
                  "histogram": {"edges": [...], "counts": [...]},
                  "top": [{"value": v, "count": n}, ...], "rarest": {"value", "count"},
                  "length": {"min", "mean", "max"}, "memory_bytes"}, ...],
     "warnings": [{"code", "column", "message"}, ...]}

``kind`` is the data's kind (integer, float, boolean, string, datetime, time, duration, binary);
``type`` the semantic type of the schema. Keys that do not apply to a kind are absent;
numbers that are not finite are stored as null.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelyard.core.common.names import plural
from modelyard.core.datasets.schema import id_reason, text_reason
from modelyard.core.datasets.snapshot import to_numpy, validity

PROFILE_VERSION = 1
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20
TOP_N = 20
WORDS_SAMPLE = 10_000
PROFILE_THREADS = 2

MOSTLY_MISSING_SHARE = 0.95
HIGH_CARDINALITY = 100
RARE_CLASS_SHARE = 0.05
RARE_CLASS_COUNT = 10


def kind_of(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    return "string"


def _num(v: Any) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, np.integer | int) and not isinstance(v, bool):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else None


def _py(v: Any) -> Any:
    """A JSON-able scalar for a value shown to people (top categories, min/max of dates)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v[:40].hex()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _micros_to_iso(us: float, tz: str | None) -> str:
    base = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))
    if tz is None:
        return base.replace(tzinfo=None).isoformat()
    return base.isoformat()


# --------------------------------------------------------------------------- one column


def _codes_from_dictionary(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(indices with missing = -1, the dictionary) of a dictionary-encoded column."""
    if col.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), pa.array([], col.type.value_type)
    col = col.unify_dictionaries()
    dictionary = col.chunk(0).dictionary
    parts = []
    for chunk in col.chunks:
        idx = chunk.indices
        parts.append(to_numpy(idx, fill=-1))
    codes = np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, dtype=np.int64)
    return codes, dictionary


def _top(values: list[Any], counts: np.ndarray) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    order = np.argsort(-counts, kind="stable")
    present = order[counts[order] > 0]
    top = [{"value": _py(values[i]), "count": int(counts[i])} for i in present[:TOP_N]]
    rarest = None
    if len(present):
        i = present[-1]
        rarest = {"value": _py(values[i]), "count": int(counts[i])}
    return top, rarest


def _quantiles(srt: np.ndarray) -> dict[str, Any]:
    """Exact quantiles of an ascending array (linear interpolation, numpy's default)."""
    n = len(srt)
    out = {}
    for q in QUANTILES:
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        v = float(srt[lo]) + (float(srt[hi]) - float(srt[lo])) * (pos - lo)
        out[f"{round(q * 100)}%"] = _num(v)
    return out


def _histogram(srt: np.ndarray, integer: bool) -> dict[str, list[Any]]:
    """Equal-width bins (one per value for small integer ranges) of an ascending array, by binary search.

    As numpy's histogram: every bin is half-open except the last, which includes its right edge.
    """
    lo, hi = float(srt[0]), float(srt[-1])
    if integer and hi - lo + 1 <= 30:
        edges = lo - 0.5 + np.arange(int(hi - lo) + 2, dtype=np.float64)
    elif lo == hi:
        edges = np.array([lo - 0.5, hi + 0.5])
    else:
        t = np.arange(HISTOGRAM_BINS + 1, dtype=np.float64) / HISTOGRAM_BINS
        edges = lo * (1.0 - t) + hi * t  # finite even where hi - lo would overflow
        edges[0], edges[-1] = lo, hi
    inner = np.searchsorted(srt, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], inner, [len(srt)])))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _runs(srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of an ascending array and how often each occurs."""
    starts = np.concatenate(([0], np.flatnonzero(srt[1:] != srt[:-1]) + 1))
    return srt[starts], np.diff(np.concatenate((starts, [len(srt)])))


def _monotonic(values: np.ndarray) -> str | None:
    """"increasing" or "decreasing" when every value is strictly above (below) the one before."""
    if len(values) < 2:
        return None
    step = np.diff(values)
    if (step > 0).all():
        return "increasing"
    if (step < 0).all():
        return "decreasing"
    return None


def _all_integral(values: np.ndarray) -> bool:
    for start in range(0, len(values), 1 << 16):
        block = values[start:start + (1 << 16)]
        if not np.array_equal(block, np.floor(block)):
            return False
    return len(values) > 0


_NULL_KEY = np.uint64(0x7FF4DEADBEEF0001)  # a signalling-NaN pattern: no canonical value has it
_NAN_KEY = np.uint64(0x7FF8000000000000)


def _numeric_keys(chunks: list[pa.Array], n_rows: int) -> np.ndarray:
    """One uint64 per row, equal exactly when the values are (NaNs alike, missing alike, -0.0 == 0.0)."""
    keys = np.empty(n_rows, dtype=np.uint64)
    pos = 0
    for c in chunks:
        n = len(c)
        part = to_numpy(c, fill=0)
        dest = keys[pos:pos + n]
        if part.dtype.kind == "f":
            np.add(part, 0.0, out=dest.view(np.float64))  # -0.0 becomes 0.0
            nan = np.isnan(part)
            if nan.any():
                dest[nan] = _NAN_KEY
        else:
            dest[:] = part.view(np.uint64) if part.dtype.itemsize == 8 else part.astype(np.int64).view(np.uint64)
        if c.null_count:
            dest[~validity(c)] = _NULL_KEY
        pos += n
    return keys


def _numeric_profile(out: dict[str, Any], col: pa.ChunkedArray, kind: str, value_type: pa.DataType,
                     n_rows: int) -> np.ndarray:
    """Stats of a number, date or time column from one sorted copy of its values; returns its keys.

    Sorting once gives the exact distinct count, quantiles, histogram (by binary search) and,
    for few distinct values, their counts. Memory: the column, one copy, and the keys.
    """
    chunks = list(col.chunks)
    out["memory_bytes"] = int(sum(c.nbytes for c in chunks))
    if kind in ("datetime", "time", "duration"):
        chunks = [c.view(pa.int64()) if value_type.bit_width == 64 else pc.cast(c, pa.int64()) for c in chunks]
    n_null = sum(c.null_count for c in chunks)
    parts = [to_numpy(c.drop_null() if c.null_count else c) for c in chunks]
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64 if kind == "float" else np.int64)
    del parts
    if not values.flags.writeable:
        values = values.copy()
    if kind == "integer":  # in row order, before sorting: a running number only goes one way
        out["monotonic"] = _monotonic(values)
    n_nan = 0
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        n_nan = int(nan.sum())
        if n_nan:
            values = values[~nan]
        del nan
    values.sort()
    missing = n_null + n_nan
    out["count"] = n_rows - missing
    out["missing"] = missing
    n = len(values)
    out["distinct"] = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if n else 0
    finite = values
    if values.dtype.kind == "f" and n and (np.isinf(values[0]) or np.isinf(values[-1])):
        lo = int(np.searchsorted(values, -np.inf, side="right"))
        hi = int(np.searchsorted(values, np.inf, side="left"))
        out["infinite"] = n - (hi - lo)
        finite = values[lo:hi]
    if len(finite) == 0:
        out.update(min=None, max=None, mean=None, std=None, quantiles=None, histogram=None)
    else:
        as_float = finite.astype(np.float64, copy=False) if finite.dtype.kind == "f" else finite
        out["min"] = _num(finite[0])
        out["max"] = _num(finite[-1])
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: an infinite std is stored as null
            out["mean"] = _num(np.mean(as_float, dtype=np.float64))
            out["std"] = _num(np.std(as_float, ddof=1, dtype=np.float64)) if len(finite) > 1 else None
        out["quantiles"] = _quantiles(finite)
        out["histogram"] = _histogram(finite, integer=kind != "float")
    if kind == "float":
        out["integral"] = _all_integral(finite)
    tz = getattr(value_type, "tz", None)
    if 0 < out["distinct"] <= TOP_N:
        uniq, counts = _runs(values)
        shown: list[Any] = list(uniq)
        if kind == "datetime":
            shown = [_micros_to_iso(v, tz) for v in uniq]
        out["top"], out["rarest"] = _top(shown, counts)
    del values, finite
    if kind == "datetime":
        for key in ("min", "max", "mean"):
            if out.get(key) is not None:
                out[key] = _micros_to_iso(out[key], tz)
        if out.get("quantiles"):
            out["quantiles"] = {q: _micros_to_iso(v, tz) for q, v in out["quantiles"].items() if v is not None}
        if out.get("histogram"):
            out["histogram"]["edges"] = [_micros_to_iso(e, tz) for e in out["histogram"]["edges"]]
        if out.get("std") is not None:
            out["std_seconds"] = out.pop("std") / 1e6
    elif kind in ("time", "duration"):
        for key in ("min", "max", "mean", "std"):
            if out.get(key) is not None:
                out[key] = out[key] / 1e6
        out["unit"] = "seconds"
    return _numeric_keys(chunks, n_rows)


def profile_column(name: str, col: pa.ChunkedArray, n_rows: int) -> tuple[dict[str, Any], np.ndarray]:
    """(stats, keys): one uint64 key per row, equal exactly when the values are (for duplicates)."""
    t = col.type
    value_type = t.value_type if pa.types.is_dictionary(t) else t
    kind = kind_of(value_type)
    out: dict[str, Any] = {"name": name, "dtype": str(value_type), "kind": kind}
    if pa.types.is_dictionary(t) or kind in ("string", "binary"):
        if not pa.types.is_dictionary(t):
            col = pc.dictionary_encode(col)
        codes, dictionary = _codes_from_dictionary(col)
        k = len(dictionary)
        counts = np.bincount(codes[codes >= 0], minlength=k) if k else np.zeros(0, dtype=np.int64)
        missing = int((codes < 0).sum())
        out["count"] = n_rows - missing
        out["missing"] = missing
        out["distinct"] = int((counts > 0).sum())
        values = dictionary.to_pylist()
        out["top"], out["rarest"] = _top(values, counts)
        if k:
            lengths = (pc.utf8_length(dictionary) if kind == "string" else pc.binary_length(dictionary))
            lengths_np = to_numpy(lengths).astype(np.int64)
            used = counts > 0
            total_len = int((lengths_np * counts).sum())
            out["length"] = {"min": int(lengths_np[used].min()) if used.any() else None,
                             "mean": total_len / out["count"] if out["count"] else None,
                             "max": int(lengths_np[used].max()) if used.any() else None,
                             "distinct_mean": float(lengths_np[used].mean()) if used.any() else None}
            if kind == "string" and used.any():
                # Words per different value (on at most WORDS_SAMPLE of them): free text has many.
                sample = dictionary.filter(pa.array(used)).slice(0, WORDS_SAMPLE)
                words = to_numpy(pc.count_substring_regex(sample, r"\S+")).astype(np.int64)
                out["words"] = {"distinct_mean": float(words.mean())}
            byte_len = to_numpy(pc.binary_length(dictionary.cast(pa.binary())))
            out["memory_bytes"] = int((byte_len * counts).sum()) + 4 * (n_rows + 1) + n_rows // 8
        else:
            out["length"] = {"min": None, "mean": None, "max": None}
            out["memory_bytes"] = 4 * (n_rows + 1) + n_rows // 8
        _finish_shares(out, n_rows)
        return out, codes.view(np.uint64)

    if kind == "boolean":
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        out["memory_bytes"] = int(arr.nbytes)
        n_true = int(to_numpy(arr, fill=False).sum())
        missing = arr.null_count
        n_false = n_rows - missing - n_true
        out.update(count=n_rows - missing, missing=missing, distinct=int(n_true > 0) + int(n_false > 0))
        counts = np.array([n_false, n_true])
        out["top"], out["rarest"] = _top([False, True], counts)
        codes = to_numpy(arr, fill=False).astype(np.uint64)
        if missing:
            codes[~validity(arr)] = 2
        _finish_shares(out, n_rows)
        return out, codes

    keys = _numeric_profile(out, col, kind, value_type, n_rows)
    _finish_shares(out, n_rows)
    return out, keys


def _finish_shares(out: dict[str, Any], n_rows: int) -> None:
    out["missing_share"] = out["missing"] / n_rows if n_rows else 0.0


# --------------------------------------------------------------------------- duplicates


def _mix(x: np.ndarray) -> None:
    """splitmix64's finaliser, elementwise and in place on uint64 (wrapping arithmetic)."""
    tmp = np.right_shift(x, np.uint64(30))
    x ^= tmp
    x *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(x, np.uint64(27), out=tmp)
    x ^= tmp
    x *= np.uint64(0x94D049BB133111EB)
    np.right_shift(x, np.uint64(31), out=tmp)
    x ^= tmp


class _RowHashes:
    """Counts duplicate rows from a 64-bit hash per row, combined column by column.

    Two different rows get the same hash with probability about n^2 / 2^65 (3e-8 for a
    million rows), so the count is exact in practice.
    """

    def __init__(self, n_rows: int) -> None:
        self.n = n_rows
        self.h = np.zeros(n_rows, dtype=np.uint64)
        self.all_distinct = n_rows <= 1

    def add(self, i: int, keys: np.ndarray | None, stats: Mapping[str, Any]) -> None:
        if self.all_distinct or keys is None:
            return
        if stats.get("distinct") == self.n and stats.get("missing", 0) == 0:
            self.all_distinct = True  # one column with every value different: no two rows are equal
            return
        salt = np.uint64((0x9E3779B97F4A7C15 * (i + 1)) & 0xFFFFFFFFFFFFFFFF)
        if keys.dtype != np.uint64 or not keys.flags.writeable:
            keys = keys.astype(np.uint64, copy=True)
        with np.errstate(over="ignore"):
            keys += salt
            self.h *= np.uint64(0x100000001B3)
            self.h ^= keys
            _mix(self.h)

    def duplicates(self) -> int:
        if self.all_distinct:
            return 0
        hashes = pa.Array.from_buffers(pa.uint64(), self.n, [None, pa.py_buffer(self.h)])
        return self.n - len(pc.unique(hashes))


# --------------------------------------------------------------------------- the table


def compute_profile(path: Path, *, tick: Callable[[float], None] | None = None,
                    threads: int = PROFILE_THREADS) -> dict[str, Any]:
    """Profile the Parquet snapshot at ``path`` (warnings and semantic types are added later)."""
    started = time.perf_counter()
    meta_pf = pq.ParquetFile(path)
    schema = meta_pf.schema_arrow
    n_rows = meta_pf.metadata.num_rows
    meta_pf.close()
    dict_cols = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    local = threading.local()
    arrow_pool = pa.default_memory_pool()
    opened: list[pq.ParquetFile] = []
    lock = threading.Lock()

    def one(i: int) -> tuple[dict[str, Any], np.ndarray]:
        pf = getattr(local, "pf", None)
        if pf is None:
            pf = local.pf = pq.ParquetFile(path, read_dictionary=dict_cols)
            with lock:
                opened.append(pf)
        name = schema.names[i]
        col = pf.read(columns=[name], use_threads=False).column(0)
        try:
            return profile_column(name, col, n_rows)
        finally:
            del col
            arrow_pool.release_unused()  # Arrow's allocator keeps freed pages per thread otherwise

    columns: list[dict[str, Any]] = []
    rows = _RowHashes(n_rows)
    memory = 0
    try:
        results: Iterator[tuple[dict[str, Any], np.ndarray]]
        pool: ThreadPoolExecutor | None = None
        futures: dict[int, Future[tuple[dict[str, Any], np.ndarray]]] = {}
        if threads > 1 and len(schema) > 1:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="modelyard-profile")

            def windowed() -> Iterator[tuple[dict[str, Any], np.ndarray]]:
                # At most `threads` columns in flight, and a column's keys are dropped as soon as
                # they are combined (a finished future would otherwise keep them alive).
                assert pool is not None
                for i in range(min(threads, len(schema))):
                    futures[i] = pool.submit(one, i)
                for i in range(len(schema)):
                    result = futures.pop(i).result()
                    if i + threads < len(schema):
                        futures[i + threads] = pool.submit(one, i + threads)
                    yield result
                    del result

            results = windowed()
        else:
            results = (one(i) for i in range(len(schema)))
        try:
            for i, item in enumerate(results):
                stats, keys = item
                del item
                columns.append(stats)
                memory += stats.get("memory_bytes", 0)
                rows.add(i, keys, stats)
                del keys
                if tick is not None:
                    tick((i + 1) / max(len(schema), 1))
        finally:
            if pool is not None:
                for f in futures.values():
                    f.cancel()
                pool.shutdown(wait=True)
    finally:
        for pf in opened:
            pf.close()
    dups = rows.duplicates()
    return {
        "version": PROFILE_VERSION,
        "rows": n_rows,
        "n_cols": len(schema),
        "duplicates": dups,
        "duplicate_share": dups / n_rows if n_rows else 0.0,
        "memory_bytes": memory,
        "columns": columns,
        "warnings": [],
        "seconds": round(time.perf_counter() - started, 3),
    }


# --------------------------------------------------------------------------- warnings


def _pct(share: float) -> str:
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%"


def compute_warnings(profile: Mapping[str, Any], schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Constant, mostly missing, identifier and high-cardinality columns; a rare target class."""
    warnings: list[dict[str, Any]] = []
    types = {c["name"]: c for c in schema.get("columns", [])}
    n = profile["rows"]

    def warn(code: str, column: str | None, message: str) -> None:
        warnings.append({"code": code, "column": column, "message": message})

    for col in profile["columns"]:
        name = col["name"]
        sem = types.get(name, {}).get("type")
        if n and col["missing"] == n:
            warn("mostly_missing", name, f"Column '{name}' is empty: every value is missing.")
            continue
        if n and col["missing_share"] >= MOSTLY_MISSING_SHARE:
            warn("mostly_missing", name, f"Column '{name}' is almost empty: {_pct(col['missing_share'])} of its "
                                         "values are missing.")
        if col["distinct"] == 1 and n > 1:
            value = (col.get("top") or [{}])[0].get("value", col.get("min"))
            warn("constant", name, f"Column '{name}' has the same value ({value!r}) in every row that is not "
                                   "missing: it carries no information.")
        if sem == "id":
            warn("identifier", name, f"Column '{name}' looks like an identifier ({id_reason(col, n) or 'its type is set to id'}); "
                                     "it is not used as a feature.")
        if sem == "text":
            warn("free_text", name, f"Column '{name}' holds free text ({text_reason(col) or 'its type is set to text'}); it is not used as a "
                                    "feature.")
        dates = col.get("dates") or {}
        if dates.get("not_dates"):
            bad = dates["not_dates"]
            warn("not_dates", name, f"Column '{name}' looked like dates ({bad['format']}), but row {bad['row']:,} "
                                    f"holds {bad['value']!r}, which is not a date in that format: the column was "
                                    f"kept as text. Fix that value, or choose the column's date format (in the import "
                                    f"dialog, or --date-format '{name}=FORMAT').")
        elif dates.get("format") and len(dates.get("candidates") or []) > 1 and not dates.get("given"):
            others = " or ".join(c for c in dates["candidates"] if c != dates["format"])
            warn("ambiguous_dates", name, f"Column '{name}': every date fits both {dates['format']} and {others}; "
                                          f"they were read as {dates['format']}. If that order is wrong, import again "
                                          f"choosing {others} (in the import dialog, or --date-format "
                                          f"'{name}={others}').")
        if sem == "categorical" and col["distinct"] > HIGH_CARDINALITY:
            warn("high_cardinality", name, f"Column '{name}' is categorical with {col['distinct']:,} different "
                                           "values; consider treating it as text or an identifier, or grouping "
                                           "rare values.")
    target = schema.get("target")
    if target and schema.get("task") == "classification":
        col = next((c for c in profile["columns"] if c["name"] == target), None)
        rarest = col.get("rarest") if col else None
        count = col.get("count", 0) if col else 0
        if rarest and count:
            share = rarest["count"] / count
            if share < RARE_CLASS_SHARE or rarest["count"] < RARE_CLASS_COUNT:
                warn("rare_class", target, f"Class {rarest['value']!r} of the target '{target}' has only "
                                           f"{plural(rarest['count'], 'row')} ({_pct(share)}): models may ignore it "
                                           "and "
                                           "a stratified split is advisable.")
        if col and col.get("distinct", 0) < 2:
            warn("single_class", target, f"The target '{target}' has only one class: there is nothing to predict.")
    return warnings


def with_types(profile: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``profile`` whose columns carry the schema's semantic type and role."""
    by_name = {c["name"]: c for c in schema.get("columns", [])}
    out = dict(profile)
    out["columns"] = [dict(c, type=by_name.get(c["name"], {}).get("type"), role=by_name.get(c["name"], {}).get("role"))
                      for c in profile["columns"]]
    out["warnings"] = compute_warnings(out, schema)
    return out
