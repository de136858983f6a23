"""Reference profiles: what a model's training data looked like, small enough to ship in a bundle.

A profile is plain JSON (``format`` 1)::

    {"format": 1, "n_rows": 8000, "target": "churned",
     "columns": {
        "age":  {"kind": "numeric", "dtype": "float64", "missing": 0.01, "n": 7920,
                 "quantiles": [18.0, 21.0, ..., 90.0],      # bin edges (k + 1 values)
                 "counts": [80, 79, ...],                   # rows per bin (k values)
                 "discrete": false,
                 "mean": 41.2, "std": 12.9, "min": 18.0, "max": 90.0},
        "plan": {"kind": "categorical", "dtype": "str", "missing": 0.0, "n": 8000,
                 "categories": ["basic", "pro", ...], "counts": [5100, 2900, ...],
                 "other_count": 0}},
     "skipped": {"signup": "a date or time"},
     "source": {...}, "predictions": {...}}

Numeric bins: the edges are the reference's quantiles at 0, 1/k, ..., 1 (``k`` = 100) and, in
each tail, at 0.05 %, 0.1 %, 0.2 % and 0.5 % (:func:`quantile_levels`; repeated values merged),
or, for a column with at most 100 distinct values, those values themselves
(``discrete``: one bin per value, the last edge repeated). Bin ``i`` holds ``edges[i] <= x <
edges[i + 1]``; values below the first or above the last edge belong to the outer bins
(:func:`bin_counts` does exactly this, so a batch binned later lines up with the reference).
Categories are text keys (:func:`category_key`: ``1`` and ``1.0`` are both ``"1"``), most
frequent first; beyond 1,000 categories the rest are summed in ``other_count``.

``predictions`` (when :func:`reference_for_version` could run the model on its training rows)
profiles the model's outputs on a sample of them, as a column (kind ``categorical`` for labels,
``numeric`` for numbers), so prediction drift can be measured from a bundle alone.

The drift check (:mod:`modelyard.core.monitoring.drift.check`) uses the raw training rows when the store
holds them and the profile otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "FORMAT",
    "MAX_BINS",
    "MAX_CATEGORIES",
    "PREDICTION_SAMPLE",
    "ReferenceData",
    "bin_counts",
    "bin_index",
    "build_reference",
    "categorical_profile",
    "category_key",
    "load_reference_data",
    "numeric_profile",
    "numeric_values",
    "quantile_levels",
    "reference_for_version",
    "stored_profile",
    "validate_reference",
]

FORMAT = 1
MAX_BINS = 100
MAX_CATEGORIES = 1000
PREDICTION_SAMPLE = 20_000
PROFILE_MEDIA_TYPE = "application/json"
CATEGORICAL_STEPS = frozenset({"onehot", "ordinal", "boolean"})
CATEGORICAL_TYPES = frozenset({"categorical", "boolean"})
SKIPPED_TYPES = {"datetime": "a date or time (time moves on; not compared)", "text": "free text", "id": "an identifier"}


# =========================================================================== values


def category_key(value: Any) -> str:
    """The text a category is known by: ``1``, ``1.0`` and ``"1"`` are all ``"1"``; True is ``"True"``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    type_name = type(value).__module__
    if type_name == "numpy":
        return category_key(value.item())
    return str(value)


def is_categorical_dtype(series: pd.Series) -> bool:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return True
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)
                or pd.api.types.is_timedelta64_dtype(dtype))


def numeric_values(series: pd.Series, dtype: Any = None) -> np.ndarray:
    """A column as floats with NaN for missing (booleans as 0/1, text that is not a number NaN)."""
    import numpy as np
    import pandas as pd

    dtype = dtype or np.float64
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=dtype, na_value=np.nan)
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        return series.dt.total_seconds().to_numpy(dtype=dtype, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)


# =========================================================================== numeric bins


def bin_index(edges: Iterable[float], values: np.ndarray) -> np.ndarray:
    """Which bin of ``edges`` each (non-missing) value falls in, 0 .. k-1 (outer bins take the tails)."""
    import numpy as np

    e = np.asarray(edges, dtype=np.float64)
    return np.searchsorted(e[1:-1], values, side="right")


def bin_counts(edges: Iterable[float], values: np.ndarray, *, sorted_values: bool = False) -> np.ndarray:
    """Rows per bin of ``edges`` (see the module docstring); ``values`` must hold no NaN."""
    import numpy as np

    e = np.asarray(edges, dtype=np.float64)
    k = max(len(e) - 1, 1)
    if sorted_values:
        cuts = np.searchsorted(values, e[1:-1], side="left")
        return np.diff(np.concatenate([[0], cuts, [len(values)]])).astype(np.int64)
    return np.bincount(np.searchsorted(e[1:-1], values, side="right"), minlength=k).astype(np.int64)


TAIL_LEVELS = (0.0005, 0.001, 0.002, 0.005)


def quantile_levels(max_bins: int = MAX_BINS) -> np.ndarray:
    """The quantile levels of a continuous column's edges: every 1/``max_bins``, and finer in the
    tails (0.05 %, 0.1 %, 0.2 %, 0.5 % from each end), where distances are most sensitive."""
    import numpy as np

    tails = np.asarray(TAIL_LEVELS)
    levels = np.concatenate([np.linspace(0, 1, max_bins + 1), tails, 1 - tails])
    return np.unique(np.clip(levels, 0, 1))


def numeric_profile(values: np.ndarray, *, n_missing: int | None = None, presorted: bool = False,
                    dtype: str = "float64", max_bins: int = MAX_BINS) -> dict[str, Any]:
    """The profile of one numeric column. ``values``: floats; NaN are missing unless ``presorted``
    (then they must already be removed and ``n_missing`` given)."""
    import numpy as np

    if presorted:
        s = values
        missing = int(n_missing or 0)
    else:
        v = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(v)
        s = np.sort(v[ok])
        missing = int(len(v) - len(s)) + int(n_missing or 0)
    n = len(s)
    total = n + missing
    out: dict[str, Any] = {"kind": "numeric", "dtype": dtype, "missing": missing / total if total else 0.0, "n": n}
    if n == 0:
        out.update(quantiles=[], counts=[], discrete=False, mean=None, std=None, min=None, max=None)
        return out
    change = np.flatnonzero(s[1:] != s[:-1])
    distinct = len(change) + 1
    if distinct <= max_bins:
        values_ = np.concatenate([s[:1], s[change + 1]])
        edges = np.concatenate([values_, values_[-1:]])
        discrete = True
    else:
        pos = np.round(quantile_levels(max_bins) * (n - 1)).astype(np.int64)
        edges = np.unique(s[pos])
        if len(edges) < 2:
            edges = np.concatenate([edges, edges])
        discrete = False
    counts = bin_counts(edges, s, sorted_values=True)
    s64 = s.astype(np.float64, copy=False)
    mean = float(s64.mean())
    std = float(s64.std(ddof=1)) if n > 1 else 0.0
    out.update(quantiles=[float(x) for x in edges], counts=[int(c) for c in counts], discrete=discrete,
               mean=mean, std=std, min=float(s[0]), max=float(s[-1]))
    return out


# =========================================================================== categories


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """(count per category key, missing rows) of a column."""
    counts: dict[str, int] = {}
    vc = series.value_counts(dropna=True, sort=False)
    for value, count in zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True):
        key = category_key(value)
        counts[key] = counts.get(key, 0) + int(count)
    missing = int(len(series) - sum(counts.values()))
    return counts, missing


def categorical_profile(counts: Mapping[str, int], missing: int, *, dtype: str = "str",
                        max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """The profile of one categorical column from its category counts."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept, rest = ordered[:max_categories], ordered[max_categories:]
    n = sum(counts.values())
    total = n + missing
    return {"kind": "categorical", "dtype": dtype, "missing": missing / total if total else 0.0, "n": n,
            "categories": [k for k, _ in kept], "counts": [int(c) for _, c in kept],
            "other_count": int(sum(c for _, c in rest))}


# =========================================================================== a whole frame


def build_reference(frame: pd.DataFrame, *, target: str | None = None,
                    categorical: list[str] | None = None) -> dict[str, Any]:
    """The JSON profile of ``frame`` (see the module docstring).

    A column is categorical when it is named in ``categorical`` or holds text, booleans or a
    pandas category; other numbers are numeric; dates and times are left out (listed under
    ``skipped``). ``target`` names the target column (profiled like the others).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ModelyardError("A reference profile is built from a table (a pandas DataFrame).")
    if target is not None and target not in frame.columns:
        raise ModelyardError(f"The reference table has no target column {target!r}.",
                             hint=f"Its columns are {', '.join(map(repr, list(frame.columns)[:20]))}.")
    cats = set(categorical or [])
    unknown = cats - {str(c) for c in frame.columns}
    if unknown:
        raise ModelyardError(f"The reference table has no column(s) {', '.join(sorted(map(repr, unknown)))} "
                             "to treat as categorical.")
    columns: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in frame.columns:
        series = frame[name]
        key = str(name)
        if key in cats or isinstance(series.dtype, pd.CategoricalDtype) or is_categorical_dtype(series):
            counts, missing = category_counts(series)
            columns[key] = categorical_profile(counts, missing, dtype=str(series.dtype))
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            skipped[key] = SKIPPED_TYPES["datetime"]
        else:
            columns[key] = numeric_profile(numeric_values(series), dtype=str(series.dtype))
    out: dict[str, Any] = {"format": FORMAT, "n_rows": len(frame), "columns": columns,
                           "target": str(target) if target is not None else None}
    if skipped:
        out["skipped"] = skipped
    return out


def validate_reference(profile: Any, *, what: str = "The reference profile") -> dict[str, Any]:
    """``profile`` if it is a usable profile of a format this Modelyard reads; else ModelyardError."""
    if not isinstance(profile, dict) or not isinstance(profile.get("columns"), dict):
        raise ModelyardError(f"{what} is not a reference profile (no 'columns' mapping).")
    fmt = profile.get("format")
    if fmt != FORMAT:
        raise ModelyardError(f"{what} has format {fmt!r}; this Modelyard reads format {FORMAT}.",
                             hint="Export the bundle again with this Modelyard, or upgrade Modelyard.")
    for name, col in profile["columns"].items():
        kind = col.get("kind") if isinstance(col, dict) else None
        if kind == "numeric":
            edges, counts = col.get("quantiles"), col.get("counts")
            ok = isinstance(edges, list) and isinstance(counts, list) and (
                (not edges and not counts) or len(edges) == len(counts) + 1)
            ok = ok and all(a <= b for a, b in zip(edges or [], (edges or [])[1:], strict=False))
        elif kind == "categorical":
            cats, counts = col.get("categories"), col.get("counts")
            ok = isinstance(cats, list) and isinstance(counts, list) and len(cats) == len(counts)
        else:
            ok = False
        if not ok:
            raise ModelyardError(f"{what}: column {name!r} is malformed ({kind or 'no kind'}).")
    return profile


# =========================================================================== a model version's reference


@dataclass
class ReferenceData:
    """The raw training rows of a model version, and what its columns are."""

    frame: pd.DataFrame | None  # None when read with as_table=True (then ``table`` holds the rows)
    features: list[str]
    target: str | None
    task: str | None
    categorical: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    dataset_version_id: int | None = None
    split_id: int | None = None
    part: str = "all"  # "train" (the training part of the split), "all" (the whole version), "test", "none"
    output: dict[str, Any] | None = None
    table: Any = None  # a pyarrow.Table, with as_table=True

    @property
    def n_rows(self) -> int:
        return len(self.frame) if self.frame is not None else int(self.table.num_rows)

    def source(self) -> dict[str, Any]:
        return {"dataset_version_id": self.dataset_version_id, "split_id": self.split_id, "part": self.part,
                "n_rows": self.n_rows}


def columns_of_version(signature: Mapping[str, Any] | None, schema: Mapping[str, Any] | None
                       ) -> tuple[list[str], str | None, str | None, list[str], dict[str, str]]:
    """(features, target, task, categorical columns, skipped {name: reason}) of a model version,
    from its signature, else from its dataset version's schema."""
    features: list[str] = []
    categorical: list[str] = []
    skipped: dict[str, str] = {}
    target = task = None
    sig = signature or {}
    if sig.get("inputs"):
        for col in sig["inputs"]:
            name = str(col.get("name"))
            sem, step = col.get("type"), col.get("step")
            if step == "datetime" or sem in SKIPPED_TYPES:
                skipped[name] = SKIPPED_TYPES.get(sem or "datetime", SKIPPED_TYPES["datetime"])
                continue
            features.append(name)
            if step in CATEGORICAL_STEPS or sem in CATEGORICAL_TYPES:
                categorical.append(name)
        tgt = sig.get("target") or {}
        target, task = tgt.get("name"), tgt.get("task")
    else:
        sch = schema or {}
        target, task = sch.get("target"), sch.get("task")
        for col in sch.get("columns", []):
            name, sem, role = str(col.get("name")), col.get("type"), col.get("role", "feature")
            if name == target or role != "feature":
                continue
            if sem in SKIPPED_TYPES:
                skipped[name] = SKIPPED_TYPES[sem]
                continue
            features.append(name)
            if sem in CATEGORICAL_TYPES:
                categorical.append(name)
    if target is not None and task == "classification":
        categorical.append(target)
    return features, target, task, categorical, skipped


def load_reference_data(store: Store, version_id: int, *, columns: list[str] | None = None,
                        also: Sequence[str] = (), as_table: bool = False, part: str = "train") -> ReferenceData | None:
    """The training rows of a model version (the train part of its split when the split is in the
    store, else the whole dataset version), or None when its dataset version is not in this store.
    ``columns`` default to the features and the target; ``also`` adds more (when present).
    ``as_table``: keep them as a pyarrow Table (``.table``; ``.frame`` is None).
    ``part``: another part of the split instead ("test": the held-out rows the evidence is computed
    on); without a stored split there is no such part, and the result has ``part`` "none" and no rows."""
    import pyarrow.parquet as pq

    from modelyard.core.datasets import service

    with store.session() as s:
        mv = lookup.model_version_by_id(s, version_id)
        dvid = mv.dataset_version_id
        signature, card = dict(mv.signature or {}), dict(mv.card or {})
        dv = s.get(m.DatasetVersion, dvid) if dvid is not None else None
        if dv is None or dv.snapshot_sha256 is None or not store.artifacts.exists(dv.snapshot_sha256):
            return None
        schema = dict(dv.schema or {})
        path = store.artifacts.path(dv.snapshot_sha256)
        split_id = card.get("split_id")
        if split_id is None and mv.run_id is not None:
            split_id = s.scalar(select(m.Run.split_id).where(m.Run.id == mv.run_id))
        split = s.get(m.DatasetSplit, int(split_id)) if split_id is not None else None
        if split is not None and (split.dataset_version_id != dvid or split.assignment_sha256 is None
                                  or not store.artifacts.exists(split.assignment_sha256)):
            split = None
        split_id = split.id if split is not None else None
    features, target, task, categorical, skipped = columns_of_version(signature, schema)
    with pq.ParquetFile(path) as pf:
        available = set(pf.schema_arrow.names)
        chosen = columns if columns is not None else [*features, *([target] if target else [])]
        wanted = [c for c in dict.fromkeys([*chosen, *also]) if c in available]
        idx = service.load_split(store, split_id)[part] if split_id is not None else None
        if idx is not None and (len(idx) or part != "train"):
            table = _take_rows(pf, wanted, idx)
        elif part != "train":  # no stored split: no held-out part to read
            table = pf.schema_arrow.empty_table().select(wanted)
            part = "none"
        else:
            table = pf.read(columns=wanted)
            part = "all"
    frame = None if as_table else table.to_pandas()
    return ReferenceData(frame=frame, table=table if as_table else None,
                         features=[f for f in features if f in available],
                         target=target if target in available else None, task=task,
                         categorical=[c for c in categorical if c in available], skipped=skipped,
                         dataset_version_id=dvid, split_id=split_id, part=part,
                         output=signature.get("output"))


def _take_rows(pf: Any, columns: list[str], idx: np.ndarray) -> Any:
    """Rows ``idx`` (ascending) of a Parquet file, read one row group at a time (never the whole file)."""
    import numpy as np
    import pyarrow as pa

    idx = np.asarray(idx, dtype=np.int64)
    pieces = []
    start = 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        lo, hi = np.searchsorted(idx, [start, start + n])
        if hi > lo:
            group = pf.read_row_group(g, columns=columns)
            pieces.append(group.take(pa.array(idx[lo:hi] - start)))
        start += n
    if not pieces:
        return pf.schema_arrow.empty_table().select(columns)
    return pa.concat_tables(pieces)


def prediction_profile(model: Any, frame: pd.DataFrame, features: list[str], task: str | None, *,
                       sample: int = PREDICTION_SAMPLE, seed: int = 0) -> dict[str, Any]:
    """The profile of a model's outputs on (a seeded sample of) ``frame``."""
    import numpy as np
    import pandas as pd

    X = frame[features]
    if len(X) > sample:
        idx = np.sort(np.random.default_rng(seed).choice(len(X), size=sample, replace=False))
        X = X.iloc[idx]
    pred = np.asarray(model.predict(X))
    if task == "classification" or pred.dtype.kind in "OUSb":
        counts, missing = category_counts(pd.Series(pred))
        out = categorical_profile(counts, missing, dtype=str(pred.dtype))
    else:
        out = numeric_profile(pred.astype(np.float64), dtype=str(pred.dtype))
    out["sample_rows"] = len(X)
    return out


def _stored(store: Store, version_id: int, card: Mapping[str, Any]) -> dict[str, Any] | None:
    sha = card.get("reference_profile_sha256")
    if not sha or not store.artifacts.exists(sha):
        return None
    try:
        profile = json.loads(store.artifacts.read_bytes(sha))
    except (OSError, ValueError) as exc:
        raise ModelyardError(f"The stored reference profile of model version {version_id} cannot be read "
                             f"({exc}).", hint="'modelyard store verify' checks the artifact files.") from None
    return validate_reference(profile, what=f"The stored reference profile of model version {version_id}")


def stored_profile(store: Store, version_id: int) -> dict[str, Any] | None:
    """The profile stored with a model version (``card["reference_profile_sha256"]``), or None."""
    with store.session() as s:
        mv = lookup.model_version_by_id(s, version_id)
        card = dict(mv.card or {})
    return _stored(store, int(version_id), card)


def reference_for_version(store: Store, version_id: int) -> dict[str, Any] | None:
    """The profile of a model version's training data (see the module docstring).

    Built from the train rows of its dataset version's split when the store holds them (else
    the whole dataset version); for a version without a dataset version in this store (e.g.
    imported from a bundle), the stored profile named by ``card["reference_profile_sha256"]``;
    None when there is neither.
    """
    with store.session() as s:
        mv = lookup.model_version_by_id(s, version_id)
        card = dict(mv.card or {})
        model_sha = mv.model_sha256
        model_name = s.scalar(select(m.RegisteredModel.name).where(m.RegisteredModel.id == mv.model_id))
        model_ref = f"{model_name}@v{mv.version}"
        inputs = [str(c.get("name")) for c in (mv.signature or {}).get("inputs") or []]
    # the profiled columns, plus the model's other inputs (dates: not profiled, but the model needs
    # them to be run on these rows for the profile of its outputs)
    data = load_reference_data(store, int(version_id), also=inputs)
    if data is None:
        return _stored(store, int(version_id), card)
    profiled = [*data.features, *([data.target] if data.target else [])]
    profile = build_reference(data.frame[[c for c in profiled if c in data.frame.columns]],
                              target=data.target, categorical=data.categorical)
    if data.skipped:
        profile.setdefault("skipped", {}).update(data.skipped)
    profile["features"] = list(data.features)
    profile["task"] = data.task
    profile["source"] = {**data.source(), "model_version_id": int(version_id)}
    if model_sha and store.artifacts.exists(model_sha) and data.features:
        try:
            from modelyard.core.registry.modelfiles import load_version_model

            model = load_version_model(store, ref=model_ref, model_sha256=model_sha, card=card)
            model_inputs = [c for c in inputs if c in data.frame.columns] or data.features
            profile["predictions"] = prediction_profile(model, data.frame, model_inputs, data.task)
        except Exception as exc:  # noqa: BLE001 - a model that cannot predict leaves the profile without it
            profile["predictions_error"] = f"{type(exc).__name__}: {exc}"
    return profile
