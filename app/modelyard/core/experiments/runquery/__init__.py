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

Hence the block cache (more than ``CACHE_MIN_RUNS`` runs selected, SQLite and PostgreSQL): the table is
assembled from columnar snapshots of 4,096 runs each (``runs_table_cache``, see
``models.RunsTableCache``), and only blocks with no snapshot, or one a write has cleared, are
read from the rows; a full read stores the blocks it had to build (those without a running
run). Triggers record any write to one of a block's runs in the writer's transaction (SQLite:
a new generation, the block cleared; PostgreSQL: a mark the block's stored read snapshot must
see, ``models.RunsTableCache``), so a snapshot is never stale. Which runs are selected always comes from ``runs`` itself. With the blocks stored,
100,000 runs load in ~0.1-0.2 s.

A view should show ``query_runs(..., limit=200)`` first (~20-60 ms), load the whole table in a
worker, keep it current with :meth:`RunsTable.refresh` (re-reads only runs written since), and
sort and filter it in memory from the same filter AST (:meth:`RunsTable.sort`,
:meth:`RunsTable.filter`: 10-60 ms for 100,000 runs); :meth:`RunsTable.cell` reads one value
per visible cell without converting columns.

The package, one module per part: :mod:`.tokens` (fields, limits, :class:`FilterError`, the
tokenizer), :mod:`.parse` (the syntax tree and the parser), :mod:`.sql` (the filter and order
as SQL), :mod:`.frames` (the same in memory, over pandas), :mod:`.table` (:class:`RunsTable`,
plain data: it never reads the store), :mod:`.query` (:func:`query_runs`,
:func:`available_columns`, :func:`refresh_runs`), :mod:`.loader` (reading and pivoting rows) and
:mod:`.cache` (the block cache); :mod:`.shape` lays a table out for a view (a search's trials
nested under it, the task's primary metrics first). All SQL is in the last four but :mod:`.table`.
"""

# internals the tests reach, re-exported as they were (a constant is patched in the module that
# reads it: runquery.loader.CACHE_MIN_RUNS, runquery.query.REFRESH_OVERLAP)
from modelyard.core.experiments.runquery.cache import _save_blocks as _save_blocks
from modelyard.core.experiments.runquery.frames import numeric_view, sort_keys, to_mask
from modelyard.core.experiments.runquery.loader import _Loader as _Loader
from modelyard.core.experiments.runquery.parse import (
    And,
    Compare,
    Field,
    In,
    Like,
    Node,
    Not,
    Or,
    parse_field,
    parse_filter,
    parse_order_by,
    referenced_fields,
)
from modelyard.core.experiments.runquery.parse import _Parser as _Parser
from modelyard.core.experiments.runquery.query import _Query as _Query
from modelyard.core.experiments.runquery.query import (
    available_columns,
    query_runs,
    refresh_runs,
)
from modelyard.core.experiments.runquery.shape import Nesting, metric_order, nest
from modelyard.core.experiments.runquery.sql import (
    like_to_glob,
    like_to_regex,
    order_sql,
    prepare_connection,
    to_sql,
)
from modelyard.core.experiments.runquery.table import RunsTable
from modelyard.core.experiments.runquery.tokens import (
    ATTRIBUTES,
    BASE_COLUMNS,
    MAX_FILTER_DEPTH,
    MAX_FILTER_TERMS,
    FilterError,
    fold_values,
    is_fold_series,
    is_number_text,
    number_or_none,
)

__all__ = [
    "ATTRIBUTES", "FilterError", "Field", "Compare", "Like", "In", "And", "Or", "Not", "Node",
    "parse_filter", "parse_order_by", "parse_field", "referenced_fields", "to_sql", "to_mask",
    "is_number_text", "number_or_none", "RunsTable", "query_runs", "available_columns", "BASE_COLUMNS",
    "refresh_runs", "MAX_FILTER_DEPTH", "MAX_FILTER_TERMS", "like_to_glob", "like_to_regex", "order_sql",
    "prepare_connection", "numeric_view", "sort_keys", "is_fold_series", "fold_values",
    "Nesting", "nest", "metric_order",
]
