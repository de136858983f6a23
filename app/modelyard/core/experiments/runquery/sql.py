"""The filter compiled to SQL: :func:`to_sql` (WHERE) and :func:`order_sql` (ORDER BY) over ``runs``."""

from __future__ import annotations

import re
from typing import Any

from modelyard.core.experiments.runquery.parse import (
    And,
    Compare,
    Field,
    In,
    Like,
    Node,
    Not,
    Or,
)
from modelyard.core.experiments.runquery.tokens import is_fold_series, number_or_none

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
    if fld.kind == "metric" and is_fold_series(fld.key):
        table = _fold_means(fld.key).c  # the mean over the folds, as the runs table shows
    else:
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


def _fold_means(key: str, name: str | None = None) -> Any:
    """(run_id, key, value) with the mean of a fold series (:func:`is_fold_series`) per run: what
    ``latest_metrics`` holds for other metrics, for a filter and an order by."""
    from sqlalchemy import func, select

    from modelyard.core.store import models as m

    M = m.Metric
    return select(M.run_id.label("run_id"), M.key.label("key"), func.avg(M.value).label("value")).where(
        M.key == key).group_by(M.run_id, M.key).subquery(name)


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
        if fld.kind == "metric" and is_fold_series(fld.key):
            means = _fold_means(fld.key, name=f"o{n}")
            select_stmt = select_stmt.outerjoin(means, means.c.run_id == m.Run.id)
            alias = means.c
        else:
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


