"""Experiment tracking for scripts, notebooks and the app: runs, params, metrics, tags, artifacts.

::

    import modelyard

    with modelyard.start_run(experiment="churn", tags={"team": "risk"}) as run:
        run.log_params({"model": "random_forest", "n_estimators": 300})
        for epoch in range(10):
            run.log_metrics({"loss": loss, "f1": f1}, step=epoch)
        run.log_model(pipeline, input_example=X_train.head())

    modelyard.search_runs(experiment="churn", filter='metrics.f1 > 0.8 and params.model = "random_forest"')

A run ended by an exception is recorded ``failed`` with the error (``cancelled`` for Ctrl+C);
one whose process dies is marked ``interrupted`` the next time any process opens the store.

Writes are buffered per run and flushed in batches, each batch one write transaction: when
:data:`FLUSH_MAX_POINTS` values are waiting, when :data:`FLUSH_INTERVAL_S` has passed since the
last flush (checked inside the ``log_*`` calls; no background thread), and when the run ends.
Every flush also refreshes the run's heartbeat, so the app shows the run live. An
:class:`ActiveRun` is thread-safe; any number of processes can log into one store at once (the
store serialises the transactions).

Values: param and tag values are stored as text (``str(value)``); metric values as floats.
``log_metric`` without a ``step`` uses the next step of that metric in this run (0, 1, 2...).
A param, once logged, keeps its first value (logging a different value raises). NaN metric
values cannot be stored in SQLite and are skipped with a warning (PostgreSQL keeps them).

Every value is checked when it is logged, so that one bad value cannot spoil a batch: a step
is a whole number from :data:`MIN_STEP` to :data:`MAX_STEP` (64 bits), a timestamp whole
milliseconds from 0 to :data:`MAX_TIMESTAMP_MS` (the end of the year 9999), a metric value a
real number (not text) that fits a float, and keys and text values valid Unicode. A call with
a value outside these raises :class:`ModelyardError` naming the key and the allowed range, and
records nothing of that call. Should a flush still fail on a value (a check missed it), the
values around it are written and only that one is dropped, with a warning naming it; a flush
that fails for another reason (a full disk) keeps the whole buffer for the next try.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import math
import numbers
import operator
import os
import sqlite3
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update

from modelyard.core.common.errors import JobCancelled, ModelyardError, NotFoundError
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.common.outputs import disk_full
from modelyard.core.common.procs import current_user, hostname
from modelyard.core.store import Store
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.core.experiments.runquery import RunsTable

__all__ = [
    "ActiveRun", "RunInfo", "ExperimentInfo", "LoggedArtifact", "start_run", "get_run", "search_runs",
    "metric_history", "delete_run", "restore_run", "purge_deleted", "set_tags", "list_experiments",
    "FLUSH_INTERVAL_S", "FLUSH_MAX_POINTS", "END_STATUSES", "SOURCE_TYPES", "MIN_STEP", "MAX_STEP",
    "MAX_TIMESTAMP_MS",
]

FLUSH_INTERVAL_S = 1.0
FLUSH_MAX_POINTS = 50_000
END_STATUSES = ("succeeded", "failed", "cancelled")
SOURCE_TYPES = ("script", "notebook", "interactive", "gui", "cli", "job", "other")
MAX_KEY_LENGTH = 250
# steps and timestamps are 64-bit integer columns; a timestamp is ms since the epoch, up to the
# year 9999 (what datetime can show; it also catches seconds passed as ns or us by mistake)
MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# metric rows per multi-row INSERT statement (5 values each; SQLite before 3.32 allows 999 values)
_ROWS_PER_INSERT = 400 if sqlite3.sqlite_version_info >= (3, 32) else 199


# =========================================================================== plain records


@dataclass(frozen=True)
class LoggedArtifact:
    path: str
    sha256: str
    size: int
    kind: str | None


@dataclass(frozen=True)
class RunInfo:
    """A run as plain data: safe to keep, compare and hand to another thread."""

    id: str
    experiment: str
    experiment_id: int
    name: str | None
    status: str
    start_time: dt.datetime
    end_time: dt.datetime | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    parent_id: str | None
    artifacts: list[LoggedArtifact]
    user: str | None
    source_type: str | None
    source: str | None
    error: str | None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: dt.datetime | None = None
    dataset_version_id: int | None = None
    spec: dict[str, Any] | None = None
    deleted_at: dt.datetime | None = None
    metric_steps: dict[str, int] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.id

    @property
    def duration(self) -> float | None:
        return self.duration_s

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start_time", "end_time", "heartbeat_at", "deleted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["run_id"] = d.pop("id")
        return d


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    name: str
    description: str | None
    created_at: dt.datetime
    runs: int
    last_run_at: dt.datetime | None
    deleted_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("created_at", "last_run_at", "deleted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


# =========================================================================== stores

_stores: dict[tuple[str, str | None], Store] = {}
_stores_pid = os.getpid()
_stores_lock = threading.Lock()


def _store(store: Store | str | os.PathLike[str] | None) -> Store:
    """``store`` itself, or the store at a path / the default store (opened once per process)."""
    global _stores_pid
    if isinstance(store, Store):
        return store
    from modelyard.core.common.paths import DB_URL_ENV, STORE_ENV, resolve_store_dir

    root = resolve_store_dir(store)
    db_url = os.environ.get(DB_URL_ENV) or None
    key = (str(root), db_url)
    with _stores_lock:
        if _stores_pid != os.getpid():  # a forked child must not share the parent's connections
            _stores.clear()
            _stores_pid = os.getpid()
        opened = _stores.get(key)
        if opened is None:
            # Only the platform's default store is created on first use; a folder or database
            # named by store=, MODELYARD_STORE or MODELYARD_DB_URL must already be a store (as in the CLI).
            default = store is None and not os.environ.get(STORE_ENV) and db_url is None
            opened = _stores[key] = Store.open(root, db_url=db_url, create=default)
        return opened


# =========================================================================== writing helpers


def _dialect_insert(store: Store) -> Any:
    name = store.engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str):
        raise ModelyardError(f"A {what} name must be text, not {type(key).__name__} ({_short(key)}).")
    if not key or len(key) > MAX_KEY_LENGTH or key != key.strip() or any(c in key for c in "\n\r\t\x00\x1e\x1f") \
            or not _encodable(key):
        raise ModelyardError(
            f"{what.capitalize()} name {key!r} is not allowed.",
            hint=f"Use 1 to {MAX_KEY_LENGTH} characters of valid Unicode, without line breaks, tabs or "
                 "leading/trailing spaces.")
    return check_name_chars(key, f"The {what} name")


def _encodable(text: str) -> bool:
    """False for text the database cannot store (an unpaired surrogate, e.g. from surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, key: str, what: str) -> str:
    """A param or tag value as the text stored, or a ModelyardError naming ``key``."""
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError as exc:  # e.g. an int beyond Python's 4,300-digit limit for conversion to text
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value cannot be turned into text ({exc}).",
                             hint="Log a shorter value.") from None
    if "\x00" in text:
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value contains a NUL character, which cannot be "
                             "stored.", hint="Remove the NUL characters (\\x00) from the value.")
    if not _encodable(text):
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value is not valid Unicode text (it holds an "
                             "unpaired surrogate) and cannot be stored.",
                             hint="Decode bytes with their real encoding, or with errors='replace'.")
    return text


def _keys_label(keys: Iterable[Any]) -> str:
    names = list(keys)
    shown = ", ".join(_short(k) for k in names[:3]) + (", ..." if len(names) > 3 else "")
    return f"metric {shown}" if len(names) == 1 else f"metrics {shown}"


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (int, numpy integer, integral float), else None."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real):
        try:
            if math.isfinite(value) and int(value) == value:
                return int(value)
        except (TypeError, ValueError, OverflowError):
            pass
    return None


def _step(value: Any, keys: Iterable[Any]) -> int:
    """A metric step, or a ModelyardError naming the metric(s) and the range."""
    if type(value) is int and MIN_STEP <= value <= MAX_STEP:
        return value
    hint = f"A step is a whole number from {MIN_STEP} to {MAX_STEP} (a 64-bit integer)."
    step = _whole_number(value)
    if step is None:
        raise ModelyardError(f"The step of {_keys_label(keys)} must be a whole number, not {_short(value)}.", hint=hint)
    if not MIN_STEP <= step <= MAX_STEP:
        raise ModelyardError(f"The step {_short(value)} of {_keys_label(keys)} is out of range: a step is a whole number "
                             f"from {MIN_STEP} to {MAX_STEP}.", hint=hint)
    return step


def _timestamp(value: Any, keys: Iterable[Any]) -> int:
    """A timestamp in whole ms (a fraction of a ms is dropped), or a ModelyardError naming the range."""
    if type(value) is int and 0 <= value <= MAX_TIMESTAMP_MS:
        return value
    hint = "Pass milliseconds since the epoch, e.g. int(time.time() * 1000), or leave timestamp out for now."
    ms = _whole_number(value)
    if ms is None and isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            ms = math.floor(value) if math.isfinite(value) else None
        except (TypeError, ValueError, OverflowError):
            ms = None
    if ms is None:
        raise ModelyardError(f"The timestamp of {_keys_label(keys)} must be a number of milliseconds, "
                             f"not {_short(value)}.", hint=hint)
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise ModelyardError(f"The timestamp {_short(value)} of {_keys_label(keys)} is out of range: a timestamp is "
                             f"milliseconds since the epoch, from 0 to {MAX_TIMESTAMP_MS} (the year 9999).",
                             hint=hint)
    return ms


def _metric_value(value: Any, key: Any) -> float:
    """A metric value as a float, or a ModelyardError naming the metric."""
    if type(value) is float:
        return value
    hint = "A metric value is a real number (an int, a float or a numpy number); record text as a tag."
    if isinstance(value, (str, bytes)) or (isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)):
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is not a real number.", hint=hint)
    try:
        return float(value)
    except OverflowError:
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is too large for a metric (the largest is about "
                             f"{sys.float_info.max:.3g}).", hint=hint) from None
    except (TypeError, ValueError):
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is not a number.", hint=hint) from None


_UPSERTS: dict[tuple[Any, ...], Any] = {}


def _upsert(store: Store, s: Any, table: Any, rows: list[dict[str, Any]], keys: list[str],
            update_cols: list[str] | None, where: Any = None) -> None:
    """INSERT rows; on a key conflict update ``update_cols`` (None: keep the existing row)."""
    if not rows:
        return
    dialect = store.engine.dialect.name
    cache_key = (dialect, table.name, tuple(keys), None if update_cols is None else tuple(update_cols), where)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        insert = _dialect_insert(store)
        if insert is not None:
            stmt = insert(table)
            if update_cols is None:
                stmt = stmt.on_conflict_do_nothing(index_elements=keys)
            else:
                stmt = stmt.on_conflict_do_update(
                    index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update_cols},
                    where=where(stmt.excluded) if where is not None else None)
            _UPSERTS[cache_key] = stmt  # built once: constructing it costs more than running it
    if stmt is not None:
        s.connection().execute(stmt, rows)  # Core, not the ORM session: a third of the cost
        return
    # another backend: read, then insert or update (the write transaction holds the lock)
    cols = [table.c[k] for k in keys]
    for row in rows:
        cond = [c == row[c.key] for c in cols]
        existing = s.execute(select(table).where(*cond)).mappings().first()
        if existing is None:
            s.execute(table.insert().values(**row))
        elif update_cols is not None and (where is None or _newer(row, existing)):
            s.execute(table.update().where(*cond).values(**{c: row[c] for c in update_cols}))


def _newer(row: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    return (row["step"], row["timestamp"]) >= (existing["step"], existing["timestamp"])


def _latest_where(excluded: Any) -> Any:
    lm = m.LatestMetric.__table__.c
    return or_(excluded.step > lm.step, (excluded.step == lm.step) & (excluded.timestamp >= lm.timestamp))


_RUNS = m.Run.__table__
_END_RUN = (update(_RUNS).where(_RUNS.c.id == bindparam("pk"))
            .values(heartbeat_at=bindparam("now"), end_time=bindparam("now"), status=bindparam("status"),
                    error=bindparam("error")))
_HEARTBEAT = (update(_RUNS).where(_RUNS.c.id == bindparam("pk"))
              .values(heartbeat_at=bindparam("now"),
                      status=case((_RUNS.c.status == "interrupted", "running"), else_=_RUNS.c.status),
                      end_time=case((_RUNS.c.status == "interrupted", None), else_=_RUNS.c.end_time),
                      error=case((_RUNS.c.status == "interrupted", None), else_=_RUNS.c.error)))


def _insert_metric_points(store: Store, s: Any, flat: list[Any]) -> None:
    """Insert metric rows given flat as [run_id, key, step, timestamp, value, run_id, ...]."""
    if not flat:
        return
    table = m.Metric.__table__
    if store.is_sqlite:
        # Multi-row VALUES statements: ~3x the rows/s of executemany on SQLite (the per-row
        # cost of executemany is Python's, not SQLite's).
        conn = s.connection()
        cols = 'run_id, "key", step, timestamp, value'
        per = _ROWS_PER_INSERT * 5
        full_sql = f"INSERT INTO {table.name} ({cols}) VALUES " + ",".join(["(?,?,?,?,?)"] * _ROWS_PER_INSERT)
        for i in range(0, len(flat), per):
            chunk = flat[i:i + per]
            if len(chunk) == per:
                conn.exec_driver_sql(full_sql, tuple(chunk))
            else:
                rows = len(chunk) // 5
                conn.exec_driver_sql(f"INSERT INTO {table.name} ({cols}) VALUES " + ",".join(["(?,?,?,?,?)"] * rows),
                                     tuple(chunk))
        return
    rows = [{"run_id": flat[i], "key": flat[i + 1], "step": flat[i + 2], "timestamp": flat[i + 3],
             "value": flat[i + 4]} for i in range(0, len(flat), 5)]
    s.execute(table.insert(), rows)


# =========================================================================== the active run

_open_runs: weakref.WeakSet[ActiveRun] = weakref.WeakSet()


class ActiveRun:
    """A run being recorded. Use it as a context manager, or call :meth:`end` yourself.

    Thread-safe: several threads may log into one run. Not shareable across processes (each
    process starts its own runs, possibly with ``parent=``).
    """

    def __init__(self, store: Store, pk: int, uuid: str, experiment: str) -> None:
        self.store = store
        self.id = uuid
        self.experiment = experiment
        self._pk = pk
        self._lock = threading.RLock()
        self._metrics: list[Any] = []  # flat: run_id, key, step, timestamp, value, ...
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._logged_params: dict[str, str] = {}
        self._next_step: dict[str, int] = {}
        self._known_keys: set[str] = set()
        self._nan_warned: set[str] = set()
        self._keep_nan = store.engine.dialect.name != "sqlite"
        self._last_flush = time.monotonic()
        self._flush_points = FLUSH_MAX_POINTS * 5
        self._status: str | None = None  # set when ended
        self._ending: tuple[str, str | None] | None = None  # an end() whose last flush failed
        self.flushes = 0  # write transactions made by flush(), for the curious (and the tests)
        _open_runs.add(self)

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._status is not None:
            return
        if exc is None:
            self.end("succeeded")
        elif isinstance(exc, (KeyboardInterrupt, JobCancelled)):
            self.end("cancelled", error="Cancelled." if isinstance(exc, JobCancelled) else "Interrupted (Ctrl+C).")
        else:
            self.end("failed", error=_describe_exception(exc))

    def __repr__(self) -> str:
        return f"ActiveRun({self.id!r}, experiment={self.experiment!r}, status={self.status!r})"

    # ------------------------------------------------------------------ facts
    @property
    def run_id(self) -> str:
        return self.id

    @property
    def pk(self) -> int:
        """The store's integer id of the run (for foreign keys in other services)."""
        return self._pk

    @property
    def status(self) -> str:
        return self._status or "running"

    @property
    def ended(self) -> bool:
        return self._status is not None

    @property
    def info(self) -> RunInfo:
        """Everything recorded so far (pending values are flushed first)."""
        self.flush()
        return get_run(self.id, store=self.store)

    # ------------------------------------------------------------------ logging
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters (values stored as text). A param keeps its first value."""
        with self._lock:
            self._check_open()
            checked: dict[str, str] = {}  # all checked first: a refused call records nothing
            for key, value in params.items():
                _check_key(key, "param")
                text = _text(value, key, "param")
                old = self._logged_params.get(key, checked.get(key))
                if old is not None and old != text:
                    raise ModelyardError(
                        f"Param {key!r} of run {self.id[:12]} is already {old!r}; it cannot become {text!r}.",
                        hint="Params record how a run was made and do not change; use a metric or a tag "
                             "for values that evolve, or start a new run.")
                checked[key] = text
            self._logged_params.update(checked)
            self._params.update(checked)
            self._maybe_flush()

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (values stored as text; a later value replaces an earlier one)."""
        with self._lock:
            self._check_open()
            checked = {_check_key(key, "tag"): _text(value, key, "tag") for key, value in tags.items()}
            self._tags.update(checked)
            self._maybe_flush()

    def log_metric(self, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
                    ) -> None:
        """Record metric values at ``step`` (default: each metric's next step).

        ``timestamp`` is milliseconds since the epoch (default: now). A value, step or timestamp
        that cannot be stored raises :class:`ModelyardError` and nothing of the call is recorded.
        """
        if timestamp is None:
            ts = int(time.time() * 1000)
        elif type(timestamp) is int and 0 <= timestamp <= MAX_TIMESTAMP_MS:
            ts = timestamp
        else:
            ts = _timestamp(timestamp, metrics)
        if step is None or (type(step) is int and MIN_STEP <= step <= MAX_STEP):
            st = step
        else:
            st = _step(step, metrics)
        with self._lock:
            if self._status is not None:
                self._check_open()
            known = self._known_keys
            items: Iterable[tuple[Any, Any]] = metrics.items()
            for key, value in items:  # the common case (floats, known keys) is checked at once
                if type(value) is not float or key not in known:
                    items = [(_check_key(k, "metric"), _metric_value(v, k)) for k, v in items]
                    known.update(k for k, _ in items)
                    break
            pk = self._pk
            nxt = self._next_step
            buf = self._metrics
            mark = len(buf)
            for key, v in items:
                if v != v and not self._keep_nan:
                    self._warn_nan(key)
                    continue
                if st is None:
                    s_ = nxt.get(key, 0)
                    if s_ > MAX_STEP:  # all of this call's metrics took the next step: undo that
                        for done in buf[mark + 1::5]:
                            nxt[done] -= 1
                        del buf[mark:]
                        raise ModelyardError(f"Metric {key!r} has reached the largest step ({MAX_STEP}); it has no "
                                             "next step.", hint="Pass step= explicitly.")
                    nxt[key] = s_ + 1
                else:
                    s_ = st
                    if s_ >= nxt.get(key, 0):
                        nxt[key] = s_ + 1
                buf += (pk, key, s_, ts, v)
            if len(buf) >= self._flush_points or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
                self._flush_locked(required=False)

    def _warn_nan(self, key: str) -> None:
        if key not in self._nan_warned:
            self._nan_warned.add(key)
            warnings.warn(f"modelyard: NaN values of metric {key!r} are not recorded (the SQLite store cannot "
                          "hold NaN).", RuntimeWarning, stacklevel=4)

    def log_artifact(self, local_path: str | os.PathLike[str], artifact_path: str | None = None, *,
                     kind: str | None = "file") -> LoggedArtifact:
        """Copy a file into the store as an artifact of this run (``artifact_path/name``)."""
        src = Path(local_path)
        if not src.is_file():
            raise ModelyardError(f"Cannot log {src} as an artifact: it is not a file.",
                                 hint="Pass the path of an existing file (log folders file by file).")
        path = _artifact_name(src.name, artifact_path)
        self._check_open()
        self.flush()
        with _full_disk_is_an_error(f"the artifact {path!r}"), self.store.write() as s:
            ref = self.store.artifacts.put_file(src, session=s)
            self._attach(s, path, ref.sha256, kind)
        return LoggedArtifact(path, ref.sha256, ref.size, kind)

    def log_bytes(self, data: bytes, artifact_path: str, *, kind: str | None = "file",
                  media_type: str | None = None) -> LoggedArtifact:
        """Store bytes as an artifact of this run at ``artifact_path`` (e.g. ``"plots/roc.png"``)."""
        path = _artifact_name(None, artifact_path)
        self._check_open()
        self.flush()
        with _full_disk_is_an_error(f"the artifact {path!r}"), self.store.write() as s:
            ref = self.store.artifacts.put_bytes(data, session=s, media_type=media_type)
            self._attach(s, path, ref.sha256, kind)
        return LoggedArtifact(path, ref.sha256, ref.size, kind)

    def log_model(self, model: Any, input_example: Any = None, *, artifact_path: str = "model") -> LoggedArtifact:
        """Save a fitted model (joblib) as ``model/model.joblib``, kind ``"model"``.

        With ``input_example`` (a DataFrame, array or list of rows), its signature (column names
        and dtypes) and its first rows are saved as ``model/input_example.json``.
        """
        import joblib

        self._check_open()
        self.flush()
        folder = artifact_path.strip("/") or "model"
        example = _input_example(model, input_example) if input_example is not None else None
        with _full_disk_is_an_error(f"the model {folder}/model.joblib"), \
                self.store.artifacts.temp_path(suffix=".joblib") as tmp:
            joblib.dump(model, tmp)
            with self.store.write() as s:
                ref = self.store.artifacts.adopt(tmp, session=s, media_type="application/x-joblib")
                self._attach(s, f"{folder}/model.joblib", ref.sha256, "model")
                if example is not None:
                    ex = self.store.artifacts.put_bytes(json.dumps(example, indent=1, default=str).encode(),
                                                        session=s, media_type="application/json")
                    self._attach(s, f"{folder}/input_example.json", ex.sha256, "input_example")
        return LoggedArtifact(f"{folder}/model.joblib", ref.sha256, ref.size, "model")

    def _attach(self, s: Any, path: str, sha: str, kind: str | None) -> None:
        existing = s.scalars(select(m.RunArtifact).where(m.RunArtifact.run_id == self._pk,
                                                         m.RunArtifact.path == path)).first()
        if existing is None:
            s.add(m.RunArtifact(run_id=self._pk, path=path, sha256=sha, kind=kind))
        else:
            existing.sha256, existing.kind, existing.created_at = sha, kind, m.utcnow()
        s.execute(update(m.Run).where(m.Run.id == self._pk).values(heartbeat_at=m.utcnow()))

    # ------------------------------------------------------------------ reading
    def metric_history(self, key: str, *, as_numpy: bool = False) -> Any:
        """The (step, timestamp, value) series of one metric, in step order (flushes first)."""
        self.flush()
        return metric_history(self.id, key, store=self.store, as_numpy=as_numpy)

    # ------------------------------------------------------------------ flushing and ending
    def _check_open(self) -> None:
        if self._status is not None:
            raise ModelyardError(f"Run {self.id[:12]} has ended ({self._status}); it cannot record more.",
                                 hint="Start a new run with modelyard.start_run().")

    def _maybe_flush(self) -> None:
        if len(self._metrics) >= self._flush_points or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self._flush_locked(required=False)

    def flush(self) -> None:
        """Write everything buffered now (one transaction)."""
        with self._lock:
            self._flush_locked(required=True)

    def _flush_locked(self, *, required: bool, end: dict[str, Any] | None = None) -> None:
        if self.store.in_write():
            if required or end is not None:
                raise ModelyardError("A run cannot be flushed or ended inside a store.write() block of the same "
                                     "thread.", hint="Log, flush and end runs outside the write transaction.")
            return  # postponed: a second write from this thread would wait on its own lock
        flat, params, tags = self._metrics, self._params, self._tags
        self._last_flush = time.monotonic()
        if not (flat or params or tags or end is not None) and not required:
            return
        self._metrics, self._params, self._tags = [], {}, {}
        unwritten = [(flat, params, tags)]
        try:
            try:
                self._write(flat, params, tags, end)
            except Exception as exc:
                if not _refused_value(exc):
                    raise
                self._salvage(unwritten, end)
            unwritten = []
        except BaseException as exc:
            # keep what could not be written: the next flush (or end) tries again
            for part_flat, part_params, part_tags in reversed(unwritten):
                self._metrics = part_flat + self._metrics
                self._params = {**part_params, **self._params}
                self._tags = {**part_tags, **self._tags}
            if isinstance(exc, Exception) and disk_full(exc):
                raise _disk_full_error(f"the values of run {self.id[:12]}", kept=True) from exc
            raise
        self.flushes += 1

    def _salvage(self, unwritten: list[tuple[list[Any], dict[str, str], dict[str, str]]],
                 end: dict[str, Any] | None) -> None:
        """Write a batch the database refused because of some value, in ever smaller parts, so
        that only the values it refuses one by one are dropped (with a warning naming them).

        ``unwritten`` holds the parts not written yet, in logging order, at every moment: if a
        write fails for another reason (a full disk), they go back into the buffer.
        """
        self._write([], {}, {}, None)  # the database takes a write without values: the values are the trouble
        refused: list[tuple[str, str, Any, Exception]] = []
        try:
            while unwritten:
                part = unwritten[0]
                try:
                    self._write(*part, None)
                except Exception as exc:
                    if not _refused_value(exc):
                        raise
                    halves = _halves(part)
                    if halves is None:
                        refused.append((*_describe_item(part), exc))
                        unwritten.pop(0)
                    else:
                        unwritten[0:1] = halves
                    continue
                unwritten.pop(0)
            self._write([], {}, {}, end)
        finally:  # named even when another failure stops the salvage
            for what, key, value, exc in refused:
                warnings.warn(f"modelyard: {what} {key!r} ({value}) of run {self.id[:12]} could not be stored and "
                              f"was dropped ({type(exc).__name__}: {exc}); the other values are kept.",
                              RuntimeWarning, stacklevel=5)

    def _write(self, flat: list[Any], params: dict[str, str], tags: dict[str, str],
               end: dict[str, Any] | None) -> None:
        store = self.store
        pk = self._pk
        latest: dict[str, tuple[int, int, float]] = {}
        for i in range(0, len(flat), 5):  # highest step wins, then the later timestamp, then the later write
            key, step, ts = flat[i + 1], flat[i + 2], flat[i + 3]
            cur = latest.get(key)
            if cur is None or step > cur[0] or (step == cur[0] and ts >= cur[1]):
                latest[key] = (step, ts, flat[i + 4])
        now = m.utcnow()
        with store.write() as s:
            _insert_metric_points(store, s, flat)
            _upsert(store, s, m.LatestMetric.__table__,
                    [{"run_id": pk, "key": k, "step": v[0], "timestamp": v[1], "value": v[2]} for k, v in latest.items()],
                    ["run_id", "key"], ["step", "timestamp", "value"], where=_latest_where)
            _upsert(store, s, m.Param.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in params.items()],
                    ["run_id", "key"], None)
            _upsert(store, s, m.Tag.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in tags.items()],
                    ["run_id", "key"], ["value"])
            if end is not None:
                s.connection().execute(_END_RUN, {"pk": pk, "now": now, "status": end["status"],
                                                  "error": end["error"]})
            else:
                # heartbeat; and a run another process marked interrupted (say after a long silence
                # on another machine) is evidently alive: take it back
                s.connection().execute(_HEARTBEAT, {"pk": pk, "now": now})

    def end(self, status: str = "succeeded", *, error: str | None = None) -> None:
        """Flush and record the run's end: ``succeeded``, ``failed`` or ``cancelled``."""
        if status not in END_STATUSES:
            raise ModelyardError(f"A run cannot end {status!r}.", hint="Use one of: " + ", ".join(END_STATUSES) + ".")
        if error is not None and not _encodable(error):  # e.g. a file name decoded with surrogateescape
            error = error.encode("utf-8", "backslashreplace").decode("utf-8")
        with self._lock:
            if self._status is not None:
                return
            self._ending = (status, error)  # should this flush fail (a full disk), the end at exit records it
            self._flush_locked(required=True, end={"status": status, "error": error})
            self._status = status
        _open_runs.discard(self)


def _refused_value(exc: BaseException) -> bool:
    """True when the database (or its driver) refused a value of a write, not the write itself."""
    from sqlalchemy.exc import DataError, StatementError

    if isinstance(exc, DataError):  # e.g. "string or blob too big", PostgreSQL's out-of-range numbers
        return True
    if isinstance(exc, StatementError):
        exc = exc.orig  # type: ignore[assignment]
    return isinstance(exc, (OverflowError, TypeError, ValueError)) and not disk_full(exc)


def _halves(part: tuple[list[Any], dict[str, str], dict[str, str]]
            ) -> list[tuple[list[Any], dict[str, str], dict[str, str]]] | None:
    """A part of a buffer split in two (in logging order), or None for a single value."""
    flat, params, tags = part
    points = len(flat) // 5
    if points + len(params) + len(tags) <= 1:
        return None
    if points > 1:
        mid = points // 2 * 5
        return [(flat[:mid], {}, {}), (flat[mid:], params, tags)]
    items = [("p", k, v) for k, v in params.items()] + [("t", k, v) for k, v in tags.items()]
    if points == 1:
        return [(flat, {}, {}), ([], params, tags)]
    mid = len(items) // 2

    def part_of(chosen: list[tuple[str, str, str]]) -> tuple[list[Any], dict[str, str], dict[str, str]]:
        return [], {k: v for kind, k, v in chosen if kind == "p"}, {k: v for kind, k, v in chosen if kind == "t"}

    return [part_of(items[:mid]), part_of(items[mid:])]


def _describe_item(part: tuple[list[Any], dict[str, str], dict[str, str]]) -> tuple[str, str, str]:
    flat, params, tags = part
    if flat:
        return "metric", flat[1], f"value {flat[4]!r} at step {flat[2]!r}, timestamp {flat[3]!r}"
    if params:
        key, value = next(iter(params.items()))
        return "param", key, f"value {_short(value)}"
    key, value = next(iter(tags.items()))
    return "tag", key, f"value {_short(value)}"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for conversion to text
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= 80 else text[:77] + "..."


def _disk_full_error(what: str, *, kept: bool) -> ModelyardError:
    return ModelyardError(
        f"Could not save {what}: the disk holding the store is full.",
        hint="Free some disk space and try again; what was saved before is intact"
             + ("; the values not saved are kept in memory and the next flush() or end() writes them." if kept
                else "."))


@contextlib.contextmanager
def _full_disk_is_an_error(what: str) -> Iterator[None]:
    """Turn a full disk while storing ``what`` into a ModelyardError (the write was rolled back)."""
    try:
        yield
    except ModelyardError:
        raise
    except Exception as exc:
        if disk_full(exc):
            raise _disk_full_error(what, kept=False) from exc
        raise


def _artifact_name(name: str | None, artifact_path: str | None) -> str:
    parts = [p for p in (artifact_path or "").replace("\\", "/").split("/") if p]
    if name:
        parts.append(name)
    if not parts or any(p in (".", "..") for p in parts):
        raise ModelyardError(f"{artifact_path!r} is not a valid artifact path.",
                             hint="Use a relative path such as 'plots/roc.png'.")
    path = "/".join(parts)
    if len(path) > 500:
        raise ModelyardError("Artifact paths are limited to 500 characters.")
    return path


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, ModelyardError):
        head = str(exc)
    else:
        head = f"{type(exc).__name__}: {exc}".rstrip(": ")
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8))
    return f"{head}\n\n{tb}".rstrip()


def _input_example(model: Any, example: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.Series):
        example = example.to_frame().T
    if isinstance(example, pd.DataFrame):
        head = example.head(5)
        inputs = [{"name": str(c), "dtype": str(t)} for c, t in example.dtypes.items()]
        data = json.loads(head.to_json(orient="split", index=False, date_format="iso"))
        out: dict[str, Any] = {"format": "dataframe", "signature": {"inputs": inputs}, "columns": data["columns"],
                               "data": data["data"], "n_rows_seen": int(len(example))}
    else:
        arr = np.asarray(example)
        rows = arr[:5] if arr.ndim >= 1 else arr
        out = {"format": "ndarray", "signature": {"inputs": [{"shape": [-1, *arr.shape[1:]], "dtype": str(arr.dtype)}]},
               "data": json.loads(pd.Series(list(rows.tolist() if hasattr(rows, "tolist") else rows)).to_json(
                   orient="values")), "n_rows_seen": int(arr.shape[0]) if arr.ndim else 1}
    out["model_class"] = f"{type(model).__module__}.{type(model).__qualname__}"
    try:
        import sklearn

        out["sklearn_version"] = sklearn.__version__
    except ImportError:  # pragma: no cover - a dependency
        pass
    from modelyard._version import __version__

    out["modelyard_version"] = __version__
    return out


@atexit.register
def _end_open_runs() -> None:
    """At interpreter exit, record runs nobody ended (a script without ``with``) as succeeded."""
    for run in list(_open_runs):
        status, error = run._ending or ("succeeded", None)
        try:
            run.end(status, error=error)
        except Exception:  # noqa: BLE001 - the next Store.open marks it interrupted instead
            pass


# =========================================================================== starting runs


def _detect_source() -> tuple[str, str | None]:
    if "ipykernel" in sys.modules:
        return "notebook", os.environ.get("JPY_SESSION_NAME") or None
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and not hasattr(sys, "ps1"):
        return "script", str(Path(path).resolve())
    return "interactive", None


def _parse_source(source: str | None) -> tuple[str, str | None]:
    if source is None:
        return _detect_source()
    kind, sep, rest = source.partition(":")
    if sep and kind in SOURCE_TYPES:
        return kind, rest or None
    if source in SOURCE_TYPES:
        return source, None
    if source.endswith(".ipynb"):
        return "notebook", source
    return ("script", source) if source.endswith(".py") else ("other", source)


def start_run(experiment: str = "Default", *, name: str | None = None, tags: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, parent: str | ActiveRun | None = None,
              store: Store | str | os.PathLike[str] | None = None, source: str | None = None,
              dataset_version_id: int | None = None, split_id: int | None = None, job_id: int | None = None,
              spec: dict[str, Any] | None = None) -> ActiveRun:
    """Start recording a run in ``experiment`` (created on first use) and return it.

    ``store``: a :class:`Store`, a store folder, or None for ``MODELYARD_STORE`` / the default
    store. ``parent``: the id (or ActiveRun) of the run this one is nested in. ``source``:
    where the run comes from, ``"type"`` or ``"type:name"`` with a type from
    :data:`SOURCE_TYPES` (default: the script's path, or notebook / interactive).
    """
    st = _store(store)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ModelyardError("An experiment needs a name.", hint='Pass e.g. experiment="churn".')
    experiment = experiment.strip()
    if len(experiment) > 200:
        raise ModelyardError("Experiment names are limited to 200 characters.")
    for what, text in (("experiment", experiment), ("run", name)):
        if isinstance(text, str) and not _encodable(text):
            raise ModelyardError(f"The {what} name {text!r} is not valid Unicode text (it holds an unpaired "
                                 "surrogate).", hint="Decode bytes with their real encoding, or with errors='replace'.")
    check_name_chars(experiment, "The experiment name")
    if name is not None:
        check_name_chars(str(name), "The run name")
    stype, sname = _parse_source(source)
    tag_rows = {_check_key(k, "tag"): _text(v, k, "tag") for k, v in (tags or {}).items()}
    param_rows = {_check_key(k, "param"): _text(v, k, "param") for k, v in (params or {}).items()}
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    now = m.utcnow()
    with _full_disk_is_an_error(f"a new run of {experiment!r}"), st.write() as s:
        exp_id = _ensure_experiment(st, s, experiment)
        parent_pk = None
        if parent_id is not None:
            parent_pk = _resolve_run(s, parent_id).id
        uuid = m.new_uuid()
        pk = s.connection().execute(_INSERT_RUN, dict(
            uuid=uuid, experiment_id=exp_id, parent_run_id=parent_pk, name=name, status="running", start_time=now,
            source_type=stype, source_name=sname, user=current_user(), host=hostname(), pid=os.getpid(),
            heartbeat_at=now, dataset_version_id=dataset_version_id, split_id=split_id, job_id=job_id,
            spec=spec, error=None, end_time=None, deleted_at=None)).inserted_primary_key[0]
        _upsert(st, s, m.Tag.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                ["run_id", "key"], ["value"])
        _upsert(st, s, m.Param.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in param_rows.items()],
                ["run_id", "key"], None)
    active = ActiveRun(st, pk, uuid, experiment)
    active._logged_params.update(param_rows)
    return active


_INSERT_RUN = insert(_RUNS)
_EXPERIMENT_ID = select(m.Experiment.__table__.c.id).where(m.Experiment.__table__.c.name == bindparam("name"))


def _ensure_experiment(store: Store, s: Any, name: str) -> int:
    conn = s.connection()
    exp_id = conn.execute(_EXPERIMENT_ID, {"name": name}).scalar()
    if exp_id is not None:
        return exp_id
    _upsert(store, s, m.Experiment.__table__, [{"name": name, "created_at": m.utcnow()}], ["name"], None)
    return conn.execute(_EXPERIMENT_ID, {"name": name}).scalar()


# =========================================================================== reading


def _resolve_run(s: Any, run_id: str | ActiveRun) -> m.Run:
    """The run with this id, or the only one whose id starts with it (at least 4 characters)."""
    if isinstance(run_id, ActiveRun):
        run_id = run_id.id
    text = str(run_id).strip().lower()
    run = s.scalars(select(m.Run).where(m.Run.uuid == text)).first()
    if run is not None:
        return run
    if len(text) >= 4 and all(c in "0123456789abcdef" for c in text):
        found = s.scalars(select(m.Run).where(m.Run.uuid.like(text + "%")).limit(2)).all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ModelyardError(f"More than one run id starts with {text!r}.", hint="Give more characters of the id.")
    raise NotFoundError(f"There is no run {run_id!r} in this store.",
                        hint="'modelyard run list' shows the runs and their ids.")


def get_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> RunInfo:
    """A run's params, latest metrics, tags, artifacts and status (also a deleted run's)."""
    if isinstance(run_id, ActiveRun):
        if store is None:
            store = run_id.store
        run_id.flush()
    st = _store(store)
    with st.session() as s:
        run = _resolve_run(s, run_id)
        exp_name = s.scalar(select(m.Experiment.name).where(m.Experiment.id == run.experiment_id))
        params = dict(s.execute(select(m.Param.key, m.Param.value).where(m.Param.run_id == run.id)).all())
        latest = s.execute(select(m.LatestMetric.key, m.LatestMetric.value, m.LatestMetric.step)
                           .where(m.LatestMetric.run_id == run.id)).all()
        tags = dict(s.execute(select(m.Tag.key, m.Tag.value).where(m.Tag.run_id == run.id)).all())
        arts = s.execute(select(m.RunArtifact.path, m.RunArtifact.sha256, m.Artifact.size, m.RunArtifact.kind)
                         .join(m.Artifact, m.Artifact.sha256 == m.RunArtifact.sha256)
                         .where(m.RunArtifact.run_id == run.id).order_by(m.RunArtifact.path)).all()
        parent = s.scalar(select(m.Run.uuid).where(m.Run.id == run.parent_run_id)) if run.parent_run_id else None
    end = run.end_time or (m.utcnow() if run.status == "running" else None)
    return RunInfo(
        id=run.uuid, experiment=exp_name or "", experiment_id=run.experiment_id, name=run.name, status=run.status,
        start_time=run.start_time, end_time=run.end_time,
        duration_s=(end - run.start_time).total_seconds() if end is not None else None,
        params=dict(sorted(params.items())), metrics={k: v for k, v, _ in sorted(latest)},
        tags=dict(sorted(tags.items())), parent_id=parent,
        artifacts=[LoggedArtifact(p, sha, size, kind) for p, sha, size, kind in arts], user=run.user,
        source_type=run.source_type, source=run.source_name, error=run.error, host=run.host, pid=run.pid,
        heartbeat_at=run.heartbeat_at, dataset_version_id=run.dataset_version_id, spec=run.spec,
        deleted_at=run.deleted_at, metric_steps={k: st_ for k, _, st_ in sorted(latest)},
    )


def metric_history(run_id: str | ActiveRun, key: str, *, store: Store | str | os.PathLike[str] | None = None,
                   as_numpy: bool = False) -> Any:
    """One metric's series ordered by step (then time, then logging order).

    A DataFrame with int64 ``step``, int64 ``timestamp`` (ms since the epoch) and float
    ``value`` columns, or with ``as_numpy`` a tuple of the three arrays.
    """
    import numpy as np

    if isinstance(run_id, ActiveRun):
        if store is None:
            store = run_id.store
        run_id.flush()
    st = _store(store)
    t = m.Metric.__table__
    arrays = None
    with st.session() as s:  # one read transaction: both reads below see the same rows
        pk = _resolve_run(s, run_id).id
        where = (t.c.run_id == pk, t.c.key == key)
        if st.is_sqlite:
            # Integers as three long strings parsed in C, floats as one column: about twice as
            # fast as one Python tuple per point. Both reads walk the (run_id, key, step) index.
            inner = select(t.c.step, t.c.timestamp, t.c.id).where(*where).order_by(t.c.step, t.c.id).subquery()
            n, steps, stamps, ids = s.execute(select(func.count(), func.group_concat(inner.c.step),
                                                     func.group_concat(inner.c.timestamp),
                                                     func.group_concat(inner.c.id))).one()
            result = s.connection().execute(select(t.c.value).where(*where).order_by(t.c.step, t.c.id))
            values = result.cursor.fetchall()
            result.close()
            if (n or 0) == len(values):
                import itertools

                from modelyard.core.experiments.runquery.loader import _ints

                if n:
                    step_a, stamp_a, id_a = _ints(steps, n), _ints(stamps, n), _ints(ids, n)
                    value_a = np.fromiter(itertools.chain.from_iterable(values), dtype=np.float64, count=n)
                    order = np.lexsort((id_a, stamp_a, step_a))
                    arrays = (step_a[order], stamp_a[order], value_a[order])
                else:
                    arrays = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
        if arrays is None:
            rows = s.connection().execute(select(t.c.step, t.c.timestamp, t.c.value).where(*where)
                                          .order_by(t.c.step, t.c.timestamp, t.c.id)).all()
            n = len(rows)
            if n:
                step_l, stamp_l, value_l = zip(*rows)
                arrays = (np.fromiter(step_l, dtype=np.int64, count=n), np.fromiter(stamp_l, dtype=np.int64, count=n),
                          np.fromiter((np.nan if v is None else v for v in value_l), dtype=np.float64, count=n))
            else:
                arrays = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if as_numpy:
        return arrays
    import pandas as pd

    return pd.DataFrame({"step": arrays[0], "timestamp": arrays[1], "value": arrays[2]})


def search_runs(experiment: str | Iterable[str] | None = None, filter: str | None = None,  # noqa: A002
                order_by: str | list[str] | None = None, max_results: int | None = None, *,
                include_deleted: bool | str = False, store: Store | str | os.PathLike[str] | None = None
                ) -> pd.DataFrame:
    """Runs as a pandas DataFrame, one row per run, like ``mlflow.search_runs``.

    Columns: ``run_id``, ``experiment``, ``name``, ``status``, ``start_time``, ``end_time``,
    ``duration`` (s), ``user``, ``source_type``, ``source``, ``parent_run_id``, then
    ``metrics.<key>``, ``params.<key>`` and ``tags.<key>``. ``filter`` uses the runs filter
    language (see :mod:`modelyard.core.experiments.runquery`); ``order_by`` items look like
    ``"metrics.f1 DESC"`` (default: newest first).
    """
    from modelyard.core.experiments.runquery import query_runs

    if isinstance(experiment, str):
        experiment = [experiment]
    exps = list(experiment) if experiment is not None else None
    table = query_runs(_store(store), exps, filter=filter, order_by=order_by, limit=max_results,
                       include_deleted=include_deleted)
    frame = table.frame
    metric_cols = sorted(c for c in frame.columns if c.startswith("metrics."))
    param_cols = sorted(c for c in frame.columns if c.startswith("params."))
    tag_cols = sorted(c for c in frame.columns if c.startswith("tags."))
    base = [c for c in frame.columns if not c.startswith(("metrics.", "params.", "tags."))]
    return frame[base + metric_cols + param_cols + tag_cols]


def query_runs(store: Store | str | os.PathLike[str] | None = None, experiment_ids: Any = None,
               filter: str | None = None, columns: list[str] | None = None,  # noqa: A002
               order_by: str | list[str] | None = None, limit: int | None = None, *,
               include_deleted: bool = False) -> RunsTable:
    """The runs table's fast query; see :func:`modelyard.core.experiments.runquery.query_runs`."""
    from modelyard.core.experiments.runquery import query_runs as _query

    return _query(_store(store), experiment_ids, filter=filter, columns=columns, order_by=order_by, limit=limit,
                  include_deleted=include_deleted)


def run_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a :func:`search_runs` frame as JSON-ready dicts with nested params/metrics/tags."""
    import math

    out: list[dict[str, Any]] = []
    cols = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        rec: dict[str, Any] = {"params": {}, "metrics": {}, "tags": {}}
        for c, v in zip(cols, row):
            if c.startswith(("metrics.", "params.", "tags.")):
                kind, _, key = c.partition(".")
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                rec[kind][key] = float(v) if kind == "metrics" else v
            elif c in ("start_time", "end_time"):
                rec[c] = None if v is None or v != v else v.to_pydatetime().isoformat()
            elif c == "duration":
                rec["duration_s"] = None if v != v else float(v)
            else:
                rec[c] = None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
        out.append({k: rec[k] for k in [c for c in rec if c not in ("params", "metrics", "tags")]
                    + ["params", "metrics", "tags"]})
    return out


# =========================================================================== changing finished runs


def set_tags(run_id: str | ActiveRun, tags: Mapping[str, Any], *,
             store: Store | str | os.PathLike[str] | None = None) -> None:
    """Set (or, with a None value, remove) tags of any run, running or finished."""
    if isinstance(run_id, ActiveRun) and not run_id.ended and all(v is not None for v in tags.values()):
        run_id.set_tags(tags)
        run_id.flush()
        return
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    rows = {_check_key(k, "tag"): (None if v is None else _text(v, k, "tag")) for k, v in tags.items()}
    with _full_disk_is_an_error("the tags"), st.write() as s:
        pk = _resolve_run(s, run_id).id
        drop = [k for k, v in rows.items() if v is None]
        if drop:
            s.execute(delete(m.Tag).where(m.Tag.run_id == pk, m.Tag.key.in_(drop)))
        _upsert(st, s, m.Tag.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in rows.items() if v is not None],
                ["run_id", "key"], ["value"])
        s.execute(update(m.Run).where(m.Run.id == pk).values(heartbeat_at=m.utcnow()))


def _descendants(s: Any, pks: list[int]) -> list[int]:
    out: list[int] = []
    frontier = list(pks)
    seen = set(pks)
    while frontier:
        children = s.scalars(select(m.Run.id).where(m.Run.parent_run_id.in_(frontier))).all()
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
        out += frontier
    return out


def delete_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> int:
    """Move a run, and its nested runs, to the trash. Returns how many runs were moved."""
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    now = m.utcnow()
    with st.write() as s:
        run = _resolve_run(s, run_id)
        pks = [run.id] + _descendants(s, [run.id])
        res = s.execute(update(m.Run).where(m.Run.id.in_(pks), m.Run.deleted_at.is_(None))
                        .values(deleted_at=now, heartbeat_at=now))  # heartbeat: live views notice
        s.add(m.AuditEvent(actor=current_user(), entity_type="run", entity_id=run.uuid, action="delete",
                           from_value=None, to_value="trash", details={"runs": len(pks)}))
        return res.rowcount or 0


def restore_run(run_id: str | ActiveRun, *, store: Store | str | os.PathLike[str] | None = None) -> int:
    """Bring a run back from the trash, with the nested runs deleted along with it and its
    deleted parents. Returns how many runs were restored."""
    st = run_id.store if isinstance(run_id, ActiveRun) and store is None else _store(store)
    with st.write() as s:
        run = _resolve_run(s, run_id)
        if run.deleted_at is None:
            return 0
        when = run.deleted_at
        pks = [run.id] + [pk for pk in _descendants(s, [run.id])
                          if s.scalar(select(m.Run.deleted_at).where(m.Run.id == pk)) == when]
        parent = run.parent_run_id
        while parent is not None:  # a nested run cannot be visible under a hidden parent
            prow = s.get(m.Run, parent)
            if prow is None or prow.deleted_at is None:
                break
            pks.append(prow.id)
            parent = prow.parent_run_id
        res = s.execute(update(m.Run).where(m.Run.id.in_(pks))
                        .values(deleted_at=None, heartbeat_at=m.utcnow()))  # heartbeat: live views notice
        s.add(m.AuditEvent(actor=current_user(), entity_type="run", entity_id=run.uuid, action="restore",
                           from_value="trash", to_value=None, details={"runs": len(pks)}))
        return res.rowcount or 0


def purge_deleted(store: Store | str | os.PathLike[str] | None = None, older_than: Any = None) -> dict[str, Any]:
    """Remove runs in the trash for good, with their values and the artifact files no other
    record uses (run artifacts, dataset snapshots and splits, model versions).

    ``older_than``: a ``timedelta`` (or seconds) — only runs deleted at least that long ago.
    Runs a registered model version comes from stay in the trash (reported as ``kept``).
    Returns ``{"runs", "artifacts", "bytes", "kept"}``.
    """
    st = _store(store)
    cutoff = None
    if older_than is not None:
        delta = older_than if isinstance(older_than, dt.timedelta) else dt.timedelta(seconds=float(older_than))
        cutoff = m.utcnow() - delta
    with st.write() as s:
        q = select(m.Run.id, m.Run.uuid).where(m.Run.deleted_at.is_not(None))
        if cutoff is not None:
            q = q.where(m.Run.deleted_at <= cutoff)
        rows = s.execute(q).all()
        used = set(s.scalars(select(m.ModelVersion.run_id).where(m.ModelVersion.run_id.in_([r.id for r in rows]))))
        kept = [r.uuid for r in rows if r.id in used]
        pks = [r.id for r in rows if r.id not in used]
        if not pks:
            return {"runs": 0, "artifacts": 0, "bytes": 0, "kept": kept}
        shas = set(s.scalars(select(m.RunArtifact.sha256).where(m.RunArtifact.run_id.in_(pks))))
        # live runs nested in a purged one stay, at the top level
        s.execute(update(m.Run).where(m.Run.parent_run_id.in_(pks), m.Run.id.not_in(pks)).values(parent_run_id=None))
        for chunk in _chunks(pks, 500):
            for table in (m.Metric, m.LatestMetric, m.Param, m.Tag, m.RunArtifact):
                s.execute(delete(table).where(table.run_id.in_(chunk)))
            s.execute(update(m.Run).where(m.Run.parent_run_id.in_(chunk)).values(parent_run_id=None))
            s.execute(delete(m.Run).where(m.Run.id.in_(chunk)))
        unused: list[tuple[str, int]] = []
        if shas:
            referenced: set[str] = set()
            for col in (m.RunArtifact.sha256, m.DatasetVersion.snapshot_sha256, m.DatasetSplit.assignment_sha256,
                        m.ModelVersion.model_sha256):
                referenced |= set(s.scalars(select(col).where(col.in_(shas))))
            gone = shas - referenced
            if gone:
                unused = list(s.execute(select(m.Artifact.sha256, m.Artifact.size).where(m.Artifact.sha256.in_(gone))).all())
                s.execute(delete(m.Artifact).where(m.Artifact.sha256.in_(gone)))
        s.add(m.AuditEvent(actor=current_user(), entity_type="run", entity_id="*", action="purge",
                           details={"runs": [r.uuid for r in rows if r.id not in used], "artifacts": len(unused)}))
    for sha, _size in unused:  # after the commit: a rolled-back purge must keep its files
        st.artifacts.path(sha).unlink(missing_ok=True)
    return {"runs": len(pks), "artifacts": len(unused), "bytes": int(sum(sz for _, sz in unused)), "kept": kept}


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def list_experiments(*, store: Store | str | os.PathLike[str] | None = None, include_deleted: bool = False
                     ) -> list[ExperimentInfo]:
    """Experiments by name, with how many (not deleted) runs each has and the latest start."""
    st = _store(store)
    with st.session() as s:
        counts = {eid: (n, last) for eid, n, last in s.execute(
            select(m.Run.experiment_id, func.count(), func.max(m.Run.start_time))
            .where(m.Run.deleted_at.is_(None)).group_by(m.Run.experiment_id)).all()}
        q = select(m.Experiment).order_by(m.Experiment.name)
        if not include_deleted:
            q = q.where(m.Experiment.deleted_at.is_(None))
        exps = s.scalars(q).all()
    out = []
    for e in exps:
        n, last = counts.get(e.id, (0, None))
        if last is not None and last.tzinfo is None:  # max() over the column loses the type's processing
            last = _parse_time(last)
        elif isinstance(last, str):
            last = _parse_time(last)
        out.append(ExperimentInfo(e.id, e.name, e.description, e.created_at, int(n), last, e.deleted_at))
    return out


def _parse_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
