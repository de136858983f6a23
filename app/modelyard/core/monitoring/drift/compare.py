"""Comparing one column of a drift check: the reference side of a column (raw or binned), the
tests and distances of a numeric or categorical column, and the decision across columns (p-value
adjustment). Used by :mod:`modelyard.core.monitoring.drift.check`; plain numpy, no store."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelyard.core.monitoring.drift import stats as st
from modelyard.core.monitoring.drift.columns import Columns

# =========================================================================== column helpers


def _family(dtype: Any) -> str:
    """number | bool | datetime | text: what a column's type means for comparing it."""
    d = str(dtype).lower()
    if d.startswith("bool"):
        return "bool"
    if d.startswith(("int", "uint", "float", "double", "decimal", "halffloat")):
        return "number"
    if d.startswith(("datetime", "timestamp", "date", "time")):
        return "datetime"
    if d.startswith(("timedelta", "duration")):
        return "number"
    return "text"


def _sample(values: np.ndarray, dtype: Any) -> st.NumericSample:
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    missing = int(v.size - ok.sum())
    if missing:
        v = v[ok]
    return st.NumericSample(v.astype(dtype, copy=False), n_missing=missing)


class _RefColumn:
    """One reference column: raw (sorted values / category counts) or from a profile."""

    def __init__(self, name: str, kind: str, dtype: str, *, num: st.NumericSide | None = None,
                 counts: dict[str, int] | None = None, other: int = 0, missing: int = 0) -> None:
        self.name, self.kind, self.dtype = name, kind, dtype
        self.num, self.counts, self.other, self.missing = num, counts, other, missing

    @property
    def missing_share(self) -> float:
        if self.kind == "numeric":
            assert self.num is not None
            return self.num.missing_share
        total = sum((self.counts or {}).values()) + self.other + self.missing
        return self.missing / total if total else 0.0

    @property
    def n(self) -> int:
        if self.kind == "numeric":
            assert self.num is not None
            return self.num.n
        return sum((self.counts or {}).values()) + self.other


def _raw_column(name: str, source: Columns, kind: str) -> _RefColumn:
    if kind == "categorical":
        counts, missing = source.counts(name)
        return _RefColumn(name, "categorical", source.dtype(name), counts=counts, missing=missing)
    values, _bad = source.numeric(name)
    return _RefColumn(name, "numeric", source.dtype(name), num=_sample(values, st.float_dtype_for(values)))


def _profile_column(name: str, col: Mapping[str, Any], n_rows: int) -> _RefColumn:
    if col["kind"] == "numeric":
        return _RefColumn(name, "numeric", str(col.get("dtype", "float64")), num=st.NumericBins(col, n_rows))
    counts = dict(zip(col["categories"], (int(c) for c in col["counts"]), strict=True))
    n = sum(counts.values()) + int(col.get("other_count") or 0)
    share = float(col.get("missing") or 0.0)
    missing = round(share * n / (1 - share)) if share < 1 else n_rows
    return _RefColumn(name, "categorical", str(col.get("dtype", "str")), counts=counts,
                      other=int(col.get("other_count") or 0), missing=missing)


# =========================================================================== comparing one column


def _feature_settings(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    return dict((cfg.get("features") or {}).get(name) or {})


def _base_row(name: str, kind: str, role: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "role": role, "status": "checked", "test": None, "statistic_name": None,
            "statistic": None, "p_value": None, "p_adjusted": None, "effect_name": None, "effect": None,
            "threshold": None, "min_effect": None, "alpha": None, "decision": None, "drift": None, "score": None,
            "critical": False, "reason": "",
            "approximate": False, "stats": {}, "reference": {}, "batch": {}, "histogram": None, "unseen": []}


def _thresholds(cfg: Mapping[str, Any], fs: Mapping[str, Any], test: str) -> tuple[float, float | None]:
    th = cfg["thresholds"]
    min_effect = float(fs.get("min_effect", th["min_effect"]))
    if test in ("ks", "chisquare"):
        return float(fs.get("threshold", th["p_value"])), min_effect
    return float(fs.get("threshold", th[test])), None


def compare_numeric(name: str, ref: st.NumericSide, cur: st.NumericSample, cfg: Mapping[str, Any], *,
                    role: str = "feature") -> dict[str, Any]:
    """The row of a numeric column (the verdict of p-value tests waits for :func:`_decide`)."""
    row = _base_row(name, "numeric", role)
    row["reference"] = ref.summary()
    row["batch"] = cur.summary()
    row["approximate"] = not ref.raw
    if ref.n == 0 or cur.n == 0:
        row.update(status="empty", reason=f"no values in the {'reference' if ref.n == 0 else 'batch'}")
        return row
    fs = _feature_settings(cfg, name) if role == "feature" else {}
    small = min(ref.n, cur.n) <= int(cfg["small_sample"])
    few = None
    rd, cd = ref.distinct(st.FEW_VALUES), cur.distinct(st.FEW_VALUES)
    if rd is not None and cd is not None:
        values = np.union1d(rd, cd)
        if values.size <= st.FEW_VALUES:
            few = values
    stats: dict[str, Any] = {}
    w, _exact = st.wasserstein(ref, cur)
    mean, std = ref.moments()
    n = ref.n
    std0 = std * math.sqrt((n - 1) / n) if n > 1 and math.isfinite(std) else 0.0
    norm = std0 if std0 > 0 else 1e-9 * max(1.0, abs(mean) if math.isfinite(mean) else 1.0)
    stats["wasserstein"] = w
    stats["wasserstein_norm"] = w / norm
    d, p, method = st.ks(ref, cur)
    stats.update(ks_d=d, ks_p=p, ks_method=method)
    if few is not None:
        rc, cc = ref.value_counts(few), cur.value_counts(few)
        stats["binning"] = "values"
    else:
        edges = st.decile_edges(ref)
        rc, cc = ref.bin_counts(edges), cur.bin_counts(edges)
        stats["binning"] = "reference deciles"
    stats["psi"] = st.psi(rc, cc)
    stats["js"] = st.js_distance(rc, cc)
    chi2, chi_p, dof, v = st.chi_square(rc, cc)
    stats.update(chi2=chi2, chi2_p=chi_p, chi2_dof=dof, cramers_v=v)
    test = fs.get("test") or cfg["numeric_test"]
    guard = None
    if test == "auto":
        if few is not None:
            test, guard = ("chisquare", None) if small else ("js", "chi2_p")
        else:
            test, guard = ("ks", None) if small else ("wasserstein", "ks_p")
    if few is not None:
        row["effect_name"], row["effect"] = "js_distance", stats["js"]
    else:
        row["effect_name"], row["effect"] = "wasserstein_norm", stats["wasserstein_norm"]
    row["histogram"] = st.numeric_histogram(ref, cur)
    return _finish(row, test, stats, cfg, fs, guard)


def compare_categorical(name: str, ref: _RefColumn, cur_counts: Mapping[str, int], cur_missing: int,
                        cfg: Mapping[str, Any], *, role: str = "feature") -> dict[str, Any]:
    row = _base_row(name, "categorical", role)
    ref_counts = ref.counts or {}
    n_ref = sum(ref_counts.values()) + ref.other
    n_cur = sum(cur_counts.values())
    row["reference"] = {"n": n_ref, "missing": ref.missing_share, "categories": len(ref_counts) + (ref.other > 0)}
    total_cur = n_cur + cur_missing
    row["batch"] = {"n": n_cur, "missing": cur_missing / total_cur if total_cur else 0.0, "categories": len(cur_counts)}
    row["approximate"] = False
    if n_ref == 0 or n_cur == 0:
        row.update(status="empty", reason=f"no values in the {'reference' if n_ref == 0 else 'batch'}")
        return row
    keys = list(ref_counts)
    rvec = [float(ref_counts[k]) for k in keys]
    cvec = [float(cur_counts.get(k, 0)) for k in keys]
    new = [(k, c) for k, c in cur_counts.items() if k not in ref_counts]
    if ref.other:
        keys.append("(other)")
        rvec.append(float(ref.other))
        cvec.append(float(sum(c for _, c in new)))
        unseen: list[tuple[str, int]] = []
    else:
        for k, c in new:
            keys.append(k)
            rvec.append(0.0)
            cvec.append(float(c))
        unseen = sorted(new, key=lambda kc: (-kc[1], kc[0]))
    rc, cc = np.asarray(rvec), np.asarray(cvec)
    stats: dict[str, Any] = {"psi": st.psi(rc, cc), "js": st.js_distance(rc, cc)}
    chi2, p, dof, v = st.chi_square(rc, cc)
    stats.update(chi2=chi2, chi2_p=p, chi2_dof=dof, cramers_v=v)
    fs = _feature_settings(cfg, name) if role == "feature" else {}
    test = fs.get("test") or cfg["categorical_test"]
    if test in ("ks", "wasserstein"):  # a numeric test named for a column that holds categories
        test = "auto"
    guard = None
    if test == "auto":
        test, guard = ("chisquare", None) if min(n_ref, n_cur) <= int(cfg["small_sample"]) else ("js", "chi2_p")
    row["effect_name"], row["effect"] = "js_distance", stats["js"]
    row["histogram"] = st.categorical_histogram(keys, rc, cc)
    row["unseen"] = [{"category": k, "count": int(c), "share": c / n_cur} for k, c in unseen[:50]]
    if len(unseen) > 50:
        row["unseen_more"] = len(unseen) - 50
    return _finish(row, test, stats, cfg, fs, guard)


def _finish(row: dict[str, Any], test: str, stats: dict[str, Any], cfg: Mapping[str, Any],
            fs: Mapping[str, Any], guard: str | None = None) -> dict[str, Any]:
    """Fill in the test's statistic and thresholds. Distance tests named explicitly decide at once;
    p-value tests, and the distances ``auto`` picks (guarded by a p-value), wait for :func:`_decide`."""
    threshold, min_effect = _thresholds(cfg, fs, test)
    name_of = {"ks": ("ks_d", "ks_d"), "chisquare": ("chi2", "chi2"), "wasserstein": ("wasserstein_norm",
               "wasserstein_norm"), "js": ("js_distance", "js"), "psi": ("psi", "psi")}
    label, key = name_of[test]
    row.update(test=test, statistic_name=label, statistic=stats[key], threshold=threshold, min_effect=min_effect,
               stats=stats)
    if test in ("ks", "chisquare"):
        row["p_value"] = stats["ks_p"] if test == "ks" else stats["chi2_p"]
        row["decision"] = "p_value_and_effect"
    elif guard is not None:
        row["p_value"] = stats[guard]
        row["alpha"] = float(cfg["thresholds"]["p_value"])
        row["decision"] = "distance_and_p_value"
    else:
        row["decision"] = "distance"
    effect = row["effect"]
    row["score"] = float(min(max(effect, 0.0), 1.0)) if effect is not None and math.isfinite(effect) else None
    if row["decision"] == "distance":
        value = row["statistic"]
        row["drift"] = bool(value >= threshold)
        row["reason"] = f"{_label(test)} {_fmt(value)} {'≥' if row['drift'] else '<'} {_fmt(threshold)}"
    return row


def _decide(rows: Sequence[dict[str, Any]], method: str) -> None:
    """Adjust the p-values across ``rows`` (``method``: holm, bh or none) and decide the rows that
    wait for them: p-value tests (significant and at least the minimal effect) and guarded
    distances (at least the threshold and significant)."""
    tested = [r for r in rows if r["status"] == "checked" and r.get("decision") in ("p_value_and_effect",
                                                                                    "distance_and_p_value")]
    adjusted = st.adjust_p_values([r["p_value"] for r in tested], method)
    for r, p_adj in zip(tested, adjusted, strict=True):
        r["p_adjusted"] = p_adj
        p_text = f"p {_fmt(r['p_value'])}" + (f" (adjusted {_fmt(p_adj)})" if method != "none" else "")
        if r["decision"] == "distance_and_p_value":
            alpha, threshold, value = r["alpha"], r["threshold"], r["statistic"]
            significant = math.isfinite(p_adj) and p_adj < alpha
            far = value is not None and value >= threshold
            r["drift"] = bool(significant and far)
            guard = "KS" if r["test"] == "wasserstein" else "chi-square"
            if not far:
                r["reason"] = f"{_label(r['test'])} {_fmt(value)} < {_fmt(threshold)}"
            elif significant:
                r["reason"] = (f"{_label(r['test'])} {_fmt(value)} ≥ {_fmt(threshold)} "
                               f"({guard} {p_text} < {_fmt(alpha)})")
            else:
                r["reason"] = (f"{_label(r['test'])} {_fmt(value)} ≥ {_fmt(threshold)} but {guard} {p_text} ≥ "
                               f"{_fmt(alpha)} (within the noise of a sample this size)")
            continue
        alpha, min_effect = r["threshold"], r["min_effect"] or 0.0
        significant = math.isfinite(p_adj) and p_adj < alpha
        large = r["effect"] is not None and r["effect"] >= min_effect
        r["drift"] = bool(significant and large)
        effect_text = f"{_label(r['effect_name'])} {_fmt(r['effect'])}"
        if r["drift"]:
            r["reason"] = f"{_label(r['test'])} {p_text} < {_fmt(alpha)} and {effect_text} ≥ {_fmt(min_effect)}"
        elif not significant:
            r["reason"] = f"{_label(r['test'])} {p_text} ≥ {_fmt(alpha)}"
        else:
            r["reason"] = (f"{_label(r['test'])} {p_text} < {_fmt(alpha)} but {effect_text} < {_fmt(min_effect)} "
                           "(too small a shift to matter)")


_LABELS = {"ks": "KS", "chisquare": "chi-square", "wasserstein": "normed Wasserstein distance",
           "wasserstein_norm": "normed Wasserstein distance", "js": "Jensen-Shannon distance",
           "js_distance": "Jensen-Shannon distance", "psi": "PSI"}


def _label(key: str | None) -> str:
    return _LABELS.get(key or "", key or "")


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "n/a"
        return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x)
