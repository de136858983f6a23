"""The filter language's syntax tree and parser: :func:`parse_filter`, :func:`parse_field`,
:func:`parse_order_by` (see the package's docstring for the language)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from modelyard.core.experiments.runquery.tokens import (
    _ATTRIBUTE_ALIASES,
    _KEYWORDS,
    _LIMIT_HINT,
    _STATUS_ALIASES,
    ATTRIBUTES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_TERMS,
    FilterError,
    _cut,
    _describe,
    _quoted,
    _Tok,
    _tokenize,
)

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


