"""The filter and the order evaluated in memory over a RunsTable-shaped pandas frame
(:func:`to_mask`, :func:`sort_keys`), with the same rules as the SQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelyard.core.experiments.runquery.parse import (
    And,
    Compare,
    Field,
    In,
    Like,
    Node,
    Not,
    Or,
)
from modelyard.core.experiments.runquery.sql import like_to_regex
from modelyard.core.experiments.runquery.tokens import number_or_none

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# =========================================================================== pandas


def to_mask(node: Node, frame: pd.DataFrame, *, numeric: dict[str, Any] | None = None) -> np.ndarray:
    """Evaluate a parsed filter over a RunsTable-shaped frame (same semantics as :func:`to_sql`).

    A field whose column the frame lacks matches no run. ``numeric`` caches the numeric view
    of param/tag columns between calls.
    """
    import numpy as np

    n = len(frame)
    cache = numeric if numeric is not None else {}
    if isinstance(node, And):
        mask = np.ones(n, dtype=bool)
        for it in node.items:
            mask &= to_mask(it, frame, numeric=cache)
        return mask
    if isinstance(node, Or):
        mask = np.zeros(n, dtype=bool)
        for it in node.items:
            mask |= to_mask(it, frame, numeric=cache)
        return mask
    if isinstance(node, Not):
        return ~to_mask(node.item, frame, numeric=cache)
    fld = node.field
    name = fld.column
    if name not in frame.columns:
        return np.zeros(n, dtype=bool)
    series = frame[name]
    if fld.kind == "attr" and fld.key == "duration" or fld.kind == "metric":
        values = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(values)
        if isinstance(node, Compare):
            with np.errstate(invalid="ignore"):
                return present & _np_cmp(values, node.op, node.value)
        hit = np.isin(values, np.asarray(node.values, dtype=float))
        return present & (~hit if node.negate else hit)
    if fld.kind == "attr" and fld.key == "start_time":
        import pandas as pd

        values = series
        present = values.notna().to_numpy()
        if isinstance(node, Compare):
            res = _np_cmp(values, node.op, pd.Timestamp(node.value))
            return present & np.asarray(res, dtype=bool)
        hit = values.isin([pd.Timestamp(v) for v in node.values]).to_numpy()
        return present & (~hit if node.negate else hit)
    # text columns: params, tags, text attributes
    obj = series.to_numpy(dtype=object)
    present = series.notna().to_numpy()
    numeric_compare = fld.kind in ("param", "tag") and (
        (isinstance(node, Compare) and isinstance(node.value, float))
        or (isinstance(node, In) and node.values and isinstance(node.values[0], float)))
    if numeric_compare:
        nums = cache.get(name)
        if nums is None:
            nums = cache[name] = numeric_view(series)
        has = ~np.isnan(nums)
        if isinstance(node, Compare):
            with np.errstate(invalid="ignore"):
                return has & _np_cmp(nums, node.op, node.value)
        hit = np.isin(nums, np.asarray(node.values, dtype=float))
        return has & (~hit if node.negate else hit)
    if isinstance(node, Compare):
        if node.op in ("=", "!="):
            eq = obj == node.value
            eq = np.asarray(eq, dtype=bool)
            return present & (eq if node.op == "=" else ~eq)
        out = np.zeros(n, dtype=bool)
        idx = np.flatnonzero(present)
        vals = obj[idx]
        import operator

        fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[node.op]
        out[idx] = np.fromiter((fn(v, node.value) for v in vals), dtype=bool, count=len(vals))
        return out
    if isinstance(node, Like):
        flags = re.IGNORECASE | re.DOTALL if node.insensitive else re.DOTALL
        rx = re.compile(like_to_regex(node.pattern), flags)
        hit = _map_unique(series, lambda v: rx.fullmatch(v) is not None)
        return present & (~hit if node.negate else hit)
    hit = np.asarray(series.isin(list(node.values)).to_numpy(), dtype=bool)
    return present & (~hit if node.negate else hit)


def _np_cmp(values: Any, op: str, value: Any) -> Any:
    import operator

    return {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}[op](values, value)


def _map_unique(series: pd.Series, fn: Any) -> np.ndarray:
    """Apply ``fn`` to each distinct non-null value once (params have few distinct values)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.fromiter((bool(fn(u)) for u in uniques), dtype=bool, count=len(uniques))
    out = np.zeros(len(series), dtype=bool)
    ok = codes >= 0
    out[ok] = table[codes[ok]]
    return out


def numeric_view(series: pd.Series) -> np.ndarray:
    """A float array of a text column: the value where it is a plain decimal number, else NaN."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([number_or_none(u) for u in uniques], dtype=float) if len(uniques) else np.zeros(0)
    table = np.where(np.isnan(table), np.nan, table) if len(table) else table
    out = np.full(len(series), np.nan)
    ok = codes >= 0
    if len(table):
        out[ok] = table[codes[ok]]
    return out


def sort_keys(frame: pd.DataFrame, order: list[tuple[Field, bool]], numeric: dict[str, Any] | None = None,
              index: np.ndarray | None = None) -> np.ndarray:
    """Row order for ``order`` with the same rules as :func:`order_sql`; ties newest first.

    With ``index``, the order of the rows ``frame.iloc[index]`` (positions into ``index``),
    computed without materialising them.
    """
    import numpy as np
    import pandas as pd

    cache = numeric if numeric is not None else {}
    keys: list[np.ndarray] = []  # most significant first; lexsort wants it reversed
    n = len(frame) if index is None else len(index)

    def rank(values: Any, desc: bool) -> np.ndarray:
        codes, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes = codes.astype(np.int64)
        return -codes if desc else codes

    for fld, desc in order:
        name = fld.column
        if name not in frame.columns:
            continue
        series = frame[name]
        missing = series.isna().to_numpy().astype(np.int8)
        keys.append(missing)
        if fld.kind == "metric" or (fld.kind == "attr" and fld.key == "duration"):
            v = series.to_numpy(dtype=float, na_value=np.nan)
            keys.append(-np.nan_to_num(v, nan=0.0) if desc else np.nan_to_num(v, nan=0.0))
        elif fld.kind == "attr" and fld.key in ("start_time", "end_time"):
            v = series.to_numpy(dtype="datetime64[ms]").astype(np.int64)
            keys.append(-v if desc else v)
        elif fld.kind in ("param", "tag"):
            nums = cache.get(name)
            if nums is None:
                nums = cache[name] = numeric_view(series)
            text = np.isnan(nums) & ~missing.astype(bool)
            any_num = not np.all(np.isnan(nums))
            if text.any() and any_num:
                keys.append(-text.astype(np.int8) if desc else text.astype(np.int8))
            if any_num:
                v = np.nan_to_num(nums, nan=0.0)
                keys.append(-v if desc else v)
            if text.any():
                keys.append(rank(series, desc))
        else:
            keys.append(rank(series, desc))
    if "start_time" in frame.columns:
        keys.append(-frame["start_time"].to_numpy(dtype="datetime64[us]").astype(np.int64))  # µs: fast runs share a ms
    if not keys:
        return np.arange(n)
    if index is not None:
        keys = [k[index] for k in keys]
    return np.lexsort(list(reversed(keys)))


