"""Column access for drift checks over a pandas frame or an Arrow table, column by column.

A check reads each column once (numbers as floats, categories as counts) and keeps only a seeded
sample of whole rows for the model and the domain classifier, so a million-row reference or batch
read from a Parquet snapshot is never turned into a pandas frame as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.core.registry import reference as refmod

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def sample_index(n_rows: int, n: int, seed: int) -> np.ndarray | None:
    """Sorted row numbers of a seeded sample of ``n`` rows (None: take them all)."""
    if n_rows <= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=n, replace=False))


class FrameColumns:
    """Columns of a pandas frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        self.names = list(self.frame.columns)
        self.n_rows = len(self.frame)

    def dtype(self, name: str) -> str:
        return str(self.frame[name].dtype)

    def is_categorical(self, name: str) -> bool:
        import pandas as pd

        s = self.frame[name]
        return isinstance(s.dtype, pd.CategoricalDtype) or refmod.is_categorical_dtype(s)

    def is_datetime(self, name: str) -> bool:
        import pandas as pd

        return bool(pd.api.types.is_datetime64_any_dtype(self.frame[name].dtype))

    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        """(floats with NaN for missing, how many present values are not numbers)."""
        import pandas as pd

        s = self.frame[name]
        values = refmod.numeric_values(s)
        if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype) \
                or pd.api.types.is_timedelta64_dtype(s.dtype):
            return values, 0
        return values, int((np.isnan(values) & ~s.isna().to_numpy()).sum())

    def counts(self, name: str) -> tuple[dict[str, int], int]:
        return refmod.category_counts(self.frame[name])

    def rows(self, columns: Sequence[str], n: int, seed: int) -> pd.DataFrame:
        idx = sample_index(self.n_rows, n, seed)
        frame = self.frame[list(columns)]
        return frame if idx is None else frame.iloc[idx]


class TableColumns:
    """Columns of an Arrow table (a Parquet snapshot read as it is)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.names = [str(n) for n in table.column_names]
        self.n_rows = table.num_rows

    def _type(self, name: str) -> Any:
        return self.table.schema.field(name).type

    def dtype(self, name: str) -> str:
        return str(self._type(name))

    def is_categorical(self, name: str) -> bool:
        import pyarrow as pa

        t = self._type(name)
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
                    or pa.types.is_dictionary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))

    def is_datetime(self, name: str) -> bool:
        import pyarrow as pa

        t = self._type(name)
        return bool(pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t))

    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        import pyarrow as pa

        col = self.table.column(name)
        t = col.type
        if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            if pa.types.is_boolean(t) or pa.types.is_decimal(t):
                col = col.cast(pa.float64())
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64), 0
        if pa.types.is_duration(t):
            return np.asarray(col.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6, 0
        return FrameColumns(self.table.select([name]).to_pandas()).numeric(name)

    def counts(self, name: str) -> tuple[dict[str, int], int]:
        import pyarrow.compute as pc

        col = self.table.column(name)
        counts: dict[str, int] = {}
        if col.num_chunks:
            vc = pc.value_counts(col)
            for value, count in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                if value is None:
                    continue
                key = refmod.category_key(value)
                counts[key] = counts.get(key, 0) + int(count)
        return counts, int(col.null_count)

    def rows(self, columns: Sequence[str], n: int, seed: int) -> pd.DataFrame:
        idx = sample_index(self.n_rows, n, seed)
        table = self.table.select(list(columns))
        if idx is not None:
            table = table.take(idx)
        return table.to_pandas()


Columns = FrameColumns | TableColumns


def columns_of(data: Any) -> Columns:
    import pandas as pd

    if isinstance(data, (FrameColumns, TableColumns)):
        return data
    if isinstance(data, pd.DataFrame):
        return FrameColumns(data)
    return TableColumns(data)
