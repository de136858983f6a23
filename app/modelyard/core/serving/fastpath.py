"""A quicker way through a fitted Modelyard pipeline, for the small requests a server gets.

scikit-learn's ``ColumnTransformer`` spends milliseconds per call on bookkeeping (selecting
columns from a DataFrame, checking names, calling each sub-pipeline through joblib) that
dwarf the arithmetic for one row. :func:`compile_pipeline` reads the *fitted* pipeline that
:mod:`modelyard.core.experiments.training` builds — ``Pipeline([("preprocess", ColumnTransformer), ...,
("model", estimator)])`` — and redoes its preprocessing with plain numpy:

* numbers and yes/no columns (``to_float`` -> ``SimpleImputer`` -> ``StandardScaler``): the
  imputer's fitted statistics and the scaler's mean and scale, applied to a float array;
* dates (``datetime_parts`` -> imputer -> scaler): the parts computed from ``datetime64``;
* categories (anything over columns with a finite vocabulary, e.g. ``to_category_text`` ->
  imputer -> ``OneHotEncoder``): the real fitted sub-pipeline, called once per *distinct row*
  and memoised, so its output is scikit-learn's own.

The estimator (and any step between) is then called on the array, as the pipeline would.

Nothing is trusted blindly: the compiled path is checked against ``pipeline.predict`` on the
signature's example rows, the same rows with every value missing and with unseen categories,
and used only when the transformed features and the predictions agree; any step it does not
know (a custom transformer, sparse output...) leaves the model on the plain scikit-learn path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.core.serving.inputs import InputSpec, Validated

MEMO_MAX = 50_000
_DAY_US = 86_400_000_000


class CannotCompile(Exception):
    """The pipeline has a step this module does not reproduce (the reason is the message)."""


# --------------------------------------------------------------------------- steps


def _imputer_step(imp: Any, width: int) -> Callable[[Any], Any]:
    import numpy as np

    mv = imp.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)) or imp.add_indicator:
        raise CannotCompile("an imputer with a missing-value marker other than NaN, or with an indicator")
    stats = np.asarray(imp.statistics_)
    if stats.shape != (width,) or stats.dtype.kind not in "fiu" or np.isnan(stats.astype(float)).any():
        raise CannotCompile("an imputer that dropped or could not fill a feature")
    stats = stats.astype(np.float64)

    def apply(X: Any) -> Any:
        mask = np.isnan(X)
        if mask.any():
            X = np.where(mask, stats, X)
        return X

    return apply


def _scaler_step(sc: Any, width: int) -> Callable[[Any], Any]:
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None
    if (mean is not None and len(mean) != width) or (scale is not None and len(scale) != width):
        raise CannotCompile("a scaler of another width")

    def apply(X: Any) -> Any:
        if mean is not None:
            X = X - mean
        if scale is not None:
            X = X / scale
        return X

    return apply


def _numeric_steps(steps: Sequence[tuple[str, Any]], width: int) -> list[Callable[[Any], Any]]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    out = []
    for _, step in steps:
        if isinstance(step, SimpleImputer):
            out.append(_imputer_step(step, width))
        elif isinstance(step, StandardScaler):
            out.append(_scaler_step(step, width))
        else:
            raise CannotCompile(f"a {type(step).__name__} step")
    return out


def _parts(values: Any, parts: Sequence[str]) -> Any:
    """preprocess.datetime_parts for one datetime64 column: (n, len(parts)) floats, NaN where missing."""
    import numpy as np

    ts = values.astype("datetime64[us]")
    missing = np.isnat(ts)
    us = ts.astype(np.int64)
    days = np.floor_divide(us, _DAY_US)
    in_day = us - days * _DAY_US
    D = days.astype("datetime64[D]")
    Y = D.astype("datetime64[Y]")
    M = D.astype("datetime64[M]")
    month = (M.astype(np.int64) % 12 + 1)
    out = np.empty((len(ts), len(parts)), dtype=np.float64)
    for k, part in enumerate(parts):
        if part == "year":
            col = Y.astype(np.int64) + 1970
        elif part == "month":
            col = month
        elif part == "day":
            col = (D - M).astype(np.int64) + 1
        elif part == "dayofweek":
            col = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        elif part == "hour":
            col = in_day // 3_600_000_000
        elif part == "minute":
            col = (in_day // 60_000_000) % 60
        elif part == "dayofyear":
            col = (D - Y).astype(np.int64) + 1
        elif part == "quarter":
            col = (month - 1) // 3 + 1
        else:
            raise CannotCompile(f"the date part {part!r}")
        out[:, k] = col
    if missing.any():
        out[missing, :] = np.nan
    return out


# --------------------------------------------------------------------------- groups


class _FloatGroup:
    def __init__(self, cols: list[str], steps: list[Callable[[Any], Any]], out: slice) -> None:
        self.cols, self.steps, self.out = cols, steps, out

    def transform(self, columns: dict[str, Any], n: int) -> Any:
        import numpy as np

        X = np.empty((n, len(self.cols)), dtype=np.float64)
        for j, c in enumerate(self.cols):
            col = columns[c]
            X[:, j] = col if col.dtype.kind in "fiub" else np.asarray(col, dtype=np.float64)
        for step in self.steps:
            X = step(X)
        return X


class _DateGroup:
    def __init__(self, cols: list[str], parts: list[str], steps: list[Callable[[Any], Any]], out: slice) -> None:
        self.cols, self.parts, self.steps, self.out = cols, parts, steps, out

    def transform(self, columns: dict[str, Any], n: int) -> Any:
        import numpy as np

        blocks = []
        for c in self.cols:
            col = columns[c]
            if col.dtype.kind != "M":
                raise CannotCompile("a date column that is not datetime64")
            blocks.append(_parts(col, self.parts))
        X = np.hstack(blocks) if len(blocks) > 1 else blocks[0]
        for step in self.steps:
            X = step(X)
        return X


class _MemoGroup:
    """The real fitted sub-pipeline, called once per distinct row of a finite vocabulary."""

    def __init__(self, cols: list[str], transformer: Any, out: slice) -> None:
        self.cols, self.transformer, self.out = cols, transformer, out
        self.width = out.stop - out.start
        self.memo: dict[tuple[Any, ...], Any] = {}

    def transform(self, columns: dict[str, Any], n: int) -> Any:
        import numpy as np
        import pandas as pd

        arrays = [columns[c] for c in self.cols]
        keys = list(zip(*[a.tolist() for a in arrays], strict=True))
        memo = self.memo  # shared by the server's threads: read each entry once (another may clear it)
        rows: list[Any] = [None] * n
        missing: dict[tuple[Any, ...], list[int]] = {}
        for i, key in enumerate(keys):
            row = memo.get(key)
            if row is None:
                missing.setdefault(key, []).append(i)
            else:
                rows[i] = row
        if missing:
            idx = np.fromiter((where[0] for where in missing.values()), dtype=np.int64, count=len(missing))
            frame = pd.DataFrame({c: a[idx] for c, a in zip(self.cols, arrays, strict=True)})
            out = self.transformer.transform(frame)
            if not isinstance(out, np.ndarray) or out.shape != (len(missing), self.width):
                raise CannotCompile("a sub-pipeline with sparse, DataFrame or differently shaped output")
            out = out.astype(np.float64, copy=False)
            if len(memo) + len(missing) > MEMO_MAX:
                memo.clear()
            for (key, where), row in zip(missing.items(), out, strict=True):
                memo[key] = row
                for i in where:
                    rows[i] = row
        return np.vstack(rows) if n else np.empty((0, self.width))


# --------------------------------------------------------------------------- the compiled pipeline


class FastPipeline:
    """Preprocessing redone in numpy, then the fitted estimator (see the module docstring)."""

    def __init__(self, groups: list[Any], width: int, middle: list[Any], estimator: Any) -> None:
        self.groups = groups
        self.width = width
        self.middle = middle
        self.estimator = estimator

    def transform(self, columns: dict[str, Any], n: int) -> Any:
        """What the pipeline's ColumnTransformer would output for these validated columns."""
        import numpy as np

        X = np.empty((n, self.width), dtype=np.float64)
        for g in self.groups:
            X[:, g.out] = g.transform(columns, n)
        return X

    def features(self, columns: dict[str, Any], n: int) -> Any:
        X = self.transform(columns, n)
        for step in self.middle:
            X = step.transform(X)
        return X

    def predict(self, columns: dict[str, Any], n: int) -> Any:
        return self.estimator.predict(self.features(columns, n))

    def predict_proba(self, columns: dict[str, Any], n: int) -> Any:
        return self.estimator.predict_proba(self.features(columns, n))


def _build(model: Any, spec: InputSpec) -> FastPipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from modelyard.core.experiments.training import preprocess

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise CannotCompile("not a scikit-learn Pipeline that starts with a ColumnTransformer")
    ct = model.steps[0][1]
    if not isinstance(ct, ColumnTransformer) or spec.columns is None:
        raise CannotCompile("not a pipeline that starts with a ColumnTransformer over named columns")
    kinds = {c.name: c.kind for c in spec.columns}
    indices = getattr(ct, "output_indices_", None)
    if not indices:
        raise CannotCompile("a ColumnTransformer without output indices")
    groups: list[Any] = []
    width = 0
    for name, trans, cols in ct.transformers_:
        out = indices.get(name)
        if out is None or trans == "drop" or (out.stop - out.start == 0 and name == "remainder"):
            continue
        if isinstance(trans, str):
            raise CannotCompile(f"the {trans!r} transformer {name!r}")
        if not isinstance(cols, list) or not all(isinstance(c, str) and c in kinds for c in cols):
            raise CannotCompile(f"transformer {name!r} selects columns that are not the signature's")
        width = max(width, out.stop)
        steps = trans.steps if isinstance(trans, Pipeline) else [("", trans)]
        first = steps[0][1]
        func = first.func if isinstance(first, FunctionTransformer) else None
        if func is preprocess.to_float and not first.kw_args and \
                all(kinds[c] in ("number", "integer", "boolean") for c in cols):
            groups.append(_FloatGroup(list(cols), _numeric_steps(steps[1:], len(cols)), out))
        elif func is preprocess.datetime_parts and all(kinds[c] == "datetime" for c in cols):
            parts = list((first.kw_args or {}).get("parts", preprocess.DEFAULT_PARTS))
            groups.append(_DateGroup(list(cols), parts, _numeric_steps(steps[1:], len(cols) * len(parts)), out))
        elif all(kinds[c] in ("category", "boolean") for c in cols):
            groups.append(_MemoGroup(list(cols), trans, out))
        else:
            raise CannotCompile(f"transformer {name!r} ({type(trans).__name__})")
    middle = [step for _, step in model.steps[1:-1] if step not in (None, "passthrough")]
    return FastPipeline(groups, width, middle, model.steps[-1][1])


def _probes(spec: InputSpec, examples: Sequence[Validated]) -> list[Validated]:
    """The examples, one row with every value missing, one with an unseen category per column."""
    import numpy as np

    from modelyard.core.serving.inputs import Validated

    out = list(examples)
    if not examples or spec.columns is None:
        return out
    base = examples[0]
    empty: dict[str, Any] = {}
    unseen: dict[str, Any] = {}
    for col in spec.columns:
        arr = base.columns[col.name][:1]
        if col.kind in ("number", "integer"):
            empty[col.name] = np.array([np.nan])
        elif col.kind == "datetime":
            empty[col.name] = np.array(["NaT"], dtype=arr.dtype if arr.dtype.kind == "M" else "datetime64[us]")
        elif col.kind == "boolean":
            empty[col.name] = np.array([None], dtype=object)
        else:
            empty[col.name] = np.array([np.nan], dtype=object)
        unseen[col.name] = np.array(["\u2063unseen"], dtype=object) if col.kind == "category" else arr
    out.append(Validated(empty, 1))
    out.append(Validated(unseen, 1))
    return out


def compile_pipeline(model: Any, spec: InputSpec, examples: Sequence[Validated]) -> tuple[FastPipeline | None, str]:
    """(the compiled pipeline, "") when it reproduces ``model`` on the probes, else (None, why not)."""
    import numpy as np

    if not examples:
        return None, "the signature has no example rows to check a faster path against"
    try:
        fast = _build(model, spec)
    except CannotCompile as exc:
        return None, str(exc)
    except (AttributeError, TypeError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    ct = model.steps[0][1]
    has_proba = callable(getattr(model, "predict_proba", None)) if _safe_has(model, "predict_proba") else False
    for v in _probes(spec, examples):
        frame = spec.model_input(v)
        try:
            expected = ct.transform(frame)
            want = model.predict(frame)
        except Exception:  # noqa: BLE001 - scikit-learn refuses this probe: the fast path must too
            try:
                fast.predict(v.columns, v.n_rows)
            except Exception:  # noqa: BLE001, S112 - refused by both: as it should be
                continue
            return None, "the faster path accepts input the pipeline refuses"
        try:
            got = fast.transform(v.columns, v.n_rows)
            pred = fast.predict(v.columns, v.n_rows)
        except CannotCompile as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - any difference means: do not use it
            return None, f"the faster path failed on a probe: {type(exc).__name__}: {exc}"
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != got.shape or not np.allclose(expected, got, rtol=1e-9, atol=1e-12, equal_nan=True):
            return None, "the faster path's features differ from the pipeline's"
        if not np.array_equal(np.asarray(want), np.asarray(pred)):
            return None, "the faster path's predictions differ from the pipeline's"
        if has_proba:
            p1 = model.predict_proba(frame)
            p2 = fast.predict_proba(v.columns, v.n_rows)
            if not np.allclose(p1, p2, rtol=1e-9, atol=1e-12):
                return None, "the faster path's probabilities differ from the pipeline's"
    return fast, ""


def _safe_has(model: Any, name: str) -> bool:
    try:
        getattr(model, name)
    except AttributeError:
        return False
    return True
