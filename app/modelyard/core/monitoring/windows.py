"""Windows over a prediction log, in bounded memory: what :mod:`.live` adds rows to and reads back.

A window is an hour or a day of the log (by each row's ``at``, in UTC), or N rows of it in the
order they were logged (:func:`parse_window`). Each window keeps only fixed-size tallies, whatever
its number of rows: counts per route and version, a latency histogram of log-spaced bins
(:data:`LATENCY_EDGES`, ~6 % wide: percentiles are read off it), per input feature the counts in
the reference's bins (its deciles, or its categories: the bins of the drift checks' PSI,
:func:`modelyard.core.monitoring.drift.stats.psi`), and for joined labels the number right and
the sum of absolute errors.

Input drift of a window: each feature's PSI against the reference of the version that answered
most of its (non-shadow) rows; a feature drifts when its PSI passes the drift settings'
``thresholds.psi``; the window's verdict is ``drift`` when the share of drifting features reaches
``rule.drift_share`` or a ``critical`` feature drifts, ``warning`` when some feature drifts, else
``ok`` — and none (with a note) below :data:`MIN_DRIFT_ROWS` rows.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.core.common.errors import ModelyardError
from modelyard.core.monitoring.drift import stats as st

LATENCY_EDGES = np.geomspace(1e-5, 120.0, 282)  # seconds; 10 µs .. 2 min
MIN_DRIFT_ROWS = 100
SPANS = {"hour": 3600.0, "day": 86400.0}


# =========================================================================== the window's size


@dataclass(frozen=True)
class WindowSpec:
    kind: str  # "time" | "rows"
    size: float  # seconds, or rows
    text: str

    def describe(self) -> str:
        if self.kind == "rows":
            return f"{int(self.size):,} rows"
        return "1 hour" if self.size == 3600 else "1 day" if self.size == 86400 else f"{self.size:g} s"


def parse_window(text: str | int | None) -> WindowSpec:
    """``hour``, ``day`` or a number of rows (``5000``, ``10k``, ``1M``)."""
    raw = "hour" if text is None else str(text).strip().lower()
    if raw in SPANS:
        return WindowSpec("time", SPANS[raw], raw)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([km]?)(?:\s*rows?)?", raw.replace(",", "").replace("_", ""))
    if match:
        n = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
        if n >= 1 and n == int(n):
            return WindowSpec("rows", float(int(n)), raw)
    raise ModelyardError(f"--window must be hour, day or a number of rows such as 10000, not {text!r}.",
                         hint="Give --window hour, --window day or --window 10000.")


# =========================================================================== the reference's bins


@dataclass
class FeatureBins:
    """One feature's bins and reference frequencies (numeric: inner decile edges; categorical: categories)."""

    name: str
    kind: str  # numeric | categorical
    inner: np.ndarray | None = None
    categories: dict[str, int] = field(default_factory=dict)
    ref: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, name: str, column: Any) -> FeatureBins:
        if column.kind == "numeric":
            edges = st.decile_edges(column.num)
            return cls(name, "numeric", inner=np.asarray(edges[1:-1], dtype=np.float64),
                       ref=np.asarray(column.num.bin_counts(edges), dtype=np.float64))
        cats = list(column.counts or {})
        # the reference's categories, then one bin for anything else
        return cls(name, "categorical", categories={c: i for i, c in enumerate(cats)},
                   ref=np.asarray([*(column.counts or {}).values(), column.other], dtype=np.float64))

    @property
    def n_bins(self) -> int:
        return int(self.ref.size)

    def count(self, values: Any) -> np.ndarray:
        """Counts of an Arrow array's values per bin (missing values left out)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        out = np.zeros(self.n_bins, dtype=np.int64)
        if self.kind == "numeric":
            try:
                arr = values.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                import pandas as pd

                arr = pa.array(pd.to_numeric(pd.Series(values.to_pylist(), dtype=object), errors="coerce"))
            v = arr.to_numpy(zero_copy_only=False)
            v = v[~np.isnan(v)]
            if v.size:
                out += np.bincount(np.searchsorted(self.inner, v, side="right"), minlength=self.n_bins)
            return out
        from modelyard.core.registry.reference import category_key

        vc = pc.value_counts(values)
        other = self.n_bins - 1
        for value, count in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            if value is None:
                continue
            out[self.categories.get(category_key(value), other)] += int(count)
        return out


@dataclass
class DriftReference:
    """What a window's inputs are compared with: one model version's reference, binned."""

    version_ref: str
    features: dict[str, FeatureBins]
    psi_threshold: float
    drift_share: float
    critical: frozenset[str]

    @classmethod
    def of(cls, version_ref: str, reference: Any, config: Mapping[str, Any]) -> DriftReference:
        features = {}
        for name in reference.features:
            features[name] = FeatureBins.of(name, reference.column(name))
        return cls(version_ref, features, float(config["thresholds"]["psi"]),
                   float((config.get("rule") or {}).get("drift_share", 0.5)), frozenset(config.get("critical") or []))

    def judge(self, counts: Mapping[str, np.ndarray], rows: int) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version_ref, "rows": rows, "features": {}, "drifted": [],
                               "rule": self.drift_share, "threshold": self.psi_threshold}
        if rows < MIN_DRIFT_ROWS:
            out.update(verdict=None, share=None, note=f"fewer than {MIN_DRIFT_ROWS} rows")
            return out
        seen = [n for n in self.features if n in counts and counts[n].sum() > 0]
        for name in seen:
            value = st.psi(self.features[name].ref, counts[name].astype(np.float64))
            out["features"][name] = round(value, 5)
            if value > self.psi_threshold:
                out["drifted"].append(name)
        if not seen:
            out.update(verdict=None, share=None, note="no logged input matches a feature of the reference")
            return out
        share = len(out["drifted"]) / len(seen)
        critical = bool(self.critical & set(out["drifted"]))
        out["share"] = round(share, 4)
        out["verdict"] = "drift" if share >= self.drift_share or critical else "warning" if out["drifted"] else "ok"
        return out


# =========================================================================== tallies


def latency_percentile(hist: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile (seconds) of a :data:`LATENCY_EDGES` histogram, at its bin's geometric middle."""
    total = int(hist.sum())
    if total == 0:
        return None
    b = int(np.searchsorted(np.cumsum(hist), max(1, math.ceil(q * total)), side="left"))
    lo = LATENCY_EDGES[max(b - 1, 0)]
    hi = LATENCY_EDGES[min(b, LATENCY_EDGES.size - 1)]
    return float(math.sqrt(lo * hi)) if b not in (0, LATENCY_EDGES.size) else float(lo if b == 0 else hi)


@dataclass
class RouteTally:
    rows: int = 0
    requests: int = 0
    errors: int = 0
    latency: np.ndarray = field(default_factory=lambda: np.zeros(LATENCY_EDGES.size + 1, dtype=np.int64))
    labelled: int = 0
    correct: int = 0
    abs_error: float = 0.0
    numeric_labelled: int = 0

    def result(self) -> dict[str, Any]:
        return {"rows": self.rows, "requests": self.requests,
                "error_rate": self.errors / self.requests if self.requests else None,
                "latency_ms": latency_ms(self.latency), **performance(self)}


def route_tally(routes: dict[str, RouteTally], name: str) -> RouteTally:
    """``routes[name]``, made empty the first time."""
    t = routes.get(name)
    if t is None:
        t = routes[name] = RouteTally()
    return t


def latency_ms(hist: np.ndarray) -> dict[str, float | None]:
    """p50 and p99 (ms) of a :data:`LATENCY_EDGES` histogram."""
    return {"p50": _ms(latency_percentile(hist, 0.5)), "p99": _ms(latency_percentile(hist, 0.99))}


def performance(t: RouteTally) -> dict[str, Any]:
    return {"labelled": t.labelled, "accuracy": t.correct / t.labelled if t.labelled else None,
            "mae": t.abs_error / t.numeric_labelled if t.numeric_labelled else None}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


@dataclass
class Window:
    """The tallies of one window."""

    index: int
    first_at: float = math.inf
    last_at: float = -math.inf
    routes: dict[str, RouteTally] = field(default_factory=dict)
    versions: Counter[str] = field(default_factory=Counter)
    inputs_by_version: Counter[int] = field(default_factory=Counter)  # non-shadow rows per version id
    bins: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # version id -> feature -> counts
    pairs: int = 0
    agree: int = 0

    def route(self, name: str) -> RouteTally:
        return route_tally(self.routes, name)

    def result(self, spec: WindowSpec, references: Mapping[int, DriftReference | str | None],
               version_refs: Mapping[int, str], *, newest: bool = False) -> dict[str, Any]:
        """What the window shows; the rate of the ``newest`` time window is over the part that has passed."""
        # latency over every answer; realised performance, traffic and errors over the answers
        # clients got: shadow rows left out
        latency = sum((t.latency for t in self.routes.values()), RouteTally().latency)
        served = [t for name, t in self.routes.items() if name != "shadow"]
        total = RouteTally()
        for t in served:
            total.labelled += t.labelled
            total.correct += t.correct
            total.abs_error += t.abs_error
            total.numeric_labelled += t.numeric_labelled
        if spec.kind == "time":
            start = self.index * spec.size
            end = start + spec.size
            span = max(self.last_at - start, 1e-9) if newest else spec.size
        else:
            start, end = self.first_at, self.last_at
            span = self.last_at - self.first_at
        requests = sum(t.requests for t in served)
        return {"index": self.index, "start": _iso(start), "end": _iso(end), "first_at": _iso(self.first_at),
                "last_at": _iso(self.last_at), "start_s": start, "rows": sum(t.rows for t in served),
                "requests": requests, "requests_per_s": float(f"{requests / span:.6g}") if span > 0 else None,
                "error_rate": sum(t.errors for t in served) / requests if requests else None,
                "latency_ms": latency_ms(latency),
                "performance": performance(total) if total.labelled else None,
                "versions": dict(self.versions), "routes": {k: t.result() for k, t in sorted(self.routes.items())},
                "agreement": ({"pairs": self.pairs, "share": self.agree / self.pairs} if self.pairs
                              else None),
                "drift": self._drift(references, version_refs)}

    def _drift(self, references: Mapping[int, DriftReference | str | None],
               version_refs: Mapping[int, str]) -> dict[str, Any] | None:
        if not self.inputs_by_version:
            return None
        vid, rows = self.inputs_by_version.most_common(1)[0]
        ref = references.get(vid)
        if not isinstance(ref, DriftReference):
            return {"version": version_refs.get(vid), "rows": rows, "verdict": None, "share": None, "features": {},
                    "drifted": [], "note": ref or "no reference"}
        return ref.judge(self.bins.get(vid, {}), rows)


def _iso(epoch: float) -> str | None:
    if not math.isfinite(epoch):
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


# =========================================================================== the alert rule


def alert_rule(windows: Sequence[Mapping[str, Any]], *, n: int, m: int) -> dict[str, Any]:
    """The "``n`` of the last ``m`` windows" rule over windows in order: which windows it alerts at
    (the first window where at least ``n`` of the ``m`` windows up to it drifted, and each later
    one while it holds), and whether it holds at the last window."""
    if not 1 <= n <= m:
        raise ModelyardError(f"The alert rule needs 1 <= N <= M, not {n} of {m}.",
                             hint="Give --alert N/M such as 2/3: alert when 2 of the last 3 windows drifted.")
    flags = [bool(w.get("drift") and w["drift"].get("verdict") == "drift") for w in windows]
    at = [i for i in range(len(flags)) if sum(flags[max(0, i - m + 1):i + 1]) >= n]
    return {"n": n, "m": m, "alerting": bool(at and at[-1] == len(flags) - 1),
            "windows": at, "first": at[0] if at else None,
            "drifted_of_last": sum(flags[-m:]) if flags else 0}
