"""The run being recorded (:class:`ActiveRun`: buffering, flushing, ending) and :func:`start_run`."""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from modelyard.core.common.errors import JobCancelled, ModelyardError, NotFoundError
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.common.outputs import disk_full
from modelyard.core.common.procs import current_user, hostname
from modelyard.core.experiments.tracking import pgwrites
from modelyard.core.experiments.tracking.info import LoggedArtifact, RunInfo
from modelyard.core.experiments.tracking.stores import _store
from modelyard.core.experiments.tracking.values import (
    END_STATUSES,
    FLUSH_INTERVAL_S,
    FLUSH_MAX_POINTS,
    MAX_STEP,
    MAX_TIMESTAMP_MS,
    MIN_STEP,
    SOURCE_TYPES,
    _check_key,
    _encodable,
    _metric_value,
    _short,
    _step,
    _text,
    _timestamp,
)
from modelyard.core.experiments.tracking.writes import (
    _COPY_MIN_POINTS,
    _END_RUN,
    _HEARTBEAT,
    _RUNS,
    _disk_full_error,
    _full_disk_is_an_error,
    _insert_metric_points,
    _latest_where,
    _pipelined,
    _upsert,
)
from modelyard.core.store import Store
from modelyard.core.store import models as m

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
        from modelyard.core.experiments.tracking.queries import get_run

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
        from modelyard.core.experiments.tracking.queries import metric_history

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
        copy = len(flat) >= _COPY_MIN_POINTS * 5
        if not copy and store.engine.dialect.name == "postgresql":
            with store.direct() as conn:
                if pgwrites.flush(conn, pk, self.id, flat, latest, params, tags, end, now):
                    return
        with store.write() as s:
            if copy:
                _insert_metric_points(store, s, flat)  # before the pipeline: a COPY cannot be in one
            with _pipelined(store, s):
                if not copy:
                    _insert_metric_points(store, s, flat)
                _upsert(store, s, m.LatestMetric.__table__,
                        [{"run_id": pk, "key": k, "step": v[0], "timestamp": v[1], "value": v[2]}
                         for k, v in latest.items()],
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
        """Flush and record the run's end: ``succeeded``, ``failed``, ``cancelled`` or ``pruned`` (a
        search trial stopped early)."""
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
        return "script", _resolved(str(path), os.getcwd())
    return "interactive", None


@functools.lru_cache(maxsize=16)
def _resolved(path: str, cwd: str) -> str:
    """The script's absolute path (once per script and working folder: a run of thousands of
    runs resolves it once, not with three lstat calls per run)."""
    return str(Path(cwd, path).resolve())


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
    uuid = m.new_uuid()
    row = dict(uuid=uuid, parent_run_id=None, name=name, status="running", start_time=now,
               source_type=stype, source_name=sname, user=current_user(), host=hostname(), pid=os.getpid(),
               heartbeat_at=now, dataset_version_id=dataset_version_id, split_id=split_id, job_id=job_id,
               spec=spec, error=None, end_time=None, deleted_at=None)
    pk = None
    if parent_id is None and st.engine.dialect.name == "postgresql":
        pk = _start_in_one_statement(st, row, experiment, tag_rows, param_rows)
    if pk is not None:
        active = ActiveRun(st, pk, uuid, experiment)
        active._logged_params.update(param_rows)
        return active
    with _full_disk_is_an_error(f"a new run of {experiment!r}"), st.write() as s:
        if parent_id is not None:
            row["parent_run_id"] = _resolve_run(s, parent_id).id
        # the experiment's id and the new run in one statement (one round trip on a server);
        # the experiment is created first when it does not exist yet
        pk = s.connection().execute(_INSERT_RUN_IN, {**row, "experiment_name": experiment}).scalar()
        if pk is None:
            exp_id = _ensure_experiment(st, s, experiment)
            pk = s.connection().execute(_INSERT_RUN, {**row, "experiment_id": exp_id}).inserted_primary_key[0]
        _upsert(st, s, m.Tag.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                ["run_id", "key"], ["value"])
        _upsert(st, s, m.Param.__table__, [{"run_id": pk, "key": k, "value": v} for k, v in param_rows.items()],
                ["run_id", "key"], None)
    active = ActiveRun(st, pk, uuid, experiment)
    active._logged_params.update(param_rows)
    return active


def _start_in_one_statement(store: Store, row: dict[str, Any], experiment: str, tags: dict[str, str],
                            params: dict[str, str]) -> int | None:
    """PostgreSQL: the new run as one statement (pgwrites.start); its id, or None when the server
    refused something (a viewer's login, a missing dataset version, a concurrent first run of
    the same new experiment...): nothing was written, and the caller takes the general way, which
    raises the store's error for what was refused."""
    from sqlalchemy.exc import DBAPIError

    try:
        with _full_disk_is_an_error(f"a new run of {experiment!r}"), store.direct() as conn:
            return pgwrites.start(conn, row, experiment, tags, params)
    except DBAPIError:
        return None


_INSERT_RUN = insert(_RUNS)
_RUN_COLUMNS = ("uuid", "parent_run_id", "name", "status", "start_time", "source_type", "source_name", "user", "host",
                "pid", "heartbeat_at", "dataset_version_id", "split_id", "job_id", "spec", "error", "end_time",
                "deleted_at")
_INSERT_RUN_IN = (insert(_RUNS).from_select(
    ["experiment_id", *_RUN_COLUMNS],
    select(m.Experiment.__table__.c.id, *(bindparam(c, type_=_RUNS.c[c].type) for c in _RUN_COLUMNS))
    .where(m.Experiment.__table__.c.name == bindparam("experiment_name")))
    .returning(_RUNS.c.id))
_EXPERIMENT_ID = select(m.Experiment.__table__.c.id).where(m.Experiment.__table__.c.name == bindparam("name"))


def _ensure_experiment(store: Store, s: Any, name: str) -> int:
    conn = s.connection()
    exp_id = conn.execute(_EXPERIMENT_ID, {"name": name}).scalar()
    if exp_id is not None:
        return exp_id
    _upsert(store, s, m.Experiment.__table__, [{"name": name, "created_at": m.utcnow()}], ["name"], None)
    return conn.execute(_EXPERIMENT_ID, {"name": name}).scalar()


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
