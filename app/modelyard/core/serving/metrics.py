"""The model server's statistics: what ``/stats`` answers (JSON, for the Registry panel) and
``/metrics`` (Prometheus' text exposition format 0.0.4, for teams that already run Prometheus
and Grafana).

``/metrics`` families (every one with the label ``model``, the registered model's name):

* ``modelyard_requests_total{status, version, route}`` — scoring requests answered, by HTTP
  status, by the version that answered (``churn@v3``; ``none`` when a request was refused
  before a model was chosen) and by route (``champion``, ``challenger``);
* ``modelyard_request_duration_seconds`` — a histogram of the scoring requests' time in the
  server (``_bucket{le}``, ``_sum``, ``_count``);
* ``modelyard_requests_in_flight``, ``modelyard_open_connections``, ``modelyard_rows_total``,
  ``modelyard_model_swaps_total``, ``modelyard_uptime_seconds``;
* ``modelyard_route_share`` (the canary's share; 0 without one) and
  ``modelyard_shadow_errors_total``;
* ``modelyard_prediction_log_rows_total{kind="logged"|"dropped"|"sampled_out"}`` and
  ``modelyard_prediction_log_requests_total`` when the server logs predictions.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from typing import Any

LATENCY_WINDOW = 4096
# seconds: from well under a millisecond (the fast path) to a large batch
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def percentile_ms(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted latencies in seconds, in milliseconds (None when there are none)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


class Stats:
    """Request counts (by status, version and route), a latency histogram, and the latency of
    the last :data:`LATENCY_WINDOW` scoring requests for percentiles."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.client_errors = 0
        self.server_errors = 0
        self.rows = 0
        self._latency: deque[float] = deque(maxlen=window)
        self._by: dict[tuple[int, str, str], int] = {}
        self._buckets = [0] * (len(BUCKETS) + 1)  # the last one: over the largest bound (+Inf only)
        self._sum = 0.0
        self._timed = 0  # requests in the histogram (refused ones are not timed)
        self.started = time.monotonic()

    def record(self, seconds: float, status: int, rows: int, version: str = "none", route: str = "champion") -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        key = (status, version, route)
        with self._lock:
            self.requests += 1
            if 400 <= status < 500:
                self.client_errors += 1
            elif status >= 500:
                self.server_errors += 1
            else:
                self.rows += rows
            self._latency.append(seconds)
            self._by[key] = self._by.get(key, 0) + 1
            self._buckets[i] += 1
            self._sum += seconds
            self._timed += 1

    def refused(self, status: int) -> None:
        """A request refused before any model was chosen (401): counted by status, no latency."""
        key = (status, "none", "none")
        with self._lock:
            self.requests += 1
            self.client_errors += 1
            self._by[key] = self._by.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            lat = sorted(self._latency)
            out = {"requests": self.requests, "errors": self.client_errors + self.server_errors,
                   "client_errors": self.client_errors, "server_errors": self.server_errors, "rows": self.rows}
            by = dict(self._by)
        uptime = time.monotonic() - self.started

        out["latency_ms"] = {"p50": percentile_ms(lat, 0.5), "p90": percentile_ms(lat, 0.9),
                             "p99": percentile_ms(lat, 0.99),
                             "mean": round(sum(lat) / len(lat) * 1000, 3) if lat else None,
                             "max": round(lat[-1] * 1000, 3) if lat else None, "window": len(lat)}
        out["by_version"] = _by_version(by)
        out["uptime_s"] = round(uptime, 3)
        out["requests_per_s"] = round(out["requests"] / uptime, 2) if uptime > 0 else None
        return out

    def histogram(self) -> tuple[dict[tuple[int, str, str], int], list[int], float, int]:
        """(counts by (status, version, route), bucket counts, sum of seconds, count)."""
        with self._lock:
            return dict(self._by), list(self._buckets), self._sum, self._timed


def _by_version(by: dict[tuple[int, str, str], int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (status, version, route), n in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if version == "none":
            continue
        entry = out.setdefault(version, {"route": route, "requests": 0, "errors": 0})
        entry["requests"] += n
        if status >= 400:
            entry["errors"] += n
    return out


# =========================================================================== Prometheus' text format


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def prometheus_text(server: Any) -> str:
    """The server's statistics in Prometheus' text exposition format (version 0.0.4)."""
    stats: Stats = server.stats_
    by, buckets, total_s, count = stats.histogram()
    model = server.name
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, dict[str, Any], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            lines.append(f"{name}{suffix}{_labels(model=model, **labels)} {_num(value)}")

    family("modelyard_requests_total", "counter",
           "Scoring requests answered, by HTTP status, answering version and route.",
           [("", {"status": status, "version": version, "route": route}, n)
            for (status, version, route), n in sorted(by.items())])
    cumulative, samples = 0, []
    for bound, n in zip(BUCKETS, buckets, strict=False):
        cumulative += n
        samples.append(("_bucket", {"le": _num(bound)}, cumulative))
    samples.append(("_bucket", {"le": "+Inf"}, count))
    samples += [("_sum", {}, total_s), ("_count", {}, count)]
    family("modelyard_request_duration_seconds", "histogram",
           "Time from the start of a scoring request to its answer, in seconds.", samples)
    with server._flight_lock:
        in_flight = server._in_flight
    family("modelyard_requests_in_flight", "gauge", "Scoring requests being answered now.", [("", {}, in_flight)])
    httpd = server._httpd
    family("modelyard_open_connections", "gauge", "Open client connections.",
           [("", {}, httpd.open_connections if httpd is not None else 0)])
    family("modelyard_rows_total", "counter", "Rows scored.", [("", {}, stats.rows)])
    family("modelyard_model_swaps_total", "counter", "Times the served version was swapped (its alias moved).",
           [("", {}, server.swaps)])
    family("modelyard_uptime_seconds", "gauge", "Seconds since the server started.",
           [("", {}, round(time.monotonic() - stats.started, 3))])
    route = server.route
    family("modelyard_route_share", "gauge", "Share of requests the canary challenger answers (0: no canary).",
           [("", {"challenger": route.model.ref if route is not None else "none"},
             route.share if route is not None else 0)])
    family("modelyard_shadow_errors_total", "counter", "Shadow scorings of the challenger that failed.",
           [("", {}, route.shadow_errors if route is not None else 0)])
    plog = server.prediction_log
    if plog is not None:
        counts = plog.counts()
        family("modelyard_prediction_log_rows_total", "counter",
               "Rows of the prediction log: written, dropped (queue full) or left out by sampling.",
               [("", {"kind": "logged"}, counts.get("logged_rows", 0)),
                ("", {"kind": "dropped"}, counts.get("dropped_rows", 0)),
                ("", {"kind": "sampled_out"}, counts.get("sampled_out_rows", 0))])
        family("modelyard_prediction_log_requests_total", "counter", "Requests handed to the prediction log.",
               [("", {}, counts.get("requests", 0))])
    return "\n".join(lines) + "\n"
