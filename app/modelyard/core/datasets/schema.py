"""Semantic column types, roles and the task kind, inferred from a profile and editable.

A version's schema is plain JSON::

    {"columns": [{"name": "age", "dtype": "int64", "type": "numeric", "role": "feature"}, ...],
     "target": "churn", "task": "classification"}

``dtype`` is the snapshot's Arrow type (fixed by the data); ``type`` is what the column means
(numeric, categorical, boolean, datetime, text, id) and ``role`` how models use it (feature,
target, identifier, ignored). Both are metadata: changing them creates a new version that
shares the parent's snapshot. The task follows from the target: categorical, boolean and
whole-number targets with few distinct values are classification, other numbers regression.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from modelyard.core.common.errors import ModelyardError

TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "id")
ROLES = ("feature", "target", "identifier", "ignored")
TASKS = ("classification", "regression")
CLASSIFICATION_MAX_CLASSES = 20
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_WORDS = 4  # mean words per distinct value of free text
TEXT_MIN_DISTINCT = 50  # this many different values (and 5% of the rows) make long values text
ID_MIN_ROWS = 20
ID_NEAR_UNIQUE = 0.9  # an identifier by name may repeat a little (a sample measured twice)

# Which semantic types make sense for the data a column holds (its profile "kind").
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "integer": ("numeric", "categorical", "id", "boolean"),
    "float": ("numeric", "categorical"),
    "string": ("categorical", "text", "id", "boolean"),
    "boolean": ("boolean", "categorical"),
    "datetime": ("datetime", "id", "categorical"),
    "time": ("datetime", "categorical"),
    "duration": ("numeric",),
    "binary": ("text",),
}

_ID_NAME = re.compile(r"^(id|uuid|guid|key|index|row_?id)$|[_\s.\-](id|uuid|guid|key)$|^(id|uuid)[_\s.\-]", re.I)
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Uuid|UUID)$")
# Names of running numbers: "sample_no", "Sample code number", "Nr.", "#", "SampleNo".
_NUMBER_NAME = re.compile(r"(^|[_\s.\-#])(no|nr|num|number|code|idx|seq|serial)\.?$|^(#|no\.?|nr\.?)$|#$", re.I)
_CAMEL_NUMBER = re.compile(r"[a-z0-9](No|Nr|Num|Number|Code|Idx|Seq)$")


class SchemaError(ModelyardError):
    """A schema change that cannot be applied."""


def looks_like_id_name(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def looks_like_number_name(name: str) -> bool:
    """A name like that of a running number or code (sample_no, Sample code number, Nr.)."""
    return bool(_NUMBER_NAME.search(name.strip()) or _CAMEL_NUMBER.search(name.strip()))


def id_reason(col: Mapping[str, Any], n_rows: int) -> str | None:
    """Why a profiled column looks like an identifier (shown in its warning), or None."""
    kind = col["kind"]
    count = col.get("count", 0)
    distinct = col.get("distinct", 0)
    unique = count >= 2 and distinct == count and count == n_rows
    name = col["name"]
    if kind == "string":
        if unique and (looks_like_id_name(name) or count >= ID_MIN_ROWS):
            return "every value is different"
        return None
    if kind != "integer":
        return None
    by_name = looks_like_id_name(name) or looks_like_number_name(name)
    if unique and by_name:
        return "whole numbers, every one different, and its name says so"
    if unique and count >= ID_MIN_ROWS and col.get("max") is not None:
        span = col["max"] - col["min"] + 1
        if span == count:
            return "consecutive whole numbers, every one different"
        if col.get("monotonic") and span <= 2 * count:
            return "a running number: every value is different and they only go " + \
                ("up" if col["monotonic"] == "increasing" else "down")
    if by_name and count >= ID_MIN_ROWS and distinct >= ID_NEAR_UNIQUE * count:
        return f"its name says so and {distinct:,} of its {count:,} values are different"
    return None


def text_reason(col: Mapping[str, Any]) -> str | None:
    """Why a profiled text column holds free text rather than categories (shown in its warning), or None."""
    if col["kind"] != "string":
        return None
    count = col.get("count", 0)
    distinct = col.get("distinct", 0)
    if count == 0:
        return None
    length = col.get("length") or {}
    row_len = length.get("mean") or 0
    value_len = length.get("distinct_mean") or row_len
    words = (col.get("words") or {}).get("distinct_mean") or 0
    if row_len >= TEXT_MIN_MEAN_LENGTH and distinct > 0.5 * count:
        return f"{distinct:,} different values of {row_len:.0f} characters on average"
    if distinct >= TEXT_MIN_DISTINCT and distinct >= 0.05 * count:
        if value_len >= TEXT_MIN_MEAN_LENGTH:
            return f"{distinct:,} different values of {value_len:.0f} characters on average"
        if words >= TEXT_MIN_WORDS:
            return f"{distinct:,} different values of {words:.1f} words on average"
    return None


def infer_type(col: Mapping[str, Any], n_rows: int, *, for_target: bool = False) -> str:
    """The semantic type of one profiled column."""
    kind = col["kind"]
    count = col.get("count", 0)
    distinct = col.get("distinct", 0)
    unique = count >= 2 and distinct == count and count == n_rows
    id_name = looks_like_id_name(col["name"])
    if kind == "boolean":
        return "boolean"
    if kind in ("datetime", "time"):
        return "datetime"
    if kind in ("float", "duration"):
        return "numeric"
    if kind == "binary":
        return "text"
    if kind == "integer":
        if not for_target and id_reason(col, n_rows):
            return "id"
        return "numeric"
    # strings
    if count == 0:
        return "categorical"
    if not for_target:
        if unique and id_name:
            return "id"
        if text_reason(col):
            return "text"
        if id_reason(col, n_rows):
            return "id"
    return "categorical"


def default_role(col: Mapping[str, Any], sem_type: str) -> str:
    if sem_type == "id":
        return "identifier"
    if sem_type == "text" or col.get("count", 0) == 0:
        return "ignored"
    return "feature"


def task_for(col: Mapping[str, Any], sem_type: str) -> str:
    """classification or regression for a target column of this type."""
    if sem_type == "datetime":
        raise SchemaError(f"Column '{col['name']}' holds dates and times; it cannot be the target.",
                          hint="Choose a column with classes or numbers to predict.")
    if sem_type in ("categorical", "boolean", "text", "id"):
        return "classification"
    whole = col["kind"] == "integer" or (col["kind"] == "float" and col.get("integral"))
    if whole and 0 < col.get("distinct", 0) <= CLASSIFICATION_MAX_CLASSES:
        return "classification"
    return "regression"


def _columns_by_name(profile: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c["name"]: c for c in profile["columns"]}


def check_target(profile: Mapping[str, Any], target: str | None) -> None:
    if target is None:
        return
    names = [c["name"] for c in profile["columns"]]
    if target not in names:
        shown = ", ".join(f"'{n}'" for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise SchemaError(f"There is no column '{target}' to use as the target.",
                          hint=f"The columns are {shown}.")


def infer_schema(profile: Mapping[str, Any], target: str | None = None) -> dict[str, Any]:
    """The schema of a freshly imported table, with ``target`` (a column name) as its target."""
    check_target(profile, target)
    n_rows = profile["rows"]
    columns = []
    task = None
    for col in profile["columns"]:
        is_target = col["name"] == target
        sem = infer_type(col, n_rows, for_target=is_target)
        role = "target" if is_target else default_role(col, sem)
        if is_target:
            task = task_for(col, sem)
        columns.append({"name": col["name"], "dtype": col["dtype"], "type": sem, "role": role})
    return {"columns": columns, "target": target, "task": task}


def _normalise_changes(changes: Mapping[str, Any] | None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    changes = dict(changes or {})
    cols = changes.pop("columns", {}) or {}
    if isinstance(cols, list):
        cols = {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in cols}
    unknown = set(changes) - {"target", "task"}
    if unknown:
        raise SchemaError(f"Unknown schema change(s): {', '.join(sorted(unknown))}.",
                          hint="Change 'columns' (type and role per column), 'target' or 'task'.")
    return {str(k): dict(v) for k, v in cols.items()}, changes


def apply_changes(schema: Mapping[str, Any], profile: Mapping[str, Any],
                  changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A new schema: ``schema`` with ``changes`` applied and checked against the data's profile.

    ``changes`` holds any of ``columns`` ({name: {"type": T, "role": R}} or a list of
    {"name", "type", "role"}), ``target`` (a column name, or None for no target) and ``task``.
    """
    new = copy.deepcopy(dict(schema))
    col_changes, top = _normalise_changes(changes)
    by_name = {c["name"]: c for c in new["columns"]}
    stats = _columns_by_name(profile)
    for name, change in col_changes.items():
        if name not in by_name:
            raise SchemaError(f"There is no column '{name}'.",
                              hint="Column names are case-sensitive; 'modelyard dataset show' lists them.")
        extra = set(change) - {"type", "role"}
        if extra:
            raise SchemaError(f"Column '{name}': unknown setting(s) {', '.join(sorted(extra))}.",
                              hint="Each column has a 'type' and a 'role'.")
        col = by_name[name]
        if "type" in change:
            t = change["type"]
            if t not in TYPES:
                raise SchemaError(f"Column '{name}': '{t}' is not a column type.", hint=f"Use one of {', '.join(TYPES)}.")
            kind = stats[name]["kind"]
            if t not in ALLOWED_TYPES.get(kind, TYPES):
                raise SchemaError(f"Column '{name}' holds {kind} data, which cannot be of type '{t}'.",
                                  hint=f"Possible types: {', '.join(ALLOWED_TYPES[kind])}.")
            if t == "boolean" and kind != "boolean" and stats[name].get("distinct", 0) > 2:
                raise SchemaError(f"Column '{name}' has {stats[name]['distinct']} different values; a boolean "
                                  "column has at most two.", hint="Choose 'categorical' instead.")
            col["type"] = t
        if "role" in change:
            r = change["role"]
            if r not in ROLES:
                raise SchemaError(f"Column '{name}': '{r}' is not a role.", hint=f"Use one of {', '.join(ROLES)}.")
            if r == "target":
                top.setdefault("target", name)
                if top["target"] != name:
                    raise SchemaError("Only one column can be the target.",
                                      hint=f"Both '{top['target']}' and '{name}' were given the target role.")
            elif col["role"] == "target" and "target" not in top:
                top["target"] = None
            col["role"] = r
    if "target" in top:
        target = top["target"]
        check_target(profile, target)
        for col in new["columns"]:
            if col["role"] == "target" and col["name"] != target:
                col["role"] = "feature" if col["type"] not in ("id", "text") else default_role(stats[col["name"]], col["type"])
            if col["name"] == target:
                col["role"] = "target"
        new["target"] = target
    target = new.get("target")
    if target is None:
        if top.get("task"):
            raise SchemaError("A task needs a target column.", hint="Choose the target first.")
        new["task"] = None
    else:
        tcol = by_name[target]
        inferred = task_for(stats[target], tcol["type"])
        task = top.get("task") or inferred
        if task not in TASKS:
            raise SchemaError(f"'{task}' is not a task.", hint=f"Use one of {', '.join(TASKS)}.")
        if task == "regression" and tcol["type"] != "numeric":
            raise SchemaError(f"Regression needs a numeric target; '{target}' is {tcol['type']}.",
                              hint="Set the target's type to numeric, or choose classification.")
        new["task"] = task
    return new
