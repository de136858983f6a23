"""Scoring: check input against a model version's signature, predict, and the batch scoring job.

::

    from modelyard.core.serving import scoring

    frame = scoring.validate_input(version.signature, frame, model=model)   # InputError names the columns
    preds = scoring.predict_frame(model, version.signature, frame)        # prediction, proba_<class>...
    outcome = run_job(store, scoring.score_spec("churn@champion", dataset="march@v2"))
    outcome.result["output"]["ref"]                                       # 'churn-predictions@v4'

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

**Batch scoring** (:func:`score_job`) reads a dataset version (or imports a file first, as a
dataset version of its own), scores it in chunks of :data:`CHUNK_ROWS` rows, and stores the
input's columns plus ``prediction`` and, for classifiers with probabilities, one
``proba_<class>`` column per class as a new version of a dataset (default name
``<model>-predictions``). The version, the lineage edges ``model_version -scored->
dataset_version`` and ``dataset_version(input) -scored_into-> dataset_version(output)``, and
an audit event ``batch_score`` of the registered model are written in one transaction. A bad
input fails the job before anything is written.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobContext, JobSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CHUNK_ROWS",
    "InputColumn",
    "InputError",
    "InputSpec",
    "Predictor",
    "Validated",
    "input_spec",
    "predict_frame",
    "proba_column",
    "score_job",
    "score_spec",
    "validate_input",
    "write_table_file",
]

CHUNK_ROWS = 50_000
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
MAX_LISTED = 10  # values or columns named in one message
OUTPUT_SUFFIX = "-predictions"
OUTPUT_FORMATS = (".csv", ".parquet")

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


# =========================================================================== predicting


def proba_column(label: Any) -> str:
    return f"{PROBA_PREFIX}{_plain(label)}"


class Predictor:
    """A fitted model with its signature, ready to score many inputs."""

    def __init__(self, model: Any, signature: Mapping[str, Any] | None) -> None:
        self.model = model
        self.signature = dict(signature) if isinstance(signature, Mapping) else None
        self.spec = input_spec(self.signature, model)
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = [_plain(c) for c in classes] if classes is not None else None
        self.has_proba = self.classes is not None and _has_method(model, "predict_proba")

    def validate(self, data: Any, *, strict: bool = False, row_offset: int = 0) -> Validated:
        return self.spec.validate(data, strict=strict, row_offset=row_offset)

    def predict_validated(self, v: Validated, *, proba: bool = True) -> tuple[Any, Any]:
        """(predictions, class probabilities or None) of validated input."""
        X = self.spec.model_input(v)
        try:
            pred = self.model.predict(X)
            probs = self.model.predict_proba(X) if proba and self.has_proba else None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise ModelyardError(f"The model could not score the input: {type(exc).__name__}: {exc}",
                                 hint="Check the input against the model's signature "
                                      "('modelyard model show NAME@vN --json').") from exc
        return pred, probs

    def predict_frame(self, frame: Any, *, strict: bool = False, proba: bool = True,
                      warnings: list[dict[str, Any]] | None = None, row_offset: int = 0) -> pd.DataFrame:
        v = self.validate(frame, strict=strict, row_offset=row_offset)
        if warnings is not None:
            warnings.extend(v.warnings)
        pred, probs = self.predict_validated(v, proba=proba)
        return self.output_frame(pred, probs)

    def output_frame(self, pred: Any, probs: Any) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        pred = np.asarray(pred)
        data: dict[str, Any] = {PREDICTION: pred if pred.ndim == 1 else list(pred)}
        if probs is not None and self.classes is not None:
            for j, label in enumerate(self.classes):
                data[proba_column(label)] = np.asarray(probs)[:, j]
        return pd.DataFrame(data)


def _has_method(model: Any, name: str) -> bool:
    try:
        return callable(getattr(model, name))
    except AttributeError:  # sklearn's available_if raises when the final step lacks it
        return False


def validate_input(signature: Mapping[str, Any] | None, frame: Any, *, model: Any = None, strict: bool = False,
                   warnings: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """``frame`` checked against ``signature`` (see the module docstring) and converted: the
    model's columns in order with the types it needs, extra columns dropped. Raises
    :class:`InputError`; warnings (extra columns, unseen categories) are appended to ``warnings``."""
    spec = input_spec(signature, model)
    v = spec.validate(frame, strict=strict)
    if warnings is not None:
        warnings.extend(v.warnings)
    X = spec.model_input(v)
    import pandas as pd

    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def predict_frame(model: Any, signature: Mapping[str, Any] | None, frame: Any, *, strict: bool = False,
                  warnings: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Predictions of ``model`` for ``frame``: a ``prediction`` column, plus ``proba_<class>``
    per class for classifiers with probabilities (row order kept)."""
    return Predictor(model, signature).predict_frame(frame, strict=strict, warnings=warnings)


# =========================================================================== the batch job


def score_spec(model_ref: str, *, dataset: str | int | None = None, path: str | Path | None = None,
               output_name: str | None = None, strict: bool = False, process: bool = False) -> JobSpec:
    """The batch scoring job (run it with ``run_job``, or the GUI's runner; ``process=True``
    scores in a child process so a cancel kills it at once)."""
    if (dataset is None) == (path is None):
        raise ModelyardError("Score either a dataset version or a file.", hint="Give one of them.")
    params: dict[str, Any] = {"model_ref": model_ref, "output_name": output_name, "strict": strict}
    if path is not None:
        params["path"] = str(Path(path).expanduser().resolve())
        what = Path(path).name
    elif isinstance(dataset, int):
        params["dataset_version_id"] = dataset
        what = f"dataset version {dataset}"
    else:
        params["dataset"] = str(dataset)
        what = str(dataset)
    return JobSpec(func="modelyard.core.serving.scoring:score_job", title=f"Score {what} with {model_ref}", params=params,
                   process=process, kind="score")


class _Progress:
    """The job's progress as a monotonic bar: ``slice(start, end)`` maps a phase's 0..1 onto
    part of it, and a phase that reports less than what was shown does not move it back."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.shown = 0.0

    def __call__(self, fraction: float | None, message: str | None = None) -> None:
        if fraction is not None:
            self.shown = max(self.shown, min(1.0, fraction))
        self.ctx.progress(self.shown, message)

    def slice(self, start: float, end: float) -> _Slice:
        return _Slice(self, start, end)


class _Slice:
    """A job context (for the datasets service) whose progress is one part of a :class:`_Progress`."""

    def __init__(self, bar: _Progress, start: float, end: float) -> None:
        self._bar, self._start, self._end = bar, start, end
        self.store, self.job_id = bar.ctx.store, bar.ctx.job_id

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        f = None if fraction is None else self._start + (self._end - self._start) * min(1.0, max(0.0, fraction))
        self._bar(f, message)

    def log(self, line: str) -> None:
        self._bar.ctx.log(line)

    def check_cancelled(self) -> None:
        self._bar.ctx.check_cancelled()

    @property
    def cancelled(self) -> bool:
        return self._bar.ctx.cancelled


def _safe_name(text: str) -> str:
    return re.sub(r"[@\x00-\x1f]", "_", text).strip()[:200] or "predictions"


@dataclass
class _Scored:
    frame: Any  # the input's columns + the prediction columns
    columns: list[str]  # the prediction columns
    warnings: list[dict[str, Any]]


def _score_snapshot(path: Path, predictor: Predictor, *, strict: bool, progress: _Progress, start: float,
                    end: float) -> _Scored:
    """Score a Parquet file chunk by chunk; raises InputError (rows numbered in the whole file)."""
    import pandas as pd
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    total = max(pf.metadata.num_rows, 1)
    warnings: dict[tuple[str, str], dict[str, Any]] = {}
    pieces: list[Any] = []
    pred_cols: list[str] = []
    done = 0
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            progress(start + (end - start) * done / total, f"Scoring rows {done + 1:,} to {done + batch.num_rows:,}")
            frame = batch.to_pandas()
            v = predictor.validate(frame, strict=strict, row_offset=done)
            _merge_warnings(warnings, v.warnings)
            pred, probs = predictor.predict_validated(v)
            out = predictor.output_frame(pred, probs)
            pred_cols = list(out.columns)
            pieces.append(_join(frame, out))
            done += batch.num_rows
    finally:
        pf.close()
    if not pieces or done == 0:
        raise ModelyardError("There are no rows to score.", hint="Score a table that has data rows.")
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
    warning_list = list(warnings.values())
    collided = [c for c in frame.columns if str(c).endswith("__input")]
    if collided:
        warning_list.append({"kind": "renamed_columns", "columns": collided,
                             "message": f"Input column(s) named like the prediction columns were kept as "
                                        f"{_names(collided)}."})
    return _Scored(frame, pred_cols, warning_list)


def score_job(ctx: JobContext, *, model_ref: str, dataset_version_id: int | None = None, dataset: str | None = None,
              path: str | None = None, output_name: str | None = None, strict: bool = False) -> dict[str, Any]:
    """Job: score a dataset version (``dataset_version_id`` or ``dataset`` "NAME@vN") or a file
    (``path``) with the model version ``model_ref`` (resolved once, when the job starts), and
    store the predictions as a new dataset version (see the module docstring).

    A file is read into a snapshot and scored *before* anything is recorded; only then is it
    stored as a dataset version of its own (named after the file), so input the model refuses
    leaves nothing behind.

    Result: ``{"model": {"ref", "model_version_id"}, "input": {"ref", "dataset_version_id",
    "imported"}, "output": {"ref", "dataset_version_id", "created", "name", "version"},
    "n_rows", "columns": [prediction columns], "warnings": [{"kind", "message", ...}],
    "duration_s"}``.
    """
    import time

    from modelyard.core.datasets import service as datasets
    from modelyard.core.registry import versions as registry

    t0 = time.monotonic()
    store = ctx.store
    bar = _Progress(ctx)
    info = registry.get_version(store, model_ref)
    bar(0.0, f"Loading {info.ref}")
    ctx.log(f"Scoring with {info.ref} (model version {info.id}).")
    predictor = Predictor(registry.load_model(store, info.ref), info.signature)
    box: dict[str, _Scored] = {}
    imported = False
    if path is not None:
        src = Path(path).expanduser()
        if not src.is_file():
            raise ModelyardError(f"There is no file {src} to score.", hint="Check the path.")

        def score_before_storing(snapshot: Path) -> None:
            bar(0.2, f"Checking {src.name} against {info.ref}")
            box["scored"] = _score_snapshot(snapshot, predictor, strict=strict, progress=bar, start=0.2, end=0.8)
            bar(0.8, f"Storing {src.name} as a dataset version")

        res = datasets.import_dataset(bar.slice(0.02, 0.2), path=str(src),  # type: ignore[arg-type]
                                      before_commit=score_before_storing,
                                      date_hints=datasets.date_formats_of(store, info.dataset_version_id))
        input_id = int(res["dataset_version_id"])
        imported = bool(res.get("created"))
        ctx.log(f"{src} is {res['ref']}" + (" (imported now)." if imported else " (already imported)."))
    else:
        ref: str | int = int(dataset_version_id) if dataset_version_id is not None else str(dataset)
        input_id = datasets.get_version(store, ref).id
    in_info = datasets.get_version(store, input_id)
    if "scored" not in box:
        ctx.log(f"Input: {in_info.ref} ({in_info.n_rows:,} rows x {in_info.n_cols} columns).")
        box["scored"] = _score_snapshot(datasets.snapshot_path(store, input_id), predictor, strict=strict,
                                        progress=bar, start=0.05, end=0.8)
    scored = box["scored"]
    for w in scored.warnings:
        ctx.log("warning: " + w["message"])
    name = _safe_name(output_name or f"{info.name}{OUTPUT_SUFFIX}")
    rows = len(scored.frame)

    def record(s: Any, version_id: int, created: bool) -> None:
        from sqlalchemy import select

        from modelyard.core.store import models as m
        from modelyard.core.store import records

        now = dt.datetime.now(dt.UTC).isoformat()
        edges = [("model_version", str(info.id), "dataset_version", str(version_id), "scored",
                  {"input_dataset_version_id": input_id, "model": info.ref, "rows": rows, "job_id": ctx.job_id,
                   "created_at": now}),
                 ("dataset_version", str(input_id), "dataset_version", str(version_id), "scored_into",
                  {"model_version_id": info.id, "model": info.ref, "rows": rows, "job_id": ctx.job_id,
                   "created_at": now})]
        for src_type, src_id, dst_type, dst_id, relation, details in edges:
            exists = s.scalar(select(m.LineageEdge.id).where(
                m.LineageEdge.src_type == src_type, m.LineageEdge.src_id == src_id,
                m.LineageEdge.dst_type == dst_type, m.LineageEdge.dst_id == dst_id,
                m.LineageEdge.relation == relation).limit(1))
            if exists is None:
                records.link(s, src_type, src_id, dst_type, dst_id, relation, details)
        records.audit(s, registry.ENTITY, info.model_id, "batch_score", from_value=in_info.ref,
                      to_value=f"dataset version {version_id}",
                      details={"version": info.version, "input_dataset_version_id": input_id,
                               "output_dataset_version_id": version_id, "rows": rows, "job_id": ctx.job_id,
                               "created": created})

    bar(0.85, "Saving the predictions")
    res = datasets.import_frame(store, scored.frame, name, ctx=bar.slice(0.85, 1.0),  # type: ignore[arg-type]
                                source={"path": None, "format": "predictions",
                                        "label": f"the predictions of {info.ref} for {in_info.ref}"},
                                on_commit=record)
    ctx.log(f"Stored {rows:,} predictions as {res['ref']}" + ("" if res.get("created") else " (already there)") + ".")
    return {
        "model": {"ref": info.ref, "model_version_id": info.id},
        "input": {"ref": in_info.ref, "dataset_version_id": input_id, "imported": imported},
        "output": {"ref": res["ref"], "dataset_version_id": res["dataset_version_id"], "created": res["created"],
                   "name": res["dataset"], "version": res["version"]},
        "n_rows": rows, "columns": scored.columns,
        "warnings": [_jsonable(w) for w in scored.warnings], "duration_s": round(time.monotonic() - t0, 3),
    }


def _merge_warnings(into: dict[tuple[str, str], dict[str, Any]], new: Iterable[dict[str, Any]]) -> None:
    for w in new:
        key = (w["kind"], str(w.get("column", "")))
        old = into.get(key)
        if old is None:
            into[key] = dict(w)
        elif w["kind"] == "unseen_categories":
            values = sorted(set(old["values"]) | set(w["values"]))
            rows = old["rows"] + w["rows"]
            shown = ", ".join(repr(v) for v in values[:MAX_LISTED]) + (", ..." if len(values) > MAX_LISTED else "")
            old.update(values=values, rows=rows,
                       message=f"Column '{w['column']}' has value(s) never seen in training: {shown} ({rows} rows); "
                               "the model scores them as an unknown category.")


def _jsonable(w: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(w)
    if "values" in out:
        out["values"] = list(out["values"])[:1000]
    return out


def _join(frame: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """The input's columns, then the prediction columns (an input column with a prediction
    column's name is kept as ``<name>__input``)."""
    import pandas as pd

    clash = [c for c in frame.columns if c in set(out.columns)]
    if clash:
        frame = frame.rename(columns={c: f"{c}__input" for c in clash})
    out.index = frame.index
    return pd.concat([frame, out], axis=1)


# =========================================================================== files


def write_table_file(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet (by the suffix) next to ``path``, then rename it into
    place, so a reader never sees half a file and a failure leaves none."""
    import os
    import tempfile

    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ModelyardError(f"Cannot write {target.name}: the output must end in .csv or .parquet.",
                             hint="Name the output file e.g. predictions.csv.")
    from modelyard.core.common.outputs import cannot_write, check_output_folder

    folder = check_output_folder(target).parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    os.close(fd)
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # a full disk, a folder made read-only meanwhile...
            raise cannot_write(target, exc) from None
        raise
    return target


def describe_result(result: Mapping[str, Any]) -> str:
    """One line for people: what was scored with what, and where the predictions are."""
    return (f"Scored {result['n_rows']:,} rows of {result['input']['ref']} with {result['model']['ref']}: "
            f"predictions in {result['output']['ref']}.")

