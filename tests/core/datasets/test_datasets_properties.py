"""Property: a generated table written as CSV (by pandas) and imported comes back with the same values
and the column types the documented inference rules give (modelyard.core.datasets.schema).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelyard.core.datasets import service
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import Store

WORDS = ["alpha", "beta", "gamma", "delta", "omega"]
TEXT_ALPHABET = "abcdefghij klmnop,qrs\"tuv;wxyz\n'"

# (kind, expected dtype in the snapshot)
KINDS = {
    "int": "int64",
    "float": "double",
    "bool": "bool",
    "category": "string",
    "text": "string",
    "datetime": "timestamp[us]",
    "ymd": "timestamp[us]",  # dates written 2012/01/31
    "dmy": "timestamp[us]",  # dates written 31/01/2012 (or 01/02/2012: order decided from the data)
}


def _values(kind: str, n: int) -> st.SearchStrategy[list[Any]]:
    if kind == "int":
        base = st.integers(min_value=-(2**62), max_value=2**62)
    elif kind == "float":
        base = st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda x: x + 0.0)
    elif kind == "bool":
        base = st.booleans()
    elif kind == "category":
        base = st.sampled_from(WORDS)
    elif kind == "text":
        # long enough to count as free text, starting with a letter so no value reads as a number
        base = st.text(TEXT_ALPHABET, min_size=30, max_size=60).map(lambda s: "T" + s)
    elif kind in ("ymd", "dmy"):
        base = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)).map(
            lambda d: dt.datetime(d.year, d.month, d.day))
    else:
        base = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
            lambda d: d.replace(microsecond=0))
    maybe = st.one_of(st.none(), base)
    # free text must be mostly distinct to read as text; missing values may repeat
    unique = (lambda v: v if v is not None else object()) if kind == "text" else None
    values = st.lists(maybe, min_size=n, max_size=n, unique_by=unique)
    return values.filter(lambda vs: any(v is not None for v in vs))


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, list[Any]]]:
    n = draw(st.integers(min_value=1, max_value=30))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6))
    cols = {f"{kind}_{i}": draw(_values(kind, n)) for i, kind in enumerate(kinds)}
    return {name: name.rsplit("_", 1)[0] for name in cols}, cols


def _frame(kinds: dict[str, str], cols: dict[str, list[Any]]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, values in cols.items():
        kind = kinds[name]
        if kind == "int":
            data[name] = pd.array(values, dtype="Int64")
        elif kind == "float":
            data[name] = pd.array([math.nan if v is None else v for v in values], dtype="float64")
        elif kind == "datetime":
            data[name] = pd.to_datetime(pd.Series(values, dtype="object"))
        elif kind in ("ymd", "dmy"):
            fmt = "%Y/%m/%d" if kind == "ymd" else "%d/%m/%Y"
            data[name] = pd.Series([None if v is None else v.strftime(fmt) for v in values], dtype="object")
        else:
            data[name] = pd.Series(values, dtype="object")
    return pd.DataFrame(data)


def _expected_type(kind: str, values: list[Any]) -> str:
    """The rules of schema.infer_type, spelled out for the generated kinds."""
    present = [v for v in values if v is not None]
    n = len(values)
    if kind == "int":
        unique = len(set(present)) == len(present) == n and n >= 2
        span = max(present) - min(present) + 1
        steps = [b - a for a, b in zip(present, present[1:], strict=False)]
        monotonic = all(d > 0 for d in steps) or all(d < 0 for d in steps)
        counter = unique and n >= 20 and (span == n or (monotonic and span <= 2 * n))
        return "id" if counter else "numeric"
    if kind in ("ymd", "dmy", "datetime"):
        return "datetime"
    return {"float": "numeric", "bool": "boolean", "category": "categorical", "text": "text"}[kind]


def _expected_values(kind: str, values: list[Any]) -> list[Any]:
    """Slash dates with the year last whose days are all 12 or less are read month-first."""
    if kind != "dmy" or any(v.day > 12 for v in values if v is not None):
        return values
    return [None if v is None else v.replace(month=v.day, day=v.month) for v in values]


def _same(got: Any, want: Any) -> bool:
    """Exact equality (pandas writes floats with repr(), so they survive the trip bit for bit)."""
    return got is None if want is None else got == want


def test_csv_round_trip_keeps_values_and_types(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    counter = itertools.count()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
    @given(tables())
    def check(table: tuple[dict[str, str], dict[str, list[Any]]]) -> None:
        kinds, cols = table
        k = next(counter)
        path = tmp_path / f"t{k}.csv"
        _frame(kinds, cols).to_csv(path, index=False)
        outcome = run_job(store, service.import_spec(path, service.ImportOptions(name=f"t{k}")))
        assert outcome.ok, f"{outcome.error}\n{path.read_text()!r}"
        info = service.get_version(store, outcome.result["dataset_version_id"])
        assert info.n_rows == len(next(iter(cols.values())))
        assert [c["name"] for c in info.columns] == list(cols)
        snapshot = pq.read_table(service.snapshot_path(store, info.id))
        for col in info.columns:
            name, kind = col["name"], kinds[col["name"]]
            assert col["dtype"] == KINDS[kind], (name, col, path.read_text())
            assert col["type"] == _expected_type(kind, cols[name]), (name, col, cols[name])
            got = snapshot.column(name).to_pylist()
            want = _expected_values(kind, cols[name])
            assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (name, got, want)

    try:
        check()
    finally:
        store.close()
