"""Data preparation of a training run: the dataset version, its split, the target and the frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments.training.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
)
from modelyard.core.experiments.training.spec import (
    DEFAULT_TEST_SHARE,
    TrainSpec,
)
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext
from modelyard.core.store import Store

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


# =========================================================================== data


class _Data:
    """The loaded data of a run: frames by part, the target, and the facts about them."""

    version: Any
    split: Any
    target: str
    task: str
    features: list[str]
    frame: pd.DataFrame
    y: np.ndarray
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    classes: Any
    data_hash: str
    dropped: int

    def X(self, part: np.ndarray) -> pd.DataFrame:
        return self.frame.iloc[part][self.features].reset_index(drop=True)

    def Y(self, part: np.ndarray) -> np.ndarray:
        return self.y[part]


def _resolve_version(store: Store, ts: TrainSpec) -> Any:
    from modelyard.core.datasets.service import get_version

    if ts.dataset:
        return get_version(store, ts.dataset)
    return get_version(store, int(ts.dataset_version_id or 0))


def _infer_task(version: Any, target: str) -> str:
    from modelyard.core.datasets.schema import infer_type, task_for

    if target == version.target and version.task:
        return version.task
    col = next((c for c in (version.profile or {}).get("columns", []) if c["name"] == target), None)
    sem = next((c.get("type") for c in version.columns if c["name"] == target), None)
    if col is None:
        return "classification" if sem in ("categorical", "boolean") else "regression"
    return task_for(col, infer_type(col, version.n_rows, for_target=True))


def _resolve_split(ctx: JobContext, store: Store, version: Any, ts: TrainSpec, task: str, target: str) -> Any:
    from modelyard.core.datasets import service
    from modelyard.core.datasets.splits import SplitError

    sp = dict(ts.split or {})
    if sp.get("id") is not None:
        info = service.get_split(store, int(sp["id"]))
        if info.dataset_version_id == version.id:
            return info
        # a split of another version (the dataset moved on): the same parameters on this one
        ctx.log(f"The split {info.name!r} belongs to {info.ref}, not {version.ref}: making the same split of {version.ref}.")
        sp = {"test": info.spec.get("test"), "validation": info.spec.get("validation"), "method": info.method,
              "column": info.spec.get("column"), "seed": info.seed}
    method_given = sp.get("method") is not None
    method = sp.get("method") or ("stratified" if task == "classification" else "random")
    column = sp.get("column")
    if method == "stratified" and column is None:
        column = target
    kwargs = {"test": sp.get("test") if sp.get("test") is not None else DEFAULT_TEST_SHARE,
              "validation": sp.get("validation") or 0.0,
              "seed": sp.get("seed") if sp.get("seed") is not None else ts.seed}
    try:
        return service.create_split(store, version.id, method=method, column=column, **kwargs)
    except SplitError as exc:
        if method_given or method != "stratified":
            raise
        ctx.log(f"A stratified split is not possible ({exc.message}); using a random split.")
        return service.create_split(store, version.id, method="random", **kwargs)


def _target_values(series: pd.Series, task: str) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if task == "regression":
        if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
            raise ModelyardError(f"The target '{series.name}' holds text; a regression model needs numbers.",
                                 hint="Choose a classification model, or a numeric target.")
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(v == np.round(v)):
            return v.astype(np.int64)
        return v
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        raise ModelyardError(f"The target '{series.name}' holds dates and times; it cannot be predicted here.")
    values = series.astype(object).to_numpy(dtype=object)
    kinds = {type(v) for v in values}
    if kinds <= {bool, np.bool_}:
        return values.astype(bool)
    return np.asarray([str(v) for v in values], dtype=object)


def load_data(ctx: JobContext, ts: TrainSpec, progress: ProgressSlice,
              on_split: Callable[[int], None] | None = None) -> tuple[_Data, TrainSpec, dict[str, Any]]:
    """Resolve and load everything a run trains on; returns the data, the resolved spec, the plan.
    ``on_split(n)`` is called once the spec is checked and the split known (``n`` training rows),
    before the data is read."""
    import numpy as np
    import pyarrow.parquet as pq

    from modelyard.core.datasets import service
    from modelyard.core.datasets.snapshot import content_hash
    from modelyard.core.experiments.training import catalogue, preprocess

    store = ctx.store
    progress(0.0, f"Loading {ts.dataset or ts.dataset_version_id}")
    version = _resolve_version(store, ts)
    names = [c["name"] for c in version.columns]
    target = ts.target or version.target
    if not target:
        raise ModelyardError(f"{version.ref} has no target column, and the spec names none.",
                             hint="Give the target (--target COL), or set the dataset's target.")
    if target not in names:
        raise ModelyardError(f"{version.ref} has no column '{target}' to predict.",
                             hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    task = ts.task or _infer_task(version, target)
    entry = catalogue.get_model(ts.model, task)
    params = catalogue.coerce_params(entry.key, ts.params, task)
    missing = [c for c in ts.slice_columns if c not in names]
    if missing:
        raise ModelyardError(f"{version.ref} has no column(s) {', '.join(map(repr, missing))} to slice by.",
                             hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    plan = preprocess.describe_preprocessing(version.schema or {}, target=target, model_key=entry.key,
                                             overrides=ts.preprocessing)
    features = preprocess.feature_columns(plan)
    if not features:
        raise ModelyardError(f"No column of {version.ref} is left to train on.",
                             hint="Give some columns a preprocessing step, or change their roles in the dataset.")
    if ts.search:
        space = ts.search.get("space") or catalogue.default_search_space(entry.key, task)
        checked = catalogue.check_search_space(entry.key, task, space)
        if ts.search["method"] == "optuna":  # before any run is recorded
            from modelyard.core.experiments.training.optuna_search import distributions

            distributions(checked)
        if ts.search.get("metric") is not None:
            allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
            if ts.search["metric"] not in allowed:
                raise ModelyardError(f"Unknown search metric '{ts.search['metric']}' for {task}.",
                                     hint=f"Use one of {', '.join(allowed)}.")
    progress(0.2, f"Splitting {version.ref}")
    split = _resolve_split(ctx, store, version, ts, task, target)
    parts = service.load_split(store, split.id)
    if on_split is not None:
        on_split(len(parts["train"]))
    progress(0.4, f"Reading {version.ref} ({version.n_rows:,} rows)")
    table = pq.read_table(service.snapshot_path(store, version.id))
    data_hash = content_hash(table)
    if data_hash != version.content_hash:
        ctx.log(f"warning: the data of {version.ref} hashes to {data_hash[:12]}..., not its recorded "
                f"{version.content_hash[:12]}...: its snapshot file was changed.")
    cols = list(dict.fromkeys([*features, target, *ts.slice_columns]))
    frame = table.select(cols).to_pandas()
    del table
    y_series = frame[target]
    known = ~y_series.isna().to_numpy()
    dropped = int((~known).sum())
    if dropped:
        ctx.log(f"Dropped {dropped:,} row(s) whose target '{target}' is missing.")
    y_known = _target_values(y_series[known], task)
    y = np.zeros(len(frame), dtype=y_known.dtype)  # rows without a target are never used
    y[known] = y_known

    def keep(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        return idx[known[idx]]

    d = _Data()
    d.version, d.split, d.target, d.task, d.features, d.frame, d.y = version, split, target, task, features, frame, y
    d.train, d.validation, d.test = keep(parts["train"]), keep(parts["validation"]), keep(parts["test"])
    d.data_hash, d.dropped = data_hash, dropped
    if len(d.train) < 2:
        raise ModelyardError(f"{version.ref} has {len(d.train)} training row(s) with a target: too few to train on.")
    if len(d.test) < 1:
        raise ModelyardError(f"The split of {version.ref} leaves no test rows with a target.",
                             hint="Use a larger test share.")
    if task == "classification":
        train_classes = np.unique(d.y[d.train])
        if len(train_classes) < 2:
            raise ModelyardError(f"The training rows of {version.ref} hold a single class of '{target}' "
                                 f"({train_classes[0]!r}): there is nothing to tell apart.")
    resolved = TrainSpec.from_json({
        **ts.to_json(), "target": target, "task": task, "model": entry.key, "params": params,
        "dataset_version_id": version.id, "content_hash": version.content_hash,
        "split": {"id": split.id, "name": split.name, "method": split.method, "seed": split.seed,
                  "test": split.spec.get("test"), "validation": split.spec.get("validation"),
                  "column": split.spec.get("column")},
        "experiment": ts.experiment or version.name,
    })
    progress(1.0, f"Loaded {version.ref}: {len(d.train):,} training and {len(d.test):,} test rows")
    return d, resolved, plan
