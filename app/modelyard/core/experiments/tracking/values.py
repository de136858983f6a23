"""What a run may record: the tracking limits and the checks every logged key and value passes."""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Iterable
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import check_name as check_name_chars

FLUSH_INTERVAL_S = 1.0
FLUSH_MAX_POINTS = 50_000
END_STATUSES = ("succeeded", "failed", "cancelled", "pruned")  # pruned: a search trial Optuna stopped early
SOURCE_TYPES = ("script", "notebook", "interactive", "gui", "cli", "job", "other")
MAX_KEY_LENGTH = 250
# steps and timestamps are 64-bit integer columns; a timestamp is ms since the epoch, up to the
# year 9999 (what datetime can show; it also catches seconds passed as ns or us by mistake)
MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str):
        raise ModelyardError(f"A {what} name must be text, not {type(key).__name__} ({_short(key)}).")
    if not key or len(key) > MAX_KEY_LENGTH or key != key.strip() or any(c in key for c in "\n\r\t\x00\x1e\x1f") \
            or not _encodable(key):
        raise ModelyardError(
            f"{what.capitalize()} name {key!r} is not allowed.",
            hint=f"Use 1 to {MAX_KEY_LENGTH} characters of valid Unicode, without line breaks, tabs or "
                 "leading/trailing spaces.")
    return check_name_chars(key, f"The {what} name")


def _encodable(text: str) -> bool:
    """False for text the database cannot store (an unpaired surrogate, e.g. from surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, key: str, what: str) -> str:
    """A param or tag value as the text stored, or a ModelyardError naming ``key``."""
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError as exc:  # e.g. an int beyond Python's 4,300-digit limit for conversion to text
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value cannot be turned into text ({exc}).",
                             hint="Log a shorter value.") from None
    if "\x00" in text:
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value contains a NUL character, which cannot be "
                             "stored.", hint="Remove the NUL characters (\\x00) from the value.")
    if not _encodable(text):
        raise ModelyardError(f"{what.capitalize()} {key!r}: the value is not valid Unicode text (it holds an "
                             "unpaired surrogate) and cannot be stored.",
                             hint="Decode bytes with their real encoding, or with errors='replace'.")
    return text


def _keys_label(keys: Iterable[Any]) -> str:
    names = list(keys)
    shown = ", ".join(_short(k) for k in names[:3]) + (", ..." if len(names) > 3 else "")
    return f"metric {shown}" if len(names) == 1 else f"metrics {shown}"


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (int, numpy integer, integral float), else None."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real):
        try:
            if math.isfinite(value) and int(value) == value:
                return int(value)
        except (TypeError, ValueError, OverflowError):
            pass
    return None


def _step(value: Any, keys: Iterable[Any]) -> int:
    """A metric step, or a ModelyardError naming the metric(s) and the range."""
    if type(value) is int and MIN_STEP <= value <= MAX_STEP:
        return value
    hint = f"A step is a whole number from {MIN_STEP} to {MAX_STEP} (a 64-bit integer)."
    step = _whole_number(value)
    if step is None:
        raise ModelyardError(f"The step of {_keys_label(keys)} must be a whole number, not {_short(value)}.", hint=hint)
    if not MIN_STEP <= step <= MAX_STEP:
        raise ModelyardError(f"The step {_short(value)} of {_keys_label(keys)} is out of range: a step is a whole number "
                             f"from {MIN_STEP} to {MAX_STEP}.", hint=hint)
    return step


def _timestamp(value: Any, keys: Iterable[Any]) -> int:
    """A timestamp in whole ms (a fraction of a ms is dropped), or a ModelyardError naming the range."""
    if type(value) is int and 0 <= value <= MAX_TIMESTAMP_MS:
        return value
    hint = "Pass milliseconds since the epoch, e.g. int(time.time() * 1000), or leave timestamp out for now."
    ms = _whole_number(value)
    if ms is None and isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            ms = math.floor(value) if math.isfinite(value) else None
        except (TypeError, ValueError, OverflowError):
            ms = None
    if ms is None:
        raise ModelyardError(f"The timestamp of {_keys_label(keys)} must be a number of milliseconds, "
                             f"not {_short(value)}.", hint=hint)
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise ModelyardError(f"The timestamp {_short(value)} of {_keys_label(keys)} is out of range: a timestamp is "
                             f"milliseconds since the epoch, from 0 to {MAX_TIMESTAMP_MS} (the year 9999).",
                             hint=hint)
    return ms


def _metric_value(value: Any, key: Any) -> float:
    """A metric value as a float, or a ModelyardError naming the metric."""
    if type(value) is float:
        return value
    hint = "A metric value is a real number (an int, a float or a numpy number); record text as a tag."
    if isinstance(value, (str, bytes)) or (isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)):
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is not a real number.", hint=hint)
    try:
        return float(value)
    except OverflowError:
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is too large for a metric (the largest is about "
                             f"{sys.float_info.max:.3g}).", hint=hint) from None
    except (TypeError, ValueError):
        raise ModelyardError(f"Metric {key!r}: {_short(value)} is not a number.", hint=hint) from None


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for conversion to text
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= 80 else text[:77] + "..."
