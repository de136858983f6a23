"""The filter language's words: its fields and limits, :class:`FilterError`, and the tokenizer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modelyard.core.common.errors import ModelyardError

# attribute name -> kind of value it compares with
ATTRIBUTES: dict[str, str] = {
    "status": "text", "name": "text", "run_id": "text", "experiment": "text", "user": "text",
    "start_time": "time", "duration": "number",
}
_ATTRIBUTE_ALIASES = {"run_name": "name", "id": "run_id", "experiment_name": "experiment",
                      "start": "start_time", "started": "start_time"}
_PREFIXES = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameter": "param", "parameters": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attr", "attribute": "attr", "attr": "attr", "run": "attr",
}
_KEYWORDS = {"and", "or", "not", "like", "ilike", "in"}
_STATUS_ALIASES = {"finished": "succeeded", "killed": "cancelled", "scheduled": "queued", "success": "succeeded"}
_COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
_NUMBER_RE = re.compile(r"[ \t\n\r]*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[ \t\n\r]*")
# what 'duration' and 'start_time' mean in seconds / ms; BASE_COLUMNS are a RunsTable's fixed columns
BASE_COLUMNS = ("run_id", "experiment", "name", "status", "start_time", "end_time", "duration", "user",
                "source_type", "source", "parent_run_id")


def is_fold_series(key: str) -> bool:
    """A cross-validation metric logged as one value per fold (``cv_accuracy`` at steps 0..k-1):
    its value in a runs table, a filter and a sort is the mean over the folds, not the last fold
    (``cv_accuracy_mean`` / ``cv_accuracy_std``, logged beside it, are single values)."""
    return key.startswith("cv_") and not key.endswith(("_mean", "_std"))


def fold_values(text: Any) -> list[float]:
    """The folds of a ``folds.<key>`` cell of a RunsTable (text, fold order; "" or None: none)."""
    return [float(v) for v in text.split(",")] if isinstance(text, str) and text else []


def is_number_text(text: str | None) -> bool:
    """True when a param/tag value is a plain decimal number (the filter's numeric rule)."""
    return text is not None and _NUMBER_RE.fullmatch(text) is not None


def number_or_none(text: str | None) -> float | None:
    """The number a param/tag value holds under the filter's numeric rule, else None."""
    if text is None or _NUMBER_RE.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


# =========================================================================== errors


class FilterError(ModelyardError):
    """A malformed filter or order-by expression. ``position`` is the 0-based offset of the error.

    The message shows the filter (around the error, when it is long) with a caret under the
    offending spot; ``show_text=False`` makes it one line (for a filter over the size limits).
    """

    exit_code = 2

    def __init__(self, reason: str, text: str, position: int, *, hint: str | None = None,
                 show_text: bool = True) -> None:
        position = max(0, min(position, len(text)))
        self.reason = reason
        self.text = text
        self.position = position
        self.column = position + 1
        message = f"{reason} at column {self.column}"
        if show_text:
            shown, caret = _excerpt(text.replace("\n", " ").replace("\t", " "), position)
            message += f"\n  {shown}\n  {' ' * caret}^"
        super().__init__(message, hint=hint or _FILTER_HINT)


def _excerpt(text: str, position: int, width: int = 110) -> tuple[str, int]:
    """``text`` cut to about ``width`` characters around ``position``; the caret's offset in it."""
    if len(text) <= width:
        return text, position
    start = max(0, min(position - width // 2, len(text) - width))
    end = start + width
    shown = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    return shown, position - start + (3 if start else 0)


# Limits that keep every filter within what the parser (Python's recursion) and SQLite (its
# parser stack and expression depth) handle; tests/core/experiments/test_runquery.py runs filters at both.
MAX_FILTER_DEPTH = 20  # nested parentheses and 'not's
MAX_FILTER_TERMS = 200  # comparisons (a list in 'in (...)' is one)
_LIMIT_HINT = ("Simplify the filter: compare with a list in one go (params.model in ('rf', 'gbm', ...)), "
               "drop double 'not's and parentheses, or split the search.")

_FILTER_HINT = ('A filter compares fields with values, e.g. metrics.f1 > 0.8 and params.model = "rf" '
                'or tags.team in ("risk", "growth").')


# =========================================================================== tokens


@dataclass(frozen=True)
class _Tok:
    kind: str  # field, word, string, number, op, lparen, rparen, comma, end
    value: Any
    pos: int
    end: int
    text: str


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "the end of the filter"
    return _quoted(tok.text)


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _quoted(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut short: an error message quotes a token, not a page of it."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-./:@+]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TOKEN = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DIGITS = "0123456789"  # ASCII only: '٣' or '²' is not a number here


def _read_quoted(text: str, i: int, quote: str, what: str) -> tuple[str, int]:
    """Read a quoted string starting at ``text[i] == quote``; a doubled quote stands for itself."""
    j = i + 1
    out: list[str] = []
    while True:
        k = text.find(quote, j)
        if k < 0:
            raise FilterError(f"unterminated {what} (missing closing {quote})", text, i)
        out.append(text[j:k])
        if text.startswith(quote * 2, k):
            out.append(quote)
            j = k + 2
            continue
        return "".join(out), k + 1


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "(":
            toks.append(_Tok("lparen", "(", i, i + 1, "("))
            i += 1
        elif c == ")":
            toks.append(_Tok("rparen", ")", i, i + 1, ")"))
            i += 1
        elif c == ",":
            toks.append(_Tok("comma", ",", i, i + 1, ","))
            i += 1
        elif c in "<>=!":
            two = text[i:i + 2]
            if two in ("<=", ">=", "!=", "==", "<>"):
                op = {"==": "=", "<>": "!="}.get(two, two)
                toks.append(_Tok("op", op, i, i + 2, two))
                i += 2
            elif c == "!":
                raise FilterError("'!' must be followed by '=' (write != for 'not equal')", text, i)
            else:
                toks.append(_Tok("op", c, i, i + 1, c))
                i += 1
        elif c in "'\"":
            value, j = _read_quoted(text, i, c, "text")
            toks.append(_Tok("string", value, i, j, text[i:j]))
            i = j
        elif c in _DIGITS or (c in "-+." and i + 1 < n and (text[i + 1] in _DIGITS or text[i + 1] == ".")):
            mt = _NUMBER_TOKEN.match(text, i)
            if not mt:
                raise FilterError("malformed number", text, i)
            j = mt.end()
            if j < n and (text[j].isalnum() or text[j] in "_."):
                end = j
                while end < n and not text[end].isspace() and text[end] not in "()<>=!,'\"":
                    end += 1
                raise FilterError(f"malformed number {_quoted(text[i:end])}", text, i)
            literal = mt.group()
            toks.append(_Tok("number", float(literal), i, j, literal))  # (any literal the regex takes)
            i = j
        elif (c.isascii() and c.isalpha()) or c == "_":  # words are ASCII; other keys go in quotes
            mw = _WORD.match(text, i)
            assert mw is not None
            word, j = mw.group(), mw.end()
            if j < n and text[j] == "." and word.lower() in _PREFIXES:
                kind = _PREFIXES[word.lower()]
                k = j + 1
                if k < n and text[k] in "`\"":
                    key, end = _read_quoted(text, k, text[k], "quoted key")
                    if not key:
                        raise FilterError(f"empty key after '{word}.'", text, k)
                else:
                    mk = _KEY_CHARS.match(text, k)
                    if not mk:
                        raise FilterError(f"expected a key after '{word}.' (quote unusual keys: {word}.`my key`)",
                                          text, k)
                    key, end = mk.group(), mk.end()
                    if key.endswith("."):
                        raise FilterError(f"a key cannot end with '.': {_quoted(key)}", text, end - 1)
                toks.append(_Tok("field", (kind, key), i, end, text[i:end]))
                i = end
            else:
                toks.append(_Tok("word", word, i, j, word))
                i = j
        elif c == "`":
            raise FilterError("a backquoted key needs a prefix (metrics., params. or tags.)", text, i)
        else:
            raise FilterError(f"unexpected character {c!r}", text, i)
    toks.append(_Tok("end", None, n, n, ""))
    return toks


