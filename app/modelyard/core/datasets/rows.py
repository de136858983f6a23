"""Reading a version's rows: its snapshot file, pages of rows for display (with the open files and
the last few decoded row groups cached) and whole frames for training.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from modelyard.core.common.errors import NotFoundError
from modelyard.core.datasets.catalog import (
    _find_version,
)
from modelyard.core.store import Store

if TYPE_CHECKING:
    import pandas as pd


# --------------------------------------------------------------------------- reading rows

_CACHE_LOCK = threading.Lock()
_SNAPSHOT_PATHS: dict[tuple[str, int], Path] = {}
_FILES: OrderedDict[Path, tuple[pq.ParquetFile, list[int]]] = OrderedDict()
_GROUPS: OrderedDict[tuple[Path, int], pa.Table] = OrderedDict()
MAX_OPEN_FILES = 8
MAX_CACHED_GROUPS = 4


def snapshot_path(store: Store, ref: str | int) -> Path:
    """The Parquet snapshot file of a version (read it, never write it)."""
    if isinstance(ref, int):
        key = (str(store.root), ref)
        with _CACHE_LOCK:
            hit = _SNAPSHOT_PATHS.get(key)
        if hit is not None and hit.is_file():  # (a store re-created in the same folder reuses ids)
            return hit
    with store.session() as s:
        v = _find_version(s, ref)
        sha, vid, label = v.snapshot_sha256, v.id, f"version {v.id}"
    if sha is None:
        raise NotFoundError(f"Dataset {label} has no snapshot file.", hint="Import the data again.")
    path = store.artifacts.path(sha)
    if not path.is_file():
        raise NotFoundError(f"The snapshot of dataset {label} is missing from the store ({path}).",
                            hint="'modelyard store verify' checks every artifact; import the data again.")
    with _CACHE_LOCK:
        _SNAPSHOT_PATHS[(str(store.root), vid)] = path
    return path


def _open_file(path: Path) -> tuple[pq.ParquetFile, list[int]]:
    entry = _FILES.get(path)
    if entry is not None:
        _FILES.move_to_end(path)
        return entry
    pf = pq.ParquetFile(path)
    starts = [0]
    for i in range(pf.metadata.num_row_groups):
        starts.append(starts[-1] + pf.metadata.row_group(i).num_rows)
    _FILES[path] = (pf, starts)
    while len(_FILES) > MAX_OPEN_FILES:
        _, (old, _s) = _FILES.popitem(last=False)
        old.close()
    return pf, starts


def _row_group(path: Path, pf: pq.ParquetFile, i: int) -> pa.Table:
    key = (path, i)
    table = _GROUPS.get(key)
    if table is not None:
        _GROUPS.move_to_end(key)
        return table
    table = pf.read_row_group(i)
    _GROUPS[key] = table
    while len(_GROUPS) > MAX_CACHED_GROUPS:
        _GROUPS.popitem(last=False)
    return table


def _to_display_frame(table: pa.Table) -> pd.DataFrame:
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)


def read_table_rows(store: Store, dataset_version_id: int, start: int, count: int,
                    columns: list[str] | None = None) -> pa.Table:
    """Rows ``start`` .. ``start + count - 1`` of a version as an Arrow table (see :func:`read_rows`)."""
    path = snapshot_path(store, int(dataset_version_id))
    with _CACHE_LOCK:
        pf, starts = _open_file(path)
        n = starts[-1]
        start = max(0, min(int(start), n))
        stop = max(start, min(n, start + max(0, int(count))))
        if stop == start:
            table = pf.schema_arrow.empty_table()
        else:
            first = bisect.bisect_right(starts, start) - 1
            last = bisect.bisect_right(starts, stop - 1) - 1
            pieces = []
            for g in range(first, last + 1):
                group = _row_group(path, pf, g)
                lo = max(start - starts[g], 0)
                hi = min(stop - starts[g], group.num_rows)
                pieces.append(group.slice(lo, hi - lo))
            table = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
    if columns is not None:
        table = table.select(columns)
    return table


def read_rows(store: Store, dataset_version_id: int, start: int, count: int,
              columns: list[str] | None = None) -> pd.DataFrame:
    """Rows ``start`` .. ``start + count - 1`` of a version's snapshot, as a frame for display.

    Reads only the row groups that hold those rows (the open file and the last few decoded row
    groups are cached), so paging through a million rows stays smooth. Integers and booleans
    keep their type with missing values (pandas' nullable Int64 and boolean). Thread-safe.
    """
    return _to_display_frame(read_table_rows(store, dataset_version_id, start, count, columns))


def load_frame(store: Store, ref: str | int, columns: list[str] | None = None) -> pd.DataFrame:
    """A whole version as a pandas frame (for training: plain numpy dtypes, NaN for missing)."""
    return pq.read_table(snapshot_path(store, ref), columns=columns).to_pandas()


def clear_caches() -> None:
    """Forget open snapshot files and cached row groups (e.g. before a store is closed)."""
    with _CACHE_LOCK:
        for pf, _ in _FILES.values():
            pf.close()
        _FILES.clear()
        _GROUPS.clear()
        _SNAPSHOT_PATHS.clear()
