"""Request bodies of MLflow's scoring protocol, turned into what :class:`~modelyard.core.serving.inputs.InputSpec`
checks, and the errors that become ``400 Bad Request`` (or 415) with a message naming the field.

Accepted, as ``mlflow models serve`` accepts them (``mlflow/pyfunc/scoring_server``):

* ``Content-Type: application/json`` (the default when the header is missing) with exactly one of
  ``dataframe_split`` (``{"columns": [...], "data": [[...]], "index": [...]}``; without
  ``columns`` the values are taken in the signature's column order), ``dataframe_records``
  (``[{"col": value}]``), ``instances`` or ``inputs`` (a list of objects, a list of rows, or an
  object of column -> list), and optionally ``params`` (an object; ``predict_method`` may be
  ``"predict"`` (default) or ``"predict_proba"``; other keys are ignored, as MLflow ignores
  parameters a model does not declare). Other top-level keys are ignored, as MLflow does;
* ``Content-Type: text/csv`` (a header row, then rows);
* ``Content-Type: application/vnd.apache.parquet``.

A ``charset`` other than UTF-8, any other content-type parameter or type is ``415``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.core.serving.inputs import InputSpec

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV = "text/csv"
JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
PREDICT_METHODS = ("predict", "predict_proba")


class PayloadError(Exception):
    """A request the server refuses: ``status`` 400 (``BAD_REQUEST``) or 415, naming ``field``."""

    def __init__(self, message: str, field: str | None = None, *, status: int = 400,
                 error_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.error_code = error_code

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def parse_content_type(header: str | None) -> str:
    """The media type of a Content-Type header; raises 415 for what MLflow refuses too."""
    if not header or not header.strip():
        return JSON
    parts = [p.strip() for p in header.split(";")]
    mime = parts[0].lower()
    params = {}
    for p in parts[1:]:
        if p:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"').lower()
    if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise PayloadError(f"The scoring server only supports UTF-8 (the request says charset={params['charset']}).",
                           "Content-Type", status=415, error_code="UNSUPPORTED_MEDIA_TYPE")
    unknown = sorted(set(params) - {"charset"})
    if unknown:
        raise PayloadError(f"Unrecognized content type parameter(s): {', '.join(unknown)} (the MLflow 2 scoring "
                           "protocol puts the format in the JSON body, e.g. {\"dataframe_split\": ...}).",
                           "Content-Type", status=415, error_code="UNSUPPORTED_MEDIA_TYPE")
    if mime not in CONTENT_TYPES:
        raise PayloadError(f"Content-Type {mime!r} is not supported; use {', '.join(CONTENT_TYPES)}.",
                           "Content-Type", status=415, error_code="UNSUPPORTED_MEDIA_TYPE")
    return mime


def parse_body(body: bytes | bytearray, content_type: str | None, spec: InputSpec) -> tuple[Any, dict[str, Any]]:
    """(input for ``spec.validate``, params) of a request body (a JSON body is let go once decoded:
    when the caller keeps no reference to it, its memory is freed before the values are built)."""
    mime = parse_content_type(content_type)
    if mime == CSV:
        return _csv(body, spec), {}
    if mime == PARQUET:
        return _parquet(body), {}
    try:
        text = body.decode("utf-8-sig")  # (a byte order mark is allowed, as json.loads allows it)
    except UnicodeDecodeError as exc:
        raise PayloadError(f"The body is not UTF-8 text: {exc}.", "body") from None
    del body  # when the caller handed the body over, it is freed here, before the values exist
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"The body is not valid JSON: {exc}.", "body") from None
    except RecursionError:
        raise PayloadError("The JSON body is nested too deeply to read (hundreds of levels of lists or objects); "
                           "send rows of plain values, as in {\"dataframe_split\": {\"columns\": [...], "
                           "\"data\": [[...]]}}.", "body") from None
    del text
    if not isinstance(doc, dict):
        raise PayloadError(f"The JSON body must be an object with one of the fields {', '.join(FORMATS)} "
                           f"(got {_kind(doc)}).", "body")
    found = [k for k in FORMATS if k in doc]
    if len(found) != 1:
        got = ", ".join(repr(k) for k in list(doc)[:10]) or "none"
        what = "none of" if not found else "more than one of"
        raise PayloadError(f"The JSON body must have exactly one of the fields {', '.join(FORMATS)}; it has {what} "
                           f"them (fields: {got}).", found[1] if len(found) > 1 else "body")
    key = found[0]
    params = doc.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise PayloadError(f"'params' must be an object of parameter names and values (got {_kind(params)}).",
                           "params")
    method = params.get("predict_method", "predict")
    if method not in PREDICT_METHODS:
        raise PayloadError(f"'params.predict_method' must be one of {', '.join(PREDICT_METHODS)} (got {method!r}).",
                           "params.predict_method")
    value = doc[key]
    if key == "dataframe_split":
        return _split(value, spec), params
    if key == "dataframe_records":
        return _records(value, key), params
    return _instances(value, key, spec), params


def _no_rows(field: str) -> PayloadError:
    return PayloadError(f"'{field}' holds no rows: send at least one.", field)


def _column_names(columns: Any, field: str) -> list[str]:
    if not isinstance(columns, list):
        raise PayloadError(f"'{field}' must be a list of column names (got {_kind(columns)}).", field)
    names = []
    for i, c in enumerate(columns):
        if isinstance(c, (dict, list)) or c is None:
            raise PayloadError(f"'{field}[{i}]' must be a column name (got {_kind(c)}).", field)
        names.append(str(c))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PayloadError(f"'{field}' names the column(s) {', '.join(map(repr, dupes))} more than once.", field)
    return names


def _split(value: Any, spec: InputSpec) -> Any:
    field = "dataframe_split"
    if not isinstance(value, dict):
        raise PayloadError(f"'{field}' must be an object with 'data' and optionally 'columns' and 'index' "
                           f"(got {_kind(value)}).", field)
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise PayloadError(f"'{field}' has unknown field(s) {', '.join(map(repr, extra))}; it takes 'data' and "
                           "optionally 'columns' and 'index'.", f"{field}.{extra[0]}")
    if "data" not in value:
        raise PayloadError(f"'{field}' needs a 'data' field (a list of rows).", f"{field}.data")
    data = value["data"]
    if not isinstance(data, list):
        raise PayloadError(f"'{field}.data' must be a list of rows (got {_kind(data)}).", f"{field}.data")
    if not data:
        raise _no_rows(f"{field}.data")
    columns = value.get("columns")
    names = _column_names(columns, f"{field}.columns") if columns is not None else None
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise PayloadError(f"'{field}.index' must be a list with one entry per row ({len(data)}).",
                           f"{field}.index")
    if names is not None and len(names) == 1 and not any(isinstance(r, list) for r in data):
        return {names[0]: data}
    width = len(names) if names is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise PayloadError(f"'{field}.data[{i}]' must be a row (a list of values), not {_kind(row)}.",
                               f"{field}.data")
        if width is None:
            width = len(row)
        if len(row) != width:
            what = f"'{field}.columns' names {width}" if names is not None else f"the first row has {width}"
            raise PayloadError(f"'{field}.data[{i}]' has {len(row)} value(s), but {what}.", f"{field}.data")
    if names is None:
        if spec.columns is not None and width != len(spec.columns):
            raise PayloadError(f"'{field}' has no 'columns', so its rows are read in the signature's column order, "
                               f"but its rows have {width} value(s) and the model reads {len(spec.columns)}.",
                               f"{field}.columns")
        return _columns_of(data, spec.names) if spec.columns is not None else data
    return _columns_of(data, names)


def _columns_of(rows: list[Any], names: list[str]) -> dict[str, list[Any]]:
    """The rows (lists as wide as ``names``) as columns; each row is let go once copied, so a
    large request never holds its values twice (rows and columns) at once."""
    n = len(rows)
    cols: list[list[Any]] = [[None] * n for _ in names]
    for i in range(n):
        for col, value in zip(cols, rows[i], strict=True):
            col[i] = value
        rows[i] = None
    rows.clear()
    return dict(zip(names, cols, strict=True))


def _records(value: Any, field: str) -> dict[str, list[Any]]:
    if not isinstance(value, list):
        raise PayloadError(f"'{field}' must be a list of records (objects of column: value), not {_kind(value)}.",
                           field)
    if not value:
        raise _no_rows(field)
    if len(value) == 1:  # the common single-row request
        rec = value[0]
        if not isinstance(rec, dict):
            raise PayloadError(f"'{field}[0]' must be a record (an object of column: value), not {_kind(rec)}.",
                               field)
        return {str(k): [v] for k, v in rec.items()}
    names: dict[str, None] = {}
    for i, rec in enumerate(value):
        if not isinstance(rec, dict):
            raise PayloadError(f"'{field}[{i}]' must be a record (an object of column: value), not {_kind(rec)}.",
                               field)
        for k in rec:
            names.setdefault(k)
    return {str(k): [rec.get(k) for rec in value] for k in names}


def _instances(value: Any, field: str, spec: InputSpec) -> Any:
    if isinstance(value, dict):  # columnar: {"col": [values]} (or one row of scalars)
        if not value:
            raise _no_rows(field)
        cols = {str(k): (v if isinstance(v, list) else [v]) for k, v in value.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) != 1:
            sizes = ", ".join(f"'{k}': {len(v)}" for k, v in list(cols.items())[:10])
            raise PayloadError(f"The columns of '{field}' have different lengths ({sizes}).", field)
        if lengths == {0}:
            raise _no_rows(field)
        return cols
    if not isinstance(value, list):
        raise PayloadError(f"'{field}' must be a list of rows or records, or an object of column: values "
                           f"(got {_kind(value)}).", field)
    if not value:
        raise _no_rows(field)
    first = value[0]
    if isinstance(first, dict):
        return _records(value, field)
    if isinstance(first, list):
        width = len(first)
        for i, row in enumerate(value):
            if not isinstance(row, list):
                raise PayloadError(f"'{field}[{i}]' must be a row (a list of values) like the first, not {_kind(row)}.",
                                   field)
            if len(row) != width:
                raise PayloadError(f"'{field}[{i}]' has {len(row)} value(s), but '{field}[0]' has {width}.", field)
        if spec.columns is not None and width != len(spec.columns):
            raise PayloadError(f"The rows of '{field}' have {width} value(s); read in the signature's column order "
                               f"they need {len(spec.columns)}.", field)
        return _columns_of(value, spec.names) if spec.columns is not None else value
    names = spec.names if spec.columns is not None else []
    if len(names) == 1 or (spec.columns is None and spec.positional == 1):
        return {names[0] if names else "0": value}
    raise PayloadError(f"'{field}' must be a list of rows (lists) or records (objects); a list of single values "
                       "only fits a model with one input column.", field)


def _csv(body: bytes | bytearray, spec: InputSpec) -> Any:
    import io

    import pandas as pd

    if not body or body.isspace():  # (no copy of the body: the parser reads the bytes themselves)
        raise PayloadError("The CSV body is empty: send a header row and at least one row.", "body")
    dtypes = {c.name: str for c in (spec.columns or []) if c.kind in ("text", "category") and
              (c.dtype or "").lower() in ("str", "string", "object", "category", "large_string", "utf8")}
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=dtypes or None, encoding="utf-8", encoding_errors="strict")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"The CSV body is not UTF-8 text: {exc}.", "body") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PayloadError(f"The CSV body could not be read: {exc}".rstrip(".") + ".", "body") from None
    if len(frame) == 0:
        raise PayloadError("The CSV body has a header but no rows.", "body")
    return frame


def _parquet(body: bytes | bytearray) -> Any:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(io.BytesIO(body)).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise PayloadError(f"The Parquet body could not be read: {exc}".rstrip(".") + ".", "body") from None
    if len(frame) == 0:
        raise PayloadError("The Parquet body has no rows.", "body")
    return frame
