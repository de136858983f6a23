"""Live monitoring: a served model's prediction log (core/serving/predlog.py) read back in windows.

::

    from modelyard.core.monitoring import live

    report = live.live_report(store, "churn", window="hour")        # or "day", or 10_000 (rows)
    report["windows"][-1]    # requests/s, error rate, latency p50/p99, versions, drift, performance
    report["routes"]         # champion vs challenger (and shadow) on the same traffic
    report["alert"]          # the "N of the last M windows" rule: {"n", "m", "alerting", "windows", ...}
    live.add_labels(store, "labels.csv", key="id")      # labels that arrived later, joined by key
    live.check_alerts(store, "churn")                    # record + notify + trigger when the rule holds

**Reading** streams over the segments with pyarrow, :data:`BATCH_ROWS` rows at a time, into the
fixed-size tallies of :mod:`.windows`: memory does not grow with the log (10,000,000 rows: see
tests/benchmarks/_live_parts.py).

**Labels** (``modelyard monitor labels FILE --key id``) are stored beside the log as files of kind
``labels`` (a key and a label per row; the segments are not rewritten) and joined when windows are
read: a logged row's key is its ``key`` (what the server was given), else its input column of the
labels' key name. A later label of a key replaces an earlier one. Realised performance of a
window: the share of labelled rows whose prediction equals the label (accuracy) and the mean
absolute error where both are numbers.

**Champion vs challenger**: rows carry the route that answered (``champion``, ``challenger`` under a
canary, ``shadow`` for the challenger's answers a client never saw). Per route: rows, latency,
error rate and realised performance; with a shadow, the agreement of the two answers to the same
request (paired by the row's key, else by the request's ``at`` and the row's number; pairs are
found within one read batch of a segment, where a request's two answers are logged together).

**Alerts**: when the rule holds at the newest window, :func:`check_alerts` records a ``live_drift``
audit event of the registered model (once per window; its id is what a pipeline's ``on:
live_drift`` trigger fires for), and notifies through core/notify (event ``live.drift``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.monitoring.windows import (
    LATENCY_EDGES,
    DriftReference,
    RouteTally,
    Window,
    WindowSpec,
    alert_rule,
    parse_window,
    route_tally,
)
from modelyard.core.serving import predlog
from modelyard.core.store import Store

BATCH_ROWS = 65_536
DEFAULT_ALERT = (2, 3)  # 2 of the last 3 windows
ALERT_EVENT = "live_drift"  # the audit action (what an ``on: live_drift`` trigger fires for)
NOTIFY_EVENT = "live.drift"  # the notification's event (as ``check.drift`` for drift checks)
LABEL_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".jsonl", ".json", ".ndjson")
Progress = Callable[[float, str], None]


# =========================================================================== labels


def _only_logged_model(store: Store, model: str | None) -> str:
    if model:
        return model
    names = predlog.logged_models(store)
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFoundError("No model has a prediction log in this store yet.",
                            hint="Serve a model with --log (or stream with --log) first.")
    raise ModelyardError(f"Several models have a prediction log ({', '.join(names)}); say which with --model.",
                         hint=f"Add --model {names[0]} (or another of them).")


def _read_labels_file(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise NotFoundError(f"There is no labels file {path}.", hint="Give the path of a CSV, Parquet or JSON Lines file.")
    if suffix not in LABEL_SUFFIXES:
        raise ModelyardError(f"{path.name}: labels are read from CSV, TSV, Parquet or JSON Lines files, not {suffix or 'a file without a suffix'}.",
                             hint="Save the labels as CSV (a key column and a label column).")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            try:
                return pd.read_json(path, lines=True)
            except ValueError:
                return pd.read_json(path)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else None, engine="python")
    except (OSError, ValueError) as exc:
        raise ModelyardError(f"Cannot read the labels file {path.name}: {exc}.",
                             hint="Check that it is a CSV, Parquet or JSON Lines file with a header.") from None


def _target_name(store: Store, name: str) -> str | None:
    info = _served_version(store, name)
    return ((info.signature or {}).get("target") or {}).get("name") if info is not None else None


def _served_version(store: Store, name: str) -> Any:
    from modelyard.core.registry import versions as registry

    for ref in (f"{name}@champion", name):
        try:
            return registry.get_version(store, ref)
        except ModelyardError:
            continue
    return None


def add_labels(store: Store, path: str | Path, *, key: str, model: str | None = None,
               label: str | None = None) -> dict[str, Any]:
    """Store the labels of ``path`` (columns ``key`` and ``label``: by default the model's target
    name, else ``label``) beside the model's log, and say how many logged rows they match."""
    import pyarrow as pa

    path = Path(path).expanduser()
    name = _only_logged_model(store, model)
    frame = _read_labels_file(path)
    columns = [str(c) for c in frame.columns]
    if key not in columns:
        raise ModelyardError(f"{path.name} has no key column {key!r}; its columns are {', '.join(columns)}.",
                             hint="Give --key the column that names each prediction (the id sent with it).")
    if label is None:
        target = _target_name(store, name)
        label = next((c for c in (target, "label") if c and c in columns and c != key), None)
        if label is None:
            others = [c for c in columns if c != key]
            if len(others) != 1:
                raise ModelyardError(f"{path.name}: which column is the label? Its columns are {', '.join(columns)}.",
                                     hint=f"Add --label COLUMN (the model's target is {target or 'not recorded'}).")
            label = others[0]
    elif label not in columns:
        raise ModelyardError(f"{path.name} has no label column {label!r}; its columns are {', '.join(columns)}.",
                             hint="Give --label the column that holds the true outcome.")
    keys = predlog.value_texts(frame[key].to_numpy())
    texts = predlog.value_texts(frame[label].to_numpy())
    nums = predlog.value_numbers(frame[label].to_numpy())
    nums = np.full(len(frame), np.nan) if nums is None else nums
    keep = [i for i, (k, t) in enumerate(zip(keys, texts, strict=True)) if k is not None and t is not None]
    if not keep:
        raise ModelyardError(f"{path.name} has no row with both a key ({key}) and a label ({label}).",
                             hint="Check the columns given to --key and --label.")
    now = dt.datetime.now(dt.UTC).timestamp()
    table = pa.table({"key": pa.array([keys[i] for i in keep], type=pa.string()),
                      "label": pa.array([texts[i] for i in keep], type=pa.string()),
                      "label_value": pa.array(nums[keep], type=pa.float64())})
    model_id = _model_id(store, name)
    file_id = predlog.write_log_file(store, model_id, predlog.KIND_LABELS, table,
                                     {"key": key, "label": label, "source": str(path), "first_at": now,
                                      "last_at": now, "skipped": len(frame) - len(keep)})
    wanted = set(table.column("key").to_pylist())
    matched = _count_matching(store, name, wanted, key)
    return {"model": name, "file": str(path), "labels": len(keep), "skipped": len(frame) - len(keep),
            "matched_rows": matched, "key": key, "label": label, "id": file_id}


def _model_id(store: Store, name: str) -> int:
    from modelyard.core.registry.versions import get_model

    return get_model(store, name).id


def _count_matching(store: Store, name: str, wanted: set[str], key: str) -> int:
    import pyarrow.parquet as pq

    matched = 0
    for f in predlog.log_files(store, name):
        pf = pq.ParquetFile(f["path"])
        cols = [c for c in ("key", predlog.INPUT_PREFIX + key) if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=cols):
            keys = _batch_keys(batch, key)
            matched += sum(1 for k in keys if k in wanted)
    return matched


def _batch_keys(batch: Any, key_column: str | None) -> list[str | None]:
    names = batch.schema.names
    keys = batch.column(names.index("key")).to_pylist() if "key" in names else [None] * batch.num_rows
    fallback = predlog.INPUT_PREFIX + key_column if key_column else None
    if fallback and fallback in names and any(k is None for k in keys):
        other = predlog.value_texts(batch.column(names.index(fallback)).to_numpy(zero_copy_only=False))
        keys = [k if k is not None else o for k, o in zip(keys, other, strict=True)]
    return keys


class Labels:
    """Every label joined so far: key -> (label text, label number)."""

    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.value: dict[str, float] = {}
        self.key_columns: list[str] = []
        self.files = 0

    @classmethod
    def load(cls, store: Store, name: str) -> Labels:
        import pyarrow.parquet as pq

        out = cls()
        for f in predlog.log_files(store, name, predlog.KIND_LABELS):
            t = pq.read_table(f["path"])
            keys = t.column("key").to_pylist()
            out.text.update(zip(keys, t.column("label").to_pylist(), strict=True))
            for k, v in zip(keys, t.column("label_value").to_pylist(), strict=True):
                if v is not None and math.isfinite(v):
                    out.value[k] = v
                else:
                    out.value.pop(k, None)
            col = f["details"].get("key")
            if col and col not in out.key_columns:
                out.key_columns.append(col)
            out.files += 1
        return out

    def __bool__(self) -> bool:
        return bool(self.text)

    def join(self, batch: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(labelled, correct, numeric-labelled, absolute error) per row of a segment batch."""
        keys = _batch_keys(batch, self.key_columns[0] if self.key_columns else None)
        for extra in self.key_columns[1:]:
            more = _batch_keys(batch, extra)
            keys = [k if k is not None and k in self.text else o for k, o in zip(keys, more, strict=True)]
        n = len(keys)
        labels = np.array([self.text.get(k) if k is not None else None for k in keys], dtype=object)
        labelled = np.array([v is not None for v in labels], dtype=bool)
        preds = np.array(batch.column(batch.schema.names.index("prediction")).to_pylist(), dtype=object)
        correct = labelled & (preds == labels)
        values = np.array([self.value.get(k, np.nan) if k is not None else np.nan for k in keys], dtype=np.float64)
        pv = batch.column(batch.schema.names.index("prediction_value")).to_numpy(zero_copy_only=False)
        err = np.abs(np.asarray(pv, dtype=np.float64) - values) if n else np.zeros(0)
        numeric = labelled & np.isfinite(err)
        return labelled, correct, numeric, np.where(numeric, err, 0.0)


# =========================================================================== windows


def _reference(store: Store, version_ref: str, config: dict[str, Any]) -> DriftReference | str:
    from modelyard.core.monitoring.drift.baseline import _load_reference
    from modelyard.core.registry import versions as registry

    try:
        info = registry.get_version(store, version_ref)
        return DriftReference.of(version_ref, _load_reference(store, info, lambda *_: None), config)
    except ModelyardError as exc:
        return exc.message


def live_report(store: Store, name: str, *, window: str | int | None = "hour",
                alert: tuple[int, int] = DEFAULT_ALERT, last: int | None = None, drift: bool = True,
                progress: Progress | None = None) -> dict[str, Any]:
    """Everything the Live view and ``modelyard monitor live`` show, read from the log in windows
    (oldest first; ``last`` keeps only the newest that many)."""
    import pyarrow.parquet as pq

    from modelyard.core.monitoring.drift.config import get_config

    spec = parse_window(window)
    report = progress or (lambda *_: None)
    files = predlog.log_files(store, name)
    config = get_config(store, name) if drift else {}
    labels = Labels.load(store, name)
    state = _State(spec, store, config, labels, drift)
    total_rows = sum(f["rows"] for f in files) or 1
    done = 0
    for f in files:
        pf = pq.ParquetFile(f["path"])
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            state.add(batch)
            done += batch.num_rows
            report(min(done / total_rows, 1.0), f"Read {done:,} logged rows")
    ordered = [w for _, w in sorted(state.windows.items())]
    windows = [w.result(spec, state.references, state.version_refs, newest=i == len(ordered) - 1)
               for i, w in enumerate(ordered)]
    rule = alert_rule(windows, n=alert[0], m=alert[1])
    info = _served_version(store, name)
    task = (((info.signature or {}).get("target") or {}).get("task")) if info is not None else None
    routes = {k: t.result() for k, t in sorted(state.routes.items())}
    out = {"model": name, "window": spec.text, "window_label": spec.describe(), "task": task,
           "served": info.ref if info is not None else None, "files": len(files), "rows": state.rows,
           "labels": {"keys": len(labels.text), "files": labels.files, "matched_rows": state.labelled},
           "routes": routes, "agreement": ({"pairs": state.pairs, "share": state.agree / state.pairs}
                                           if state.pairs else None),
           "versions": dict(state.versions), "alert": rule, "windows_total": len(windows)}
    if last is not None and len(windows) > last:
        cut = len(windows) - last
        windows = windows[cut:]
        rule = {**rule, "windows": [i - cut for i in rule["windows"] if i >= cut],
                "first": None if rule["first"] is None or rule["first"] < cut else rule["first"] - cut}
        out["alert"] = rule
    out["windows"] = windows
    return out


class _State:
    """The running tallies of a read of the log (one instance per :func:`live_report`)."""

    def __init__(self, spec: WindowSpec, store: Store, config: dict[str, Any], labels: Labels, drift: bool) -> None:
        self.spec, self.store, self.config, self.labels, self.drift = spec, store, config, labels, drift
        self.windows: dict[int, Window] = {}
        self.references: dict[int, DriftReference | str | None] = {}
        self.version_refs: dict[int, str] = {}
        self.routes: dict[str, RouteTally] = {}
        self.versions: dict[str, int] = {}
        self.offset = 0
        self.rows = 0
        self.labelled = 0
        self.pairs = 0
        self.agree = 0

    def _reference_of(self, vid: int) -> DriftReference | str | None:
        if vid not in self.references:
            self.references[vid] = _reference(self.store, self.version_refs[vid], self.config)
        return self.references[vid]

    def add(self, batch: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        if n == 0:
            return
        col = batch.column
        names = batch.schema.names
        at = col(names.index("at")).to_numpy(zero_copy_only=False)
        if self.spec.kind == "time":
            wid = np.floor(at / self.spec.size).astype(np.int64)
        else:
            wid = (self.offset + np.arange(n, dtype=np.int64)) // int(self.spec.size)
        self.offset += n
        self.rows += n
        enc = pc.dictionary_encode(col(names.index("route")))
        rcode = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        rnames = enc.dictionary.to_pylist()
        shadow = rnames.index("shadow") if "shadow" in rnames else -1
        vid = col(names.index("version_id")).to_numpy(zero_copy_only=False)
        vref = col(names.index("version_ref"))
        for v in np.unique(vid).tolist():
            if v not in self.version_refs:
                self.version_refs[v] = vref[int(np.flatnonzero(vid == v)[0])].as_py()
        first_row = col(names.index("row")).to_numpy(zero_copy_only=False) == 0
        status = col(names.index("status")).to_numpy(zero_copy_only=False)
        lat_bin = np.searchsorted(LATENCY_EDGES, col(names.index("latency_s")).to_numpy(zero_copy_only=False))
        labelled = correct = numeric = abserr = None
        if self.labels:
            labelled, correct, numeric, abserr = self.labels.join(batch)
            served_rows = rcode != shadow
            self.labelled += int((labelled & served_rows).sum())
        preds = col(names.index("prediction")).to_pylist() if shadow >= 0 else None
        keys = col(names.index("key")).to_pylist() if shadow >= 0 else None
        order = np.argsort(wid, kind="stable")
        bounds = np.flatnonzero(np.diff(wid[order])) + 1
        for idx in np.split(order, bounds):
            w = self.windows.get(int(wid[idx[0]]))
            if w is None:
                w = self.windows[int(wid[idx[0]])] = Window(int(wid[idx[0]]))
            w.first_at = min(w.first_at, float(at[idx].min()))
            w.last_at = max(w.last_at, float(at[idx].max()))
            for r in np.unique(rcode[idx]).tolist():
                sub = idx[rcode[idx] == r]
                for t in (w.route(rnames[r]), route_tally(self.routes, rnames[r])):
                    self._tally(t, sub, first_row, status, lat_bin, labelled, correct, numeric, abserr)
            served = idx[rcode[idx] != shadow]
            for v, count in zip(*np.unique(vid[served], return_counts=True), strict=True):
                ref = self.version_refs[int(v)]
                w.versions[ref] += int(count)
                self.versions[ref] = self.versions.get(ref, 0) + int(count)
            if self.drift:
                ok = served[status[served] < 400]
                for v in np.unique(vid[ok]).tolist():
                    sub = ok[vid[ok] == v]
                    w.inputs_by_version[v] += int(sub.size)
                    ref = self._reference_of(v)
                    if not isinstance(ref, DriftReference):
                        continue
                    bins = w.bins.setdefault(v, {})
                    take = pa.array(sub)
                    for fname, fb in ref.features.items():
                        cname = predlog.INPUT_PREFIX + fname
                        if cname in names:
                            counts = fb.count(col(names.index(cname)).take(take))
                            bins[fname] = bins[fname] + counts if fname in bins else counts
            if preds is not None:
                self._agreement(w, idx, rcode, shadow, rnames, at, col(names.index("row")), preds, keys)

    @staticmethod
    def _tally(t: RouteTally, sub: np.ndarray, first_row: np.ndarray, status: np.ndarray, lat_bin: np.ndarray,
               labelled: Any, correct: Any, numeric: Any, abserr: Any) -> None:
        t.rows += int(sub.size)
        req = sub[first_row[sub]]
        t.requests += int(req.size)
        t.errors += int((status[req] >= 400).sum())
        t.latency += np.bincount(lat_bin[req], minlength=t.latency.size)[:t.latency.size]
        if labelled is not None:
            t.labelled += int(labelled[sub].sum())
            t.correct += int(correct[sub].sum())
            t.numeric_labelled += int(numeric[sub].sum())
            t.abs_error += float(abserr[sub].sum())

    def _agreement(self, w: Window, idx: np.ndarray, rcode: np.ndarray, shadow: int, rnames: list[str],
                   at: np.ndarray, rows: Any, preds: list[Any], keys: list[Any]) -> None:
        """Pair each shadow answer with the champion's answer to the same row: by the row's key when
        it has one, else by the request's ``at`` and the row's number."""
        champion = rnames.index("champion") if "champion" in rnames else -1
        if champion < 0:
            return
        row_no = rows.to_numpy(zero_copy_only=False)

        def pair_key(i: int) -> Any:
            return ("k", keys[i]) if keys[i] is not None else ("t", float(at[i]), int(row_no[i]))

        answers = {pair_key(i): preds[i] for i in idx[rcode[idx] == champion].tolist()}
        for i in idx[rcode[idx] == shadow].tolist():
            mine = answers.get(pair_key(i))
            if mine is None:
                continue
            w.pairs += 1
            self.pairs += 1
            if mine == preds[i]:
                w.agree += 1
                self.agree += 1


# =========================================================================== alerts


def newest_log_file(store: Store, name: str) -> int | None:
    """The id of the newest file (segment or labels) of the model's log: a cheap "did it change?"."""
    from sqlalchemy import func, select

    from modelyard.core.store import models as m

    with store.session() as s:
        newest = s.execute(select(func.max(m.PredictionLogFile.id)).join(
            m.RegisteredModel, m.RegisteredModel.id == m.PredictionLogFile.model_id)
            .where(m.RegisteredModel.name == name)).scalar()
    return int(newest) if newest is not None else None


def check_new_alerts(store: Store, models: list[str], seen: dict[str, int]) -> list[dict[str, Any]]:
    """:func:`check_alerts` (hourly windows, the default rule) for each of ``models`` whose log has a
    file newer than ``seen`` remembers (updated); the alerts recorded."""
    out = []
    for name in models:
        newest = newest_log_file(store, name)
        if newest is None or seen.get(name) == newest:
            continue
        seen[name] = int(newest)
        fired = check_alerts(store, name)
        if fired is not None:
            out.append(fired)
    return out


def check_alerts(store: Store, name: str, *, window: str | int | None = "hour", alert: tuple[int, int] = DEFAULT_ALERT,
                 report: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """When the alert rule holds at the newest window and was not alerted for that window yet:
    record a ``live_drift`` audit event, notify, and return what was recorded; else None."""
    from sqlalchemy import select

    from modelyard.core.notify import notify
    from modelyard.core.registry.refs import ENTITY
    from modelyard.core.store import models as m
    from modelyard.core.store import records

    rep = report or live_report(store, name, window=window, alert=alert)
    rule = rep["alert"]
    if not rule["alerting"] or not rep["windows"]:
        return None
    w = rep["windows"][-1]
    fire_key = f"{rep['window']}:{w['index']}"
    model_id = _model_id(store, name)
    drift = w.get("drift") or {}
    details = {"window": rep["window"], "key": fire_key, "start": w["start"], "end": w["end"], "rows": w["rows"],
               "drifted": drift.get("drifted") or [], "share": drift.get("share"), "version": drift.get("version"),
               "rule": f"{rule['n']} of the last {rule['m']} windows"}
    with store.write() as s:
        seen = s.execute(select(m.AuditEvent.to_value).where(
            m.AuditEvent.entity_type == ENTITY, m.AuditEvent.entity_id == str(model_id),
            m.AuditEvent.action == ALERT_EVENT).order_by(m.AuditEvent.id.desc()).limit(500)).scalars().all()
        if fire_key in seen:
            return None
        row = records.audit(s, ENTITY, model_id, ALERT_EVENT, to_value=fire_key, details=details)
        s.flush()
        alert_id = int(row.id)
    features = ", ".join(details["drifted"][:5]) or "its inputs"
    subject = (f"{name}: live input drift in {rule['drifted_of_last']} of the last {rule['m']} windows "
               f"({rep['window_label']} each)")
    body = (f"The inputs {name} was served drifted from its training reference ({features}) in "
            f"{rule['drifted_of_last']} of the last {rule['m']} windows; the newest starts {w['start']}.\n"
            f"See Monitoring › Live, or run: modelyard monitor live {name} --window {rep['window']}")
    notify(store, NOTIFY_EVENT, subject=subject, body=body, payload={"model": name, "alert_id": alert_id, **details})
    return {"alert_id": alert_id, "model": name, **details}
