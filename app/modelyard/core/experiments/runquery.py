"""The runs filter language, and the fast tabular query behind the runs table.

Filter expressions, as typed in the runs table's filter box, ``modelyard run list --filter``
and :func:`modelyard.search_runs`::

    metrics.f1 > 0.8 and params.model = "random_forest" and tags.team = "risk"
    (metrics.auc >= 0.9 or metrics.`val loss` < 0.2) and not status = "failed"
    params.model in ("random_forest", "gbm") and name like "baseline%"

Fields: ``metrics.<key>``, ``params.<key>``, ``tags.<key>`` (``metric.``, ``param.``, ``tag.``
work too; a key with spaces or operator characters goes in backquotes or double quotes:
``metrics.`val loss```), and the run attributes ``status``, ``name``, ``run_id``,
``experiment``, ``user``, ``start_time`` and ``duration`` (optionally written
``attributes.status``). Operators: ``= == != <> < <= > >=``, ``like`` / ``not like`` (SQL ``%``
and ``_`` wildcards, ``\\`` escapes them; case-sensitive), ``ilike`` / ``not ilike``
(case-insensitive), ``in (...)`` / ``not in (...)``; ``and``, ``or``, ``not`` and parentheses,
with ``not`` binding tighter than ``and``, and ``and`` tighter than ``or`` (as in SQL).
Keywords are case-insensitive. Text goes in single or double quotes (double the quote to put
one inside: ``'it''s'``).

Semantics, chosen so the SQL and the in-memory (pandas) evaluation agree exactly:

- A comparison on a metric, param or tag the run does not have is false, whatever the operator
  (so ``params.x != "a"`` matches only runs that have ``x``); ``not (...)`` negates the whole
  comparison, so ``not params.x = "a"`` also matches runs without ``x``.
- Metrics are numbers and compare with numbers only.
- Params and tags are stored as text and compare as text with a quoted value. With an unquoted
  number they compare numerically, and then only values that are plain decimal numbers
  (``3``, ``-0.5``, ``1e-05``, as Python prints ints and floats) take part: ``params.depth > 5``
  matches ``"8"`` and ``"12.0"`` but neither ``"abc"`` nor ``"5"``.
- ``status`` accepts MLflow's names too (``FINISHED`` = succeeded, ``KILLED`` = cancelled),
  in any case.
- ``start_time`` compares with a date or time in quotes (ISO 8601; without a time zone it is
  local time, as the CLI and the app display it) or with milliseconds since the epoch;
  ``duration`` with seconds (a running run's duration counts up to now).

Malformed filters raise :class:`FilterError`, whose message shows the filter with a caret
under the offending spot. A filter nests at most :data:`MAX_FILTER_DEPTH` levels of
parentheses and ``not`` and has at most :data:`MAX_FILTER_TERMS` comparisons (what SQLite's
parser always takes); beyond that the FilterError is one line naming the limit.

The query side: :func:`query_runs` returns a :class:`RunsTable` (plain numpy/pandas columns,
no ORM objects) built for the GUI's runs table. On SQLite it pivots params, metrics and tags
with one sequential scan per table whose values come back as a few long strings instead of one
Python object per stored value; 100,000 runs x 15 values take about 1.5-2 s on a 2-core VM
(tests/benchmarks/tracking.py), bound by SQLite reading 1.6 million rows.

Hence the block cache (SQLite, more than ``CACHE_MIN_RUNS`` runs selected): the table is
assembled from columnar snapshots of 4,096 runs each (``runs_table_cache``, see
``models.RunsTableCache``), and only blocks with no snapshot, or one a write has cleared, are
read from the rows; a full read stores the blocks it had to build (those without a running
run). Triggers clear a block in the same transaction as any write to one of its runs, and a
block is stored only if its generation is still the one the read saw, so a snapshot is never
stale. Which runs are selected always comes from ``runs`` itself. With the blocks stored,
100,000 runs load in ~0.1-0.2 s.

A view should show ``query_runs(..., limit=200)`` first (~20-60 ms), load the whole table in a
worker, keep it current with :meth:`RunsTable.refresh` (re-reads only runs written since), and
sort and filter it in memory from the same filter AST (:meth:`RunsTable.sort`,
:meth:`RunsTable.filter`: 10-60 ms for 100,000 runs); :meth:`RunsTable.cell` reads one value
per visible cell without converting columns.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from modelyard.core.common.errors import ModelyardError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.core.store import Store

__all__ = [
    "ATTRIBUTES", "FilterError", "Field", "Compare", "Like", "In", "And", "Or", "Not", "Node",
    "parse_filter", "parse_order_by", "parse_field", "referenced_fields", "to_sql", "to_mask",
    "is_number_text", "number_or_none", "RunsTable", "query_runs", "available_columns", "BASE_COLUMNS",
]

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
# parser stack and expression depth) handle; tests/test_runquery.py runs filters at both.
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


# =========================================================================== AST


@dataclass(frozen=True)
class Field:
    kind: str  # metric | param | tag | attr
    key: str
    pos: int = field(default=0, compare=False)

    @property
    def column(self) -> str:
        """The field's column name in a RunsTable / search_runs frame."""
        if self.kind == "attr":
            return self.key
        return f"{self.kind}s.{self.key}"

    @property
    def value_type(self) -> str:
        return "number" if self.kind == "metric" else ATTRIBUTES.get(self.key, "text") if self.kind == "attr" else "text"


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str
    value: Any  # str, int/float, or dt.datetime for start_time


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str
    negate: bool = False
    insensitive: bool = False


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Compare, Like, In, And, Or, Not]


# =========================================================================== parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses and 'not's around the current token
        self.terms = 0

    def nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise FilterError(f"the filter nests parentheses and 'not' more than {MAX_FILTER_DEPTH} levels deep",
                              self.text, tok.pos, hint=_LIMIT_HINT, show_text=False)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value.lower() in words

    def fail(self, reason: str, tok: _Tok | None = None) -> FilterError:
        return FilterError(reason, self.text, (tok or self.tok).pos)

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("the filter is empty")
        node = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.kind == "rparen":
                raise self.fail("unmatched ')'")
            raise self.fail(f"expected 'and', 'or' or the end of the filter, found {_describe(self.tok)}")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.next()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.is_word("not"):
            self.nest(self.next())
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "lparen":
            self.nest(self.next())
            if self.tok.kind == "rparen":
                raise self.fail("expected an expression inside the parentheses")
            node = self.or_expr()
            if self.tok.kind != "rparen":
                raise self.fail(f"expected ')' to close the '(' at column {tok.pos + 1}, "
                                f"found {_describe(self.tok)}")
            self.next()
            self.depth -= 1
            return node
        return self.comparison()

    def field(self) -> Field:
        tok = self.tok
        if tok.kind == "field":
            self.next()
            kind, key = tok.value
            if kind == "attr":
                return self._attribute(key, tok)
            return Field(kind, key, tok.pos)
        if tok.kind == "word" and tok.value.lower() not in _KEYWORDS:
            self.next()
            return self._attribute(tok.value, tok)
        if tok.kind == "end":
            raise self.fail("expected a field (metrics.<key>, params.<key>, tags.<key>, status, name, ...)")
        raise self.fail(f"expected a field (metrics.<key>, params.<key>, tags.<key>, status, name, ...), "
                        f"found {_describe(tok)}")

    def _attribute(self, name: str, tok: _Tok) -> Field:
        key = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if key not in ATTRIBUTES:
            raise self.fail(f"unknown field {_quoted(name)}: use metrics.<key>, params.<key>, tags.<key> or one of "
                            + ", ".join(ATTRIBUTES), tok)
        return Field("attr", key, tok.pos)

    def comparison(self) -> Node:
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise FilterError(f"the filter has more than {MAX_FILTER_TERMS:,} comparisons", self.text, self.tok.pos,
                              hint=_LIMIT_HINT, show_text=False)
        fld = self.field()
        op_tok = self.tok
        negate = False
        if self.is_word("not"):
            self.next()
            negate = True
            if not self.is_word("like", "ilike", "in"):
                raise self.fail(f"expected 'like', 'ilike' or 'in' after 'not', found {_describe(self.tok)}")
        if self.is_word("like", "ilike"):
            insensitive = self.next().value.lower() == "ilike"
            word = "ilike" if insensitive else "like"
            if fld.value_type != "text":
                raise self.fail(f"'{word}' works on params, tags and text attributes, not on "
                                f"{_field_label(fld)} (a {fld.value_type})", op_tok)
            val_tok = self.tok
            if val_tok.kind != "string":
                raise self.fail(f"expected a quoted pattern after '{word}', found {_describe(val_tok)}")
            self.next()
            pattern = val_tok.value
            if fld.kind == "attr" and fld.key == "status":
                pattern = pattern.lower()
            return Like(fld, pattern, negate, insensitive)
        if self.is_word("in"):
            self.next()
            if self.tok.kind != "lparen":
                raise self.fail(f"expected '(' after 'in', found {_describe(self.tok)}")
            self.next()
            values: list[Any] = []
            kinds: set[str] = set()
            while True:
                vt = self.tok
                if vt.kind == "rparen" and not values:
                    raise self.fail("expected at least one value in 'in (...)'")
                if vt.kind not in ("string", "number"):
                    raise self.fail(f"expected a value (a number or quoted text) in the list, found {_describe(vt)}")
                self.next()
                values.append(self._value(fld, vt, "in"))
                kinds.add(vt.kind)
                if self.tok.kind == "comma":
                    self.next()
                    continue
                if self.tok.kind == "rparen":
                    self.next()
                    break
                raise self.fail(f"expected ',' or ')' in the list, found {_describe(self.tok)}")
            if len(kinds) > 1 and fld.kind in ("param", "tag"):
                raise self.fail("the list mixes numbers and quoted text: use all numbers (compared as numbers) "
                                "or all quoted text", op_tok)
            return In(fld, tuple(values), negate)
        if op_tok.kind != "op":
            raise self.fail(f"expected an operator (=, !=, <, <=, >, >=, like, in) after {_field_label(fld)}, "
                            f"found {_describe(op_tok)}")
        self.next()
        op = op_tok.value
        val_tok = self.tok
        if val_tok.kind not in ("string", "number"):
            raise self.fail(f"expected a value after '{op_tok.text}', found {_describe(val_tok)}")
        self.next()
        value = self._value(fld, val_tok, op)
        if fld.kind == "attr" and ATTRIBUTES[fld.key] == "text" and op not in ("=", "!=") and fld.key == "status":
            raise self.fail("status compares with = or != (or like / in)", op_tok)
        return Compare(fld, op, value)

    def _value(self, fld: Field, tok: _Tok, op: str) -> Any:
        vtype = fld.value_type
        if vtype == "number":
            if tok.kind != "number":
                raise self.fail(f"{_field_label(fld)} is a number: compare it with a number, not the text "
                                f"{_cut(tok.text)}", tok)
            return float(tok.text)  # from the text: a number beyond a float's range is infinite
        if vtype == "time":
            if tok.kind == "number":
                try:
                    return dt.datetime.fromtimestamp(float(tok.text) / 1000.0, dt.UTC)
                except (OverflowError, ValueError, OSError):
                    raise self.fail(f"{fld.key} {_cut(tok.text)} is out of range: give milliseconds since the "
                                    "epoch up to the year 9999, or a date such as '2024-05-01'", tok) from None
            try:
                when = dt.datetime.fromisoformat(tok.value.strip())
            except ValueError:
                raise self.fail(f"expected a date or time such as '2024-05-01' or '2024-05-01 14:30', "
                                f"found {_cut(tok.text)}", tok) from None
            try:
                if when.tzinfo is None:
                    when = when.astimezone()  # local time, as displayed
                return when.astimezone(dt.UTC)
            except (OverflowError, ValueError, OSError):  # within hours of the year 1 or 9999
                raise self.fail(f"{fld.key} {_cut(tok.text)} is out of range: give a date between the years "
                                "1 and 9999", tok) from None
        # text: params, tags, text attributes
        if fld.kind == "attr":
            if tok.kind != "string":
                raise self.fail(f"{fld.key} is text: put the value in quotes", tok)
            if fld.key == "status":
                low = tok.value.lower()
                return _STATUS_ALIASES.get(low, low)
            return tok.value
        if tok.kind == "number":
            return float(tok.text)
        return tok.value


def _field_label(fld: Field) -> str:
    return fld.column


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter expression; None or blank text is no filter. Raises :class:`FilterError`."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_field(text: str) -> Field:
    """Parse a single column name such as ``metrics.f1`` or ``start_time``."""
    p = _Parser(text)
    fld = p.field()
    if p.tok.kind != "end":
        raise p.fail(f"expected the end after the field, found {_describe(p.tok)}")
    return fld


def parse_order_by(items: str | Sequence[str] | None) -> list[tuple[Field, bool]]:
    """``["metrics.f1 DESC", "start_time"]`` -> ``[(Field, descending), ...]``.

    One string may also hold several comma-separated items.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    out: list[tuple[Field, bool]] = []
    for item in items:
        p = _Parser(item)
        while True:
            if p.tok.kind == "end":
                raise p.fail("expected a field to order by")
            fld = p.field()
            desc = False
            if p.tok.kind == "word" and p.tok.value.lower() in ("asc", "desc"):
                desc = p.next().value.lower() == "desc"
            out.append((fld, desc))
            if p.tok.kind == "comma":
                p.next()
                continue
            if p.tok.kind != "end":
                raise p.fail(f"expected ASC, DESC, ',' or the end, found {_describe(p.tok)}")
            break
    return out


def referenced_fields(node: Node | None) -> list[Field]:
    out: list[Field] = []

    def walk(n: Node) -> None:
        if isinstance(n, (And, Or)):
            for it in n.items:
                walk(it)
        elif isinstance(n, Not):
            walk(n.item)
        else:
            out.append(n.field)

    if node is not None:
        walk(node)
    return out


# =========================================================================== SQL


def like_to_glob(pattern: str) -> str:
    """A case-sensitive SQLite GLOB pattern equal to the SQL LIKE pattern (``\\`` escapes)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            c = pattern[i + 1]
            out.append({"*": "[*]", "?": "[?]", "[": "[[]"}.get(c, c))
            i += 2
            continue
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def like_to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return "".join(out)


SQLITE_NUM_FUNCTION = "modelyard_num"


def prepare_connection(conn: Any) -> None:
    """Register the SQL functions compiled filters use (SQLite: the numeric-text test)."""
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.driver_connection
    raw.create_function(SQLITE_NUM_FUNCTION, 1, number_or_none, deterministic=True)


def _num_expr(value_col: Any, dialect: str) -> Any:
    """SQL: the value as a float when it is a plain decimal number, else NULL."""
    from sqlalchemy import Float, case, cast, func

    if dialect == "sqlite":
        return getattr(func, SQLITE_NUM_FUNCTION)(value_col)
    if dialect == "postgresql":
        return case((value_col.op("~")(r"^[ \t\n\r]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r]*$"),
                     cast(func.trim(value_col), Float)), else_=None)
    return case((value_col.regexp_match(r"^[ \t\n\r]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r]*$"),
                 cast(value_col, Float)), else_=None)


def _cmp(col: Any, op: str, value: Any) -> Any:
    import operator

    return {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}[op](col, value)


def _like_sql(col: Any, pattern: str, insensitive: bool, dialect: str) -> Any:
    if insensitive:
        return col.ilike(pattern, escape="\\")
    if dialect == "sqlite":
        return col.op("GLOB", is_comparison=True)(like_to_glob(pattern))
    return col.like(pattern, escape="\\")


def duration_sql(dialect: str) -> Any:
    from sqlalchemy import func

    from modelyard.core.store import models as m

    if dialect == "sqlite":
        end = func.coalesce(m.Run.end_time, func.strftime("%Y-%m-%d %H:%M:%f", "now"))
        return (func.julianday(end) - func.julianday(m.Run.start_time)) * 86400.0
    end = func.coalesce(m.Run.end_time, func.timezone("UTC", func.now()))
    return func.extract("epoch", end - m.Run.start_time)


def to_sql(node: Node, dialect: str) -> Any:
    """Compile a parsed filter to a WHERE clause over ``runs`` (EXISTS-style ``IN`` subqueries)."""
    from sqlalchemy import and_, not_, or_, select

    from modelyard.core.store import models as m

    if isinstance(node, And):
        return and_(*(to_sql(n, dialect) for n in node.items))
    if isinstance(node, Or):
        return or_(*(to_sql(n, dialect) for n in node.items))
    if isinstance(node, Not):
        return not_(to_sql(node.item, dialect))
    fld = node.field
    if fld.kind == "attr":
        return _attr_sql(node, dialect)
    table = {"metric": m.LatestMetric, "param": m.Param, "tag": m.Tag}[fld.kind]
    col = table.value
    if isinstance(node, Compare):
        if fld.kind != "metric" and isinstance(node.value, float):
            cond = _cmp(_num_expr(col, dialect), node.op, node.value)
        else:
            cond = _cmp(col, node.op, node.value)
    elif isinstance(node, Like):
        cond = _like_sql(col, node.pattern, node.insensitive, dialect)
        if node.negate:
            cond = not_(cond)
    else:  # In
        target = col
        if fld.kind != "metric" and node.values and isinstance(node.values[0], float):
            target = _num_expr(col, dialect)
        cond = target.not_in(node.values) if node.negate else target.in_(node.values)
        if node.negate and target is not col:
            cond = and_(target.is_not(None), cond)
    return m.Run.id.in_(select(table.run_id).where(table.key == fld.key, cond))


def _attr_sql(node: Compare | Like | In, dialect: str) -> Any:
    from sqlalchemy import and_, select

    from modelyard.core.store import models as m

    key = node.field.key
    if key == "experiment":
        inner = _attr_sql_on(node, m.Experiment.name, dialect)
        return m.Run.experiment_id.in_(select(m.Experiment.id).where(inner))
    col = {"status": m.Run.status, "name": m.Run.name, "run_id": m.Run.uuid, "user": m.Run.user,
           "start_time": m.Run.start_time, "duration": duration_sql(dialect)}[key]
    cond = _attr_sql_on(node, col, dialect)
    if key in ("name", "user"):
        # nullable: make a missing value false rather than NULL, so that not (...) is true for it
        cond = and_(col.is_not(None), cond)
    return cond


def _attr_sql_on(node: Compare | Like | In, col: Any, dialect: str) -> Any:
    from sqlalchemy import not_

    if isinstance(node, Compare):
        return _cmp(col, node.op, node.value)
    if isinstance(node, Like):
        cond = _like_sql(col, node.pattern, node.insensitive, dialect)
        return not_(cond) if node.negate else cond
    return col.not_in(node.values) if node.negate else col.in_(node.values)


def order_sql(order: list[tuple[Field, bool]], dialect: str, select_stmt: Any) -> Any:
    """Add ORDER BY clauses (with the outer joins they need) to a select over ``runs``.

    Order of values: metrics numerically; params and tags numbers first (numerically), then
    text; runs without the value last in either direction. Ties: newest first.
    """
    from sqlalchemy import and_, case, select
    from sqlalchemy.orm import aliased

    from modelyard.core.store import models as m

    clauses: list[Any] = []
    for n, (fld, desc) in enumerate(order):
        if fld.kind == "attr":
            if fld.key == "experiment":
                col = select(m.Experiment.name).where(m.Experiment.id == m.Run.experiment_id).scalar_subquery()
            else:
                col = {"status": m.Run.status, "name": m.Run.name, "run_id": m.Run.uuid, "user": m.Run.user,
                       "start_time": m.Run.start_time, "duration": duration_sql(dialect)}[fld.key]
            clauses.append(case((col.is_(None), 1), else_=0))
            clauses.append(col.desc() if desc else col.asc())
            continue
        table = {"metric": m.LatestMetric, "param": m.Param, "tag": m.Tag}[fld.kind]
        alias = aliased(table, name=f"o{n}")
        select_stmt = select_stmt.outerjoin(alias, and_(alias.run_id == m.Run.id, alias.key == fld.key))
        clauses.append(case((alias.value.is_(None), 1), else_=0))
        if fld.kind == "metric":
            clauses.append(alias.value.desc() if desc else alias.value.asc())
        else:
            num = _num_expr(alias.value, dialect)
            klass = case((num.is_(None), 1), else_=0)
            for part in (klass, num, alias.value):
                clauses.append(part.desc() if desc else part.asc())
    clauses += [m.Run.start_time.desc(), m.Run.id.desc()]
    return select_stmt.order_by(*clauses)


# =========================================================================== pandas


def to_mask(node: Node, frame: pd.DataFrame, *, numeric: dict[str, Any] | None = None) -> np.ndarray:
    """Evaluate a parsed filter over a RunsTable-shaped frame (same semantics as :func:`to_sql`).

    A field whose column the frame lacks matches no run. ``numeric`` caches the numeric view
    of param/tag columns between calls.
    """
    import numpy as np

    n = len(frame)
    cache = numeric if numeric is not None else {}
    if isinstance(node, And):
        mask = np.ones(n, dtype=bool)
        for it in node.items:
            mask &= to_mask(it, frame, numeric=cache)
        return mask
    if isinstance(node, Or):
        mask = np.zeros(n, dtype=bool)
        for it in node.items:
            mask |= to_mask(it, frame, numeric=cache)
        return mask
    if isinstance(node, Not):
        return ~to_mask(node.item, frame, numeric=cache)
    fld = node.field
    name = fld.column
    if name not in frame.columns:
        return np.zeros(n, dtype=bool)
    series = frame[name]
    if fld.kind == "attr" and fld.key == "duration" or fld.kind == "metric":
        values = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(values)
        if isinstance(node, Compare):
            with np.errstate(invalid="ignore"):
                return present & _np_cmp(values, node.op, node.value)
        hit = np.isin(values, np.asarray(node.values, dtype=float))
        return present & (~hit if node.negate else hit)
    if fld.kind == "attr" and fld.key == "start_time":
        import pandas as pd

        ts = pd.Timestamp(node.value)
        values = series
        present = values.notna().to_numpy()
        if isinstance(node, Compare):
            res = _np_cmp(values, node.op, ts)
            return present & np.asarray(res, dtype=bool)
        hit = values.isin([pd.Timestamp(v) for v in node.values]).to_numpy()
        return present & (~hit if node.negate else hit)
    # text columns: params, tags, text attributes
    obj = series.to_numpy(dtype=object)
    present = series.notna().to_numpy()
    numeric_compare = fld.kind in ("param", "tag") and (
        (isinstance(node, Compare) and isinstance(node.value, float))
        or (isinstance(node, In) and node.values and isinstance(node.values[0], float)))
    if numeric_compare:
        nums = cache.get(name)
        if nums is None:
            nums = cache[name] = numeric_view(series)
        has = ~np.isnan(nums)
        if isinstance(node, Compare):
            with np.errstate(invalid="ignore"):
                return has & _np_cmp(nums, node.op, node.value)
        hit = np.isin(nums, np.asarray(node.values, dtype=float))
        return has & (~hit if node.negate else hit)
    if isinstance(node, Compare):
        if node.op in ("=", "!="):
            eq = obj == node.value
            eq = np.asarray(eq, dtype=bool)
            return present & (eq if node.op == "=" else ~eq)
        out = np.zeros(n, dtype=bool)
        idx = np.flatnonzero(present)
        vals = obj[idx]
        import operator

        fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[node.op]
        out[idx] = np.fromiter((fn(v, node.value) for v in vals), dtype=bool, count=len(vals))
        return out
    if isinstance(node, Like):
        flags = re.IGNORECASE | re.DOTALL if node.insensitive else re.DOTALL
        rx = re.compile(like_to_regex(node.pattern), flags)
        hit = _map_unique(series, lambda v: rx.fullmatch(v) is not None)
        return present & (~hit if node.negate else hit)
    hit = np.asarray(series.isin(list(node.values)).to_numpy(), dtype=bool)
    return present & (~hit if node.negate else hit)


def _np_cmp(values: Any, op: str, value: Any) -> Any:
    import operator

    return {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}[op](values, value)


def _map_unique(series: pd.Series, fn: Any) -> np.ndarray:
    """Apply ``fn`` to each distinct non-null value once (params have few distinct values)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.fromiter((bool(fn(u)) for u in uniques), dtype=bool, count=len(uniques))
    out = np.zeros(len(series), dtype=bool)
    ok = codes >= 0
    out[ok] = table[codes[ok]]
    return out


def numeric_view(series: pd.Series) -> np.ndarray:
    """A float array of a text column: the value where it is a plain decimal number, else NaN."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([number_or_none(u) for u in uniques], dtype=float) if len(uniques) else np.zeros(0)
    table = np.where(np.isnan(table), np.nan, table) if len(table) else table
    out = np.full(len(series), np.nan)
    ok = codes >= 0
    if len(table):
        out[ok] = table[codes[ok]]
    return out


def sort_keys(frame: pd.DataFrame, order: list[tuple[Field, bool]], numeric: dict[str, Any] | None = None,
              index: np.ndarray | None = None) -> np.ndarray:
    """Row order for ``order`` with the same rules as :func:`order_sql`; ties newest first.

    With ``index``, the order of the rows ``frame.iloc[index]`` (positions into ``index``),
    computed without materialising them.
    """
    import numpy as np
    import pandas as pd

    cache = numeric if numeric is not None else {}
    keys: list[np.ndarray] = []  # most significant first; lexsort wants it reversed
    n = len(frame) if index is None else len(index)

    def rank(values: Any, desc: bool) -> np.ndarray:
        codes, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes = codes.astype(np.int64)
        return -codes if desc else codes

    for fld, desc in order:
        name = fld.column
        if name not in frame.columns:
            continue
        series = frame[name]
        missing = series.isna().to_numpy().astype(np.int8)
        keys.append(missing)
        if fld.kind == "metric" or (fld.kind == "attr" and fld.key == "duration"):
            v = series.to_numpy(dtype=float, na_value=np.nan)
            keys.append(-np.nan_to_num(v, nan=0.0) if desc else np.nan_to_num(v, nan=0.0))
        elif fld.kind == "attr" and fld.key in ("start_time", "end_time"):
            v = series.to_numpy(dtype="datetime64[ms]").astype(np.int64)
            keys.append(-v if desc else v)
        elif fld.kind in ("param", "tag"):
            nums = cache.get(name)
            if nums is None:
                nums = cache[name] = numeric_view(series)
            text = np.isnan(nums) & ~missing.astype(bool)
            any_num = not np.all(np.isnan(nums))
            if text.any() and any_num:
                keys.append(-text.astype(np.int8) if desc else text.astype(np.int8))
            if any_num:
                v = np.nan_to_num(nums, nan=0.0)
                keys.append(-v if desc else v)
            if text.any():
                keys.append(rank(series, desc))
        else:
            keys.append(rank(series, desc))
    if "start_time" in frame.columns:
        keys.append(-frame["start_time"].to_numpy(dtype="datetime64[us]").astype(np.int64))  # µs: fast runs share a ms
    if not keys:
        return np.arange(n)
    if index is not None:
        keys = [k[index] for k in keys]
    return np.lexsort(list(reversed(keys)))


# =========================================================================== RunsTable


class RunsTable:
    """Runs as plain columns, one row per run, ready for a table model.

    :attr:`frame` is a pandas frame with the columns ``run_id`` (the 32-hex id),
    ``experiment``, ``name``, ``status``, ``start_time`` / ``end_time`` (UTC datetimes),
    ``duration`` (seconds, float), ``user``, ``source_type``, ``source``, ``parent_run_id``, then
    ``metrics.<key>`` (float, NaN when absent), ``params.<key>`` and ``tags.<key>`` (text, None
    when absent). ``pks`` holds the store's integer run ids in row order.

    :meth:`sort` and :meth:`filter` return new tables in milliseconds: they share the loaded
    columns and only compute a new row order (``index``); :meth:`column` reads one column in
    that order, and :attr:`frame` builds the reordered frame on first use. :meth:`refresh`
    returns the table brought up to date by re-reading only the runs written since it was
    loaded (what a live view calls every second or two).
    """

    def __init__(self, frame: pd.DataFrame, pks: np.ndarray, *, complete: bool = True,
                 store: Store | None = None, query: _Query | None = None,
                 loaded_at: dt.datetime | None = None, index: np.ndarray | None = None,
                 numeric: dict[str, Any] | None = None, getters: dict[str, Any] | None = None,
                 positions: dict[str, Any] | None = None, raw: _Raw | None = None) -> None:
        import numpy as np

        self._base = frame
        self._base_pks = pks
        self.index = np.arange(len(frame)) if index is None else index  # rows of the loaded frame, in order
        self.complete = complete  # every param/metric/tag key of the selected runs has a column
        self.loaded_at = loaded_at
        self._store = store
        self._query = query
        self._numeric: dict[str, Any] = {} if numeric is None else numeric  # over the loaded frame
        self._frame: pd.DataFrame | None = frame if index is None else None
        # per loaded frame, shared by the tables sorted and filtered from it
        self._getters: dict[str, Any] = {} if getters is None else getters
        self._positions: dict[str, Any] = {} if positions is None else positions
        self._raw = raw  # (run attributes, {kind: {key: values}}) in the loaded frame's row order

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"RunsTable({len(self)} runs, {len(self._base.columns)} columns)"

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = self._base.take(self.index).reset_index(drop=True)
        return self._frame

    @property
    def pks(self) -> np.ndarray:
        return self._base_pks[self.index]

    @property
    def columns(self) -> list[str]:
        return list(self._base.columns)

    @property
    def run_ids(self) -> np.ndarray:
        return self.column("run_id")

    def column(self, name: str) -> np.ndarray:
        """One column's values in row order (a numpy array).

        ``start_time`` and ``end_time`` come as naive UTC ``datetime64[ns]`` (NaT when absent):
        converting a time-zone-aware column to objects costs ~150 ms per 100,000 runs.
        """
        series = self._base[name]
        if isinstance(series.dtype, __import__("pandas").DatetimeTZDtype):
            values = series.dt.tz_convert(None).to_numpy()
        else:
            values = series.to_numpy()
        return values[self.index]

    def cell(self, name: str, row: int) -> Any:
        """One value (``row`` in this table's order) without converting the column: what a view
        asks for per visible cell. Times come as naive UTC ``datetime64``, categories as text."""
        getter = self._getters.get(name)
        if getter is None:
            getter = self._getters[name] = _cell_getter(self._base[name])
        return getter(int(self.index[row]))

    def prepare(self, columns: Sequence[str]) -> None:
        """Build what :meth:`cell` needs for these columns now (say on a worker thread, so that
        the first paint on the main thread does not pay for it); :meth:`row_of` remembers too."""
        for name in columns:
            if name in self._base.columns and name not in self._getters:
                self._getters[name] = _cell_getter(self._base[name])

    def row_of(self, run_id: str) -> int:
        """The row of a run in this table's order, or -1."""
        import numpy as np

        pos = self._positions.get(run_id)  # run id -> position in the loaded frame, shared by sorted/filtered tables
        if pos is None:
            found = np.flatnonzero(self._base["run_id"].to_numpy(dtype=object) == run_id)
            pos = self._positions[run_id] = int(found[0]) if len(found) else -1
        if pos < 0:
            return -1
        rows = np.flatnonzero(self.index == pos)
        return int(rows[0]) if len(rows) else -1

    def shares_data_with(self, other: RunsTable | None) -> bool:
        """True when both tables hold the very same loaded rows (a refresh that found nothing new)."""
        return other is not None and self._base is other._base and self._base_pks is other._base_pks

    def keys(self, kind: str) -> list[str]:
        """The keys of one kind (``params``, ``metrics``, ``tags``) that have columns."""
        prefix = kind.rstrip("s") + "s."
        return [c[len(prefix):] for c in self._base.columns if c.startswith(prefix)]

    def numeric(self, name: str) -> np.ndarray:
        """A column as floats in row order; params and tags: plain decimal numbers, else NaN."""
        import numpy as np

        if name.startswith(("params.", "tags.")):
            if name not in self._numeric:
                self._numeric[name] = numeric_view(self._base[name])
            return self._numeric[name][self.index]
        return self._base[name].to_numpy(dtype=float, na_value=np.nan)[self.index]

    def _take(self, positions: np.ndarray) -> RunsTable:
        """The rows at these positions of this table, as a new table sharing the columns."""
        return RunsTable(self._base, self._base_pks, complete=self.complete, store=self._store, query=self._query,
                         loaded_at=self.loaded_at, index=self.index[positions], numeric=self._numeric,
                         getters=self._getters, positions=self._positions, raw=self._raw)

    def sort(self, by: str | Sequence[str] | Sequence[tuple[str, bool]], ascending: bool = True) -> RunsTable:
        """Sorted by one column (``"metrics.f1"``), several, or ``"metrics.f1 DESC"`` items.

        Metrics sort as numbers; params and tags put numbers first (numerically) then text;
        missing values go last either way; ties keep newest first.
        """
        return self._take(sort_keys(self._base, _order_items(by, ascending), self._numeric, self.index))

    def filter(self, expression: str | Node | None) -> RunsTable:
        """The runs matching a filter expression (evaluated in memory, same rules as the SQL)."""
        import numpy as np

        node = parse_filter(expression) if isinstance(expression, str) or expression is None else expression
        if node is None:
            return self._take(np.arange(len(self)))
        missing = [f for f in referenced_fields(node) if f.column not in self._base.columns]
        if missing and not self.complete and self._store is not None and self._query is not None:
            # some keys were not loaded: ask the database which of these runs match
            matching = _matching_pks(self._store, node, self._query)
            return self._take(np.flatnonzero(np.isin(self.pks, matching)))
        mask = to_mask(node, self._base, numeric=self._numeric)
        return self._take(np.flatnonzero(mask[self.index]))

    def head(self, n: int) -> RunsTable:
        import numpy as np

        return self._take(np.arange(min(n, len(self))))

    def refresh(self) -> RunsTable:
        """This table's query again, re-reading only the runs written since it was loaded.

        Runs are found by their start, end, heartbeat and trash times (every tracking write
        updates the heartbeat), with a minute of overlap for transactions that were still open
        at the last load. When runs left the store (a purge) or the table was limited
        (``limit=``), everything is read again. The result is in the query's order (re-apply
        an interactive sort or filter to it).
        """
        import numpy as np
        import pandas as pd
        from sqlalchemy import func, or_, select

        from modelyard.core.store import models as m

        if self._store is None or self._query is None:
            raise ValueError("this RunsTable was not loaded from a store")
        q = self._query
        if q.limit is not None or self.loaded_at is None:
            return _execute(self._store, q)
        started = m.utcnow()
        since = self.loaded_at - REFRESH_OVERLAP
        base, base_pks = self._base, self._base_pks
        with self._store.engine.connect() as conn:
            prepare_connection(conn)
            R = m.Run
            exp = [R.experiment_id.in_(q.experiment_ids)] if q.experiment_ids is not None else []
            touched = np.asarray(conn.execute(select(R.id).where(*exp, or_(
                R.heartbeat_at >= since, R.start_time >= since, R.end_time >= since, R.deleted_at >= since))
            ).scalars().all(), dtype=np.int64)
            conds = q.conditions(conn.dialect.name, scan=False)
            in_scope = conn.execute(select(func.count()).select_from(R).where(*conds)).scalar() or 0
            keep = ~np.isin(base_pks, touched)
            if len(touched):
                current = np.asarray(conn.execute(select(R.id).where(*conds, R.id.in_(touched.tolist())))
                                     .scalars().all(), dtype=np.int64)
            else:
                current = np.zeros(0, dtype=np.int64)
            if int(keep.sum()) + len(current) != in_scope:
                return _execute(self._store, q)  # runs were purged (or we missed something): reload
            if not len(touched):  # nothing written since: same rows, in the query's order
                same = RunsTable(base, base_pks, complete=self.complete, store=self._store, query=q,
                                 loaded_at=started, numeric=self._numeric, getters=self._getters,
                                 positions=self._positions, raw=self._raw)
                return same._take(sort_keys(base, q.order, self._numeric))
            if self._raw is not None:  # extend the columns the frame was built from, and build it again
                loader = _Loader(self._store, conn, conds, conds, current)
                new = loader.read(q.wanted) if len(current) else None
                raw = _extend_raw(self._raw, keep, new)
                frame, pks = loader._frame(*raw)
                table = RunsTable(frame, pks, complete=self.complete, store=self._store, query=q, loaded_at=started,
                                  raw=raw)
                return table._take(sort_keys(frame, q.order, table._numeric))
            if len(current):
                frame_new, pks_new, _raw = _Loader(self._store, conn, conds, conds, current).load(q.wanted)
            else:
                frame_new, pks_new = None, np.zeros(0, dtype=np.int64)
        if frame_new is not None and len(frame_new):
            frame = pd.concat([base[keep], frame_new], ignore_index=True, sort=False)
            for c in ("experiment", "status"):
                frame[c] = frame[c].astype("category")
            for c in frame.columns:
                if frame[c].dtype != object and (c.startswith(("params.", "tags.")) or c in _TEXT_COLUMNS):
                    frame[c] = pd.Series(np.where(frame[c].isna().to_numpy(), None, frame[c].to_numpy(dtype=object)),
                                         dtype=object)
        else:
            frame = base[keep].reset_index(drop=True)
        pks = np.concatenate([base_pks[keep], pks_new])
        table = RunsTable(frame, pks, complete=self.complete, store=self._store, query=q, loaded_at=started)
        return table._take(sort_keys(frame, q.order, table._numeric))


_TEXT_COLUMNS = ("run_id", "name", "user", "source", "source_type", "parent_run_id")
_Raw = tuple[dict[str, Any], dict[str, dict[str, Any]]]  # _Loader.read: run attributes, {kind: {key: values}}


def _extend_raw(raw: _Raw, keep: np.ndarray, new: _Raw | None) -> _Raw:
    """The rows ``keep`` of ``raw`` followed by ``new``'s (keys of either; NaN / None elsewhere)."""
    import numpy as np

    d_old, kinds_old = raw
    n_keep = int(keep.sum())
    n_new = len(new[0]["pk"]) if new is not None else 0
    if new is None:
        d = {f: v[keep] for f, v in d_old.items()}
    else:
        d = {f: np.concatenate([v[keep], np.asarray(new[0][f]).astype(v.dtype, copy=False)]) for f, v in d_old.items()}
    kinds: dict[str, dict[str, Any]] = {}

    def part(cols: dict[str, Any], key: str, mask: Any, n: int, numeric: bool) -> Any:
        if key in cols:
            return cols[key] if mask is None else cols[key][mask]
        return np.full(n, np.nan) if numeric else np.full(n, None, dtype=object)

    for kind in ("metric", "param", "tag"):
        old = kinds_old.get(kind, {})
        add = new[1].get(kind, {}) if new is not None else {}
        numeric = kind == "metric"
        kinds[kind] = {k: np.concatenate([part(old, k, keep, n_keep, numeric), part(add, k, None, n_new, numeric)])
                       for k in sorted(set(old) | set(add))}
    return d, kinds


def _cell_getter(series: pd.Series) -> Any:
    """position in the loaded frame -> value, for one column, in O(1) per call (no conversion of
    the whole column: a categorical answers from its codes, a UTC time column from its int64s)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        categories = np.asarray(series.cat.categories, dtype=object)
        return lambda i: None if codes[i] < 0 else categories[codes[i]]
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert(None).to_numpy()  # vectorised, ~1 ms per 100,000
        return values.__getitem__
    return series.to_numpy().__getitem__
REFRESH_OVERLAP = dt.timedelta(seconds=60)


def _order_items(by: str | Sequence[str] | Sequence[tuple[str, bool]], ascending: bool = True
                 ) -> list[tuple[Field, bool]]:
    if isinstance(by, str):
        by = [by]
    order: list[tuple[Field, bool]] = []
    for item in by:
        if isinstance(item, tuple):
            order.append((parse_field(item[0]), not item[1]))
        else:
            parsed = parse_order_by(item)
            if len(parsed) == 1 and not re.search(r"\s(asc|desc)\s*$", item, re.IGNORECASE):
                parsed = [(parsed[0][0], not ascending)]
            order += parsed
    return order


# =========================================================================== loading


@dataclass(frozen=True)
class _Query:
    experiment_ids: list[int] | None
    include_deleted: bool | str
    node: Node | None
    wanted: dict[str, list[str]] | None
    order: list[tuple[Field, bool]]
    limit: int | None

    def conditions(self, dialect: str, *, scan: bool) -> list[Any]:
        conds = _scope_conditions(self.experiment_ids, self.include_deleted, scan=scan)
        if self.node is not None:
            conds.append(to_sql(self.node, dialect))
        return conds


def _resolve_experiments(s: Any, experiments: Any) -> list[int] | None:
    from sqlalchemy import select

    from modelyard.core.common.errors import NotFoundError
    from modelyard.core.store import models as m

    if experiments is None:
        return None
    if isinstance(experiments, (str, int)):
        experiments = [experiments]
    ids: list[int] = []
    names = [e for e in experiments if isinstance(e, str)]
    ids += [int(e) for e in experiments if not isinstance(e, str)]
    if names:
        found = dict(s.execute(select(m.Experiment.name, m.Experiment.id).where(m.Experiment.name.in_(names))).all())
        unknown = [n for n in names if n not in found]
        if unknown:
            raise NotFoundError(f"There is no experiment named {unknown[0]!r} in this store.",
                                hint="'modelyard experiment list' shows the experiments.")
        ids += [found[n] for n in names]
    return ids


def _scope_conditions(experiment_ids: list[int] | None, include_deleted: bool | str, *, scan: bool = False
                      ) -> list[Any]:
    """WHERE terms for the runs of some experiments. ``scan``: written so that SQLite reads the
    table in order (``experiment_id + 0``) instead of walking an index and looking rows up,
    which is several times faster when most runs are selected."""
    from modelyard.core.store import models as m

    conds: list[Any] = []
    if experiment_ids is not None:
        col = m.Run.experiment_id + 0 if scan else m.Run.experiment_id
        conds.append(col.in_(experiment_ids))
    if include_deleted == "only":
        conds.append(m.Run.deleted_at.is_not(None))
    elif not include_deleted:
        conds.append(m.Run.deleted_at.is_(None))
    return conds


def _matching_pks(store: Store, node: Node, query: _Query) -> np.ndarray:
    import numpy as np
    from sqlalchemy import select

    from modelyard.core.store import models as m

    with store.engine.connect() as conn:
        prepare_connection(conn)
        conds = _scope_conditions(query.experiment_ids, query.include_deleted)
        rows = conn.execute(select(m.Run.id).where(*conds, to_sql(node, conn.dialect.name))).scalars().all()
    return np.asarray(rows, dtype=np.int64)


def _distinct_keys(conn: Any, table: Any) -> list[str]:
    """Distinct keys of params/latest_metrics/tags, from their (key, value) index."""
    from sqlalchemy import select, text

    if conn.dialect.name == "sqlite":
        name = table.__tablename__
        sql = (f"WITH RECURSIVE k(key) AS (SELECT MIN(key) FROM {name} UNION ALL "
               f"SELECT (SELECT MIN(key) FROM {name} WHERE key > k.key) FROM k WHERE k.key IS NOT NULL) "
               f"SELECT key FROM k WHERE key IS NOT NULL")
        return [r[0] for r in conn.execute(text(sql))]
    return sorted(conn.execute(select(table.key).distinct()).scalars())


def _counts(conn: Any, conds: list[Any], *, scope_with: list[Any] | None = None) -> tuple[int, Any]:
    """(runs in the store, runs matching ``conds``).

    With ``scope_with`` (the same conditions, written for a scan) and more than
    ``CACHE_MIN_RUNS`` runs matching, the second item is ``(count, their ids ascending)``.
    """
    import numpy as np
    from sqlalchemy import func, select

    from modelyard.core.store import models as m

    total = conn.execute(select(func.count()).select_from(m.Run)).scalar() or 0
    if scope_with is not None and total > CACHE_MIN_RUNS:
        count, text = conn.execute(select(func.count(), func.group_concat(m.Run.id)).where(*scope_with)).one()
        count = count or 0
        if count > CACHE_MIN_RUNS:
            return total, (count, np.sort(_ints(text, count)))
        return total, count
    if not conds:
        return total, total
    return total, conn.execute(select(func.count()).select_from(m.Run).where(*conds)).scalar() or 0


def _scoped_keys(conn: Any, table: Any, scope: Any, *, mostly: bool) -> list[str]:
    """Keys of ``table`` used by the runs ``scope`` selects (a select of run ids)."""
    from sqlalchemy import exists, literal, select, union_all

    if mostly:
        # most runs are in scope: for each key (from the key index), look at its rows until one
        # belongs to the scope; one statement, so the scope's id list is built once
        keys = _distinct_keys(conn, table)
        if not keys:
            return []
        kv = union_all(*(select(literal(k).label("k")) for k in keys)).subquery("kv")
        stmt = select(kv.c.k).where(exists().where(table.key == kv.c.k, (table.run_id + 0).in_(scope)))
        return sorted(conn.execute(stmt).scalars())
    # few runs: walk them through the (run_id, key) primary key
    return sorted(conn.execute(select(table.key).distinct().where(table.run_id.in_(scope))).scalars())


def available_columns(store: Store, experiment_ids: Any = None, *, include_deleted: bool = False
                      ) -> dict[str, list[str]]:
    """The param, metric and tag keys used by the runs of these experiments (None: all).

    ``{"params": [...], "metrics": [...], "tags": [...]}``, each sorted; milliseconds for
    100,000 runs (keys are read from the (key, value) indexes).
    """
    from sqlalchemy import select

    from modelyard.core.store import models as m

    with store.session() as s:
        ids = _resolve_experiments(s, experiment_ids)
    with store.engine.connect() as conn:
        conds = _scope_conditions(ids, include_deleted)
        total, inside = _counts(conn, conds)
        out: dict[str, list[str]] = {}
        for kind, table in (("params", m.Param), ("metrics", m.LatestMetric), ("tags", m.Tag)):
            if inside == total:
                out[kind] = _distinct_keys(conn, table)
            elif inside == 0:
                out[kind] = []
            else:
                mostly = inside * 20 >= total
                scope = select(m.Run.id).where(*_scope_conditions(ids, include_deleted, scan=mostly))
                out[kind] = _scoped_keys(conn, table, scope, mostly=mostly)
    return out


def query_runs(store: Store, experiment_ids: Any = None, filter: str | Node | None = None,
               columns: Sequence[str] | None = None, order_by: str | Sequence[str] | None = None,
               limit: int | None = None, *, include_deleted: bool | str = False) -> RunsTable:
    """The runs of some experiments (ids or names; None: all) as a :class:`RunsTable`.

    ``filter`` is a filter expression (evaluated in SQL); ``columns`` limits the param, metric
    and tag columns loaded (``["metrics.f1", "params.model"]``; None: every key in use);
    ``order_by`` like ``["metrics.f1 DESC"]`` (default: newest first); ``limit`` keeps the first
    N runs in that order (chosen in SQL). Without a limit, everything in scope is read with a
    few sequential scans and sorted in memory. ``include_deleted``: also runs in the trash
    (``"only"``: just those).
    """
    node = parse_filter(filter) if isinstance(filter, str) or filter is None else filter
    with store.session() as s:
        ids = _resolve_experiments(s, experiment_ids)
    q = _Query(ids, include_deleted, node, _wanted_columns(columns), parse_order_by(order_by),
               None if limit is None else int(limit))
    return _execute(store, q)


def _execute(store: Store, q: _Query) -> RunsTable:
    import numpy as np
    from sqlalchemy import select

    from modelyard.core.store import models as m
    from modelyard.core.store.models import utcnow

    started = utcnow()
    with store.engine.connect() as conn:
        prepare_connection(conn)
        dialect = conn.dialect.name
        conds = q.conditions(dialect, scan=False)
        ordered_pks: np.ndarray | None = None
        if q.limit is not None:
            stmt = order_sql(q.order, dialect, select(m.Run.id).where(*conds)).limit(q.limit)
            ordered_pks = np.asarray(conn.execute(stmt).scalars().all(), dtype=np.int64)
        loader = _Loader(store, conn, conds, q.conditions(dialect, scan=True), ordered_pks, cache=True)
        frame, pks, raw = loader.load(q.wanted)
    if loader.to_save:  # after the read transaction: blocks it built for the next full read
        _save_blocks(store, loader.to_save)
    table = RunsTable(frame, pks, complete=q.wanted is None, store=store, query=q, loaded_at=started, raw=raw)
    if ordered_pks is not None:
        rank = {int(p): i for i, p in enumerate(ordered_pks)}
        idx = np.argsort(np.fromiter((rank[int(p)] for p in pks), dtype=np.int64, count=len(pks)), kind="stable")
        return table._take(idx)
    return table._take(sort_keys(frame, q.order, table._numeric))


def _wanted_columns(columns: Sequence[str] | None) -> dict[str, list[str]] | None:
    if columns is None:
        return None
    out: dict[str, list[str]] = {"param": [], "metric": [], "tag": []}
    for c in columns:
        fld = parse_field(c)
        if fld.kind != "attr":
            out[fld.kind].append(fld.key)
    return out


_SEP = "\x1f"   # between text values in group_concat
_NULL = "\x1e"  # stands for NULL in group_concat of nullable text
_SMALL = 5000   # up to this many selected runs, fetch their rows by id instead of scanning
# Above this many selected runs, a full read assembles the table from the block cache
# (models.RunsTableCache); below it, reading the rows directly is as fast.
CACHE_MIN_RUNS = 5000
CACHE_SAVE_BUSY_MS = 250  # a read stores the blocks it built only if the write lock is free this soon
_RUN_TEXT = ("uuid", "name", "status", "user", "source_type", "source", "start", "end")


class _Loader:
    """Reads run rows and pivots params / latest metrics / tags into columns.

    On SQLite, for large selections, each table is read with one sequential scan whose values
    come back as a few long ``group_concat`` strings (split in C) instead of one Python tuple per
    stored value; run ids and key codes travel packed in one integer. Rows of runs that appeared
    between the reads are dropped, so a concurrent writer never misaligns the columns.
    """

    def __init__(self, store: Store, conn: Any, conds: list[Any], scan_conds: list[Any],
                 pks: np.ndarray | None, *, cache: bool = False) -> None:
        self.store = store
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.pks = pks  # explicit selection (after ORDER BY/LIMIT, or a refresh), else everything in scope
        self.small = pks is not None and len(pks) <= _SMALL
        self.lo = self.hi = 0  # the selected runs' id range, once read
        self.to_save: list[tuple[int, int | None, bytes]] = []  # cache blocks built by this read
        self.cache_hits = self.cache_misses = 0
        self.scope: np.ndarray | None = None  # with the block cache: the selected run ids, ascending
        if pks is not None:
            self.everything, self.mostly = False, not self.small
            self.conds = self.scan_conds = conds
        else:
            total, inside = _counts(conn, conds, scope_with=scan_conds if cache and self.sqlite else None)
            if isinstance(inside, tuple):  # (count, ids): many runs in scope, worth the block cache
                inside, self.scope = inside
            self.everything = inside == total
            self.mostly = inside * 20 >= total  # then scanning whole tables beats index lookups
            self.conds = conds
            self.scan_conds = scan_conds if self.mostly else conds

    def load(self, wanted: dict[str, list[str]] | None) -> tuple[pd.DataFrame, np.ndarray, _Raw]:
        """(frame, pks, raw): the frame, its runs' ids in row order, and the columns it was built
        from (what :meth:`RunsTable.refresh` extends instead of concatenating frames)."""
        raw = None
        if self.scope is not None:
            raw = self._read_cached(wanted)
        if raw is None:
            raw = self.read(wanted)
        frame, pks = self._frame(*raw)
        return frame, pks, raw

    def read(self, wanted: dict[str, list[str]] | None
             ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """The selected runs' attributes, ascending by ``pk``, and ``{kind: {key: values}}``
        aligned with them (kinds ``metric``, ``param``, ``tag``)."""
        import numpy as np

        from modelyard.core.store import models as m

        tables = {"metric": m.LatestMetric, "param": m.Param, "tag": m.Tag}
        d = self._select(self._runs_data())
        pks = d["pk"]
        n = len(pks)
        if n:
            self.lo, self.hi = int(pks[0]), int(pks[-1])
        kinds: dict[str, dict[str, np.ndarray]] = {}
        for kind, table in tables.items():
            kinds[kind] = cols = {}
            prune = wanted is None and not self.everything and not self.small and self.mostly
            if wanted is not None:
                keys = list(dict.fromkeys(wanted[kind]))
            elif prune:
                keys = _distinct_keys(self.conn, table)  # every key; those the selection lacks go below
            else:
                keys = self._keys(table)
            if not keys or not n:
                continue
            data = self._pivot_data(table, keys, numeric=kind == "metric")
            pivot = self._pivot(data, keys, pks, numeric=kind == "metric")
            for k in keys:
                col = pivot[k]
                if prune and (np.isnan(col).all() if kind == "metric" else not any(v is not None for v in col)):
                    continue
                cols[k] = col
        return d, kinds

    def _frame(self, d: dict[str, np.ndarray], kinds: dict[str, dict[str, np.ndarray]]
               ) -> tuple[pd.DataFrame, np.ndarray]:
        import numpy as np
        import pandas as pd

        cols: dict[str, Any] = self._assemble(d)
        pks = cols.pop("_pk")
        for kind in ("metric", "param", "tag"):
            for k, col in kinds.get(kind, {}).items():
                cols[f"{kind}s.{k}"] = col
        for c, v in cols.items():  # keep text as Python objects (None when absent), not pandas' str dtype
            if c.startswith(("params.", "tags.")) or c in _TEXT_COLUMNS:
                cols[c] = pd.Series(np.asarray(v, dtype=object), dtype=object, copy=False)
        return pd.DataFrame(cols, copy=False), pks

    # -- the block cache (SQLite): columnar snapshots of 4,096 runs each, see models.RunsTableCache
    def _read_cached(self, wanted: dict[str, list[str]] | None
                     ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]] | None:
        """What :meth:`read` returns, assembled from cached blocks plus fresh reads of the blocks
        whose snapshot is missing or stale. None: use :meth:`read` (nothing is left half-done)."""
        import numpy as np
        import pandas as pd
        from sqlalchemy import or_, select

        from modelyard.core.store import models as m

        R, C = m.Run, m.RunsTableCache
        scope = self.scope
        if scope is None or not len(scope):
            return None
        bits = m.RUNS_TABLE_CACHE_BLOCK_BITS
        needed = np.unique(scope >> bits).tolist()
        state = {b: (g, data) for b, g, data in self.conn.execute(
            select(C.block, C.generation, C.data).where(C.block.in_(needed)))}
        parts: dict[int, tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]] = {}
        dirty: list[int] = []
        for b in needed:
            data = state.get(b, (None, None))[1]
            part = _decode_block(data, b) if data is not None else None
            if part is None:
                dirty.append(b)
            else:
                parts[b] = part
        self.cache_hits, self.cache_misses = len(parts), len(dirty)
        if dirty:
            ranges: list[list[int]] = []
            for b in dirty:
                if ranges and ranges[-1][1] == b - 1:
                    ranges[-1][1] = b
                else:
                    ranges.append([b, b])
            cond = or_(*(R.id.between(lo << bits, ((hi + 1) << bits) - 1) for lo, hi in ranges))
            fresh_d, fresh_kinds = _Loader(self.store, self.conn, [cond], [cond], None).read(None)
            bounds = np.searchsorted(fresh_d["pk"], [b << bits for b in dirty] + [(dirty[-1] + 1) << bits])
            for i, b in enumerate(dirty):
                sl = slice(int(bounds[i]), int(bounds[i + 1]))
                part = ({f: v[sl] for f, v in fresh_d.items()},
                        {kind: {k: v[sl] for k, v in cols.items()} for kind, cols in fresh_kinds.items()})
                parts[b] = part
                if not np.any(part[0]["status"] == "running"):  # a running run changes within seconds
                    blob = _encode_block(part, b)
                    if blob is not None:
                        self.to_save.append((b, state[b][0] if b in state else None, blob))
        d, kinds = _concat_parts([parts[b] for b in needed])
        pk = d["pk"]
        pos = np.minimum(np.searchsorted(scope, pk), len(scope) - 1)
        keep = scope[pos] == pk
        if int(keep.sum()) != len(scope):  # the blocks lack a run the snapshot has: never trust them then
            self.to_save.clear()
            return None
        dropped = not keep.all()
        if dropped:
            d = {f: v[keep] for f, v in d.items()}
            kinds = {kind: {k: v[keep] for k, v in cols.items()} for kind, cols in kinds.items()}
        out: dict[str, dict[str, np.ndarray]] = {}
        n = len(d["pk"])
        for kind, cols in kinds.items():
            numeric = kind == "metric"
            if wanted is not None:
                out[kind] = {k: cols[k] if k in cols else (np.full(n, np.nan) if numeric else
                                                           np.full(n, None, dtype=object))
                             for k in dict.fromkeys(wanted[kind])}
            else:  # the keys the selected runs use (every key of a block has a value in it)
                out[kind] = {k: cols[k] for k in sorted(cols) if not dropped or not pd.isna(cols[k]).all()}
        return d, out

    def _select(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        """``_runs_data``'s columns as arrays, limited to the explicit ``pks`` and ascending by pk."""
        import numpy as np

        d = {f: np.asarray(v) for f, v in d.items()}
        for f in ("pk", "experiment_id", "parent"):
            d[f] = d[f].astype(np.int64, copy=False)
        for f in ("start", "end"):
            d[f] = d[f].astype("datetime64[us]", copy=False) if len(d[f]) else np.zeros(0, "datetime64[us]")
        for f in _RUN_TEXT[:6]:
            d[f] = d[f].astype(object, copy=False)
        pk = d["pk"]
        if self.pks is not None and not self.small and len(pk):
            keep = np.isin(pk, self.pks)
            if not keep.all():
                d = {f: v[keep] for f, v in d.items()}
                pk = d["pk"]
        if len(pk) > 1 and not np.all(pk[1:] > pk[:-1]):
            order = np.argsort(pk, kind="stable")
            d = {f: v[order] for f, v in d.items()}
        return d

    def _scope(self) -> Any:
        from sqlalchemy import select

        from modelyard.core.store import models as m

        return select(m.Run.id).where(*self.scan_conds)

    def _where_pk(self, col: Any) -> list[Any]:
        if self.small:
            return [col.in_(self.pks.tolist())]
        if self.everything:
            return []
        if self.mostly:
            # a sequential scan of the selection's id range; rows of other runs in the range are
            # dropped in numpy (cheaper than testing each row against an id list in SQL)
            return [(col + 0).between(self.lo, self.hi)]
        return [col.in_(self._scope())]  # few runs: walk them through the primary key

    def _keys(self, table: Any) -> list[str]:
        from sqlalchemy import select

        if self.everything:
            return _distinct_keys(self.conn, table)
        if self.small:
            if not len(self.pks):
                return []
            return sorted(self.conn.execute(select(table.key).distinct().where(
                table.run_id.in_(self.pks.tolist()))).scalars())
        return _scoped_keys(self.conn, table, self._scope(), mostly=False)

    # -- runs
    def _runs_data(self) -> dict[str, Any]:
        import numpy as np
        from sqlalchemy import func, select

        from modelyard.core.store import models as m

        R = m.Run
        if self.small:
            conds = [R.id.in_(self.pks.tolist())]
        elif self.pks is not None:  # many explicit ids: their range (other runs dropped in _assemble)
            conds = [R.id.between(int(self.pks.min()), int(self.pks.max()))] if len(self.pks) else [R.id < 0]
        else:
            conds = list(self.scan_conds)
        if self.sqlite and not self.small:
            def txt(col: Any) -> Any:
                return func.coalesce(col, _NULL)

            joined: Any = None
            for col in (R.uuid, txt(R.name), R.status, txt(R.user), txt(R.source_type), txt(R.source_name),
                        R.start_time, txt(R.end_time)):  # one aggregate of joined text: cheaper than eight
                joined = col if joined is None else joined.op("||")(_SEP).op("||")(col)
            row = self.conn.execute(select(
                func.count(), func.group_concat(R.id), func.group_concat(R.experiment_id),
                func.group_concat(func.coalesce(R.parent_run_id, 0)),
                func.group_concat(joined, _SEP)).where(*conds)).one()
            count = row[0] or 0
            if count == 0:
                return {f: [] for f in ("pk", "experiment_id", "parent", *_RUN_TEXT)}
            texts = row[4].split(_SEP)
            if len(texts) == count * len(_RUN_TEXT):  # else some text holds a separator
                width = len(_RUN_TEXT)
                out: dict[str, Any] = {f: _ints(row[i], count) for f, i in (("pk", 1), ("experiment_id", 2),
                                                                            ("parent", 3))}
                for j, f in enumerate(_RUN_TEXT):
                    arr = np.array(texts[j::width], dtype=object)
                    if f in ("name", "user", "source_type", "source"):
                        arr[arr == _NULL] = None
                    out[f] = _shared(arr) if f in ("status", "user", "source_type", "source") else arr
                try:
                    out["start"] = out["start"].astype("datetime64[us]")
                    end = out["end"]
                    end[end == _NULL] = "NaT"
                    out["end"] = end.astype("datetime64[us]")
                    return out
                except ValueError:  # a time stored in another format: read rows below
                    pass
        rows = self.conn.execute(select(R.id, R.uuid, R.experiment_id, R.parent_run_id, R.name, R.status,
                                        R.start_time, R.end_time, R.user, R.source_type, R.source_name)
                                 .where(*conds)).all()
        cols = list(zip(*rows)) if rows else [[] for _ in range(11)]

        def times(values: Sequence[Any]) -> np.ndarray:
            return np.array([np.datetime64("NaT") if v is None else np.datetime64(v.replace(tzinfo=None), "us")
                             for v in values], dtype="datetime64[us]")

        return {"pk": np.array(cols[0], dtype=np.int64), "uuid": np.array(cols[1], dtype=object),
                "experiment_id": np.array(cols[2], dtype=np.int64),
                "parent": np.array([0 if v is None else v for v in cols[3]], dtype=np.int64),
                "name": np.array(cols[4], dtype=object), "status": np.array(cols[5], dtype=object),
                "start": times(cols[6]), "end": times(cols[7]), "user": np.array(cols[8], dtype=object),
                "source_type": np.array(cols[9], dtype=object), "source": np.array(cols[10], dtype=object)}

    def _assemble(self, d: dict[str, Any]) -> dict[str, Any]:
        import numpy as np
        import pandas as pd
        from sqlalchemy import select

        from modelyard.core.store import models as m

        pk = np.asarray(d["pk"], dtype=np.int64)
        n = len(pk)
        uuids = np.asarray(d["uuid"], dtype=object)
        parent = np.asarray(d["parent"], dtype=np.int64)
        exp_names = dict(self.conn.execute(select(m.Experiment.id, m.Experiment.name)).all())
        parent_ids = np.full(n, None, dtype=object)
        has_parent = np.flatnonzero(parent)
        if len(has_parent):
            by_pk = dict(zip(pk.tolist(), uuids.tolist()))
            missing = [int(p) for p in np.unique(parent[has_parent]) if int(p) not in by_pk]
            if missing:
                by_pk.update(self.conn.execute(select(m.Run.id, m.Run.uuid).where(m.Run.id.in_(missing))).all())
            for i in has_parent:
                parent_ids[i] = by_pk.get(int(parent[i]))
        start = np.asarray(d["start"], dtype="datetime64[us]") if n else np.zeros(0, "datetime64[us]")
        end = np.asarray(d["end"], dtype="datetime64[us]") if n else np.zeros(0, "datetime64[us]")
        now = np.datetime64(dt.datetime.now(dt.UTC).replace(tzinfo=None), "us")
        duration = (np.where(np.isnat(end), now, end) - start) / np.timedelta64(1, "s")
        codes, cats = _codes(np.asarray(d["experiment_id"], dtype=np.int64), exp_names)
        return {
            "_pk": pk,
            "run_id": uuids,
            "experiment": pd.Categorical.from_codes(codes, categories=cats) if n else pd.Categorical([]),
            "name": np.asarray(d["name"], dtype=object),
            "status": _categorical(np.asarray(d["status"], dtype=object)),
            "start_time": pd.DatetimeIndex(start).tz_localize("UTC"),
            "end_time": pd.DatetimeIndex(end).tz_localize("UTC"),
            "duration": duration.astype(float),
            "user": np.asarray(d["user"], dtype=object),
            "source_type": np.asarray(d["source_type"], dtype=object),
            "source": np.asarray(d["source"], dtype=object),
            "parent_run_id": parent_ids,
        }

    # -- pivots
    def _pivot_data(self, table: Any, keys: list[str], numeric: bool) -> tuple[np.ndarray, np.ndarray]:
        """(run_id * (K+1) + key code, value) of every row in scope; code K: a key not asked for."""
        import numpy as np
        from sqlalchemy import case, func, literal_column, select

        conn = self.conn
        K1 = len(keys) + 1
        # No "key IN (...)" condition for scans: it would make SQLite walk the (key, value) index
        # and look every row up; one sequential scan of the table is several times faster.
        code = case({k: i for i, k in enumerate(keys)}, value=table.key, else_=len(keys))
        where = self._where_pk(table.run_id)
        if self.small:
            where.append(table.key.in_(keys))
        packed_expr = table.run_id * K1 + code
        if self.sqlite and not self.small:
            if numeric:
                # the packed ids as one string, the floats as one column (exact, and cheaper
                # than pairs); both in rowid order, in the same read transaction
                rowid = literal_column(f"{table.__tablename__}.rowid")
                inner = select(packed_expr.label("p")).where(*where).order_by(rowid).subquery()
                count, text = conn.execute(select(func.count(), func.group_concat(inner.c.p))).one()
                result = conn.execute(select(table.value).where(*where).order_by(rowid))
                rows = result.cursor.fetchall()
                result.close()
                count = count or 0
                if count == len(rows):
                    import itertools

                    values = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=count)
                    return (_ints(text, count) if count else np.zeros(0, np.int64)), values
            else:
                count, text, vals = conn.execute(select(func.count(), func.group_concat(packed_expr),
                                                        func.group_concat(table.value, _SEP)).where(*where)).one()
                count = count or 0
                if count == 0:
                    return np.zeros(0, np.int64), np.zeros(0, dtype=object)
                parts = vals.split(_SEP)
                if len(parts) == count:  # else a value holds the separator: read rows instead
                    return _ints(text, count), _shared(np.array(parts, dtype=object))
        result = conn.execute(select(packed_expr, table.value).where(*where))
        rows = result.cursor.fetchall() if self.sqlite else result.all()  # nothing to convert per row
        result.close()
        if numeric:
            import itertools

            flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=2 * len(rows))
            return flat[0::2].astype(np.int64), flat[1::2].copy()
        return (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                _shared(np.array([r[1] for r in rows], dtype=object)))

    @staticmethod
    def _pivot(data: tuple[np.ndarray, np.ndarray], keys: list[str], sorted_pks: np.ndarray, *, numeric: bool
               ) -> dict[str, Any]:
        import numpy as np

        packed, values = data
        n, K = len(sorted_pks), len(keys)
        K1 = K + 1
        run_ids = packed // K1
        codes = packed - run_ids * K1
        pos = np.searchsorted(sorted_pks, run_ids)
        if n:
            ok = (codes < K) & (pos < n) & (sorted_pks[np.minimum(pos, n - 1)] == run_ids)
        else:
            ok = np.zeros(len(run_ids), dtype=bool)
        grid = np.full((n, K), np.nan) if numeric else np.full((n, K), None, dtype=object)
        grid[pos[ok], codes[ok]] = values[ok]
        return {k: grid[:, i] for i, k in enumerate(keys)}


def _shared(values: np.ndarray) -> np.ndarray:
    """The same texts with one Python object per distinct value: params and tags repeat a few
    values over many runs, and a million separate strings cost memory and time to free."""
    import numpy as np
    import pandas as pd

    if len(values) < 1000:
        return values
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = uniques
    table[-1] = None  # code -1
    return table[codes]


def _ints(text: str, count: int) -> np.ndarray:
    import numpy as np

    if count >= 1000:
        return np.fromstring(text, dtype=np.int64, sep=",")  # C parser, no Python strings
    return np.array(text.split(","), dtype=np.int64)


def _categorical(values: np.ndarray) -> pd.Categorical:
    """``pd.Categorical(values)`` for an object array of text, without pandas inferring a string
    type for every value first (only for the few distinct ones)."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(uniques)))


def _codes(values: np.ndarray, names: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    import numpy as np

    uniq, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [names.get(int(u), str(int(u))) for u in uniq]


# =========================================================================== the block cache

_BLOCK_MAGIC = b"MYRTC1\n"
_BLOCK_INTS = ("pk", "experiment_id", "parent")
_BLOCK_TIMES = ("start", "end")
_BLOCK_TEXT = ("uuid", "name", "status", "user", "source_type", "source")


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """int32 codes (-1: None) and the distinct texts; None when a value is not text."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    uniq = list(uniques)
    if not all(type(u) is str for u in uniq):
        return None
    return codes.astype(np.int32), uniq


def _encode_block(part: tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]], block: int
                  ) -> bytes | None:
    """One block's runs as bytes: a JSON header (texts, keys, array layout) and raw little-endian
    arrays. No pickle: a store may come from someone else. None when it cannot be encoded."""
    import json

    import numpy as np

    d, kinds = part
    n = len(d["pk"])
    arrays: list[tuple[str, np.ndarray]] = []
    texts: dict[str, list[str]] = {}
    for f in _BLOCK_INTS:
        arrays.append((f, d[f].astype("<i8")))
    for f in _BLOCK_TIMES:
        arrays.append((f, d[f].astype("datetime64[us]").view(np.int64).astype("<i8")))
    for f in _BLOCK_TEXT:
        fact = _factorize(d[f])
        if fact is None:
            return None
        arrays.append((f, fact[0]))
        texts[f] = fact[1]
    keys = {kind: list(cols) for kind, cols in kinds.items()}
    metric_cols = [kinds.get("metric", {})[k] for k in keys.get("metric", [])]
    arrays.append(("metric", np.column_stack(metric_cols).astype("<f8") if metric_cols else np.zeros((n, 0), "<f8")))
    for kind in ("param", "tag"):
        cols = [kinds.get(kind, {})[k] for k in keys.get(kind, [])]
        fact = _factorize(np.concatenate(cols)) if cols else (np.zeros(0, np.int32), [])
        if fact is None:
            return None
        arrays.append((kind, fact[0].reshape(len(cols), n).T if cols else np.zeros((n, 0), np.int32)))
        texts[kind] = fact[1]
    layout, offset = [], 0
    for name, arr in arrays:
        arr = np.ascontiguousarray(arr)
        layout.append([name, arr.dtype.str, list(arr.shape), offset])
        offset += arr.nbytes
    header = json.dumps({"block": block, "n": n, "keys": keys, "texts": texts, "arrays": layout}).encode()
    body = b"".join(np.ascontiguousarray(arr).tobytes() for _, arr in arrays)
    return _BLOCK_MAGIC + len(header).to_bytes(4, "little") + header + body


def _decode_block(blob: bytes, block: int) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]] | None:
    """The inverse of :func:`_encode_block`; None for anything unexpected (it is then rebuilt)."""
    import json

    import numpy as np

    try:
        blob = bytes(blob)
        if not blob.startswith(_BLOCK_MAGIC):
            return None
        at = len(_BLOCK_MAGIC)
        size = int.from_bytes(blob[at:at + 4], "little")
        header = json.loads(blob[at + 4:at + 4 + size])
        if header["block"] != block:
            return None
        base, n = at + 4 + size, int(header["n"])
        arrays: dict[str, np.ndarray] = {}
        for name, dtype, shape, offset in header["arrays"]:
            dt_ = np.dtype(dtype)
            count = int(np.prod(shape)) if shape else 1
            if dt_.hasobject or base + offset + count * dt_.itemsize > len(blob) or shape[0] != n:
                return None
            arrays[name] = np.frombuffer(blob, dt_, count, base + offset).reshape(shape)
        texts, keys = header["texts"], header["keys"]

        def lookup_table(uniques: list[str], codes: np.ndarray) -> np.ndarray:
            table = np.empty(len(uniques) + 1, dtype=object)
            table[:-1] = uniques
            table[-1] = None  # code -1
            if codes.size and (int(codes.max()) >= len(uniques) or int(codes.min()) < -1):
                raise ValueError("code out of range")
            return table

        d: dict[str, np.ndarray] = {f: arrays[f].astype(np.int64) for f in _BLOCK_INTS}
        for f in _BLOCK_TIMES:
            d[f] = arrays[f].astype(np.int64).view("datetime64[us]")
        for f in _BLOCK_TEXT:
            d[f] = lookup_table(texts[f], arrays[f])[arrays[f]]
        kinds: dict[str, dict[str, np.ndarray]] = {
            "metric": {k: arrays["metric"][:, j].astype(np.float64) for j, k in enumerate(keys["metric"])}}
        for kind in ("param", "tag"):
            codes = arrays[kind].T.copy()  # one contiguous row of codes per key
            table = lookup_table(texts[kind], codes)
            kinds[kind] = {k: table[codes[j]] for j, k in enumerate(keys[kind])}
        pk = d["pk"]
        if len(pk) and (np.any((pk >> _block_bits()) != block) or np.any(pk[1:] <= pk[:-1])):
            return None
        return d, kinds
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _block_bits() -> int:
    from modelyard.core.store import models as m

    return m.RUNS_TABLE_CACHE_BLOCK_BITS


def _concat_parts(parts: list[tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]]
                  ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Blocks in pk order as one set of columns (a key a block lacks: NaN / None there)."""
    import numpy as np

    sizes = [len(p[0]["pk"]) for p in parts]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    d = {f: np.concatenate([p[0][f] for p in parts]) for f in parts[0][0]}
    kinds: dict[str, dict[str, np.ndarray]] = {}
    for kind in ("metric", "param", "tag"):
        cols: dict[str, np.ndarray] = {}
        for i, (_d, pk_kinds) in enumerate(parts):
            for k, v in pk_kinds.get(kind, {}).items():
                col = cols.get(k)
                if col is None:
                    col = cols[k] = np.full(n, np.nan) if kind == "metric" else np.full(n, None, dtype=object)
                col[starts[i]:starts[i + 1]] = v
        kinds[kind] = cols
    return d, kinds


def _save_blocks(store: Store, blocks: list[tuple[int, int | None, bytes]]) -> int:
    """Store blocks a read built, each only if no write touched it since that read's snapshot
    (its generation is unchanged). Best effort: skipped when the write lock is not free within
    ``CACHE_SAVE_BUSY_MS`` or the database is read-only. Returns how many were stored."""
    from sqlalchemy import and_, update
    from sqlalchemy.dialects.sqlite import insert
    from sqlalchemy.exc import DBAPIError

    from modelyard.core.store import models as m

    if not blocks or not store.is_sqlite or store.in_write():
        return 0
    table = m.RunsTableCache.__table__
    saved = 0
    try:
        with store.engine.execution_options(modelyard_write=True).connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute(f"PRAGMA busy_timeout = {int(CACHE_SAVE_BUSY_MS)}")
            try:
                with conn.begin():
                    for block, generation, blob in blocks:
                        if generation is None:  # no write ever touched the block (a store from before 0003)
                            stmt = insert(table).values(block=block, generation=0, data=blob).on_conflict_do_nothing()
                        else:
                            # an unchanged generation: no write since the snapshot this block was read in
                            stmt = update(table).where(and_(table.c.block == block, table.c.generation == generation)
                                                       ).values(data=blob)
                        saved += conn.execute(stmt).rowcount or 0
            finally:
                from modelyard.core.store import BUSY_TIMEOUT_S

                raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    except DBAPIError:
        return 0
    return saved
