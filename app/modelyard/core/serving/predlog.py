"""The prediction log: what a served (or streaming) model was asked and what it answered.

::

    from modelyard.core.serving.predlog import PredictionLog

    plog = PredictionLog(store, "churn", sample=1.0)          # a writer thread starts
    plog.submit(inputs=frame, outputs=predictions, version_id=7, version_ref="churn@v3",
                latency_s=0.0021, status=200, route="champion", keys=frame["id"])   # never blocks
    plog.counts()    # {"requests", "rows", "logged_rows", "dropped_rows", "sampled_out_rows", ...}
    plog.flush()     # what was submitted so far is in a segment
    plog.close()

**The request path pays for one append.** :meth:`PredictionLog.submit` appends the request's
objects (not copies) to a bounded queue (a deque the writer drains every :data:`WRITER_POLL_S`:
nothing wakes it per request); when the queue is full the request's
rows are counted as dropped and it returns False at once. A share of requests (``sample``) is
kept; the others are counted as sampled out. So, at any time, ``rows == logged_rows +
dropped_rows + sampled_out_rows + pending_rows`` and after :meth:`flush` nothing is pending:
nothing is lost silently.

A request's ``at`` is when it was submitted, unless given; a ``shadow`` answer submitted without
one takes the ``at`` of the last request the same thread submitted (the server scores the shadow
right after logging the champion's answer, on the request's thread), so the live view pairs the
two answers by ``at`` and row number.

**The writer thread** turns queued requests into rows (one per scored row; a refused request,
status >= 400, is one row without output) and writes them as a Parquet segment once
``segment_rows`` rows are waiting or the oldest has waited ``segment_seconds``: into a temporary
file in the store's tmp folder, renamed into ``artifacts/predlog/model-<id>/`` (one folder per
registered model), then one ``prediction_log_files`` row per segment (kind ``predictions``) so
monitoring finds it (:func:`log_files`). A segment whose row cannot be recorded is removed and its
rows counted as dropped (``write_errors``).

Columns of a segment (:data:`META_COLUMNS` then the inputs, each named ``in.<column>``):
``at`` (epoch seconds), ``request`` (a number per request), ``row`` (its row number in the
request), ``key`` (the row's key, text, or null), ``version_id``, ``version_ref``, ``route``
("champion", "challenger", "shadow"), ``status``, ``latency_s`` (of the whole request),
``prediction`` (as text, see :func:`value_texts`; class probabilities as a JSON list) and
``prediction_value`` (the prediction as a number where it is one).

Labels that arrive later are files of kind ``labels`` beside the segments (core/monitoring/live.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelyard.core.store import Store

log = logging.getLogger("modelyard.serving.predlog")

FOLDER = "predlog"
INPUT_PREFIX = "in."
KIND_PREDICTIONS = "predictions"
KIND_LABELS = "labels"
META_COLUMNS = ("at", "request", "row", "key", "version_id", "version_ref", "route", "status", "latency_s",
                "prediction", "prediction_value")
ROUTES = ("champion", "challenger", "shadow")
WRITER_POLL_S = 0.2  # how often the writer takes what was queued


# =========================================================================== values as text


def value_texts(values: Any) -> list[str | None]:
    """One text per value, the same for a prediction and for its label however each was typed:
    integral floats lose their ``.0`` (1.0 -> "1"), missing values are None, other values are ``str``."""
    import numpy as np

    a = np.asarray(values)
    if a.ndim != 1:
        a = np.asarray(list(values), dtype=object)
    if a.dtype.kind in "iu":
        return a.astype(str).tolist()
    if a.dtype.kind == "b":
        return ["1" if v else "0" for v in a.tolist()]
    if a.dtype.kind == "f":
        return [_float_text(v) for v in a.tolist()]
    return [_one_text(v) for v in a.tolist()]


def _float_text(v: float) -> str | None:
    if v != v:  # NaN
        return None
    if v.is_integer() and abs(v) < 2 ** 53:
        return str(int(v))
    return repr(float(v))


def _one_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return _one_text(v.item())
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(v, (list, tuple)):
        return json.dumps([x.item() if hasattr(x, "item") else x for x in v], default=str)
    text = str(v)
    return text if text != "nan" else None


def value_numbers(values: Any) -> Any:
    """The values as float64 where they are numbers (NaN elsewhere), or None when none is."""
    import numpy as np
    import pandas as pd

    a = np.asarray(values)
    if a.ndim != 1:
        return None
    if a.dtype.kind in "iufb":
        return a.astype(np.float64)
    nums = pd.to_numeric(pd.Series(a, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return nums if np.isfinite(nums).any() else None


# =========================================================================== the log


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class PredictionLog:
    """Log a served model's requests off the request thread (see the module docstring)."""

    def __init__(self, store: Store, model_name: str, *, sample: float = 1.0, queue_size: int = 10_000,
                 segment_rows: int = 50_000, segment_seconds: float = 60.0, seed: int | None = None,
                 key_column: str | None = None) -> None:
        from modelyard.core.common.errors import ModelyardError
        from modelyard.core.registry.versions import get_model

        if not 0.0 <= float(sample) <= 1.0:
            raise ModelyardError(f"The share of requests to log must be between 0 and 1 (0% and 100%), not {sample}.",
                                 hint="Give --log as a share such as 10% or 0.1, or leave it out to log every request.")
        if int(queue_size) < 1 or int(segment_rows) < 1 or not float(segment_seconds) > 0:
            raise ModelyardError("The prediction log needs a queue of at least 1 request, segments of at least 1 row "
                                 "and more than 0 seconds.")
        self.store = store
        self.model_name = model_name
        self.model_id = get_model(store, model_name).id
        self.sample = float(sample)
        self.segment_rows = int(segment_rows)
        self.segment_seconds = float(segment_seconds)
        self.key_column = key_column
        self.folder = folder_of(store, self.model_id)
        # a deque, not a queue.Queue: an append is one atomic call (no lock, no waking the writer,
        # which looks every WRITER_POLL_S instead: a writer woken per request took the GIL from the
        # request threads); its bound is checked before the append, so it can pass it by at most the
        # number of threads submitting at that instant
        self._queue: deque[Any] = deque()
        self.queue_size = int(queue_size)
        self._wake = threading.Event()
        self._rng = random.Random(seed)
        self._thread_last = threading.local()  # the time of the last non-shadow request each thread logged
        self._lock = threading.Lock()
        self._seq = 0
        self._requests = 0
        self._rows = 0
        self._logged = 0
        self._dropped = 0
        self._sampled_out = 0
        self._segments = 0
        self._write_errors = 0
        self.last_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"modelyard-predlog-{self.model_id}", daemon=True)
        self._thread.start()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the request thread
    def submit(self, *, inputs: Any, outputs: Any, version_id: int, version_ref: str, latency_s: float,
               status: int, route: str = "champion", keys: Sequence[Any] | None = None,
               at: float | None = None) -> bool:
        """Queue one request for the log; never blocks. ``inputs`` a DataFrame or a mapping of column
        -> values (None for a request refused before its rows were read), ``outputs`` one prediction
        per row (or a rows x classes array; None for a refused request). False when it was not
        queued (sampled out, full queue: its rows are counted, or the log is closed)."""
        n = _n_rows(inputs, outputs)
        if at is None:
            at = time.time()
            if route == "shadow":  # the challenger's answer to the request this thread just logged
                at = getattr(self._thread_last, "at", at)
            else:
                self._thread_last.at = at
        with self._lock:
            self._requests += 1
            self._rows += n
            self._seq += 1
            seq = self._seq
            if self._closed:
                self._dropped += n
                return False
            if self.sample < 1.0 and self._rng.random() >= self.sample:
                self._sampled_out += n
                return False
        item = (float(at), seq, n, inputs, outputs, int(version_id), str(version_ref),
                float(latency_s), int(status), str(route), keys)
        if len(self._queue) >= self.queue_size:
            with self._lock:
                self._dropped += n
            return False
        self._queue.append(item)
        return True

    def counts(self) -> dict[str, int]:
        """What was submitted and where it went; ``pending_rows`` are queued or not yet in a segment."""
        with self._lock:
            out = {"requests": self._requests, "rows": self._rows, "logged_rows": self._logged,
                   "dropped_rows": self._dropped, "sampled_out_rows": self._sampled_out,
                   "segments": self._segments, "write_errors": self._write_errors}
        out["pending_rows"] = out["rows"] - out["logged_rows"] - out["dropped_rows"] - out["sampled_out_rows"]
        out["queued"] = len(self._queue)
        return out

    # ------------------------------------------------------------------ flushing
    def flush(self, timeout: float = 60.0) -> bool:
        """Write everything submitted so far into a segment; True when done within ``timeout``."""
        if not self._thread.is_alive():
            return False
        marker = _Flush()
        self._queue.append(marker)  # markers pass the bound: they are not requests
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Flush, then stop the writer; later submits are counted as dropped. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive():
            self._queue.append(_STOP)
            self._wake.set()
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        buffer: list[tuple[Any, ...]] = []
        rows = 0
        started = 0.0
        while True:
            self._wake.wait(WRITER_POLL_S)
            self._wake.clear()
            while True:
                try:
                    item = self._queue.popleft()
                except IndexError:
                    break
                if item is _STOP or isinstance(item, _Flush):
                    if buffer:
                        self._write(buffer, rows)
                        buffer, rows = [], 0
                    if item is _STOP:
                        return
                    item.done.set()
                    continue
                if not buffer:
                    started = time.monotonic()
                buffer.append(item)
                rows += item[2]
                if rows >= self.segment_rows:
                    self._write(buffer, rows)
                    buffer, rows = [], 0
            if buffer and time.monotonic() - started >= self.segment_seconds:
                self._write(buffer, rows)
                buffer, rows = [], 0

    def _write(self, items: list[tuple[Any, ...]], rows: int) -> None:
        try:
            table, details = rows_table(items, key_column=self.key_column)
            write_log_file(self.store, self.model_id, KIND_PREDICTIONS, table, details)
        except Exception as exc:  # noqa: BLE001 - the server goes on; the rows are counted, never lost silently
            log.exception("could not write a prediction log segment of %s", self.model_name)
            with self._lock:
                self._dropped += rows
                self._write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._logged += rows
            self._segments += 1


def _n_rows(inputs: Any, outputs: Any) -> int:
    if inputs is not None:
        if hasattr(inputs, "shape"):
            return int(inputs.shape[0])
        if isinstance(inputs, Mapping):
            for v in inputs.values():
                return len(v)
            return 1
    if outputs is not None:
        try:
            return len(outputs)
        except TypeError:
            return 1
    return 1


# =========================================================================== rows and files


def rows_table(items: Sequence[tuple[Any, ...]], *, key_column: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The Arrow table of queued requests (one row per scored row), and what a segment's record says."""
    import numpy as np
    import pyarrow as pa

    cols: dict[str, list[Any]] = {c: [] for c in META_COLUMNS}
    inputs: dict[str, list[tuple[int, Any]]] = {}
    offset = 0
    versions: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    errors = 0
    first = last = None
    for at, seq, n, inp, out, vid, vref, lat, status, route, keys in items:
        cols["at"].append(np.full(n, at, dtype=np.float64))
        cols["request"].append(np.full(n, seq, dtype=np.int64))
        cols["row"].append(np.arange(n, dtype=np.int32))
        cols["version_id"].append(np.full(n, vid, dtype=np.int64))
        cols["version_ref"].extend([vref] * n)
        cols["route"].extend([route] * n)
        cols["status"].append(np.full(n, status, dtype=np.int32))
        cols["latency_s"].append(np.full(n, lat, dtype=np.float64))
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        versions[vref] += n
        routes[route] += n
        errors += n if status >= 400 else 0
        columns = _columns(inp)
        if keys is None and key_column and key_column in columns:
            keys = columns[key_column]
        cols["key"].extend(value_texts(keys) if keys is not None and len(keys) == n else [None] * n)
        texts: list[str | None] = [None] * n
        nums = np.full(n, np.nan)
        if out is not None and status < 400:
            arr = np.asarray(out)
            if arr.ndim == 2:
                texts = [json.dumps([_round(x) for x in r]) for r in arr.tolist()]
            elif len(arr) == n:
                texts = value_texts(arr)
                got = value_numbers(arr)
                if got is not None:
                    nums = got
        cols["prediction"].extend(texts)
        cols["prediction_value"].append(nums)
        for name, values in columns.items():
            inputs.setdefault(name, []).append((offset, values))
        offset += n
    total = offset
    arrays: dict[str, Any] = {}
    for c in META_COLUMNS:
        parts = cols[c]
        if parts and isinstance(parts[0], np.ndarray):
            arrays[c] = pa.array(np.concatenate(parts))
        else:
            arrays[c] = pa.array(parts, type=pa.string())
    for name, parts in inputs.items():
        arrays[INPUT_PREFIX + str(name)] = _input_array(parts, total)
    table = pa.table(arrays)
    details = {"versions": dict(versions), "routes": dict(routes), "errors": errors, "requests": len(items),
               "inputs": [str(n) for n in inputs], "pid": os.getpid(), "first_at": first, "last_at": last}
    return table, details


def _round(x: Any) -> Any:
    return round(float(x), 6) if isinstance(x, float) else x


def _columns(inputs: Any) -> dict[str, Any]:
    if inputs is None:
        return {}
    if hasattr(inputs, "columns") and hasattr(inputs, "__getitem__") and not isinstance(inputs, Mapping):
        return {str(c): inputs[c].to_numpy() for c in inputs.columns}
    return {str(k): v for k, v in dict(inputs).items()}


def _input_array(parts: list[tuple[int, Any]], total: int) -> Any:
    """One input column over all rows (null where a request did not have it)."""
    import numpy as np
    import pyarrow as pa

    arrays = [np.asarray(v) for _, v in parts]
    contiguous = sum(len(a) for a in arrays) == total
    kinds = {a.dtype.kind for a in arrays}
    if contiguous and len(kinds) == 1 and kinds <= set("iufb"):
        return pa.array(np.concatenate(arrays))
    if contiguous and kinds <= set("iuf"):
        return pa.array(np.concatenate([a.astype(np.float64) for a in arrays]))
    values: list[Any] = [None] * total
    for (off, _), a in zip(parts, arrays, strict=True):
        values[off:off + len(a)] = a.tolist()
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def folder_of(store: Store, model_id: int) -> Path:
    return store.artifacts.root / FOLDER / f"model-{int(model_id)}"


def _utc(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch is not None else None


def write_log_file(store: Store, model_id: int, kind: str, table: Any, details: Mapping[str, Any]) -> int:
    """Write ``table`` as a Parquet file of the model's log (temp file, then rename) and record it;
    returns the record's id. The file is removed again when the record cannot be written."""
    import pyarrow.parquet as pq

    from modelyard.core.store import models as m

    folder = folder_of(store, model_id)
    folder.mkdir(parents=True, exist_ok=True)
    first, last = details.get("first_at"), details.get("last_at")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(first if first is not None else time.time()))
    with store.artifacts.temp_path(".parquet") as tmp:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        dest = folder / f"{kind}-{stamp}-{os.getpid()}-{tmp.stem.rsplit('-', 1)[-1]}.parquet"
        os.replace(tmp, dest)
    rel = dest.relative_to(store.artifacts.root).as_posix()
    try:
        with store.write() as s:
            row = m.PredictionLogFile(model_id=model_id, kind=kind, path=rel, rows=table.num_rows,
                                      size=dest.stat().st_size, first_at=_utc(first), last_at=_utc(last),
                                      details=dict(details))
            s.add(row)
            s.flush()
            return int(row.id)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def log_files(store: Store, model_name: str, kind: str = KIND_PREDICTIONS) -> list[dict[str, Any]]:
    """The files of a model's prediction log, oldest first: ``{"id", "path" (absolute), "rows",
    "first_at", "last_at", "details"}``; files missing on disk are left out."""
    from sqlalchemy import select

    from modelyard.core.store import lookup
    from modelyard.core.store import models as m

    with store.session() as s:
        model = lookup.model_by_name(s, model_name)
        rows = s.execute(select(m.PredictionLogFile).where(m.PredictionLogFile.model_id == model.id,
                                                           m.PredictionLogFile.kind == kind)
                         .order_by(m.PredictionLogFile.first_at, m.PredictionLogFile.id)).scalars().all()
        out = [{"id": r.id, "path": store.artifacts.root / r.path, "rows": r.rows, "first_at": r.first_at,
                "last_at": r.last_at, "details": dict(r.details or {})} for r in rows]
    return [f for f in out if f["path"].is_file()]


def logged_models(store: Store) -> list[str]:
    """Names of the registered models that have a prediction log."""
    from sqlalchemy import select

    from modelyard.core.store import models as m

    with store.session() as s:
        return list(s.execute(select(m.RegisteredModel.name).where(m.RegisteredModel.id.in_(
            select(m.PredictionLogFile.model_id).where(m.PredictionLogFile.kind == KIND_PREDICTIONS)))
            .order_by(m.RegisteredModel.name)).scalars())
