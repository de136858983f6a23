"""The input a model version takes: its signature read as an :class:`InputSpec`, and the
conversion of sent columns to what the model needs (:class:`Validated`), or an
:class:`InputError` naming every problem. Scoring and serving both check input here
(:mod:`modelyard.core.serving.scoring`, :mod:`modelyard.core.serving.server`).

**Signatures.** Two shapes are understood. A model trained by Modelyard records
``{"inputs": [{"name", "dtype", "type", "step"}], "target": {..., "classes"}, ...}`` (see
:mod:`modelyard.core.experiments.training.train`); a model logged with ``run.log_model(model,
input_example=frame)`` records ``{"inputs": [{"name", "dtype"}]}``, or, for an array example,
``{"inputs": [{"shape": [-1, n], "dtype"}]}`` (positional: the input's columns are taken in
order, whatever their names). A version without a signature is scored as given.

**What is checked** (every problem is reported at once, by column name):

* *missing columns* — an error naming them (and the columns that were sent);
* *extra columns* — **dropped, with a warning**. MLflow ignores them too, and refusing would
  make the commonest batch impossible: scoring a dataset version that still holds the target,
  an id or a timestamp the model does not read. The output of a batch keeps them;
* *wrong types* — an error naming the column, the type it needs, what was found and the first
  row that holds it (rows count from 1). Numbers may arrive as numbers or as numeric text;
  yes/no columns as true/false, 0/1 or "yes"/"no"; dates as ISO text (other unambiguous
  formats are tried); infinities are refused;
* *unseen categories* — values of a categorical input that the fitted encoder (the
  pipeline's ``OneHotEncoder``/``OrdinalEncoder``) never saw in training, named with their
  column. The model scores them as "unknown" (all zeros, or -1), so they are a warning, or an
  error with ``strict=True``, or when the encoder itself would refuse them
  (``handle_unknown="error"``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_LISTED", "InputColumn", "InputError", "InputSpec", "Validated", "input_spec"]

MAX_LISTED = 10  # values or columns named in one message

_NAIVE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})

# What a column kind needs, as people read it.
_EXPECT = {
    "number": "numbers",
    "integer": "whole numbers",
    "boolean": "true/false values",
    "datetime": "dates or times (ISO text, e.g. 2024-03-01T12:00:00)",
    "category": "categories (text or numbers)",
    "text": "text",
    "any": "values",
}


class InputError(ModelyardError):
    """Input that does not fit a model's signature; ``fields`` names the columns (or payload fields)."""

    def __init__(self, message: str, *, hint: str | None = None, fields: Sequence[str] = (),
                 problems: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message, hint=hint)
        self.fields = list(fields)
        self.problems = list(problems)


# =========================================================================== the input spec


@dataclass(frozen=True)
class InputColumn:
    name: str
    kind: str  # number | integer | boolean | datetime | category | text | any
    dtype: str | None = None  # as recorded in the signature
    categories: frozenset[str] | None = None  # training categories (as text), when an encoder knows them
    unknown_is_error: bool = False  # the encoder refuses unseen categories

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.categories is not None:
            out["categories"] = sorted(self.categories)
        return out


@dataclass
class Validated:
    """Input checked against an :class:`InputSpec`: plain numpy columns in the model's order."""

    columns: dict[str, np.ndarray]  # name -> 1-D array (positional specs: "0", "1", ...)
    n_rows: int
    warnings: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "message", "column"?, ...}

    def messages(self) -> list[str]:
        return [w["message"] for w in self.warnings]


def _kind_from_dtype(dtype: str | None) -> str:
    d = (dtype or "").lower()
    if d.startswith(("int", "uint")):
        return "integer"
    if d.startswith(("float", "double", "decimal", "halffloat")):
        return "number"
    if d.startswith("bool"):
        return "boolean"
    if d.startswith(("datetime", "timestamp", "date")):
        return "datetime"
    if d in ("str", "string", "object", "category", "large_string", "utf8") or d.startswith(("string", "str")):
        return "text"
    return "any"


_STEP_KIND = {"numeric": "number", "boolean": "boolean", "datetime": "datetime", "onehot": "category",
              "ordinal": "category"}


def _encoder_categories(model: Any) -> dict[str, tuple[frozenset[str], bool]]:
    """Input column -> (training categories as text, unseen values are an error) from the
    encoders of a fitted pipeline's ColumnTransformer (when each encoder feature is one column)."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    except ImportError:  # pragma: no cover - a dependency
        return {}
    transformers: list[Any] = []
    if isinstance(model, ColumnTransformer):
        transformers.append(model)
    elif isinstance(model, Pipeline):
        transformers.extend(step for _, step in model.steps if isinstance(step, ColumnTransformer))
    out: dict[str, tuple[frozenset[str], bool]] = {}
    for ct in transformers:
        for _name, trans, cols in getattr(ct, "transformers_", []):
            if not isinstance(cols, (list, tuple)) or not all(isinstance(c, str) for c in cols):
                continue
            steps = trans.steps if isinstance(trans, Pipeline) else [("", trans)]
            enc = steps[-1][1]
            if not isinstance(enc, (OneHotEncoder, OrdinalEncoder)):
                continue
            cats = getattr(enc, "categories_", None)
            if cats is None or len(cats) != len(cols):
                continue  # features dropped or combined on the way: no one-to-one mapping
            strict = getattr(enc, "handle_unknown", None) == "error"
            for col, values in zip(cols, cats, strict=True):
                texts = frozenset(t for t in (_cat_text(v) for v in values) if isinstance(t, str))
                out[col] = (texts, strict)
    return out


@dataclass
class InputSpec:
    """What a model reads, prepared once (serving reuses it for every request).

    ``columns`` is None for a signature without named inputs; ``positional`` is the number of
    columns an array signature (``shape [-1, n]``) expects.
    """

    columns: list[InputColumn] | None
    positional: int | None = None
    positional_kind: str = "number"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns] if self.columns is not None else []

    def to_json(self) -> dict[str, Any]:
        return {"columns": [c.to_json() for c in self.columns] if self.columns is not None else None,
                "positional": self.positional}

    # ------------------------------------------------------------------ checking
    def validate(self, data: Any, *, strict: bool = False, row_offset: int = 0) -> Validated:
        """Check ``data`` (a DataFrame, a mapping of column -> values, or a list of rows in the
        signature's column order) and convert it; raises :class:`InputError` naming every problem."""
        columns, n_rows = _as_columns(data, self)
        if self.columns is None and self.positional is None:
            return Validated({k: _as_array(v) for k, v in columns.items()}, n_rows)
        if self.columns is None:
            return self._validate_positional(columns, n_rows, row_offset)
        warnings: list[dict[str, Any]] = []
        expected = set(self.names)
        missing = [n for n in self.names if n not in columns]
        extra = [n for n in columns if n not in expected]
        problems: list[dict[str, Any]] = []
        messages: list[str] = []
        fields: list[str] = []
        if missing:
            sent = ", ".join(repr(c) for c in list(columns)[:MAX_LISTED]) or "none"
            messages.append(f"Missing column(s) the model needs: {_names(missing)} (received: {sent}"
                            f"{', ...' if len(columns) > MAX_LISTED else ''}).")
            problems.append({"kind": "missing_columns", "columns": missing})
            fields.extend(missing)
        if extra:
            warnings.append({"kind": "extra_columns", "columns": extra,
                             "message": f"Ignored column(s) the model does not read: {_names(extra)}."})
        out: dict[str, Any] = {}
        unseen_errors: list[str] = []
        for col in self.columns:
            if col.name not in columns:
                continue
            arr, bad = _convert(columns[col.name], col)
            if bad is not None:
                pos, value, why = bad
                found = _describe_value(value)
                messages.append(f"Column '{col.name}' should hold {_EXPECT[col.kind]}"
                                f"{f' ({col.dtype})' if col.dtype else ''}, but row {row_offset + pos + 1} holds "
                                f"{found}{why}.")
                problems.append({"kind": "wrong_type", "column": col.name, "expected": col.kind, "dtype": col.dtype,
                                 "row": row_offset + pos + 1, "found": found})
                fields.append(col.name)
                continue
            out[col.name] = arr
            if col.categories is not None:
                unseen, rows = _unseen(arr, col)
                if unseen:
                    shown = ", ".join(repr(v) for v in unseen[:MAX_LISTED]) + (", ..." if len(unseen) > MAX_LISTED
                                                                                else "")
                    text = (f"Column '{col.name}' has value(s) never seen in training: {shown} "
                            f"({rows} row{'s' if rows != 1 else ''}); the model scores them as an unknown category.")
                    entry = {"kind": "unseen_categories", "column": col.name, "values": unseen, "rows": rows,
                             "message": text}
                    if strict or col.unknown_is_error:
                        why = "the model's encoder refuses unknown values" if col.unknown_is_error else "strict"
                        unseen_errors.append(col.name)
                        messages.append(f"Column '{col.name}' has value(s) never seen in training: {shown} "
                                        f"({rows} row{'s' if rows != 1 else ''}; {why}).")
                        problems.append({k: v for k, v in entry.items() if k != "message"})
                        fields.append(col.name)
                    else:
                        warnings.append(entry)
        if messages:
            hint = None
            if missing:
                hint = f"The model reads {_names(self.names)}."
            elif unseen_errors and not any(p["kind"] == "wrong_type" for p in problems):
                hint = "Map these values to categories the model knows, or retrain it on data that has them."
            raise InputError(" ".join(messages), hint=hint, fields=fields, problems=problems)
        return Validated(out, n_rows, warnings)

    def _validate_positional(self, columns: dict[str, Any], n_rows: int, row_offset: int) -> Validated:
        assert self.positional is not None
        if len(columns) != self.positional:
            raise InputError(f"The model reads {self.positional} column(s) by position, but the input has "
                             f"{len(columns)}.", hint="Send exactly the columns the model was trained on, in order.",
                             fields=[str(c) for c in columns])
        out: dict[str, Any] = {}
        col = InputColumn(name="", kind=self.positional_kind)
        for i, (name, values) in enumerate(columns.items()):
            arr, bad = _convert(values, col)
            if bad is not None:
                pos, value, why = bad
                raise InputError(f"Column {i + 1} ('{name}') should hold {_EXPECT[col.kind]}, but row "
                                 f"{row_offset + pos + 1} holds {_describe_value(value)}{why}.", fields=[str(name)])
            out[str(i)] = arr
        return Validated(out, n_rows)

    # ------------------------------------------------------------------ model input
    def model_input(self, v: Validated) -> Any:
        """What the fitted model's ``predict`` takes: a DataFrame with the signature's columns
        in order (an array for positional signatures; the data as given without a signature)."""
        import numpy as np
        import pandas as pd

        if self.columns is None and self.positional is not None:
            return np.column_stack([v.columns[str(i)] for i in range(self.positional)]) if v.columns else \
                np.empty((v.n_rows, 0))
        frame = pd.DataFrame(v.columns, copy=False)
        if len(frame.columns) == 0:
            frame = pd.DataFrame(index=range(v.n_rows))
        return frame


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def input_spec(signature: Mapping[str, Any] | None, model: Any = None) -> InputSpec:
    """The :class:`InputSpec` of a signature (either shape; see the module docstring), with the
    training categories of ``model``'s encoders when given."""
    inputs = (signature or {}).get("inputs") if isinstance(signature, Mapping) else None
    if not inputs or not isinstance(inputs, list):
        return InputSpec(columns=None)
    if all(isinstance(i, Mapping) and "name" not in i and "shape" in i for i in inputs):
        shape = inputs[0].get("shape") or []
        n = int(shape[1]) if len(shape) >= 2 and isinstance(shape[1], int) and shape[1] > 0 else None
        if len(inputs) != 1 or n is None:
            return InputSpec(columns=None)
        kind = _kind_from_dtype(inputs[0].get("dtype"))
        return InputSpec(columns=None, positional=n, positional_kind="number" if kind in ("integer", "number",
                                                                                         "boolean") else "any")
    cats = _encoder_categories(model) if model is not None else {}
    cols: list[InputColumn] = []
    for item in inputs:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            return InputSpec(columns=None)
        name = item["name"]
        dtype = item.get("dtype")
        kind = _STEP_KIND.get(str(item.get("step") or ""), "") or _kind_from_dtype(dtype)
        known, strict = cats.get(name, (None, False))
        cols.append(InputColumn(name=name, kind=kind, dtype=str(dtype) if dtype is not None else None,
                                categories=known, unknown_is_error=strict))
    return InputSpec(columns=cols)


# =========================================================================== converting columns


def _as_array(values: Any) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        return values.to_numpy()
    if isinstance(values, np.ndarray):
        return values
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def _as_columns(data: Any, spec: InputSpec) -> tuple[dict[str, Any], int]:
    """(column name -> values, number of rows) of a DataFrame, a mapping or a list of rows."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"The input has duplicate column names: {_names(dupes)}.", fields=dupes)
        return {n: data.iloc[:, i] for i, n in enumerate(names)}, len(data)
    if isinstance(data, Mapping):
        cols = {str(k): v for k, v in data.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"'{k}': {len(v)}" for k, v in list(cols.items())[:MAX_LISTED])
            raise InputError(f"The input's columns have different lengths ({sizes}).", fields=list(cols))
        return cols, lengths.pop() if lengths else 0
    rows = list(data)
    names = spec.names if spec.columns is not None else [str(i) for i in range(spec.positional or 0)]
    width = len(names) if names else (len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"Row {i + 1} has {len(row)} value(s), but the model reads {width} column(s) "
                             f"({_names(names) if names else 'by position'}).", fields=[])
    if not names:
        names = [str(i) for i in range(width)]
    if not rows:
        return {n: [] for n in names}, 0
    return {n: list(col) for n, col in zip(names, zip(*rows, strict=True), strict=True)}, len(rows)


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a true/false value)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{shown!r} (text)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({type(value).__name__})"


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NaTType", "NAType")


def _plain(v: Any) -> Any:
    """numpy scalars as Python ones (for messages and type tests)."""
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):
            return v
    return v


def _convert(values: Any, col: InputColumn) -> tuple[Any, tuple[int, Any, str] | None]:
    """(converted 1-D array, None) or (None, (row index, value, why)) for the first bad value."""
    kind = col.kind
    if kind in ("number", "integer"):
        return _to_number(values, integer=kind == "integer")
    if kind == "boolean":
        return _to_bool(values)
    if kind == "datetime":
        return _to_datetime(values, col)
    if kind == "category":
        return _to_category(values, col)
    arr = _as_array(values)
    for i, v in enumerate(arr):
        if isinstance(v, (Mapping, list, tuple)):
            return None, (i, v, "")
    return arr, None


def _to_number(values: Any, *, integer: bool = False) -> tuple[Any, tuple[int, Any, str] | None]:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        if values.dtype.kind in "fiub":
            values = values.to_numpy()
        else:
            values = values.to_numpy(dtype=object, na_value=None)
    arr = None
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        arr = values.astype(np.float64, copy=values.dtype.kind != "f")
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
            if arr.ndim != 1:
                arr = None
        except (TypeError, ValueError, OverflowError):
            arr = None
    if arr is None:
        seq = list(values)
        arr = np.empty(len(seq), dtype=np.float64)
        for i, v in enumerate(seq):
            v = _plain(v)
            if _is_missing(v):
                arr[i] = np.nan
            elif isinstance(v, (bool, int, float)):
                arr[i] = float(v)
            elif isinstance(v, str):
                text = v.strip()
                if not text:
                    arr[i] = np.nan
                    continue
                try:
                    arr[i] = float(text)
                except ValueError:
                    return None, (i, v, "")
            else:
                return None, (i, v, "")
    inf = np.isinf(arr)
    if inf.any():
        i = int(np.argmax(inf))
        return None, (i, float(arr[i]), ", which is not a finite number")
    if integer and arr.size and not np.isnan(arr).any() and (arr == np.round(arr)).all() and \
            (np.abs(arr) < 2 ** 53).all():
        return arr.astype(np.int64), None
    return arr, None


def _to_bool(values: Any) -> tuple[Any, tuple[int, Any, str] | None]:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        if values.dtype.kind == "b":
            return values.to_numpy(), None
        values = values.to_numpy(dtype=object, na_value=None)
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return values, None
    seq = list(values)
    out = np.empty(len(seq), dtype=object)
    missing = False
    for i, v in enumerate(seq):
        v = _plain(v)
        if _is_missing(v):
            out[i] = None
            missing = True
        elif isinstance(v, bool):
            out[i] = v
        elif isinstance(v, (int, float)) and v in (0, 1):
            out[i] = bool(v)
        elif isinstance(v, str) and v.strip().lower() in _TRUE:
            out[i] = True
        elif isinstance(v, str) and v.strip().lower() in _FALSE:
            out[i] = False
        elif isinstance(v, str) and not v.strip():
            out[i] = None
            missing = True
        else:
            return None, (i, v, "")
    return (out if missing else out.astype(bool)), None


def _to_datetime(values: Any, col: InputColumn) -> tuple[Any, tuple[int, Any, str] | None]:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if values.dtype.kind == "M":
            return values.to_numpy(), None
        values = values.to_numpy(dtype=object, na_value=None)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values, None
    seq = [_plain(v) for v in values]
    texts: list[Any] = []
    for i, v in enumerate(seq):
        if _is_missing(v) or (isinstance(v, str) and not v.strip()):
            texts.append(None)
        elif isinstance(v, (str, dt.datetime, dt.date, pd.Timestamp)):
            texts.append(v)
        else:
            return None, (i, v, "")
    if all(v is None or (isinstance(v, str) and _NAIVE_ISO.match(v)) for v in texts):
        try:  # the common case, ISO text without a time zone: numpy parses it ~50x faster than pandas
            return np.array(["NaT" if v is None else v for v in texts], dtype="datetime64[us]"), None
        except ValueError:
            pass
    series = pd.Series(texts, dtype=object)
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    failed = parsed.isna().to_numpy() & series.notna().to_numpy()
    if failed.any():
        again = pd.to_datetime(series[failed], errors="coerce", utc=True, format="mixed")
        parsed[failed] = again
        failed = parsed.isna().to_numpy() & series.notna().to_numpy()
        if failed.any():
            i = int(np.argmax(failed))
            return None, (i, seq[i], ", which is not a date or time")
    return parsed.dt.tz_localize(None).to_numpy(), None


def _cat_text(v: Any) -> Any:
    """A category value as the training pipeline sees it (see preprocess.to_category_text):
    whole floats as integers, everything else as ``str``; missing as NaN."""
    v = _plain(v)
    if _is_missing(v):
        return math.nan
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v == round(v):
            return str(int(v))
        return str(v)
    return str(v)


def _to_category(values: Any, col: InputColumn) -> tuple[Any, tuple[int, Any, str] | None]:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value=None) if values.dtype.kind != "f" else values.to_numpy()
    seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
    out = np.empty(len(seq), dtype=object)
    for i, v in enumerate(seq):
        if type(v) is str:
            out[i] = v
        elif isinstance(v, (Mapping, list, tuple, set)):
            return None, (i, v, "")
        else:
            out[i] = _cat_text(v)
    return out, None


def _unseen(arr: Any, col: InputColumn) -> tuple[list[str], int]:
    known = col.categories or frozenset()
    if col.kind == "category":
        texts = arr
    else:
        texts = [_cat_text(v) for v in arr]
    bad: dict[str, int] = {}
    for t in texts:
        if isinstance(t, str) and t not in known:
            bad[t] = bad.get(t, 0) + 1
    return sorted(bad), sum(bad.values())
