"""Streaming scoring: one prediction per event, for events that arrive as JSON lines.

::

    from modelyard.core.serving.streaming import StreamScorer, run_stream
    from modelyard.core.serving.follow import FollowSource, PipeSource

    summary = run_stream(store, "churn@champion", PipeSource(0), sys.stdout.buffer)
    summary = run_stream(store, "churn@champion", FollowSource("events.jsonl"), out,
                         lookup=FeatureLookup(store, "customers", "customer_id"))

Each line is one event, a JSON object with the model's input columns (and its id, ``id_field``,
default ``id``). For each event one JSON line is written, in the order the events came:

* ``{"id": <the event's id>, "prediction": ..., "proba_<class>": ...}`` — the same columns as
  batch scoring (:mod:`.scoring`), the same values (the model and its checks are the same);
  an event without the id field gets ``"id": null`` and ``"line": N``;
* ``{"line": N, "id": ..., "error": "...", "field": "<column>"|null}`` for a line that is not a
  JSON object, misses a column the model needs, holds a value of the wrong type, or (with a
  feature lookup) has a key the lookup table does not hold. The stream goes on.

Line numbers count every line read (blank lines too, which are skipped), from 1, across the
rotations of a followed file.

**Micro-batching.** The lines that are already waiting when the stream reads (up to ``batch``)
are checked and scored at once: a model scores 256 rows in little more time than one. An event
arriving alone is scored alone, at once. Each event is checked by itself (a missing column is an
error for that event only, whatever else arrived with it), so the output does not depend on how
the lines were batched.

**Memory** stays flat: nothing is kept per event but a bounded window of latencies
(:class:`StreamStats`), and a chunk of lines is let go once its predictions are written.

**Latency** of an event is from the moment its line was read to the moment its prediction was
written (time waiting behind a batch included).

**The model** is loaded once (:func:`~.server.load_version`: the fast path for Modelyard's own
pipelines, checked against the pipeline; for a logistic regression, its predictions and
probabilities from one matrix product, :mod:`.linear_head`, checked to be equal to the
estimator's). The stream scores the version the reference named when it started.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.serving.metrics import percentile_ms

if TYPE_CHECKING:
    from modelyard.core.serving.lookup import FeatureLookup
    from modelyard.core.serving.server import LoadedModel
    from modelyard.core.store import Store

__all__ = ["DEFAULT_BATCH", "StreamScorer", "StreamStats", "run_stream"]

DEFAULT_BATCH = 256
LATENCY_WINDOW = 10_000  # events whose latency the percentiles are over
SERIES_SECONDS = 600  # per-second counts kept for the rate chart
REFRESH_LOOKUP_S = 2.0  # how often a lookup of a dataset's latest version looks for a newer one


# =========================================================================== statistics


class StreamStats:
    """Counts, a window of latencies and per-second series; thread-safe (the window reads it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.lines = 0
        self.events = 0
        self.predictions = 0
        self.errors = 0
        self.batches = 0
        self._latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        # one entry per second that saw events: (second since start, events, sum of latency, max latency)
        self._series: deque[list[float]] = deque(maxlen=SERIES_SECONDS)

    def record(self, *, lines: int, events: int, predictions: int, errors: int, latencies: Sequence[float]) -> None:
        now = time.monotonic()
        second = int(now - self.started)
        with self._lock:
            self.lines += lines
            self.events += events
            self.predictions += predictions
            self.errors += errors
            self.batches += 1
            self._latency.extend(latencies)
            if latencies:
                if not self._series or self._series[-1][0] != second:
                    self._series.append([second, 0, 0.0, 0.0])
                entry = self._series[-1]
                entry[1] += len(latencies)
                entry[2] += sum(latencies)
                entry[3] = max(entry[3], max(latencies))

    def snapshot(self, *, series: bool = False) -> dict[str, Any]:
        with self._lock:
            lat = sorted(self._latency)
            out: dict[str, Any] = {"lines": self.lines, "events": self.events, "predictions": self.predictions,
                                   "errors": self.errors, "batches": self.batches}
            rows = [list(e) for e in self._series] if series else None
        elapsed = time.monotonic() - self.started

        out["latency_ms"] = {"p50": percentile_ms(lat, 0.5), "p99": percentile_ms(lat, 0.99),
                             "max": round(lat[-1] * 1000, 3) if lat else None,
                             "window": len(lat)}
        out["elapsed_s"] = round(elapsed, 3)
        out["events_per_s"] = round(out["events"] / elapsed, 1) if elapsed > 0 else None
        if rows is not None:  # [second, events, mean latency ms, max latency ms]
            out["series"] = [[int(s), int(n), round(total / n * 1000, 3) if n else None, round(mx * 1000, 3)]
                             for s, n, total, mx in rows]
        return out


# =========================================================================== scoring lines


def _jsonable(value: Any) -> Any:
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        value = item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return json.dumps(doc, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return json.dumps({k: _jsonable(v) for k, v in doc.items()}, allow_nan=False, default=str,
                          ensure_ascii=False).encode()


def _error_doc(line: int, event_id: Any, message: str, field: str | None, hint: str | None = None) -> dict[str, Any]:
    doc = {"line": line, "id": event_id, "error": message, "field": field}
    if hint:
        doc["hint"] = hint
    return doc


class StreamScorer:
    """Scores chunks of JSON lines with one loaded model (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, *, id_field: str = "id", lookup: FeatureLookup | None = None,
                 strict: bool = False) -> None:
        from modelyard.core.serving.scoring import PREDICTION, proba_column

        self.loaded = loaded
        self.predictor = loaded.predictor
        self.spec = self.predictor.spec
        self.id_field = id_field
        self.lookup = lookup
        self.strict = strict
        self.prediction_key = PREDICTION
        self.proba_keys = [proba_column(c) for c in self.predictor.classes] if self.predictor.has_proba else []
        self._needed_for: Any = object()
        self._needed: list[str] | None = None
        # (inputs, outputs, keys, status) of the last chunk, for a prediction log (None: not kept)
        self.to_log: list[tuple[Any, Any, list[Any], int]] | None = None
        self.head = None  # the estimator's last step from one matrix product, when exact (.linear_head)
        if loaded.fast is not None and self.proba_keys:
            from modelyard.core.serving.linear_head import logistic_head

            estimator = loaded.fast.estimator
            self.head = logistic_head(estimator, int(getattr(estimator, "n_features_in_", 0) or 0))

    @property
    def needed(self) -> list[str] | None:
        """What each event must carry itself: the model's columns the lookup's table does not
        give, and the lookup's key (None: a model without named inputs takes what is sent)."""
        lookup = self.lookup
        version = lookup.version_id if lookup is not None else None
        if version != self._needed_for:  # a swapped lookup table may hold other columns
            names = self.spec.names if self.spec.columns is not None else None
            needed = None
            if names is not None:
                looked_up = set(lookup.columns) if lookup is not None else set()
                needed = [n for n in names if n not in looked_up]
                if lookup is not None and lookup.key not in needed:
                    needed.append(lookup.key)
            self._needed, self._needed_for = needed, version
        return self._needed

    # ------------------------------------------------------------------ parsing
    def _parse(self, number: int, raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(event, None) or (None, error document)."""
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            why = getattr(exc, "msg", None) or str(exc)
            col = getattr(exc, "colno", None)
            where = f" (column {col})" if col else ""
            return None, _error_doc(number, None, f"Line {number} is not JSON: {why}{where}.", None,
                                    "Write one JSON object per line, such as {\"id\": 1, \"age\": 42}.")
        if not isinstance(event, dict):
            return None, _error_doc(number, None, f"Line {number} holds a JSON {type(event).__name__}, not an object.",
                                    None, "Write one JSON object per line, such as {\"id\": 1, \"age\": 42}.")
        needed = self.needed
        if needed:
            missing = [c for c in needed if c not in event]
            if missing:
                shown = ", ".join(f"'{c}'" for c in missing[:10]) + (", ..." if len(missing) > 10 else "")
                more = ", ..." if len(needed) > 10 else ""
                return None, _error_doc(number, event.get(self.id_field),
                                        f"Line {number} misses the field(s) the model needs: {shown}.", missing[0],
                                        f"Each event needs {', '.join(repr(c) for c in needed[:10])}{more}.")
        return event, None

    def _columns(self, events: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
        needed = self.needed
        if needed is not None:
            names: Iterable[str] = needed
        else:
            seen: dict[str, None] = {}
            for e in events:
                seen.update(dict.fromkeys(e))
            seen.pop(self.id_field, None)
            names = seen
        return {n: [e.get(n) for e in events] for n in names}

    # ------------------------------------------------------------------ scoring
    def _predict(self, columns: Mapping[str, Any], row_offset: int) -> tuple[Any, Any, Any]:
        """(predictions, probabilities or None, the validated input); raises ModelyardError for bad input."""
        if self.lookup is not None:
            columns = self.lookup.enrich_columns(columns)
        v = self.predictor.validate(columns, strict=self.strict, row_offset=row_offset)
        fast = self.loaded.fast
        if fast is not None:
            try:
                X = fast.features(v.columns, v.n_rows)
                if self.head is not None:
                    pred, probs = self.head.predict_both(X)
                    return pred, probs, v
                pred = fast.estimator.predict(X)
                probs = fast.estimator.predict_proba(X) if self.proba_keys else None
                return pred, probs, v
            except Exception:  # noqa: BLE001, S110 - the pipeline decides whether the input is bad
                pass
        pred, probs = self.predictor.predict_validated(v, proba=bool(self.proba_keys))
        return pred, probs, v

    def score(self, chunk: Sequence[tuple[int, bytes]]) -> tuple[list[bytes], int, int]:
        """(one output line per event, predictions, errors) of ``(line number, raw line)`` pairs."""
        if self.to_log is not None:
            self.to_log = []
        docs: list[dict[str, Any] | None] = []
        good: list[tuple[int, int, dict[str, Any]]] = []  # (position in docs, line, event)
        for number, raw in chunk:
            if not raw.strip():
                continue
            event, error = self._parse(number, raw)
            if error is not None:
                docs.append(error)
                if self.to_log is not None:
                    self.to_log.append((None, None, [error.get("id")], 400))
            else:
                good.append((len(docs), number, event))  # type: ignore[arg-type]
                docs.append(None)
        if good:
            self._score_events(good, docs)
        out = [_dumps(d) for d in docs if d is not None]
        errors = sum(1 for d in docs if d is not None and "error" in d)
        return out, len(docs) - errors, errors

    def _score_events(self, good: list[tuple[int, int, dict[str, Any]]], docs: list[dict[str, Any] | None]) -> None:
        events = [e for _, _, e in good]
        try:
            pred, probs, v = self._predict(self._columns(events), 0)
        except ModelyardError:
            for item in good:  # which of them is it? each by itself, with its line number in the message
                self._score_one(item, docs)
            return
        self._fill(good, pred, probs, docs)
        self._keep(good, v, pred)

    def _keep(self, items: Sequence[tuple[int, int, dict[str, Any]]], v: Any, pred: Any) -> None:
        if self.to_log is not None:
            self.to_log.append((v.columns, pred, [e.get(self.id_field) for _, _, e in items], 200))

    def _score_one(self, item: tuple[int, int, dict[str, Any]], docs: list[dict[str, Any] | None]) -> None:
        pos, number, event = item
        try:
            pred, probs, v = self._predict(self._columns([event]), number - 1)  # "row N" is line N
        except ModelyardError as exc:
            fields = list(getattr(exc, "fields", []) or [])
            docs[pos] = _error_doc(number, event.get(self.id_field), exc.message, fields[0] if fields else None,
                                   exc.hint)
            if self.to_log is not None:
                self.to_log.append((None, None, [event.get(self.id_field)], 400))
            return
        self._fill([item], pred, probs, docs)
        self._keep([item], v, pred)

    def _fill(self, items: Sequence[tuple[int, int, dict[str, Any]]], pred: Any, probs: Any,
              docs: list[dict[str, Any] | None]) -> None:
        import numpy as np

        pred = np.asarray(pred)
        values = pred.tolist() if pred.dtype.kind != "M" else [None if np.isnat(x) else str(x) for x in pred]
        prob_rows = np.asarray(probs).tolist() if probs is not None else None
        key, id_field, proba_keys = self.prediction_key, self.id_field, self.proba_keys
        for i, (pos, number, event) in enumerate(items):
            doc: dict[str, Any] = {"id": event.get(id_field)}
            if id_field not in event:
                doc["line"] = number
            doc[key] = values[i]
            if prob_rows is not None:
                doc.update(zip(proba_keys, prob_rows[i], strict=True))
            docs[pos] = doc


# =========================================================================== the loop


def _chunks(source: Iterable[list[bytes]], batch: int) -> Iterator[tuple[float, list[tuple[int, bytes]]]]:
    """(when it was read, up to ``batch`` numbered lines) from the source's chunks of lines."""
    number = 0
    for lines in source:
        read_at = time.perf_counter()
        numbered = []
        for raw in lines:
            number += 1
            numbered.append((number, raw))
        for i in range(0, len(numbered), batch):
            yield read_at, numbered[i:i + batch]


def run_stream(store: Store | None, ref: str | None, source: Iterable[list[bytes]], out: IO[bytes], *,
               loaded: LoadedModel | None = None, id_field: str = "id", batch: int = DEFAULT_BATCH,
               lookup: FeatureLookup | None = None, strict: bool = False, stats: StreamStats | None = None,
               record: bool = True, on_started: Callable[[dict[str, Any]], None] | None = None,
               on_error_line: Callable[[bytes], None] | None = None,
               refresh_lookup_s: float = REFRESH_LOOKUP_S, prediction_log: Any = None) -> dict[str, Any]:
    """Score every line of ``source`` with ``ref`` (or ``loaded``), writing one line per event to
    ``out`` (flushed after each batch); returns the summary (:meth:`StreamStats.snapshot` plus
    ``model``, ``model_version_id``, ``lookup``). ``on_error_line`` also gets each error line.

    With ``lookup``: its lineage link from the model version is recorded (``record``), and a lookup
    of a dataset's latest version is refreshed every ``refresh_lookup_s`` on a thread of its own
    (the new table is swapped in between two batches; no event fails).

    With ``prediction_log`` (:class:`~.predlog.PredictionLog`): after each batch is written, its
    scored events (one request per batch, keyed by the event ids) and each refused event (status
    400) are handed to the log — a queue put, never a wait; the log counts what it drops. The
    caller closes the log."""
    if batch < 1:
        raise ModelyardError(f"The batch size must be at least 1, not {batch}.", hint="Give --batch 1 or more.")
    if loaded is None:
        if store is None or ref is None:
            raise ModelyardError("Name the model version to score with.", hint="e.g. churn@champion")
        from modelyard.core.serving.server import load_version

        loaded = load_version(store, ref)
    stats = stats or StreamStats()
    scorer = StreamScorer(loaded, id_field=id_field, lookup=lookup, strict=strict)
    if prediction_log is not None:
        scorer.to_log = []
    watcher = None
    if lookup is not None:
        if record and store is not None:
            lookup.record_link(loaded.info.id, used_by="stream")
        if lookup.follows_latest and refresh_lookup_s > 0:
            watcher = lookup.watch(refresh_lookup_s, on_swap=(lambda _l: lookup.record_link(
                loaded.info.id, used_by="stream")) if record and store is not None else None)
    info = {"model": loaded.info.ref, "model_version_id": loaded.info.id,
            "lookup": lookup.describe() if lookup is not None else None, "fast_path": loaded.fast is not None}
    if on_started is not None:
        on_started(info)
    stats.started = time.monotonic()  # rates from the first line read, not from loading the model
    try:
        for read_at, chunk in _chunks(source, batch):
            lines, predictions, errors = scorer.score(chunk)
            if lines:
                out.write(b"\n".join(lines) + b"\n")
                out.flush()
                if errors and on_error_line is not None:
                    for line in lines:
                        if line.startswith(b'{"line"'):
                            on_error_line(line)
            done = time.perf_counter() - read_at
            if prediction_log is not None and scorer.to_log:
                _log(prediction_log, loaded, scorer.to_log, done)
            stats.record(lines=len(chunk), events=predictions + errors, predictions=predictions, errors=errors,
                         latencies=[done] * (predictions + errors))
    finally:
        if watcher is not None:
            watcher.stop()
    summary = stats.snapshot()
    summary.update(info)
    if prediction_log is not None:
        summary["prediction_log"] = prediction_log.counts()
    if lookup is not None:
        summary["lookup"] = lookup.describe()
    return summary


def _log(plog: Any, loaded: LoadedModel, entries: list[tuple[Any, Any, list[Any], int]], latency_s: float) -> None:
    at = time.time()
    if getattr(plog, "sample", 1.0) < 1.0:  # a share of *events* is logged: each its own request
        entries = [(None if inputs is None else {k: a[i:i + 1] for k, a in inputs.items()},
                    None if outputs is None else outputs[i:i + 1], [key], status)
                   for inputs, outputs, keys, status in entries for i, key in enumerate(keys)]
    for inputs, outputs, keys, status in entries:
        try:
            plog.submit(inputs=inputs, outputs=outputs, version_id=loaded.info.id, version_ref=loaded.info.ref,
                        latency_s=latency_s, status=status, route="champion", keys=keys, at=at)
        except Exception:  # noqa: BLE001 - the log never stops the stream (it counts what it drops)
            pass
