"""Preprocessing built from a dataset version's schema, shown to the user and editable.

:func:`describe_preprocessing` turns a schema (and the model, and the user's overrides) into a
plan: plain JSON, one entry per column, that the GUI shows as a table and the user edits;
:func:`build_preprocessor` turns the same inputs into a scikit-learn ``ColumnTransformer``.
Neither needs the data: the schema's semantic types decide. This module imports nothing heavy
at module level (the plan is computed on the GUI's main thread); scikit-learn and pandas load
inside :func:`build_preprocessor` and the transform functions.

The plan::

    {"columns": [
        {"name": "age", "type": "numeric", "role": "feature", "dtype": "int64",
         "step": "numeric", "impute": "median", "scale": true, "reason": "a number"},
        {"name": "plan", "type": "categorical", "role": "feature", "dtype": "string",
         "step": "onehot", "impute": "most_frequent", "max_categories": 30, "reason": "..."},
        {"name": "signup", "type": "datetime", "step": "datetime", "impute": "median", "scale": true,
         "parts": ["year", "month", "day", "dayofweek", "hour"], "reason": "..."},
        {"name": "customer_id", "type": "id", "role": "identifier", "step": "drop", "reason": "an identifier"},
        {"name": "churned", "step": "target", ...}],
     "features": ["age", "plan", "signup"],          # the columns the model reads, in order
     "steps": {...}}                                    # what each step may be set to (for the GUI)

Defaults: numbers are imputed with the median and standardised (not scaled for tree models,
which do not need it); categories are imputed with the most frequent value and one-hot encoded
(at most :data:`MAX_CATEGORIES` columns per feature, rarer values share one "infrequent"
column; unseen values encode as all zeros) or, for tree models, ordinal encoded (one column,
unseen values -1); booleans become 0/1; dates and times become their year, month, day, day of
week and hour; free text, identifiers and ignored columns are dropped.

Overrides, by column name: a step name (``{"notes": "onehot"}``, ``{"age": "drop"}``) or a dict
of the entry's fields (``{"age": {"impute": "mean", "scale": false}}``). A column the schema
ignores can be brought in by giving it a step.

The transform functions are module-level so that fitted pipelines pickle (they then need
Modelyard importable to load, like any pipeline with custom steps).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from modelyard.core.common.errors import ModelyardError

STEPS = ("numeric", "onehot", "ordinal", "boolean", "datetime", "drop")
IMPUTE = ("median", "mean", "most_frequent", "constant", "none")
CATEGORICAL_IMPUTE = ("most_frequent", "constant", "none")
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "minute", "dayofyear", "quarter")
DEFAULT_PARTS = ("year", "month", "day", "dayofweek", "hour")
MAX_CATEGORIES = 30
_ACCESSORS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # pandas' current names
MISSING_CATEGORY = "(missing)"

# What the GUI may offer for each step.
STEP_OPTIONS: dict[str, dict[str, Any]] = {
    "numeric": {"impute": list(IMPUTE), "scale": [True, False]},
    "onehot": {"impute": list(CATEGORICAL_IMPUTE), "max_categories": "int >= 2 or null (no limit)"},
    "ordinal": {"impute": list(CATEGORICAL_IMPUTE)},
    "boolean": {"impute": ["most_frequent", "constant", "none"]},
    "datetime": {"impute": list(IMPUTE), "scale": [True, False], "parts": list(DATETIME_PARTS)},
    "drop": {},
}


def _is_numeric_dtype(dtype: str) -> bool:
    d = (dtype or "").lower()
    return d.startswith(("int", "uint", "float", "double", "halffloat", "decimal", "bool", "duration"))


def _is_datetime_dtype(dtype: str) -> bool:
    d = (dtype or "").lower()
    return d.startswith(("timestamp", "date", "time"))


def _tree_model(model_key: str | None) -> bool:
    if model_key is None:
        return False
    from modelyard.core.experiments.training.catalogue import get_model

    return get_model(model_key).tree_based


def _allowed_steps(col: Mapping[str, Any]) -> list[str]:
    dtype = str(col.get("dtype", ""))
    steps = ["onehot", "ordinal", "drop"]
    if _is_numeric_dtype(dtype):
        steps.insert(0, "numeric")
    if dtype.lower().startswith("bool") or col.get("type") == "boolean":
        steps.insert(0, "boolean")
    if _is_datetime_dtype(dtype):
        steps.insert(0, "datetime")
    return steps


def _default_entry(col: Mapping[str, Any], *, tree: bool) -> dict[str, Any]:
    sem, role = col.get("type"), col.get("role", "feature")
    base = {"name": col["name"], "type": sem, "role": role, "dtype": col.get("dtype")}
    if role == "identifier" or sem == "id":
        return {**base, "step": "drop", "reason": "an identifier: it names rows, it does not describe them"}
    if role == "ignored":
        return {**base, "step": "drop", "reason": "marked ignored in the dataset's schema"}
    if sem == "text":
        return {**base, "step": "drop", "reason": "free text (not used by these models)"}
    if sem == "numeric" and _is_numeric_dtype(str(col.get("dtype"))):
        return {**base, "step": "numeric", "impute": "median", "scale": not tree,
                "reason": "a number" + (" (tree models need no scaling)" if tree else "")}
    if sem == "boolean":
        return {**base, "step": "boolean", "impute": "most_frequent", "reason": "yes/no, as 0/1"}
    if sem == "datetime" and _is_datetime_dtype(str(col.get("dtype"))):
        return {**base, "step": "datetime", "impute": "median", "scale": not tree, "parts": list(DEFAULT_PARTS),
                "reason": "a date or time, as its parts"}
    if tree:
        return {**base, "step": "ordinal", "impute": "most_frequent",
                "reason": "categories, one number each (tree models split on them)"}
    return {**base, "step": "onehot", "impute": "most_frequent", "max_categories": MAX_CATEGORIES,
            "reason": "categories, one 0/1 column each"}


def _complete(entry: dict[str, Any], *, tree: bool) -> dict[str, Any]:
    """Fill the fields a step needs (after an override changed the step)."""
    step = entry["step"]
    if step in ("numeric", "datetime"):
        entry.setdefault("impute", "median")
        entry.setdefault("scale", not tree)
    if step in ("onehot", "ordinal", "boolean"):
        entry.setdefault("impute", "most_frequent")
    if step == "onehot":
        entry.setdefault("max_categories", MAX_CATEGORIES)
    if step == "datetime":
        entry.setdefault("parts", list(DEFAULT_PARTS))
    keep = {"name", "type", "role", "dtype", "step", "reason"} | set(STEP_OPTIONS.get(step, {}))
    return {k: v for k, v in entry.items() if k in keep}


def _apply_override(entry: dict[str, Any], col: Mapping[str, Any], change: Any, *, tree: bool) -> dict[str, Any]:
    name = entry["name"]
    if isinstance(change, str):
        change = {"step": change}
    if not isinstance(change, Mapping):
        raise ModelyardError(f"The preprocessing of column '{name}' must be a step name or a set of options "
                             f"(got {change!r}).", hint=f"Steps: {', '.join(STEPS)}.")
    change = dict(change)
    unknown = set(change) - {"step", "impute", "scale", "max_categories", "parts"}
    if unknown:
        raise ModelyardError(f"Unknown preprocessing option(s) for column '{name}': {', '.join(sorted(unknown))}.",
                             hint="Use step, impute, scale, max_categories or parts.")
    step = change.get("step", entry["step"])
    if step not in STEPS:
        raise ModelyardError(f"Unknown preprocessing step '{step}' for column '{name}'.",
                             hint=f"Use one of {', '.join(STEPS)}.")
    allowed = _allowed_steps(col)
    if step not in allowed:
        raise ModelyardError(f"Column '{name}' ({col.get('type')}, {col.get('dtype')}) cannot use the '{step}' step.",
                             hint=f"It can use: {', '.join(allowed)}.")
    new = dict(entry)
    if step != entry["step"]:
        new = {k: entry[k] for k in ("name", "type", "role", "dtype") if k in entry}
        new["reason"] = "set by you"
    new["step"] = step
    for key in ("impute", "scale", "max_categories", "parts"):
        if key in change:
            new[key] = change[key]
    new = _complete(new, tree=tree)
    options = STEP_OPTIONS[step]
    if "impute" in new and new["impute"] not in options["impute"]:
        raise ModelyardError(f"Imputation '{new['impute']}' does not fit the '{step}' step of column '{name}'.",
                             hint=f"Use one of {', '.join(options['impute'])}.")
    if "scale" in new and not isinstance(new["scale"], bool):
        raise ModelyardError(f"'scale' of column '{name}' must be true or false (got {new['scale']!r}).")
    if step == "onehot":
        mc = new.get("max_categories")
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 2):
            raise ModelyardError(f"'max_categories' of column '{name}' must be a whole number of at least 2, "
                                 f"or null for no limit (got {mc!r}).")
    if step == "datetime":
        parts = new.get("parts")
        if not isinstance(parts, (list, tuple)) or not parts or any(p not in DATETIME_PARTS for p in parts):
            raise ModelyardError(f"'parts' of column '{name}' must list some of {', '.join(DATETIME_PARTS)} "
                                 f"(got {parts!r}).")
        new["parts"] = list(parts)
    if step != entry["step"] or any(k in change for k in ("impute", "scale", "max_categories", "parts")):
        new["reason"] = "set by you"
    return new


def describe_preprocessing(schema: Mapping[str, Any], *, target: str | None = None, model_key: str | None = None,
                           overrides: Mapping[str, Any] | None = None,
                           exclude: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The preprocessing plan (plain JSON, see the module docstring).

    ``target`` defaults to the schema's; ``model_key`` decides scaling and the categorical
    encoding (tree models: ordinal, no scaling); ``overrides`` are the user's edits;
    ``exclude`` names columns never used as features (besides the target).
    """
    columns = list((schema or {}).get("columns", []))
    if not columns:
        raise ModelyardError("The dataset version has no schema to build preprocessing from.",
                             hint="Import the data again.")
    target = target if target is not None else schema.get("target")
    tree = _tree_model(model_key)
    by_name = {c["name"]: c for c in columns}
    overrides = dict(overrides or {})
    unknown = [k for k in overrides if k not in by_name]
    if unknown:
        raise ModelyardError("Preprocessing names column(s) the dataset does not have: "
                             f"{', '.join(map(repr, unknown))}.",
                             hint=f"Its columns are {', '.join(repr(n) for n in list(by_name)[:20])}.")
    out: list[dict[str, Any]] = []
    for col in columns:
        name = col["name"]
        if name == target:
            out.append({"name": name, "type": col.get("type"), "role": "target", "dtype": col.get("dtype"),
                        "step": "target", "reason": "what the model predicts"})
            if name in overrides:
                raise ModelyardError(f"Column '{name}' is the target; it cannot also be a feature.")
            continue
        entry = _default_entry(col, tree=tree)
        if name in exclude and name not in overrides:
            entry = {k: entry[k] for k in ("name", "type", "role", "dtype")}
            entry.update(step="drop", reason="not a feature")
        if name in overrides:
            entry = _apply_override(entry, col, overrides[name], tree=tree)
        out.append(entry)
    features = [e["name"] for e in out if e["step"] not in ("drop", "target")]
    return {"columns": out, "features": features, "target": target, "model_family": "tree" if tree else "other",
            "steps": copy.deepcopy(STEP_OPTIONS)}


def feature_columns(plan: Mapping[str, Any]) -> list[str]:
    return list(plan["features"])


# --------------------------------------------------------------------------- transform functions


def _frame(X: Any) -> Any:
    import pandas as pd

    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def to_float(X: Any) -> Any:
    """Columns as float64 (booleans 0/1, durations in seconds, text parsed, missing NaN)."""
    import numpy as np
    import pandas as pd

    df = _frame(X)
    if all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes):  # numbers and booleans: one conversion
        return df.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.empty(df.shape, dtype=np.float64)
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        if pd.api.types.is_timedelta64_dtype(s.dtype):
            out[:, j] = s.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            vals = s.astype(object)
            mapped = vals.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
            out[:, j] = pd.to_numeric(mapped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def to_category_text(X: Any) -> Any:
    """Columns as text categories (object array), missing as NaN.

    Whole floats print as integers, so a column read as float (an integer column with gaps)
    and the same column read as int give the same categories.
    """
    import numpy as np
    import pandas as pd

    df = _frame(X)
    out = np.empty(df.shape, dtype=object)
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        mask = s.isna().to_numpy()
        if pd.api.types.is_float_dtype(s.dtype):
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            whole = np.isfinite(v) & (v == np.round(v))
            text = np.where(whole, np.char.mod("%d", np.where(whole, v, 0).astype(np.int64)).astype(object),
                            v.astype(str).astype(object))
        else:
            text = s.astype(object).map(str).to_numpy(dtype=object)
        text = text.astype(object)
        text[mask] = np.nan
        out[:, j] = text
    return out


def datetime_parts(X: Any, parts: tuple[str, ...] | list[str] = DEFAULT_PARTS) -> Any:
    """Each date/time column as its parts (float; NaN where missing), column by column."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    df = _frame(X)
    out = np.full((df.shape[0], df.shape[1] * len(parts)), np.nan, dtype=np.float64)
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        first = s.dropna().iloc[0] if s.notna().any() else None
        if isinstance(first, dt.time):  # time of day only
            hours = s.map(lambda v: np.nan if v is None or v != v else v.hour)
            minutes = s.map(lambda v: np.nan if v is None or v != v else v.minute)
            for k, part in enumerate(parts):
                if part == "hour":
                    out[:, j * len(parts) + k] = hours.to_numpy(dtype=np.float64)
                elif part == "minute":
                    out[:, j * len(parts) + k] = minutes.to_numpy(dtype=np.float64)
            continue
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
        acc = s.dt
        for k, part in enumerate(parts):
            values = getattr(acc, _ACCESSORS.get(part, part))
            out[:, j * len(parts) + k] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def datetime_part_names(transformer: Any, input_features: Any) -> Any:
    import numpy as np

    parts = (transformer.kw_args or {}).get("parts", DEFAULT_PARTS)
    return np.asarray([f"{c}_{p}" for c in input_features for p in parts], dtype=object)


# --------------------------------------------------------------------------- the transformer


def _imputer(strategy: str | None, *, categorical: bool) -> Any:
    from sklearn.impute import SimpleImputer

    if strategy in (None, "none"):
        return None
    if strategy == "constant":
        return SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY if categorical else 0.0)
    return SimpleImputer(strategy=strategy)


def _step_pipeline(entry: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )

    step = entry["step"]
    steps: list[tuple[str, Any]] = []
    if step in ("numeric", "boolean"):
        steps.append(("to_float", FunctionTransformer(to_float, feature_names_out="one-to-one")))
        imp = _imputer(entry.get("impute"), categorical=False)
        if imp is not None:
            steps.append(("impute", imp))
        if step == "numeric" and entry.get("scale"):
            steps.append(("scale", StandardScaler()))
    elif step == "datetime":
        steps.append(("parts", FunctionTransformer(datetime_parts, kw_args={"parts": list(entry["parts"])},
                                                   feature_names_out=datetime_part_names)))
        imp = _imputer(entry.get("impute"), categorical=False)
        if imp is not None:
            steps.append(("impute", imp))
        if entry.get("scale"):
            steps.append(("scale", StandardScaler()))
    elif step in ("onehot", "ordinal"):
        steps.append(("to_text", FunctionTransformer(to_category_text, feature_names_out="one-to-one")))
        imp = _imputer(entry.get("impute"), categorical=True)
        if imp is not None:
            steps.append(("impute", imp))
        if step == "onehot":
            steps.append(("encode", OneHotEncoder(handle_unknown="ignore", max_categories=entry.get("max_categories"),
                                                  sparse_output=False)))
        else:
            import numpy as np

            steps.append(("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                   encoded_missing_value=-1, dtype=np.float64)))
    else:  # pragma: no cover - drop/target never get here
        raise ValueError(step)
    return Pipeline(steps)


def _group_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (entry["step"], entry.get("impute"), entry.get("scale"), entry.get("max_categories"),
            tuple(entry.get("parts") or ()))


def build_preprocessor(schema: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None, *,
                       target: str | None = None, model_key: str | None = None,
                       plan: Mapping[str, Any] | None = None) -> Any:
    """The scikit-learn ``ColumnTransformer`` of a plan (built from ``schema`` unless given).

    It selects the plan's feature columns by name from a DataFrame and outputs a dense float
    array; columns with the same settings share one transformer.
    """
    from sklearn.compose import ColumnTransformer

    if plan is None:
        if schema is None:
            raise ValueError("build_preprocessor needs a schema or a plan")
        plan = describe_preprocessing(schema, target=target, model_key=model_key, overrides=overrides)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for entry in plan["columns"]:
        if entry["step"] in ("drop", "target"):
            continue
        groups.setdefault(_group_key(entry), []).append(entry)
    if not groups:
        raise ModelyardError("No column is left to train on: every column is the target, dropped or ignored.",
                             hint="Give some columns a preprocessing step, or change their roles in the dataset.")
    transformers = []
    counts: dict[str, int] = {}
    for entries in groups.values():
        step = entries[0]["step"]
        counts[step] = counts.get(step, 0) + 1
        name = step if counts[step] == 1 else f"{step}{counts[step]}"
        transformers.append((name, _step_pipeline(entries[0]), [e["name"] for e in entries]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
