"""Rows for the Explore view: a fixed random sample of a version, as plain lists per column.

At most :data:`MAX_ROWS` rows (a scatter of more says no more and draws slowly), the same rows
each time for a version (seeded). Numbers (and dates, as seconds) come as floats with NaN for
missing; everything else as text with None for missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelyard.core.datasets.catalog import get_version
from modelyard.core.datasets.rows import snapshot_path
from modelyard.core.store import Store

MAX_ROWS = 5_000
MAX_CLASSES = 9  # colours of the target's classes (the Explore view has ten): more, the largest 9 and "other"
MAX_CATEGORIES = 12  # categories of a distribution; the rest are not drawn


@dataclass
class ExploreSample:
    version_id: int
    n_rows: int  # of the whole version
    target: str | None
    task: str | None
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN for missing
    categorical: dict[str, list[Any]] = field(default_factory=dict)  # text, None for missing
    columns: list[str] = field(default_factory=list)  # in the version's order
    sampled: int = 0  # rows here
    # Prepared here, off the window's thread: each row's group (the target's class; a regression
    # target's quartile), the group names, and each categorical column's most common values with
    # each row's index among them (-1: another value).
    group_names: list[str] = field(default_factory=list)
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    categories: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)


def _as_numbers(col: pa.ChunkedArray) -> np.ndarray | None:
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        col = pc.cast(col, pa.timestamp("s")) if pa.types.is_date(t) else col
        seconds = pc.cast(col.cast(pa.int64()), pa.float64())
        scale = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}.get(getattr(col.type, "unit", "s"), 1)
        return seconds.to_numpy(zero_copy_only=False) / scale
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    return None


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _category_codes(values: list[Any], most: int) -> tuple[list[str], np.ndarray]:
    """The ``most`` most common values (missing as "(missing)") and each row's index among them."""
    shown = np.array(["(missing)" if v is None else v for v in values], dtype=object)
    names, inverse, counts = np.unique(shown.astype(str), return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:most]
    rank = np.full(len(names), -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return [str(names[i]) for i in order], rank[inverse.reshape(-1)]


def class_groups(sample: ExploreSample) -> tuple[list[str], np.ndarray]:
    """Each sampled row's group: the target's class (regression: its quartile), as names and codes."""
    target = sample.target
    if target in sample.categorical:
        values = sample.categorical[target]
        names, codes = _category_codes(values, MAX_CLASSES)
        distinct = len({v for v in values})
        if distinct > len(names):  # the rest share one colour
            codes = np.where(codes < 0, len(names), codes)
            other = distinct - len(names)
            names = [*names, f"other ({other} {'class' if other == 1 else 'classes'})"]
        return names, codes
    if target in sample.numeric:
        y = sample.numeric[target]
        ok = ~np.isnan(y)
        if ok.sum() >= 4:
            edges = np.unique(np.quantile(y[ok], [0.25, 0.5, 0.75]))
            codes = np.where(ok, np.searchsorted(edges, np.nan_to_num(y), side="right"), len(edges) + 1)
            bounds = [float(np.nanmin(y)), *edges.tolist(), float(np.nanmax(y))]
            names = [f"{target} {_fmt(a)}–{_fmt(b)}" for a, b in zip(bounds[:-1], bounds[1:])]
            if (~ok).any():
                names.append("(missing)")
            return names, codes.astype(np.int64)
    return ["all rows"], np.zeros(sample.sampled, dtype=np.int64)


def explore_sample(store: Store, version_id: int, max_rows: int = MAX_ROWS) -> ExploreSample:
    """Up to ``max_rows`` rows of the version, split into numeric and categorical columns."""
    info = get_version(store, int(version_id))
    types = {c["name"]: c.get("type") for c in info.columns}
    table = pq.read_table(snapshot_path(store, int(version_id)))
    if table.num_rows > max_rows:
        picked = np.sort(np.random.default_rng(0).choice(table.num_rows, max_rows, replace=False))
        table = table.take(pa.array(picked))
    out = ExploreSample(version_id=info.id, n_rows=info.n_rows, target=info.target, task=info.task,
                        columns=list(table.column_names), sampled=table.num_rows)
    for name in table.column_names:
        col = table.column(name)
        numbers = None if types.get(name) in ("categorical", "boolean", "text", "id") else _as_numbers(col)
        if numbers is not None:
            out.numeric[name] = numbers.astype(np.float64)
        else:
            out.categorical[name] = [None if v is None else str(v) for v in col.to_pylist()]
            out.categories[name] = _category_codes(out.categorical[name], MAX_CATEGORIES)
    out.group_names, out.groups = class_groups(out)
    return out
