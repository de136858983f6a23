"""A virtualised table over a data source too large to hold in Qt: rows are read in pages.

:class:`PagedTableModel` knows only the row count, the column names and a ``fetch(start,
count) -> pandas.DataFrame`` callable (for a dataset version, one that reads the needed row
groups of its Parquet snapshot). The view asks only for visible cells; the model reads the
page holding a cell on first sight and keeps the most recent pages in a small LRU cache, so
scrolling through a million rows touches a few pages at a time and memory stays flat.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Fetch = Callable[[int, int], "pd.DataFrame"]
MISSING = "—"  # how a missing value reads (drawn in the placeholder colour)


def format_value(value: Any, *, date_only: bool = False) -> str:
    """How a cell reads: missing is empty, floats have at most 6 significant digits; a moment
    reads as a date when ``date_only`` (its column holds no time of day on this page)."""
    if value is None:
        return ""
    import numpy as np  # already loaded by whoever fetched the page
    import pandas as pd

    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return f"{value:.6g}"
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return ""
        return value.date().isoformat() if date_only else value.isoformat(sep=" ")
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value)


def _date_only_columns(frame: pd.DataFrame) -> list[int]:
    """The columns of ``frame`` holding moments that are all at midnight (dates read from text
    such as 31/01/2012 become timestamps; a time of 00:00:00 on every row would only be noise)."""
    import pandas as pd

    found = []
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            present = column.dropna()
            if len(present) and bool((present == present.dt.normalize()).all()):
                found.append(i)
    return found


class PagedTableModel(QAbstractTableModel):
    def __init__(self, n_rows: int, columns: Sequence[str], fetch: Fetch, *, page_size: int = 2048,
                 max_pages: int = 16, parent: Any = None) -> None:
        super().__init__(parent)
        self._n_rows = int(n_rows)
        self._columns = list(columns)
        self._fetch = fetch
        self._page_size = page_size
        self._max_pages = max_pages
        self._pages: OrderedDict[int, list[np.ndarray]] = OrderedDict()  # page number -> columns
        self._numeric = [False] * len(self._columns)
        self._date_only: dict[int, frozenset[int]] = {}  # page number -> columns of dates without a time
        self.pages_read = 0  # for tests and the benchmark

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._n_rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if orientation == Qt.Orientation.Horizontal:  # the tooltip: the whole name of a narrowed column
            return self._columns[section] if section < len(self._columns) else None
        return str(section + 1) if role == Qt.ItemDataRole.DisplayRole else None

    def _page(self, number: int) -> list[np.ndarray]:
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        import pandas as pd

        start = number * self._page_size
        frame = self._fetch(start, min(self._page_size, self._n_rows - start))
        page = [frame.iloc[:, i].to_numpy(dtype=object, na_value=None) for i in range(frame.shape[1])]
        for i in range(frame.shape[1]):
            self._numeric[i] = pd.api.types.is_numeric_dtype(frame.dtypes.iloc[i]) and not pd.api.types.is_bool_dtype(frame.dtypes.iloc[i])
        self._pages[number] = page
        self._date_only[number] = frozenset(_date_only_columns(frame))
        self.pages_read += 1
        while len(self._pages) > self._max_pages:
            evicted, _ = self._pages.popitem(last=False)
            self._date_only.pop(evicted, None)
        return page

    def value(self, row: int, column: int) -> Any:
        page = self._page(row // self._page_size)
        return page[column][row % self._page_size]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            value = self.value(index.row(), index.column())
            date_only = index.column() in self._date_only.get(index.row() // self._page_size, ())
            text = format_value(value, date_only=date_only)
            return text if text != "" else MISSING
        if role == Qt.ItemDataRole.TextAlignmentRole:
            self._page(index.row() // self._page_size)
            if self._numeric[index.column()]:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if format_value(self.value(index.row(), index.column())) == "":
                return QColor(QGuiApplication.palette().color(QPalette.ColorRole.PlaceholderText))
        if role == Qt.ItemDataRole.ToolTipRole:
            if format_value(self.value(index.row(), index.column())) == "":
                return "missing value"
        return None
