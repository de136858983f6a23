"""The statistics of a drift check, on raw values or on a binned reference profile.

A numeric column is a :class:`NumericSample` (its sorted values) or a :class:`NumericBins`
(a reference profile column: quantile edges and counts). Both answer ``quantile(u)`` and
``cdf(x)``, which is all the distances need:

* **Kolmogorov–Smirnov** ``D = sup |F_ref - F_batch|``; p-value: SciPy's exact two-sample test
  when both sides are raw and have at most 10,000 values (what Evidently uses), else the
  asymptotic distribution of ``D`` (``kstwo`` with the effective size ``n·m/(n+m)``). On large
  raw samples ``D`` is taken at 2·2^17 quantile points of the two sides (error < 2^-16).
* **Wasserstein-1** ``∫|Q_ref(u) - Q_batch(u)| du``, exact for two raw samples of equal size or
  of at most 400,000 values together, else on a grid of 2^17 quantiles (error below 1e-5 of the
  data's range); ``wasserstein_norm`` divides it by the reference's standard deviation
  (Evidently's "normed" distance, threshold 0.1).
* **PSI** and **Jensen–Shannon distance** (natural log, as SciPy and Evidently) on frequency
  vectors: the categories, or, for numbers, the reference's deciles (values for columns with
  few distinct values). PSI replaces empty bins by 1e-4.
* **chi-square** two-sample test of homogeneity on the category counts (a 2×k table), with
  Cramér's V.

A profile holds the reference only as bins: its ``cdf`` is linear within a bin (one step per
value for discrete columns), so KS and Wasserstein from a profile are approximate (and marked
so); PSI, JS and chi-square are exact on the profile's own bins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

GRID = 1 << 17
EXACT_WASSERSTEIN_MAX = 400_000
EXACT_KS_MAX = 10_000
PSI_EPS = 1e-4
DECILES = 10
HISTOGRAM_BINS = 30
HISTOGRAM_TAIL = 0.005
MAX_SHOWN_CATEGORIES = 20
FEW_VALUES = 5  # numeric columns with at most this many distinct values are compared as categories
_F32_RELATIVE = 2.0 ** -23


# =========================================================================== numeric sides


def float_dtype_for(values: np.ndarray) -> type:
    """float32 when its rounding (2^-23 of the largest magnitude) is far below the spread, else float64."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return np.float32
    hi = float(np.max(np.abs(finite)))
    spread = float(np.std(finite[: 100_000])) if finite.size > 1 else 0.0
    if hi == 0.0 or (spread > 0 and hi * _F32_RELATIVE < spread * 1e-4):
        return np.float32
    return np.float64


class NumericSample:
    """Raw values of one numeric column (missing removed), sorted."""

    raw = True

    def __init__(self, values: np.ndarray, *, n_missing: int = 0, presorted: bool = False) -> None:
        v = np.asarray(values)
        if not presorted:
            if v.dtype.kind == "f":
                nan = np.isnan(v)
                if nan.any():
                    n_missing += int(nan.sum())
                    v = v[~nan]
            v = np.sort(v)
        self.values = v
        self.n = int(v.size)
        self.n_missing = int(n_missing)
        self._moments: tuple[float, float] | None = None

    @classmethod
    def from_values(cls, values: np.ndarray) -> NumericSample:
        v = np.asarray(values, dtype=np.float64)
        dtype = float_dtype_for(v)
        return cls(v.astype(dtype, copy=False))

    @property
    def missing_share(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    def moments(self) -> tuple[float, float]:
        if self._moments is None:
            if self.n == 0:
                self._moments = (math.nan, math.nan)
            else:
                mean = float(np.mean(self.values, dtype=np.float64))
                std = float(np.std(self.values, dtype=np.float64, ddof=1)) if self.n > 1 else 0.0
                self._moments = (mean, std)
        return self._moments

    @property
    def min(self) -> float:
        return float(self.values[0]) if self.n else math.nan

    @property
    def max(self) -> float:
        return float(self.values[-1]) if self.n else math.nan

    def quantile(self, u: np.ndarray) -> np.ndarray:
        idx = np.clip((np.asarray(u) * self.n).astype(np.int64), 0, self.n - 1)
        return self.values[idx].astype(np.float64)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.values, np.asarray(x, dtype=self.values.dtype), side="right") / self.n

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        """Counts per bin of ``edges`` (outer bins take the tails), as floats."""
        cuts = np.searchsorted(self.values, np.asarray(edges[1:-1], dtype=self.values.dtype), side="left")
        return np.diff(np.concatenate([[0], cuts, [self.n]])).astype(np.float64)

    def distinct(self, limit: int) -> np.ndarray | None:
        """The distinct values when there are at most ``limit`` of them, else None."""
        if self.n == 0:
            return np.empty(0)
        change = np.flatnonzero(self.values[1:] != self.values[:-1])
        if change.size + 1 > limit:
            return None
        return np.concatenate([self.values[:1], self.values[change + 1]]).astype(np.float64)

    def value_counts(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=self.values.dtype)
        return (np.searchsorted(self.values, v, side="right") - np.searchsorted(self.values, v, side="left")
                ).astype(np.float64)

    def summary(self) -> dict[str, Any]:
        mean, std = self.moments()
        return {"n": self.n, "missing": self.missing_share, "mean": _num(mean), "std": _num(std),
                "min": _num(self.min), "max": _num(self.max),
                "median": _num(float(self.quantile(np.array([0.5]))[0])) if self.n else None}


class NumericBins:
    """A reference profile's numeric column (see :mod:`modelyard.core.registry.reference`)."""

    raw = False

    def __init__(self, col: Mapping[str, Any], n_rows: int | None = None) -> None:
        self.edges = np.asarray(col.get("quantiles") or [], dtype=np.float64)
        self.counts = np.asarray(col.get("counts") or [], dtype=np.float64)
        self.discrete = bool(col.get("discrete"))
        self.n = int(self.counts.sum())
        missing = float(col.get("missing") or 0.0)
        self.n_missing = round(missing * self.n / (1 - missing)) if missing < 1 else int(n_rows or 0)
        self._mean = col.get("mean")
        self._std = col.get("std")
        self.cum = np.concatenate([[0.0], np.cumsum(self.counts)]) / max(self.n, 1)
        if self.discrete:
            self.points = self.edges[:-1]

    @property
    def missing_share(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    def moments(self) -> tuple[float, float]:
        mean = float(self._mean) if self._mean is not None else math.nan
        std = float(self._std) if self._std is not None else math.nan
        return mean, std

    @property
    def min(self) -> float:
        return float(self.edges[0]) if self.edges.size else math.nan

    @property
    def max(self) -> float:
        return float(self.edges[-1]) if self.edges.size else math.nan

    def quantile(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if self.discrete:
            idx = np.searchsorted(self.cum[1:], u, side="right")
            return self.points[np.clip(idx, 0, self.points.size - 1)]
        return np.interp(u, self.cum, self.edges)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.discrete:
            idx = np.searchsorted(self.points, x, side="right")
            return self.cum[idx]
        return np.interp(x, self.edges, self.cum, left=0.0, right=1.0)

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        inner = np.asarray(edges[1:-1], dtype=np.float64)
        if self.discrete:
            below = self.cum[np.searchsorted(self.points, inner, side="left")]
        else:
            below = np.interp(inner, self.edges, self.cum, left=0.0, right=1.0)
        return np.diff(np.concatenate([[0.0], below, [1.0]])) * self.n

    def distinct(self, limit: int) -> np.ndarray | None:
        if self.discrete and self.points.size <= limit:
            return self.points.copy()
        return None

    def value_counts(self, values: np.ndarray) -> np.ndarray:
        lookup = dict(zip(self.points.tolist(), self.counts.tolist(), strict=True)) if self.discrete else {}
        return np.array([lookup.get(float(v), 0.0) for v in values], dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        mean, std = self.moments()
        return {"n": self.n, "missing": self.missing_share, "mean": _num(mean), "std": _num(std),
                "min": _num(self.min), "max": _num(self.max),
                "median": _num(float(self.quantile(np.array([0.5]))[0])) if self.n else None}


NumericSide = NumericSample | NumericBins


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


# =========================================================================== numeric distances


def wasserstein(ref: NumericSide, cur: NumericSample) -> tuple[float, bool]:
    """(W1 distance, exact?)."""
    if ref.n == 0 or cur.n == 0:
        return math.nan, True
    if isinstance(ref, NumericSample):
        a, b = ref.values, cur.values
        if a.size == b.size:
            return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))), True
        if a.size + b.size <= EXACT_WASSERSTEIN_MAX:
            both = np.concatenate([a.astype(np.float64), b.astype(np.float64)])
            both.sort(kind="stable")
            deltas = np.diff(both)
            fa = np.searchsorted(a, both[:-1].astype(a.dtype), side="right") / a.size
            fb = np.searchsorted(b, both[:-1].astype(b.dtype), side="right") / b.size
            return float(np.sum(np.abs(fa - fb) * deltas)), True
    u = (np.arange(GRID, dtype=np.float64) + 0.5) / GRID
    return float(np.mean(np.abs(ref.quantile(u) - cur.quantile(u)))), False


def ks(ref: NumericSide, cur: NumericSample) -> tuple[float, float, str]:
    """(D, p-value, method): ``exact`` (SciPy), ``asymptotic`` or ``approximate`` (from a profile)."""
    from scipy import stats

    n, m = ref.n, cur.n
    if n == 0 or m == 0:
        return math.nan, math.nan, "none"
    if isinstance(ref, NumericSample) and max(n, m) <= EXACT_KS_MAX:
        with warnings.catch_warnings():  # ties: SciPy falls back to the asymptotic p-value and says so
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ks_2samp(ref.values.astype(np.float64), cur.values.astype(np.float64))
        return float(res.statistic), float(res.pvalue), "exact"
    if isinstance(ref, NumericSample):
        if n + m <= 2 * GRID:
            xs = np.concatenate([ref.values, cur.values.astype(ref.values.dtype)])
        else:
            u = np.arange(GRID, dtype=np.float64) / GRID
            xs = np.concatenate([ref.quantile(u), cur.quantile(u)])
        method = "asymptotic"
    else:
        u = np.arange(4096, dtype=np.float64) / 4096
        xs = np.concatenate([ref.edges, cur.quantile(u)])
        method = "approximate"
    d = float(np.max(np.abs(ref.cdf(xs) - cur.cdf(xs))))
    en = n * m / (n + m)
    p = float(stats.kstwo.sf(d, max(1, round(en))))
    return d, p, method


def decile_edges(ref: NumericSide) -> np.ndarray:
    """Bins for PSI/JS of a numeric column: the reference's deciles (or its values, when few)."""
    values = ref.distinct(DECILES * 2)
    if values is not None and values.size:
        return np.concatenate([values, values[-1:]])
    qs = ref.quantile(np.linspace(0, 1, DECILES + 1))
    edges = np.unique(qs)
    if edges.size < 2:
        edges = np.concatenate([edges, edges])
    return edges


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of two frequency vectors (empty bins count as 1e-4)."""
    p = _normalise(p)
    q = _normalise(q)
    p = np.where(p > 0, p, PSI_EPS)
    q = np.where(q > 0, q, PSI_EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (natural log; 0 .. sqrt(ln 2) ≈ 0.83)."""
    p = _normalise(p)
    q = _normalise(q)
    mix = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log(p / mix), 0.0).sum()
        kq = np.where(q > 0, q * np.log(q / mix), 0.0).sum()
    return float(math.sqrt(max((kp + kq) / 2, 0.0)))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int, float]:
    """(chi², p-value, degrees of freedom, Cramér's V) of a 2×k homogeneity test."""
    from scipy import stats

    table = np.vstack([np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0, 0.0
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    p = float(stats.chi2.sf(chi2, dof))
    return chi2, p, dof, float(math.sqrt(chi2 / total))


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    total = v.sum()
    return v / total if total > 0 else v


# =========================================================================== histograms for views


def numeric_histogram(ref: NumericSide, cur: NumericSample, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Shared equal-width bins over both sides' 0.5 % .. 99.5 % range (the outer bins take the
    tails), with the share of each side's values per bin."""
    if ref.n == 0 and cur.n == 0:
        return {"kind": "numeric", "edges": [], "reference": [], "batch": []}
    sides = [s for s in (ref, cur) if s.n]
    tail = np.array([HISTOGRAM_TAIL, 1 - HISTOGRAM_TAIL])
    qs = np.concatenate([s.quantile(tail) for s in sides])
    lo, hi = float(np.min(qs)), float(np.max(qs))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    out: dict[str, Any] = {"kind": "numeric", "edges": [float(e) for e in edges]}
    for key, side in (("reference", ref), ("batch", cur)):
        counts = side.bin_counts(edges) if side.n else np.zeros(bins)
        out[key] = [float(x) for x in _normalise(counts)]
    return out


def categorical_histogram(categories: Sequence[str], ref: np.ndarray, cur: np.ndarray,
                          shown: int = MAX_SHOWN_CATEGORIES) -> dict[str, Any]:
    """The most frequent categories of either side (the rest as "(other)") with both sides' shares."""
    p, q = _normalise(ref), _normalise(cur)
    order = np.argsort(-np.maximum(p, q), kind="stable")
    keep, rest = order[:shown], order[shown:]
    cats = [categories[i] for i in keep]
    rp, rq = p[keep].tolist(), q[keep].tolist()
    if rest.size:
        cats.append("(other)")
        rp.append(float(p[rest].sum()))
        rq.append(float(q[rest].sum()))
    return {"kind": "categorical", "categories": cats, "reference": [float(x) for x in rp],
            "batch": [float(x) for x in rq]}


# =========================================================================== multiple testing


def adjust_p_values(p_values: Sequence[float], method: str = "bh") -> list[float]:
    """Benjamini–Hochberg (``bh``), Holm (``holm``) or no (``none``) adjustment; NaN stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = p.copy()
    ok = np.flatnonzero(np.isfinite(p))
    k = ok.size
    if method == "none" or k == 0:
        return [float(x) for x in out]
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order]
    if method == "bh":
        adj = ranked * k / np.arange(1, k + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
    elif method == "holm":
        adj = ranked * (k - np.arange(k))
        adj = np.maximum.accumulate(adj)
    else:
        raise ValueError(method)
    out[order] = np.minimum(adj, 1.0)
    return [float(x) for x in out]
