"""Train / validation / test assignments of a dataset version's rows.

An assignment is one small integer per row (0 train, 1 validation, 2 test), stored as a
compressed ``.npz`` artifact, so every run that uses a split sees exactly the same rows.

* ``random``: a permutation drawn with numpy's PCG64 generator seeded by ``seed``.
* ``stratified``: scikit-learn's ``train_test_split`` with ``stratify`` on a column (the
  target by default); a numeric column with many values is stratified by its deciles, and a
  missing value counts as a class of its own.
* ``time``: rows sorted by a time (or number) column: the oldest are train, then validation,
  the newest test. Rows without a time are put first (train).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural

TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
METHODS = ("random", "stratified", "time")
STRATIFY_MAX_CLASSES = 50
STRATIFY_BINS = 10


class SplitError(ModelyardError):
    """A split that cannot be made as asked."""


def part_sizes(n: int, test: float, validation: float) -> tuple[int, int, int]:
    """(train, validation, test) row counts; raises for impossible fractions."""
    if not 0 < test < 1:
        raise SplitError(f"The test share must be between 0 and 1 (got {test}).", hint="For example --test 0.2.")
    if not 0 <= validation < 1:
        raise SplitError(f"The validation share must be between 0 and 1 (got {validation}).",
                         hint="For example --validation 0.1, or 0 for none.")
    if test + validation >= 1:
        raise SplitError(f"Test ({test}) and validation ({validation}) together leave no rows for training.",
                         hint="Make them add up to less than 1.")
    n_test = max(1, int(round(test * n)))
    n_val = max(1, int(round(validation * n))) if validation > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 1:
        raise SplitError(f"{plural(n, 'row')} {'is' if n == 1 else 'are'} too few to split into train, validation "
                         "and test.",
                         hint="Use a smaller test or validation share, or a larger dataset.")
    return n_train, n_val, n_test


def _class_codes(values: pa.ChunkedArray | pa.Array, column: str) -> tuple[np.ndarray, list[Any]]:
    """Integer classes for stratification: categories as they are, many numbers by decile."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t)
    encoded = pc.dictionary_encode(values)
    k = len(encoded.dictionary)
    if numeric and k > STRATIFY_MAX_CLASSES:
        nums = pc.cast(values, pa.float64()) if not pa.types.is_timestamp(t) else pc.cast(values.view(pa.int64()), pa.float64())
        x = nums.to_numpy(zero_copy_only=False)
        ok = ~np.isnan(x)
        edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, STRATIFY_BINS + 1)[1:-1])) if ok.any() else []
        codes = np.where(ok, np.searchsorted(edges, np.nan_to_num(x), side="right"), len(edges) + 1)
        labels = [f"decile {i + 1}" for i in range(len(edges) + 1)] + ["(missing)"]
        return codes.astype(np.int64), labels
    idx = encoded.indices
    codes = (idx.fill_null(k) if idx.null_count else idx).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist() + ["(missing)"]


def _stratified(n: int, n_val: int, n_test: int, seed: int, classes: np.ndarray, column: str,
                labels: list[Any]) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(classes)
    if (counts[counts > 0] < 2).any():
        rare = int(np.flatnonzero((counts > 0) & (counts < 2))[0])
        label = labels[rare] if rare < len(labels) else "(missing)"
        raise SplitError(f"Column '{column}' has a class with a single row ({label!r}): a stratified split needs "
                         "at least two rows of every class.",
                         hint="Use a random split, or stratify on another column.")
    assignment = np.full(n, TRAIN, dtype=np.int8)
    idx = np.arange(n)
    try:
        rest, test_idx = train_test_split(idx, test_size=n_test, stratify=classes, random_state=seed)
        assignment[test_idx] = TEST
        if n_val:
            _, val_idx = train_test_split(rest, test_size=n_val, stratify=classes[rest], random_state=seed)
            assignment[val_idx] = VALIDATION
    except ValueError as exc:
        raise SplitError(f"A stratified split on '{column}' is not possible: {exc}",
                         hint="Use a random split, a larger test share, or another column.") from None
    return assignment


def _by_time(n: int, n_val: int, n_test: int, values: pa.ChunkedArray | pa.Array, column: str) -> tuple[np.ndarray, int]:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        keys = values.view(pa.int64()) if t.bit_width == 64 else pc.cast(values, pa.int64())
        x = pc.cast(keys, pa.float64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        x = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_string(t):
        import pandas as pd

        try:
            parsed = pd.to_datetime(pd.Series(values.to_pylist()), errors="raise", format="mixed")
        except (ValueError, TypeError) as exc:
            raise SplitError(f"Column '{column}' holds text that is not all dates or times ({exc}).",
                             hint="Choose a date, time or number column for a time split.") from None
        x = parsed.astype("int64").to_numpy(dtype=np.float64)
        x[parsed.isna().to_numpy()] = np.nan
    else:
        raise SplitError(f"Column '{column}' ({t}) cannot order rows in time.",
                         hint="Choose a date, time or number column for a time split.")
    missing = np.isnan(x)
    x = np.where(missing, -np.inf, x)
    order = np.argsort(x, kind="stable")
    assignment = np.full(n, TRAIN, dtype=np.int8)
    assignment[order[n - n_test:]] = TEST
    if n_val:
        assignment[order[n - n_test - n_val: n - n_test]] = VALIDATION
    return assignment, int(missing.sum())


def make_assignment(n: int, *, test: float, validation: float = 0.0, method: str = "random", seed: int = 0,
                    column: str | None = None, values: pa.ChunkedArray | pa.Array | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The per-row assignment and facts about it (counts; for time splits the cut points)."""
    if method not in METHODS:
        raise SplitError(f"Unknown split method '{method}'.", hint=f"Use one of {', '.join(METHODS)}.")
    n_train, n_val, n_test = part_sizes(n, test, validation)
    facts: dict[str, Any] = {}
    if method == "random":
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        assignment = np.full(n, TRAIN, dtype=np.int8)
        assignment[perm[:n_test]] = TEST
        assignment[perm[n_test:n_test + n_val]] = VALIDATION
    elif method == "stratified":
        assert values is not None and column is not None
        classes, labels = _class_codes(values, column)
        assignment = _stratified(n, n_val, n_test, seed, classes, column, labels)
    else:
        assert values is not None and column is not None
        assignment, missing = _by_time(n, n_val, n_test, values, column)
        if missing:
            facts["rows_without_time"] = missing
    counts = np.bincount(assignment, minlength=3)
    facts["counts"] = {"train": int(counts[TRAIN]), "validation": int(counts[VALIDATION]), "test": int(counts[TEST])}
    return assignment, facts


def to_bytes(assignment: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, assignment=assignment.astype(np.int8))
    return buf.getvalue()


def from_bytes(data: bytes) -> np.ndarray:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return np.asarray(npz["assignment"])


def indices(assignment: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.flatnonzero(assignment == code) for name, code in PARTS.items()}
