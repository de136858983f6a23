"""The runs table as plain data: :class:`RunsTable` holds columns (numpy/pandas) and sorts and
filters them in memory; it never reads the store (the loader, :mod:`.query`, does)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelyard.core.experiments.runquery.frames import numeric_view, sort_keys, to_mask
from modelyard.core.experiments.runquery.parse import (
    Field,
    Node,
    parse_field,
    parse_filter,
    parse_order_by,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.core.experiments.runquery.loader import _Raw
    from modelyard.core.experiments.runquery.query import _Query
    from modelyard.core.store import Store

# =========================================================================== RunsTable


class RunsTable:
    """Runs as plain columns, one row per run, ready for a table model.

    :attr:`frame` is a pandas frame with the columns ``run_id`` (the 32-hex id),
    ``experiment``, ``name``, ``status``, ``start_time`` / ``end_time`` (UTC datetimes),
    ``duration`` (seconds, float), ``user``, ``source_type``, ``source``, ``parent_run_id``, then
    ``metrics.<key>`` (float, NaN when absent), ``params.<key>`` and ``tags.<key>`` (text, None
    when absent). ``pks`` holds the store's integer run ids in row order.

    :meth:`sort` and :meth:`filter` return new tables in milliseconds: they share the loaded
    columns and only compute a new row order (``index``); :meth:`column` reads one column in
    that order, and :attr:`frame` builds the reordered frame on first use. :meth:`refresh`
    returns the table brought up to date by re-reading only the runs written since it was
    loaded (what a live view calls every second or two, off the main thread).

    A table is data only: every method but :meth:`refresh` works on the loaded columns and
    never touches the store, so a view may call them on its main thread. A table loaded with
    some ``columns`` (``complete`` False) still holds every key's column aside (``full``), so
    that a filter on another key is answered in memory too. :meth:`refresh` hands the table
    back to the loader (:func:`~modelyard.core.experiments.runquery.query.refresh_runs`), which
    reads the store.
    """

    def __init__(self, frame: pd.DataFrame, pks: np.ndarray, *, complete: bool = True,
                 loaded_at: dt.datetime | None = None, index: np.ndarray | None = None,
                 numeric: dict[str, Any] | None = None, getters: dict[str, Any] | None = None,
                 positions: dict[str, Any] | None = None, raw: _Raw | None = None,
                 full: pd.DataFrame | None = None, origin: tuple[Store, _Query] | None = None) -> None:
        import numpy as np

        self._base = frame
        self._base_pks = pks
        self.index = np.arange(len(frame)) if index is None else index  # rows of the loaded frame, in order
        self.complete = complete  # every param/metric/tag key of the selected runs has a column
        self.loaded_at = loaded_at
        # the loaded rows with every key's column (what filter evaluates), when frame shows some
        self._full = frame if full is None else full
        self._numeric: dict[str, Any] = {} if numeric is None else numeric  # over the loaded frame
        self._frame: pd.DataFrame | None = frame if index is None else None
        # per loaded frame, shared by the tables sorted and filtered from it
        self._getters: dict[str, Any] = {} if getters is None else getters
        self._positions: dict[str, Any] = {} if positions is None else positions
        self._raw = raw  # (run attributes, {kind: {key: values}}) in the loaded frame's row order
        # where the rows came from (store, query): only the loader reads it, in refresh_runs
        self._origin = origin

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"RunsTable({len(self)} runs, {len(self._base.columns)} columns)"

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = self._base.take(self.index).reset_index(drop=True)
        return self._frame

    @property
    def pks(self) -> np.ndarray:
        return self._base_pks[self.index]

    @property
    def columns(self) -> list[str]:
        return list(self._base.columns)

    @property
    def run_ids(self) -> np.ndarray:
        return self.column("run_id")

    def column(self, name: str) -> np.ndarray:
        """One column's values in row order (a numpy array).

        ``start_time`` and ``end_time`` come as naive UTC ``datetime64[ns]`` (NaT when absent):
        converting a time-zone-aware column to objects costs ~150 ms per 100,000 runs.
        """
        series = self._base[name]
        if isinstance(series.dtype, __import__("pandas").DatetimeTZDtype):
            values = series.dt.tz_convert(None).to_numpy()
        else:
            values = series.to_numpy()
        return values[self.index]

    def cell(self, name: str, row: int) -> Any:
        """One value (``row`` in this table's order) without converting the column: what a view
        asks for per visible cell. Times come as naive UTC ``datetime64``, categories as text."""
        getter = self._getters.get(name)
        if getter is None:
            getter = self._getters[name] = _cell_getter(self._base[name])
        return getter(int(self.index[row]))

    def prepare(self, columns: Sequence[str]) -> None:
        """Build what :meth:`cell` needs for these columns now (say on a worker thread, so that
        the first paint on the main thread does not pay for it); :meth:`row_of` remembers too."""
        for name in columns:
            if name in self._base.columns and name not in self._getters:
                self._getters[name] = _cell_getter(self._base[name])

    def row_of(self, run_id: str) -> int:
        """The row of a run in this table's order, or -1."""
        import numpy as np

        pos = self._positions.get(run_id)  # run id -> position in the loaded frame, shared by sorted/filtered tables
        if pos is None:
            found = np.flatnonzero(self._base["run_id"].to_numpy(dtype=object) == run_id)
            pos = self._positions[run_id] = int(found[0]) if len(found) else -1
        if pos < 0:
            return -1
        rows = np.flatnonzero(self.index == pos)
        return int(rows[0]) if len(rows) else -1

    def shares_data_with(self, other: RunsTable | None) -> bool:
        """True when both tables hold the very same loaded rows (a refresh that found nothing new)."""
        return other is not None and self._base is other._base and self._base_pks is other._base_pks

    def keys(self, kind: str) -> list[str]:
        """The keys of one kind (``params``, ``metrics``, ``tags``) that have columns."""
        prefix = kind.rstrip("s") + "s."
        return [c[len(prefix):] for c in self._base.columns if c.startswith(prefix)]

    def numeric(self, name: str) -> np.ndarray:
        """A column as floats in row order; params and tags: plain decimal numbers, else NaN."""
        import numpy as np

        if name.startswith(("params.", "tags.")):
            if name not in self._numeric:
                self._numeric[name] = numeric_view(self._base[name])
            return self._numeric[name][self.index]
        return self._base[name].to_numpy(dtype=float, na_value=np.nan)[self.index]

    def _take(self, positions: np.ndarray) -> RunsTable:
        """The rows at these positions of this table, as a new table sharing the columns."""
        return self._rows(self.index[positions])

    def _rows(self, index: np.ndarray, *, loaded_at: dt.datetime | None = None) -> RunsTable:
        """These rows of the loaded frame, in this order, as a new table sharing the columns."""
        return RunsTable(self._base, self._base_pks, complete=self.complete,
                         loaded_at=self.loaded_at if loaded_at is None else loaded_at, index=index,
                         numeric=self._numeric, getters=self._getters, positions=self._positions, raw=self._raw,
                         full=self._full, origin=self._origin)

    def sort(self, by: str | Sequence[str] | Sequence[tuple[str, bool]], ascending: bool = True) -> RunsTable:
        """Sorted by one column (``"metrics.f1"``), several, or ``"metrics.f1 DESC"`` items.

        Metrics sort as numbers; params and tags put numbers first (numerically) then text;
        missing values go last either way; ties keep newest first.
        """
        return self._take(sort_keys(self._base, _order_items(by, ascending), self._numeric, self.index))

    def filter(self, expression: str | Node | None) -> RunsTable:
        """The runs matching a filter expression (evaluated in memory, same rules as the SQL)."""
        import numpy as np

        node = parse_filter(expression) if isinstance(expression, str) or expression is None else expression
        if node is None:
            return self._take(np.arange(len(self)))
        mask = to_mask(node, self._full, numeric=self._numeric)  # same rows and values as the frame's
        return self._take(np.flatnonzero(mask[self.index]))

    def head(self, n: int) -> RunsTable:
        import numpy as np

        return self._take(np.arange(min(n, len(self))))

    def refresh(self) -> RunsTable:
        """This table's query again, re-reading only the runs written since it was loaded.

        Runs are found by their start, end, heartbeat and trash times (every tracking write
        updates the heartbeat), with a minute of overlap for transactions that were still open
        at the last load. When runs left the store (a purge) or the table was limited
        (``limit=``), everything is read again. The result is in the query's order (re-apply
        an interactive sort or filter to it).

        This reads the store (the loader does: see
        :func:`~modelyard.core.experiments.runquery.query.refresh_runs`): call it off the main thread.
        """
        from modelyard.core.experiments.runquery.query import refresh_runs

        return refresh_runs(self)


def _cell_getter(series: pd.Series) -> Any:
    """position in the loaded frame -> value, for one column, in O(1) per call (no conversion of
    the whole column: a categorical answers from its codes, a UTC time column from its int64s)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        categories = np.asarray(series.cat.categories, dtype=object)
        return lambda i: None if codes[i] < 0 else categories[codes[i]]
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert(None).to_numpy()  # vectorised, ~1 ms per 100,000
        return values.__getitem__
    return series.to_numpy().__getitem__


def _order_items(by: str | Sequence[str] | Sequence[tuple[str, bool]], ascending: bool = True
                 ) -> list[tuple[Field, bool]]:
    if isinstance(by, str):
        by = [by]
    order: list[tuple[Field, bool]] = []
    for item in by:
        if isinstance(item, tuple):
            order.append((parse_field(item[0]), not item[1]))
        else:
            parsed = parse_order_by(item)
            if len(parsed) == 1 and not re.search(r"\s(asc|desc)\s*$", item, re.IGNORECASE):
                parsed = [(parsed[0][0], not ascending)]
            order += parsed
    return order
