"""Hybrid serving: features computed in batch, looked up by key for each request or event.

::

    from modelyard.core.serving.lookup import FeatureLookup

    lookup = FeatureLookup(store, "customer-features", "customer_id")      # the latest version
    frame = lookup.enrich(pd.DataFrame({"customer_id": [17, 42], "amount": [9.5, 120.0]}))
    lookup.refresh()                                                       # True when it swapped

The table (a registered dataset version, for example one a nightly pipeline writes) is read
once into memory: its columns as numpy arrays and a dictionary from key to row. Enriching a
frame (or the columns of a micro-batch, :meth:`FeatureLookup.enrich_columns`) adds the
table's columns, row by row by the key; the key column stays. **The table's columns replace
columns of the same name that a request sent**: the model gets the looked-up features.

* **Keys** are compared as values: ``17``, ``17.0`` and, for a numeric key column, ``"17"`` are
  the same key; for a text key column ``17`` is ``"17"``. The table's key must be unique
  (duplicates are refused when it is read, naming one) and missing keys in the table are ignored.
* **An unknown key** raises :class:`UnknownKeyError` (an :class:`~.inputs.InputError`, so the server
  answers 400 and the stream writes an error line, naming the key column in ``fields`` and
  the key values in the message) — unless a ``default`` row was given (a mapping of the table's
  columns to values; columns it leaves out are missing values, which the model's imputers fill).
* **A newer version.** Made with ``"NAME"`` (or ``NAME@latest``) the lookup follows the dataset's
  latest version: :meth:`~FeatureLookup.refresh` reads a newer version off to the side and then
  swaps one reference, so a request in flight finishes on the table it started with and none
  fails; :meth:`~FeatureLookup.watch` calls it on a thread every few seconds. ``NAME@vN`` never changes.
* **Lineage.** :meth:`~FeatureLookup.record_link` records the edge ``model_version -looks_up->
  dataset_version`` (once per pair; details: the key, who used it — ``stream`` or ``server`` —
  and when); the stream and the server record it when they start and after each swap.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.serving.inputs import MAX_LISTED, InputError, _is_missing, _plain

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.core.store import Store

__all__ = ["FeatureLookup", "UnknownKeyError"]

log = logging.getLogger("modelyard.serving")

RELATION = "looks_up"


class UnknownKeyError(InputError):
    """Keys the lookup table does not hold; ``fields`` is ``[key column]``, ``keys`` the values."""

    def __init__(self, message: str, *, key: str, keys: Sequence[Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint, fields=[key])
        self.keys = list(keys)


def _norm(v: Any, numeric: bool) -> Any:
    """A key as the index holds it (see the module docstring)."""
    v = _plain(v)
    if numeric:
        if isinstance(v, str):
            text = v.strip()
            try:
                v = int(text)
            except ValueError:
                try:
                    v = float(text)
                except ValueError:
                    return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class _Table:
    """One version of the lookup table, never changed once built (swapped whole)."""

    version_id: int
    ref: str
    n_rows: int
    numeric_key: bool
    index: dict[Any, int]
    columns: dict[str, np.ndarray]  # the table's columns but the key, each with the default row at n_rows


class FeatureLookup:
    """Look features up by key in a registered dataset version (see the module docstring)."""

    def __init__(self, store: Store, dataset_ref: str, key: str, *, default: Mapping[str, Any] | None = None) -> None:
        from modelyard.core.datasets.catalog import parse_ref

        self.store = store
        self.dataset_ref = dataset_ref.strip()
        self.name, number = parse_ref(self.dataset_ref)
        self.follows_latest = number is None
        self.key = key
        self.default = dict(default) if default is not None else None
        self.swaps = 0
        self.swap_error: str | None = None
        self._refresh_lock = threading.Lock()
        self._table = self._load(self.dataset_ref)

    # ------------------------------------------------------------------ reading the table
    def _load(self, ref: str | int) -> _Table:
        import numpy as np

        from modelyard.core.datasets.catalog import get_version
        from modelyard.core.datasets.rows import load_frame

        info = get_version(self.store, ref)
        frame = load_frame(self.store, info.id)
        if self.key not in frame.columns:
            cols = ", ".join(f"'{c}'" for c in list(frame.columns)[:MAX_LISTED])
            raise ModelyardError(f"The lookup table {info.ref} has no column '{self.key}' (it has {cols}).",
                                 hint="Give --lookup-key the name of the column that holds the keys.")
        keys = frame[self.key]
        numeric = keys.dtype.kind in "iuf"
        index: dict[Any, int] = {}
        for i, k in enumerate(keys.tolist()):
            if _is_missing(k):
                continue
            k = _norm(k, numeric)
            if k in index:
                raise ModelyardError(f"The key column '{self.key}' of {info.ref} holds {k!r} more than once; "
                                     "a lookup needs one row per key.",
                                     hint="Look up by a column whose values are unique, or remove the duplicates.")
            index[k] = i
        default = self.default or {}
        unknown = [c for c in default if c not in frame.columns or c == self.key]
        if unknown:
            raise ModelyardError(f"The lookup default names column(s) {info.ref} does not have: "
                                 + ", ".join(f"'{c}'" for c in unknown[:MAX_LISTED]) + ".",
                                 hint="Give --lookup-default a JSON object of the table's columns, "
                                      "e.g. {\"visits\": 0}.")
        n = len(frame)
        columns: dict[str, Any] = {}
        for name in frame.columns:
            if name == self.key:
                continue
            values = frame[name].to_numpy()
            fill = default.get(name)
            if values.dtype.kind == "f" and (fill is None or isinstance(fill, (int, float))):
                extra = np.array([np.nan if fill is None else float(fill)])
            elif values.dtype.kind == "M" and fill is None:
                extra = np.array(["NaT"], dtype=values.dtype)
            else:
                values = values.astype(object)
                extra = np.array([fill], dtype=object)
            columns[str(name)] = np.concatenate([values, extra])
        return _Table(version_id=info.id, ref=info.ref, n_rows=n, numeric_key=numeric, index=index, columns=columns)

    # ------------------------------------------------------------------ what it is
    @property
    def version_id(self) -> int:
        return self._table.version_id

    @property
    def ref(self) -> str:
        return self._table.ref

    @property
    def columns(self) -> list[str]:
        """The columns it adds (the table's, but the key)."""
        return list(self._table.columns)

    def describe(self) -> dict[str, Any]:
        t = self._table
        return {"dataset": self.name, "ref": t.ref, "dataset_version_id": t.version_id, "key": self.key,
                "rows": t.n_rows, "columns": list(t.columns), "follows_latest": self.follows_latest,
                "default": self.default, "swaps": self.swaps, "swap_error": self.swap_error}

    # ------------------------------------------------------------------ looking up
    def positions(self, keys: Sequence[Any]) -> np.ndarray:
        """The table's row of each key (the default row for unknown keys when there is a default);
        raises :class:`UnknownKeyError` naming the unknown keys otherwise."""
        return self._positions(self._table, keys)

    def _positions(self, t: _Table, keys: Sequence[Any]) -> np.ndarray:
        import numpy as np

        index, numeric = t.index, t.numeric_key
        get = index.get
        pos = np.fromiter((get(_norm(k, numeric), -1) if not _is_missing(k) else -1 for k in keys), dtype=np.int64,
                          count=len(keys))
        unknown = pos < 0
        if unknown.any():
            if self.default is None:
                values = list(dict.fromkeys(_plain(k) for k, u in zip(keys, unknown, strict=True) if u))
                shown = ", ".join(repr(v) for v in values[:MAX_LISTED]) + (", ..." if len(values) > MAX_LISTED else "")
                raise UnknownKeyError(
                    f"Unknown {self.key} {shown}: the lookup table {t.ref} has no row for "
                    f"{'it' if len(values) == 1 else 'them'}.", key=self.key, keys=values,
                    hint=f"Send a {self.key} the table holds, or start with a default row (--lookup-default).")
            pos[unknown] = t.n_rows
        return pos

    def enrich_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """``columns`` (name -> values, the key among them) with the table's columns added."""
        t = self._table  # one read: a swap meanwhile does not change this call's table
        if self.key not in columns:
            raise InputError(f"The input has no column '{self.key}' to look its features up by.",
                             hint=f"Send '{self.key}' with each row.", fields=[self.key])
        pos = self._positions(t, list(columns[self.key]))
        out = dict(columns)
        for name, values in t.columns.items():
            out[name] = values[pos]
        return out

    def enrich(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the table's columns added by the key (row order and index kept)."""
        import pandas as pd

        cols = self.enrich_columns({str(c): frame[c].to_numpy() for c in frame.columns})
        return pd.DataFrame(cols, index=frame.index)

    # ------------------------------------------------------------------ newer versions
    def _latest_id(self) -> int:
        from modelyard.core.datasets.catalog import get_version

        return get_version(self.store, self.name).id

    def refresh(self) -> bool:
        """Swap to the dataset's latest version if it is newer (True when swapped); a lookup of
        ``NAME@vN`` never changes. A version that cannot be read leaves the old table serving
        (``swap_error`` says why) and raises."""
        if not self.follows_latest:
            return False
        with self._refresh_lock:
            latest = self._latest_id()
            if latest == self._table.version_id:
                return False
            try:
                table = self._load(latest)  # off to the side: requests keep using the old table
            except ModelyardError as exc:
                self.swap_error = f"could not read version {latest} of {self.name}: {exc.message}"
                raise
            old, self._table = self._table, table  # the swap: one reference
            self.swaps += 1
            self.swap_error = None
            log.info("lookup %s now reads %s (was %s)", self.name, table.ref, old.ref)
            return True

    def watch(self, interval: float, on_swap: Callable[[FeatureLookup], None] | None = None) -> _Watch:
        """Call :meth:`refresh` every ``interval`` seconds on a daemon thread until ``.stop()``."""
        return _Watch(self, interval, on_swap)

    # ------------------------------------------------------------------ lineage
    def record_link(self, model_version_id: int, *, used_by: str) -> bool:
        """Record ``model_version -looks_up-> dataset_version`` for the current table (once per
        pair); True when it was added now."""
        from sqlalchemy import select

        from modelyard.core.store import models as m
        from modelyard.core.store import records

        t = self._table
        with self.store.write() as s:
            exists = s.scalar(select(m.LineageEdge.id).where(
                m.LineageEdge.src_type == "model_version", m.LineageEdge.src_id == str(model_version_id),
                m.LineageEdge.dst_type == "dataset_version", m.LineageEdge.dst_id == str(t.version_id),
                m.LineageEdge.relation == RELATION).limit(1))
            if exists is not None:
                return False
            records.link(s, "model_version", model_version_id, "dataset_version", t.version_id, RELATION,
                         {"key": self.key, "lookup": t.ref, "used_by": used_by,
                          "created_at": dt.datetime.now(dt.UTC).isoformat()})
        return True


class _Watch:
    def __init__(self, lookup: FeatureLookup, interval: float,
                 on_swap: Callable[[FeatureLookup], None] | None) -> None:
        self.lookup = lookup
        self.interval = max(0.05, float(interval))
        self.on_swap = on_swap
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"modelyard-lookup-{lookup.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                swapped = self.lookup.refresh()
            except Exception:  # a busy store or a bad version: the old table keeps serving
                log.exception("refreshing the lookup %s failed", self.lookup.name)
                continue
            if swapped and self.on_swap is not None:
                try:
                    self.on_swap(self.lookup)
                except Exception:  # recording lineage must not stop the watch
                    log.exception("after swapping the lookup %s", self.lookup.name)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.thread.join(timeout)
