"""The drift check: a batch against a model version's training reference, and the stored checks.

::

    result = run_check(store, "churn@champion", frame)          # a CheckResult; nothing is stored
    spec = check_spec("churn@champion", batch_path="march.csv")  # the job: import, check, record
    outcome = run_job(store, spec)    # {"check_id", "verdict", "drift_share", "drifted", "reasons", ...}

**Reference.** The training rows of the version (the train part of its dataset version's
split, read from the Parquet snapshot) when the store holds them; else the reference profile
stored with the version (an imported bundle), from which the binned tests run and the domain
classifier and the reference side of score drift are skipped (``skipped`` says so).

**What a check reports** (:meth:`CheckResult.to_json`, also what :func:`get_check` returns):

``features``
    one row per model input: ``name``, ``kind`` (numeric | categorical), ``status`` (checked |
    missing | empty | ignored), ``test`` (ks | wasserstein | chisquare | js | psi),
    ``statistic_name``/``statistic``, ``p_value`` and ``p_adjusted`` (p-value tests),
    ``effect_name``/``effect`` (normed Wasserstein distance, or Jensen–Shannon distance for
    categories and numbers with at most 5 values), ``threshold``, ``min_effect``, ``drift``,
    ``score`` (the effect size clipped to 0..1, for sorting and the timeline), ``critical``,
    ``reason`` (the decision in words), ``approximate`` (computed from a binned profile),
    ``stats`` (every measure computed: ks_d, ks_p, wasserstein, wasserstein_norm, psi, js,
    chi2, chi2_p, cramers_v...), ``reference``/``batch`` summaries (n, missing share, mean, std,
    min, max, median; or the number of categories), ``histogram`` (numeric: shared ``edges`` and
    the ``reference``/``batch`` share per bin; categorical: ``categories`` with both shares) and
    ``unseen`` (categories the reference never had, with counts).
``schema``
    problems, each ``{"kind", "column", "message", "severity", "details"}``: missing_column,
    new_column, type_change, unseen_categories, missing_values.
``target``
    the target column's row (like a feature's) when the batch carries it: label drift.
``prediction``
    ``{"output": "label" | "number", "rows": n, "labels" | "values": row, "scores": row | None,
    "drift", "error"}``: the model run on (a sample of) the batch against its outputs on the
    reference.
``performance``
    ``{"task", "rows", "metrics": [{"metric", "recorded", "batch", "change", "relative_drop",
    "greater_is_better", "decides", "degraded"}], "degraded"}`` when the batch carries the target.
``multivariate``
    ``{"auc", "threshold", "drift", "n_reference", "n_batch", "folds", "columns"}``: a gradient
    boosting classifier trained to tell reference rows from batch rows; its cross-validated ROC
    AUC (0.5 = indistinguishable).
``verdict``, ``drift_share``, ``drifted``, ``reasons``, ``config`` (the whole configuration the
check was decided with), ``reference``, ``batch``, ``skipped``, ``seconds``.

The dataset verdict: ``drift`` when at least ``rule.drift_share`` of the checked features drift
or a critical feature drifts; other findings raise it to their configured severity (see
:mod:`modelyard.core.monitoring.drift.config`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.procs import current_user
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.monitoring.drift import stats as st
from modelyard.core.monitoring.drift.columns import (
    Columns,
    FrameColumns,
    TableColumns,
    columns_of,
)
from modelyard.core.monitoring.drift.config import (
    get_config,
    merge_config,
    validate_config,
)
from modelyard.core.registry import reference as refmod
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store, lookup, records
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "CheckResult",
    "Reference",
    "batch_dataset_name",
    "check_drift_job",
    "check_frames",
    "check_spec",
    "get_check",
    "list_checks",
    "model_status",
    "prepare_reference",
    "run_check",
    "timeline",
]

Progress = Callable[[float, str], None]
PREDICTION_SAMPLE = 20_000
MAX_DOMAIN_CODES = 254
DOMAIN_ITERATIONS = 50
VERDICTS = ("ok", "warning", "drift")


# =========================================================================== the result


@dataclass
class CheckResult:
    """One check's outcome (plain data; :meth:`to_json` is what is stored)."""

    model: str
    version: int
    model_version_id: int
    verdict: str
    drift_share: float | None
    n_features: int
    drifted: list[str]
    reasons: list[str]
    features: list[dict[str, Any]]
    schema: list[dict[str, Any]]
    target: dict[str, Any] | None
    prediction: dict[str, Any] | None
    performance: dict[str, Any] | None
    multivariate: dict[str, Any] | None
    reference: dict[str, Any]
    batch: dict[str, Any]
    config: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.model}@v{self.version}"

    def feature(self, name: str) -> dict[str, Any]:
        for row in self.features:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        return _clean(d)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


# =========================================================================== the reference of a version


@dataclass
class Reference:
    """A reference ready for checks (see :func:`prepare_reference`)."""

    source: str  # "rows" | "profile"
    kinds: dict[str, str]  # numeric | categorical, of the features and the target
    features: list[str]
    target: str | None
    task: str | None
    inputs: list[str]
    rows: Columns | None  # raw rows (features, target, every model input); None for a profile
    profile: dict[str, Any] | None
    info: dict[str, Any]
    skipped: dict[str, str]
    columns: dict[str, _RefColumn] = field(default_factory=dict)  # built on first use (sorting takes time)

    def column(self, name: str) -> _RefColumn:
        col = self.columns.get(name)
        if col is None:
            assert self.rows is not None
            col = self.columns[name] = _raw_column(name, self.rows, self.kinds[name])
        return col

    def prepare(self) -> Reference:
        """Build every column now (to reuse the reference for several batches)."""
        for name in self.kinds:
            self.column(name)
        return self


def _kinds(source: Columns, names: Sequence[str], categorical: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if source.is_datetime(name):
            skipped[name] = refmod.SKIPPED_TYPES["datetime"]
        else:
            kinds[name] = "categorical" if name in categorical or source.is_categorical(name) else "numeric"
    return kinds, skipped


def _need_reference(store: Store, info: registry.ModelVersionInfo) -> None:
    """Raise unless the version has training rows in this store or a stored profile (cheap: no data read)."""
    with store.session() as s:
        mv = s.get(m.ModelVersion, info.id)
        dv = s.get(m.DatasetVersion, mv.dataset_version_id) if mv is not None and mv.dataset_version_id else None
        sha = ((mv.card if mv is not None else None) or {}).get("reference_profile_sha256")
    if dv is not None and dv.snapshot_sha256 and store.artifacts.exists(dv.snapshot_sha256):
        return
    if sha and store.artifacts.exists(sha):
        return
    raise _no_reference(info)


def _no_reference(info: registry.ModelVersionInfo) -> ModelyardError:
    return ModelyardError(
        f"{info.ref} has no training reference to compare with: its dataset version is not in this store and "
        "it carries no reference profile.",
        hint="Register a version trained in this store, or import a bundle that carries its reference profile.")


def _load_reference(store: Store, info: registry.ModelVersionInfo, progress: Progress) -> Reference:
    sig = info.signature or {}
    inputs = [str(c["name"]) for c in sig.get("inputs") or []]
    target = (sig.get("target") or {}).get("name")
    wanted = list(dict.fromkeys([*inputs, *([target] if target else [])])) or None
    progress(0.02, "Reading the reference")
    data = refmod.load_reference_data(store, info.id, columns=wanted, as_table=True)
    if data is not None:
        source = TableColumns(data.table)
        features = [f for f in data.features if f in source.names]
        target = data.target if data.target and data.target in source.names else None
        kinds, skipped = _kinds(source, [*features, *([target] if target else [])], set(data.categorical))
        return Reference("rows", kinds, [f for f in features if f in kinds], target if target in kinds else None,
                         data.task, inputs or features, source, None, {**data.source(), "source": "rows"},
                         {**data.skipped, **skipped})
    profile = refmod.stored_profile(store, info.id)
    if profile is None:
        raise _no_reference(info)
    return _profile_reference(profile, (sig.get("target") or {}).get("task"), None, inputs)


def _profile_reference(profile: dict[str, Any], task: str | None, features: Sequence[str] | None,
                       inputs: Sequence[str] | None = None) -> Reference:
    n_rows = int(profile.get("n_rows") or 0)
    target = profile.get("target")
    cols = profile["columns"]
    feats = list(features) if features is not None else list(profile.get("features")
                                                             or [c for c in cols if c != target])
    feats = [f for f in feats if f in cols]
    names = [*feats, *([target] if target in cols else [])]
    columns = {name: _profile_column(name, cols[name], n_rows) for name in names}
    task = profile.get("task") or task
    skipped = dict(profile.get("skipped") or {})
    return Reference("profile", {n: c.kind for n, c in columns.items()}, feats, target if target in cols else None,
                     task, list(inputs or feats), None, profile,
                     {"source": "profile", "n_rows": n_rows,
                      "dataset_version_id": (profile.get("source") or {}).get("dataset_version_id")},
                     skipped, columns)


# =========================================================================== the check


def _resolve_config(store: Store, name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    base = get_config(store, name)
    return merge_config(base, validate_config(config or {}))


def _noop(_f: float, _m: str) -> None:
    return None


def run_check(store: Store, ref: str, batch: pd.DataFrame | pa.Table | int, *, config: Mapping[str, Any] | None = None,
              progress: Progress | None = None, batch_info: Mapping[str, Any] | None = None) -> CheckResult:
    """Check ``batch`` (a frame, an Arrow table, or a dataset version id) against the reference of the
    model version ``ref`` (``NAME@vN``, ``NAME@ALIAS``...). ``config`` lays settings over the model's own
    (see :mod:`modelyard.core.monitoring.drift.config`). ``progress(fraction, message)`` is called per
    feature (``ctx.progress`` fits: it is a cancellation point). Nothing is stored."""
    import pandas as pd

    t0 = time.perf_counter()
    report = progress or _noop
    info = registry.get_version(store, ref)
    cfg = _resolve_config(store, info.name, config)
    binfo: dict[str, Any] = dict(batch_info or {})
    if isinstance(batch, pd.DataFrame):
        source: Columns = FrameColumns(batch)
    elif not isinstance(batch, (int, np.integer)):
        source = TableColumns(batch)
    else:
        import pyarrow.parquet as pq

        from modelyard.core.datasets import service

        dv = service.get_version(store, int(batch))
        report(0.0, f"Reading {dv.ref}")
        source = TableColumns(pq.read_table(service.snapshot_path(store, dv.id)))
        binfo.setdefault("dataset_version_id", dv.id)
        binfo.setdefault("dataset_ref", dv.ref)
    reference = _load_reference(store, info, report)
    return _evaluate(reference, source, cfg, load_model=lambda: registry.load_model(store, info.ref),
                     recorded=info.metrics, meta=(info.name, info.version, info.id), batch_info=binfo,
                     progress=report, t0=t0)


def prepare_reference(reference: pd.DataFrame | Mapping[str, Any], *, target: str | None = None,
                      categorical: Sequence[str] | None = None, features: Sequence[str] | None = None,
                      task: str | None = None, eager: bool = True) -> Reference:
    """A reference ready to check batches against (sorted values, category counts), from a frame
    of training rows or a reference profile; reuse it for several batches. ``features`` default
    to every column but the target; ``categorical`` as for
    :func:`~modelyard.core.registry.reference.build_reference`. ``eager=False`` leaves the columns to
    be built by the check's worker threads."""
    import pandas as pd

    if not isinstance(reference, pd.DataFrame):
        return _profile_reference(refmod.validate_reference(dict(reference)), task, features)
    source = FrameColumns(reference)
    names = source.names
    feats = [str(f) for f in features] if features is not None else [c for c in names if c != target]
    missing = [c for c in [*feats, *([target] if target else [])] if c not in names]
    if missing:
        raise ModelyardError(f"The reference has no column(s) {', '.join(map(repr, missing))}.")
    kinds, skipped = _kinds(source, [*feats, *([target] if target else [])], set(categorical or []))
    feats = [f for f in feats if f in kinds]
    if task is None and target is not None and target in kinds:
        task = "classification" if kinds[target] == "categorical" else "regression"
    ref = Reference("rows", kinds, feats, target if target in kinds else None, task, feats, source, None,
                    {"source": "rows", "n_rows": source.n_rows}, skipped)
    return ref.prepare() if eager else ref


def check_frames(reference: pd.DataFrame | Mapping[str, Any] | Reference, batch: pd.DataFrame | Any, *,
                 target: str | None = None, categorical: Sequence[str] | None = None,
                 features: Sequence[str] | None = None, task: str | None = None,
                 config: Mapping[str, Any] | None = None, model: Any = None, metrics: Mapping[str, float] | None = None,
                 progress: Progress | None = None) -> CheckResult:
    """The same check without a store: ``reference`` is a frame of training rows, a reference
    profile (:func:`~modelyard.core.registry.reference.build_reference`) or a :func:`prepare_reference`
    result; ``model`` (a fitted estimator taking the feature columns) enables prediction drift,
    and with ``metrics`` (its recorded test metrics) the performance comparison; ``config`` lays
    settings over :func:`~modelyard.core.monitoring.drift.config.default_config`."""
    from modelyard.core.monitoring.drift.config import default_config

    t0 = time.perf_counter()
    report = progress or _noop
    cfg = merge_config(default_config(), validate_config(config or {}))
    ref = reference if isinstance(reference, Reference) else prepare_reference(
        reference, target=target, categorical=categorical, features=features, task=task, eager=False)
    return _evaluate(ref, columns_of(batch), cfg, load_model=(lambda: model) if model is not None else None,
                     recorded=dict(metrics or {}), meta=("(frames)", 0, 0), batch_info={}, progress=report, t0=t0)


def _evaluate(reference: Reference, batch: Columns, cfg: dict[str, Any], *,
              load_model: Callable[[], Any] | None, recorded: Mapping[str, Any] | None,
              meta: tuple[str, int, int], batch_info: dict[str, Any], progress: Progress, t0: float) -> CheckResult:
    report = progress
    binfo = batch_info
    binfo.update(n_rows=batch.n_rows, n_cols=len(batch.names))
    if batch.n_rows == 0:
        raise ModelyardError("The batch has no rows to check.", hint="Choose a file that holds data rows.")
    skipped = dict(reference.skipped)
    critical = set(cfg.get("critical") or []) | {n for n, s in (cfg.get("features") or {}).items() if s.get("critical")}
    ignored = {n for n, s in (cfg.get("features") or {}).items() if s.get("ignore")}

    # ---- schema
    schema: list[dict[str, Any]] = []
    sev = cfg["severity"]

    def problem(kind: str, column: str, message: str, **details: Any) -> None:
        schema.append({"kind": kind, "column": column, "message": message, "severity": sev[kind],
                       "details": details})

    batch_cols = set(batch.names)
    known = set(reference.features) | set(reference.inputs) | set(reference.skipped) \
        | ({reference.target} if reference.target else set())
    for name in reference.inputs if reference.inputs else reference.features:
        if name not in batch_cols and name not in ignored:
            problem("missing_column", name, f"The batch has no column '{name}', which the model takes as input.")
    for name in batch.names:
        if name not in known:
            problem("new_column", name, f"The batch has a column '{name}' the model was not trained with.")

    # ---- per feature
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for name in reference.features:
        kind = reference.kinds[name]
        if name in ignored:
            row = _base_row(name, kind, "feature")
            row.update(status="ignored", reason="ignored by the configuration")
            rows[name] = row
        elif name not in batch_cols:
            row = _base_row(name, kind, "feature")
            row.update(status="missing", reason="not in the batch")
            rows[name] = row
        else:
            todo.append(name)
    target_name = reference.target if reference.target and reference.target in batch_cols else None
    jobs = [(n, "feature") for n in todo] + ([(target_name, "target")] if target_name else [])

    def work(name: str, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
        col = reference.column(name)
        batch_dtype = batch.dtype(name)
        extra: dict[str, Any] = {"batch_dtype": batch_dtype}
        if col.kind == "numeric":
            assert col.num is not None
            dtype = col.num.values.dtype if isinstance(col.num, st.NumericSample) else np.float64
            values, bad = batch.numeric(name)
            extra["unparseable"] = bad
            row = compare_numeric(name, col.num, _sample(values, dtype), cfg, role=role)
        else:
            counts, missing = batch.counts(name)
            row = compare_categorical(name, col, counts, missing, cfg, role=role)
        row["critical"] = name in critical
        row["reference"]["dtype"] = col.dtype
        row["batch"]["dtype"] = batch_dtype
        return row, extra

    extras: dict[str, dict[str, Any]] = {}
    if jobs:
        workers = max(1, min(len(jobs), os.cpu_count() or 1, 4))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelyard-drift")
        try:
            futures = {pool.submit(work, n, role): n for n, role in jobs}
            pending = set(futures)
            done_n = 0
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    row, extra = fut.result()
                    rows[futures[fut]] = row
                    extras[futures[fut]] = extra
                    done_n += 1
                    report(0.1 + 0.6 * done_n / len(jobs), f"Compared {futures[fut]}")
                if not done:
                    report(0.1 + 0.6 * done_n / len(jobs), "Comparing the columns")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    features = [rows[n] for n in reference.features if n in rows]
    _decide([r for r in features], cfg["p_adjust"])
    target_row = rows.get(target_name) if target_name else None
    if target_row is not None:
        _decide([target_row], "none")

    # ---- schema problems found while comparing
    for name in [*todo, *([target_name] if target_name else [])]:
        row, extra, col = rows[name], extras.get(name, {}), reference.column(name)
        rf, bf = _family(col.dtype), _family(extra.get("batch_dtype"))
        if rf != bf:
            problem("type_change", name, f"'{name}' was {rf} ({col.dtype}) in the reference and is {bf} "
                    f"({extra.get('batch_dtype')}) in the batch.", reference=col.dtype, batch=extra.get("batch_dtype"),
                    unparseable=extra.get("unparseable", 0))
        elif extra.get("unparseable"):
            problem("type_change", name, f"{extra['unparseable']:,} value(s) of '{name}' in the batch are not numbers.",
                    reference=col.dtype, batch=extra.get("batch_dtype"), unparseable=extra["unparseable"])
        if row["unseen"]:
            total = sum(u["count"] for u in row["unseen"])
            shown = ", ".join(repr(u["category"]) for u in row["unseen"][:5])
            more = len(row["unseen"]) + row.get("unseen_more", 0) - 5
            problem("unseen_categories", name,
                    f"'{name}' has {len(row['unseen']) + row.get('unseen_more', 0)} categor"
                    f"{'y' if len(row['unseen']) == 1 else 'ies'} the reference never had ({shown}"
                    f"{f', and {more} more' if more > 0 else ''}) in {total:,} row(s) "
                    f"({total / max(row['batch']['n'], 1):.1%} of the batch).",
                    categories=[u["category"] for u in row["unseen"]], rows=total)
        ref_missing, cur_missing = col.missing_share, row["batch"].get("missing") or 0.0
        if cur_missing - ref_missing >= float(cfg["missing_jump"]):
            problem("missing_values", name, f"'{name}' is missing in {cur_missing:.1%} of the batch "
                    f"(reference {ref_missing:.1%}).", reference=ref_missing, batch=cur_missing)

    # ---- the model: prediction drift and performance
    prediction = performance = None
    if cfg["prediction"]["enabled"] or cfg["performance"]["enabled"]:
        report(0.72, "Running the model")
        prediction, performance = _model_checks(load_model, recorded or {}, reference, batch, cfg, skipped)
    else:
        skipped["prediction"] = "turned off in the configuration"
    if not cfg["performance"]["enabled"]:
        performance = None
        skipped.setdefault("performance", "turned off in the configuration")
    elif performance is None and "performance" not in skipped:
        skipped["performance"] = (f"the batch has no target column '{reference.target}'" if reference.target
                                  else "the reference names no target")
    if not cfg["prediction"]["enabled"]:
        prediction = None
        skipped.setdefault("prediction", "turned off in the configuration")

    # ---- multivariate
    multivariate = None
    if not cfg["multivariate"]["enabled"]:
        skipped["multivariate"] = "turned off in the configuration"
    elif reference.rows is None:
        skipped["multivariate"] = ("the domain classifier needs the reference's rows; this version has only a "
                                   "binned reference profile (e.g. imported from a bundle)")
    else:
        report(0.85, "Training the domain classifier")
        cols = [r["name"] for r in features if r["status"] == "checked"]
        multivariate = _domain_classifier(reference, batch, cols, cfg, skipped)
    report(0.98, "Deciding")

    # ---- verdict
    checked = [r for r in features if r["status"] == "checked"]
    drifted = [r["name"] for r in checked if r["drift"]]
    share = len(drifted) / len(checked) if checked else None
    findings: list[tuple[str, str]] = []
    rule = float(cfg["rule"]["drift_share"])
    crit = [n for n in drifted if n in critical]
    if drifted and share is not None and share >= rule:
        findings.append(("drift", (f"{len(drifted)} of {len(checked)} features drift ({share:.0%}; the rule is "
                                  f"{rule:.0%}): {', '.join(drifted)}")))
    elif drifted:
        findings.append((sev["features"], (f"{len(drifted)} of {len(checked)} features drift ({share:.0%}, below "
                                          f"the rule's {rule:.0%}): {', '.join(drifted)}")))
    if crit:
        findings.append(("drift", f"critical feature(s) drift: {', '.join(crit)}"))
    for p in schema:
        findings.append((p["severity"], p["message"]))
    if target_row is not None and target_row["drift"]:
        findings.append((sev["target"], f"the target '{target_name}' drifts ({target_row['reason']})"))
    if prediction and prediction.get("drift"):
        findings.append((sev["prediction"], f"the model's outputs drift ({prediction['reason']})"))
    if performance and performance.get("degraded"):
        findings.append((sev["performance"], performance["reason"]))
    if multivariate and multivariate.get("drift"):
        findings.append((sev["multivariate"], (f"a classifier tells the batch from the reference (ROC AUC "
                                              f"{multivariate['auc']:.3f} ≥ {multivariate['threshold']:.3g})")))
    levels = [lvl for lvl, _ in findings]
    verdict = "drift" if "drift" in levels else "warning" if "warning" in levels else "ok"
    reasons = [f"{lvl}: {text}" for lvl, text in findings if lvl != "ignore"]
    return CheckResult(model=meta[0], version=meta[1], model_version_id=meta[2], verdict=verdict,
                       drift_share=share, n_features=len(checked), drifted=drifted, reasons=reasons,
                       features=features, schema=schema, target=target_row, prediction=prediction,
                       performance=performance, multivariate=multivariate, reference=reference.info, batch=binfo,
                       config=cfg, skipped=skipped, seconds=round(time.perf_counter() - t0, 3))


# =========================================================================== the model's outputs


def _model_checks(load_model: Callable[[], Any] | None, recorded: Mapping[str, Any], reference: Reference,
                  source: Columns, cfg: Mapping[str, Any], skipped: dict[str, str]
                  ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    inputs = reference.inputs
    missing = [c for c in inputs if c not in source.names]
    if missing:
        msg = f"the batch lacks the model's input column(s) {', '.join(map(repr, missing))}"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    if load_model is None:
        skipped["prediction"] = skipped["performance"] = "no model given"
        return None, None
    try:
        model = load_model()
    except (ModelyardError, OSError, ValueError, ImportError, AttributeError) as exc:
        msg = f"the model could not be loaded ({getattr(exc, 'message', None) or exc})"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    seed = int(cfg["seed"])
    n = int(cfg["prediction"].get("sample") or PREDICTION_SAMPLE)
    target = reference.target
    batch = source.rows(list(dict.fromkeys([*inputs, *([target] if target and target in source.names else [])])),
                        n, seed)
    task = reference.task
    classification = task == "classification"
    try:
        with one_thread():
            pred_b = np.asarray(model.predict(batch[inputs]))
            proba_b = model.predict_proba(batch[inputs]) if classification and hasattr(model, "predict_proba") \
                else None
    except Exception as exc:  # noqa: BLE001 - the batch's data may break the model: report, do not fail the check
        msg = f"the model failed on the batch: {type(exc).__name__}: {exc}"
        skipped["prediction"] = msg
        skipped["performance"] = msg
        return None, None
    prediction: dict[str, Any] | None = None
    if cfg["prediction"]["enabled"]:
        prediction = _prediction_drift(model, reference, pred_b, proba_b, cfg, seed, n, skipped)
    performance = None
    if cfg["performance"]["enabled"] and target and target in batch.columns and task:
        y = batch[target]
        known = ~y.isna().to_numpy()
        if known.sum() == 0:
            skipped["performance"] = f"the batch's target column '{target}' is empty"
        else:
            performance = _performance(recorded, model, y[known], pred_b[known],
                                       proba_b[known] if proba_b is not None else None, task, cfg)
    return prediction, performance


def _prediction_drift(model: Any, reference: Reference, pred_b: np.ndarray, proba_b: np.ndarray | None,
                      cfg: Mapping[str, Any], seed: int, n: int, skipped: dict[str, str]) -> dict[str, Any] | None:
    import pandas as pd

    classification = reference.task == "classification" or pred_b.dtype.kind in "OUSb"
    out: dict[str, Any] = {"output": "label" if classification else "number", "rows": len(pred_b), "scores": None}
    pred_r = proba_r = None
    if reference.rows is not None:
        ref_rows = reference.rows.rows(reference.inputs, n, seed)
        try:
            with one_thread():
                pred_r = np.asarray(model.predict(ref_rows[reference.inputs]))
                if proba_b is not None:
                    proba_r = model.predict_proba(ref_rows[reference.inputs])
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the check stands
            skipped["prediction"] = f"the model failed on its own reference rows: {type(exc).__name__}: {exc}"
            return None
        if classification:
            counts, missing = refmod.category_counts(pd.Series(pred_r))
            ref_col = _RefColumn("prediction", "categorical", str(pred_r.dtype), counts=counts, missing=missing)
        else:
            ref_col = _RefColumn("prediction", "numeric", str(pred_r.dtype),
                                 num=_sample(pred_r.astype(np.float64), np.float64))
    else:
        prof = (reference.profile or {}).get("predictions")
        if not prof:
            skipped["prediction"] = "the reference profile holds no profile of the model's outputs"
            return None
        ref_col = _profile_column("prediction", prof, int(prof.get("n") or 0))
        classification = ref_col.kind == "categorical"
        out["output"] = "label" if classification else "number"
    if classification:
        counts, missing = refmod.category_counts(pd.Series(pred_b))
        row = compare_categorical("prediction", ref_col, counts, missing, cfg, role="prediction")
        out["labels"] = row
    else:
        assert ref_col.num is not None
        row = compare_numeric("prediction", ref_col.num, _sample(pred_b.astype(np.float64), np.float64), cfg,
                              role="prediction")
        out["values"] = row
    _decide([row], "none")
    drift = bool(row["drift"])
    reason = f"{'labels' if classification else 'values'}: {row['reason']}"
    if proba_b is not None and proba_r is not None and np.asarray(proba_b).ndim == 2 and proba_b.shape[1] == 2:
        srow = compare_numeric("score", _sample(np.asarray(proba_r)[:, 1], np.float64),
                               _sample(np.asarray(proba_b)[:, 1], np.float64), cfg, role="prediction")
        _decide([srow], "none")
        out["scores"] = srow
        if srow["drift"]:
            drift = True
            reason += f"; scores (probability of {getattr(model, 'classes_', [None, 'the second class'])[1]!r}): " \
                      f"{srow['reason']}"
    elif proba_b is not None and reference.rows is None:
        skipped.setdefault("prediction_scores", "score drift needs the reference's rows (a profile holds labels only)")
    out["drift"] = drift
    out["reason"] = reason
    return out


def _performance(recorded: Mapping[str, Any], model: Any, y: Any, pred: np.ndarray, proba: np.ndarray | None,
                 task: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    from modelyard.core.experiments.training.train import (
        GREATER_IS_BETTER,
        PRIMARY_METRIC,
        compute_metrics,
    )

    classes = getattr(model, "classes_", None)
    if task == "classification":
        lookup = {refmod.category_key(c): c for c in (classes if classes is not None else [])}
        y_true = np.asarray([lookup.get(refmod.category_key(v), v) for v in y.tolist()], dtype=object)
        try:
            y_true = y_true.astype(np.asarray(classes).dtype) if classes is not None else y_true
        except (TypeError, ValueError):
            pass
    else:
        y_true = refmod.numeric_values(y)
    now = compute_metrics(task, y_true, pred, proba=proba, classes=classes)
    deciding = list(cfg["performance"].get("metrics") or []) or [PRIMARY_METRIC[task]]
    max_drop = float(cfg["performance"]["max_relative_drop"])
    rows = []
    degraded_names = []
    for key in sorted(set(now) | {k for k in deciding if k in recorded}):
        higher = GREATER_IS_BETTER.get(key, True)
        was, value = recorded.get(key), now.get(key)
        change = rel = None
        if was is not None and value is not None:
            change = value - was
            worse = (was - value) if higher else (value - was)
            rel = worse / abs(was) if was else worse
        decides = key in deciding
        degraded = bool(decides and rel is not None and rel > max_drop)
        if degraded:
            degraded_names.append(key)
        rows.append({"metric": key, "recorded": was, "batch": value, "change": change, "relative_drop": rel,
                     "greater_is_better": higher, "decides": decides, "degraded": degraded})
    text = "; ".join(f"{r['metric']} {_fmt(r['batch'])} vs {_fmt(r['recorded'])} recorded "
                     f"({r['relative_drop']:+.1%} worse)" for r in rows if r["degraded"])
    return {"task": task, "rows": len(y_true), "metrics": rows, "degraded": bool(degraded_names),
            "max_relative_drop": max_drop,
            "reason": f"the model performs worse on the batch: {text}" if degraded_names else ""}


# =========================================================================== the domain classifier


def one_thread() -> Any:
    """Native thread pools (OpenMP, BLAS) limited to one thread: on a busy machine OpenMP's
    spinning workers make small fits 10-50x slower, and these fits are small."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _encode(frame: pd.DataFrame, cols: list[str], kinds: Mapping[str, str]) -> tuple[np.ndarray, list[bool]]:
    import pandas as pd

    out = np.empty((len(frame), len(cols)), dtype=np.float32)
    mask = []
    for j, c in enumerate(cols):
        s = frame[c]
        if kinds[c] == "categorical":
            raw_codes, raw_uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
            # the same category may come as 1 and "1" (or 1.0): merge by key, computed once per distinct value
            key_codes, uniques = pd.factorize(np.asarray([refmod.category_key(v) for v in raw_uniques], dtype=object))
            codes = np.where(raw_codes >= 0, key_codes[np.maximum(raw_codes, 0)] if len(key_codes) else -1, -1)
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            order = np.argsort(-counts, kind="stable")
            rank = np.empty(len(uniques), dtype=np.int64)
            rank[order] = np.arange(len(uniques))
            mapped = np.where(codes >= 0, np.minimum(rank[np.maximum(codes, 0)], MAX_DOMAIN_CODES), -1)
            out[:, j] = np.where(mapped >= 0, mapped, np.nan)
            mask.append(True)
        else:
            out[:, j] = refmod.numeric_values(s)
            mask.append(False)
    return out, mask


def _domain_classifier(reference: Reference, batch: Columns, cols: list[str], cfg: Mapping[str, Any],
                       skipped: dict[str, str]) -> dict[str, Any] | None:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    mv = cfg["multivariate"]
    if not cols:
        skipped["multivariate"] = "no feature could be compared"
        return None
    assert reference.rows is not None
    seed, n, folds = int(cfg["seed"]), int(mv["sample"]), int(mv["folds"])
    ref_rows = reference.rows.rows(cols, n, seed)
    cur_rows = batch.rows(cols, n, seed + 1)
    if min(len(ref_rows), len(cur_rows)) < max(folds, 10):
        skipped["multivariate"] = f"too few rows for {folds}-fold cross-validation"
        return None
    both = pd.concat([ref_rows.reset_index(drop=True), cur_rows.reset_index(drop=True)], ignore_index=True)
    kinds = {c: reference.kinds[c] for c in cols}
    X, mask = _encode(both, cols, kinds)
    y = np.concatenate([np.zeros(len(ref_rows), dtype=np.int8), np.ones(len(cur_rows), dtype=np.int8)])
    oof = np.zeros(len(y), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with one_thread():
        for train, test in splitter.split(X, y):
            clf = HistGradientBoostingClassifier(max_iter=DOMAIN_ITERATIONS, learning_rate=0.1, max_leaf_nodes=15,
                                                 early_stopping=False, random_state=seed,
                                                 categorical_features=np.asarray(mask) if any(mask) else None)
            clf.fit(X[train], y[train])
            oof[test] = clf.predict_proba(X[test])[:, 1]
    auc = float(roc_auc_score(y, oof))
    threshold = float(mv["auc_threshold"])
    return {"auc": auc, "threshold": threshold, "drift": bool(auc >= threshold), "n_reference": len(ref_rows),
            "n_batch": len(cur_rows), "folds": folds, "columns": cols, "model": "HistGradientBoostingClassifier"}


# =========================================================================== the job


class _Scaled:
    """A JobContext whose progress is mapped into a slice of the real one (for a nested job)."""

    def __init__(self, ctx: JobContext, start: float, end: float) -> None:
        self._ctx, self._start, self._end = ctx, start, end
        self.store, self.job_id = ctx.store, ctx.job_id

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        f = None if fraction is None else self._start + (self._end - self._start) * float(fraction)
        self._ctx.progress(f, message)

    def log(self, line: str) -> None:
        self._ctx.log(line)

    def check_cancelled(self) -> None:
        self._ctx.check_cancelled()

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancelled


def batch_dataset_name(model_name: str) -> str:
    """The dataset a model's batch files are imported into."""
    return f"{model_name}-batches"


def check_spec(model_ref: str, *, batch_path: str | os.PathLike[str] | None = None,
               batch_dataset_version_id: int | None = None, config: Mapping[str, Any] | None = None,
               dataset_name: str | None = None, title: str | None = None) -> JobSpec:
    """The job that checks a batch file (imported first) or dataset version against ``model_ref``."""
    params: dict[str, Any] = {"model_ref": model_ref}
    if batch_path is not None:
        params["batch_path"] = os.fspath(batch_path)
    if batch_dataset_version_id is not None:
        params["batch_dataset_version_id"] = int(batch_dataset_version_id)
    if config:
        params["config"] = dict(config)
    if dataset_name:
        params["dataset_name"] = dataset_name
    what = os.path.basename(os.fspath(batch_path)) if batch_path is not None else f"dataset version " \
                                                                                   f"{batch_dataset_version_id}"
    return JobSpec(func="modelyard.core.monitoring.drift.check:check_drift_job", title=title or f"Drift check of {model_ref}: "
                   f"{what}", params=params, kind="drift.check")


def check_drift_job(ctx: JobContext, *, model_ref: str, batch_path: str | None = None,
                    batch_dataset_version_id: int | None = None, config: Mapping[str, Any] | None = None,
                    dataset_name: str | None = None) -> dict[str, Any]:
    """Job: import ``batch_path`` as a version of ``<model>-batches`` (or use the dataset version
    given), check it against ``model_ref``, and record the check (a ``monitoring_checks`` row, the
    lineage edge ``dataset_version -> monitoring_check`` "checked" and the audit event
    ``drift_check``) in one transaction. Returns a summary with ``check_id``."""
    import pyarrow.parquet as pq

    from modelyard.core.datasets import service

    store = ctx.store
    if (batch_path is None) == (batch_dataset_version_id is None):
        raise ModelyardError("A drift check needs exactly one batch: a file or a dataset version.")
    info = registry.get_version(store, model_ref)
    validate_config(config or {})
    _need_reference(store, info)  # before importing anything
    if batch_path is not None:
        ctx.progress(0.0, f"Importing {os.path.basename(batch_path)}")
        imported = service.import_dataset(_Scaled(ctx, 0.0, 0.35), path=str(batch_path),  # type: ignore[arg-type]
                                          options={"name": dataset_name or batch_dataset_name(info.name)},
                                          date_hints=service.date_formats_of(store, info.dataset_version_id))
        dvid = int(imported["dataset_version_id"])
        ctx.log(f"Batch: {imported.get('ref')} ({'new' if imported.get('created') else 'already stored'}).")
        start = 0.35
    else:
        dvid = int(batch_dataset_version_id)  # type: ignore[arg-type]
        start = 0.0
    dv = service.get_version(store, dvid)
    ctx.progress(start, f"Reading {dv.ref}")
    table = pq.read_table(service.snapshot_path(store, dvid))
    scaled = _Scaled(ctx, start + 0.05, 0.98)
    result = run_check(store, info.ref, table, config=config, progress=scaled.progress,
                       batch_info={"dataset_version_id": dvid, "dataset_ref": dv.ref,
                                   "source_path": str(batch_path) if batch_path else dv.source_path})
    del table
    ctx.progress(0.99, "Recording the check")
    data = result.to_json()
    with store.write() as s:
        row = m.MonitoringCheck(model_version_id=info.id, batch_dataset_version_id=dvid,
                                reference_dataset_version_id=result.reference.get("dataset_version_id")
                                if result.reference.get("source") == "rows" else None,
                                created_by=current_user(), verdict=result.verdict, drift_share=result.drift_share,
                                config=data["config"], result={k: v for k, v in data.items() if k != "config"},
                                job_id=ctx.job_id)
        s.add(row)
        s.flush()
        records.link(s, "dataset_version", dvid, "monitoring_check", row.id, "checked",
                     {"model": info.name, "version": info.version, "verdict": result.verdict})
        records.audit(s, registry.ENTITY, info.model_id, "drift_check", from_value=dv.ref, to_value=result.verdict,
                      details={"version": info.version, "check_id": row.id, "verdict": result.verdict,
                               "drift_share": result.drift_share, "drifted": result.drifted,
                               "batch_dataset_version_id": dvid})
        model = s.get(m.RegisteredModel, info.model_id)
        if model is not None:
            model.updated_at = m.utcnow()
        check_id = row.id
    ctx.log(f"Check {check_id}: {result.verdict}" + (f" ({len(result.drifted)} of {result.n_features} features "
                                                     f"drift)" if result.n_features else ""))
    for reason in result.reasons:
        ctx.log(f"  {reason}")
    return _clean({"check_id": check_id, "verdict": result.verdict, "drift_share": result.drift_share,
                   "model": info.name, "version": info.version, "ref": info.ref, "model_version_id": info.id,
                   "batch_dataset_version_id": dvid, "batch_ref": dv.ref, "n_features": result.n_features,
                   "drifted": result.drifted, "reasons": result.reasons, "seconds": result.seconds})


# =========================================================================== reading stored checks


def _summary(c: m.MonitoringCheck, model: str, version: int, batch_ref: str | None) -> dict[str, Any]:
    res = c.result or {}
    return {"id": c.id, "created_at": c.created_at.isoformat() if c.created_at else None, "created_by": c.created_by,
            "model": model, "version": version, "ref": f"{model}@v{version}", "model_version_id": c.model_version_id,
            "verdict": c.verdict, "drift_share": c.drift_share, "n_features": res.get("n_features"),
            "drifted": res.get("drifted") or [], "batch_dataset_version_id": c.batch_dataset_version_id,
            "batch_ref": batch_ref, "batch_rows": (res.get("batch") or {}).get("n_rows"),
            "reference_dataset_version_id": c.reference_dataset_version_id, "job_id": c.job_id,
            "reasons": res.get("reasons") or []}


def _batch_refs(s: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = s.execute(select(m.DatasetVersion.id, m.Dataset.name, m.DatasetVersion.version)
                     .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                     .where(m.DatasetVersion.id.in_(ids))).all()
    return {i: f"{n}@v{v}" for i, n, v in rows}


def _newest_checks(s: Session, model_id: int, limit: int | None) -> list[Any]:
    """(check, version number) rows of every version of a model, newest first."""
    q = (select(m.MonitoringCheck, m.ModelVersion.version)
         .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
         .where(m.ModelVersion.model_id == model_id)
         .order_by(m.MonitoringCheck.created_at.desc(), m.MonitoringCheck.id.desc()))
    if limit is not None:
        q = q.limit(int(limit))
    return list(s.execute(q).all())


def list_checks(store: Store, name: str, *, limit: int | None = 50) -> list[dict[str, Any]]:
    """The checks of every version of ``name``, newest first (summaries: no per-feature rows)."""
    with store.session() as s:
        model = registry.model_of(s, name)
        rows = _newest_checks(s, model.id, limit)
        refs = _batch_refs(s, {c.batch_dataset_version_id for c, _ in rows if c.batch_dataset_version_id})
        return [_summary(c, model.name, v, refs.get(c.batch_dataset_version_id or -1)) for c, v in rows]


def get_check(store: Store, check_id: int) -> dict[str, Any]:
    """Everything about one check: the summary, the configuration it was decided with, and the
    whole result (see the module docstring), per-feature rows ordered by drift score."""
    with store.session() as s:
        c = lookup.drift_check_by_id(s, check_id)
        mv = s.get(m.ModelVersion, c.model_version_id)
        model = s.get(m.RegisteredModel, mv.model_id) if mv is not None else None
        refs = _batch_refs(s, {c.batch_dataset_version_id} if c.batch_dataset_version_id else set())
        out = _summary(c, model.name if model else "?", mv.version if mv else 0,
                       refs.get(c.batch_dataset_version_id or -1))
        res = dict(c.result or {})
        config = dict(c.config or {})
    for key in ("model", "version", "ref", "model_version_id", "verdict", "drift_share", "drifted", "reasons",
                "n_features"):
        res.pop(key, None)
    feats = list(res.pop("features", []) or [])
    feats.sort(key=lambda r: (not r.get("drift"), -(r.get("score") or 0.0), r.get("name", "")))
    return {**out, **res, "features": feats, "config": config}


def timeline(store: Store, name: str, *, limit: int | None = 500) -> dict[str, Any]:
    """Per check (oldest first): drift score and verdict per feature, the dataset verdict and share,
    and the model's primary metric on the batch (when it carried the target) with its recorded value."""
    with store.session() as s:
        model = registry.model_of(s, name)
        rows = list(reversed(_newest_checks(s, model.id, limit)))
        refs = _batch_refs(s, {c.batch_dataset_version_id for c, _ in rows if c.batch_dataset_version_id})
        data = [(c.id, c.created_at, v, c.verdict, c.drift_share, dict(c.result or {}),
                 refs.get(c.batch_dataset_version_id or -1)) for c, v in rows]
    names: list[str] = []
    checks = []
    metric_name = None
    for cid, at, version, verdict, share, res, batch_ref in data:
        scores, drift = {}, {}
        for r in res.get("features") or []:
            if r.get("status") != "checked":
                continue
            if r["name"] not in names:
                names.append(r["name"])
            scores[r["name"]] = r.get("score")
            drift[r["name"]] = r.get("drift")
        metric = recorded = None
        perf = res.get("performance") or {}
        for row in perf.get("metrics") or []:
            if row.get("decides"):
                metric_name = metric_name or row["metric"]
                if row["metric"] == metric_name:
                    metric, recorded = row.get("batch"), row.get("recorded")
        mv = res.get("multivariate") or {}
        checks.append({"id": cid, "created_at": at.isoformat() if at else None, "version": version,
                       "verdict": verdict, "drift_share": share, "batch_ref": batch_ref, "scores": scores,
                       "drift": drift, "metric": metric, "metric_recorded": recorded,
                       "prediction_drift": (res.get("prediction") or {}).get("drift"), "auc": mv.get("auc")})
    return {"model": model.name, "features": names, "metric": metric_name, "checks": checks}


def model_status(store: Store, name: str) -> str | None:
    """The verdict of the model's latest check (``ok`` | ``warning`` | ``drift``), None if never checked."""
    with store.session() as s:
        model = registry.model_of(s, name)
        verdict = s.scalar(select(m.MonitoringCheck.verdict)
                           .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
                           .where(m.ModelVersion.model_id == model.id)
                           .order_by(m.MonitoringCheck.created_at.desc(), m.MonitoringCheck.id.desc()).limit(1))
    if verdict is None:
        return None
    return verdict if verdict in VERDICTS else "warning"
