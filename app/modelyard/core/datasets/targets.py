"""Which column of a new file is most likely what a model should predict (the import dialog pre-selects it).

The rule, in order (names compared case-insensitively, ignoring ``_``, ``-`` and spaces):

1. A column named like a target: ``target``, ``label``, ``class``, ``y``, ``outcome`` … (see
   :data:`TARGET_NAMES`); when several are, the last of them (targets usually come last).
2. Otherwise the **last** column, when it looks like classes: at least two values, at most
   :data:`MAX_CLASSES` distinct values, fewer distinct values than half the rows looked at,
   and not all numbers with a fraction (a measurement, not a class).
3. Otherwise nothing: the user picks one, or "(none)".

Pure Python: the caller passes the column names and the first rows' values of each column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

TARGET_NAMES = frozenset({
    "target", "label", "labels", "class", "classes", "y", "outcome", "result", "response",
    "species", "churn", "churned", "diagnosis", "cultivar", "survived", "default", "fraud", "isfraud",
    "defaulted", "approved", "quality", "progression", "price", "saleprice", "category", "grade",
})
MAX_CLASSES = 20


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _present(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != ""]


def looks_like_classes(values: Sequence[Any]) -> bool:
    """A handful of repeated values (not a measurement with fractions, not an id)."""
    present = _present(values)
    if len(present) < 2:
        return False
    distinct = {v for v in present}
    if not 2 <= len(distinct) <= MAX_CLASSES or len(distinct) * 2 > len(present):
        return False
    return not any(isinstance(v, float) and not float(v).is_integer() for v in distinct)


def guess_target(columns: Sequence[str], values: Mapping[str, Sequence[Any]]) -> str | None:
    """The likely target among ``columns`` (see the module's rule), or None."""
    named = [c for c in columns if _key(c) in TARGET_NAMES]
    if named:
        return named[-1]
    if len(columns) >= 2 and looks_like_classes(values.get(columns[-1], ())):
        return columns[-1]
    return None


def guess_target_from_profile(profile: Mapping[str, Any] | None) -> str | None:
    """The same rule over a stored version's profile (its columns' distinct counts and top values)."""
    columns = list((profile or {}).get("columns", []))
    names = [c["name"] for c in columns]
    named = [n for n in names if _key(n) in TARGET_NAMES]
    if named:
        return named[-1]
    if len(columns) < 2:
        return None
    last = columns[-1]
    distinct, count = last.get("distinct") or 0, last.get("count") or 0
    fractions = last.get("kind") == "float" and not last.get("integral")
    if 2 <= distinct <= MAX_CLASSES and distinct * 2 <= count and not fractions:
        return last["name"]
    return None
