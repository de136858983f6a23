"""The loader's API: :func:`query_runs` and :func:`available_columns` read the store,
:func:`refresh_runs` brings a :class:`~.table.RunsTable` up to date. All of the runs table's SQL
is here and in :mod:`.loader` / :mod:`.cache`; a RunsTable itself never reads the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.core.experiments.runquery.cache import _save_blocks
from modelyard.core.experiments.runquery.frames import sort_keys
from modelyard.core.experiments.runquery.loader import (
    _counts,
    _distinct_keys,
    _extend_raw,
    _Loader,
    _Raw,
    _scoped_keys,
)
from modelyard.core.experiments.runquery.parse import (
    Field,
    Node,
    parse_field,
    parse_filter,
    parse_order_by,
)
from modelyard.core.experiments.runquery.sql import (
    order_sql,
    prepare_connection,
    to_sql,
)
from modelyard.core.experiments.runquery.table import RunsTable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.core.store import Store

# =========================================================================== loading: the query


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
    and tag columns of the table's frame (``["metrics.f1", "params.model"]``; None: every key in
    use; the others are loaded too, aside, so that :meth:`RunsTable.filter` answers on them);
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
        full, pks, raw = loader.load(None)  # every key: the table filters on any of them in memory
    if loader.to_save:  # after the read transaction: blocks it built for the next full read
        _save_blocks(store, loader.to_save)
    table = _new_table(full, pks, raw, store, q, started)
    if ordered_pks is not None:
        rank = {int(p): i for i, p in enumerate(ordered_pks)}
        idx = np.argsort(np.fromiter((rank[int(p)] for p in pks), dtype=np.int64, count=len(pks)), kind="stable")
        return table._take(idx)
    return table._take(sort_keys(table.frame, q.order, table._numeric))


def _new_table(full: pd.DataFrame, pks: np.ndarray, raw: _Raw, store: Store, q: _Query,
               loaded_at: dt.datetime) -> RunsTable:
    """A table over the loaded rows; with ``columns=``, its frame shows those keys only."""
    if q.wanted is None:
        return RunsTable(full, pks, loaded_at=loaded_at, raw=raw, origin=(store, q))
    return RunsTable(_shown(full, q.wanted), pks, complete=False, loaded_at=loaded_at, raw=raw, full=full,
                     origin=(store, q))


def _shown(full: pd.DataFrame, wanted: dict[str, list[str]]) -> pd.DataFrame:
    """The run attributes and the wanted keys' columns of ``full`` (a wanted key no run has: all
    NaN / None), in the order asked; no key columns when there are no runs."""
    import numpy as np
    import pandas as pd

    n = len(full)
    cols: dict[str, Any] = {c: full[c] for c in full.columns if not c.startswith(("metrics.", "params.", "tags."))}
    for kind in ("metric", "param", "tag") if n else ():
        for key in dict.fromkeys(wanted[kind]):
            name = f"{kind}s.{key}"
            if name in full.columns:
                cols[name] = full[name]
            elif kind == "metric":
                cols[name] = np.full(n, np.nan)
            else:
                cols[name] = pd.Series(np.full(n, None, dtype=object), dtype=object, copy=False)
    return pd.DataFrame(cols, copy=False)


REFRESH_OVERLAP = dt.timedelta(seconds=60)


def refresh_runs(table: RunsTable) -> RunsTable:
    """``table``'s query again, re-reading only the runs written since it was loaded (what
    :meth:`RunsTable.refresh` calls; see there). Reads the store: off the main thread."""
    import numpy as np
    from sqlalchemy import func, or_, select

    from modelyard.core.store import models as m

    if table._origin is None:
        raise ValueError("this RunsTable was not loaded from a store")
    store, q = table._origin
    if q.limit is not None or table.loaded_at is None or table._raw is None:
        return _execute(store, q)
    started = m.utcnow()
    since = table.loaded_at - REFRESH_OVERLAP
    base_pks = table._base_pks
    with store.engine.connect() as conn:
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
            return _execute(store, q)  # runs were purged (or we missed something): reload
        if not len(touched):  # nothing written since: same rows, in the query's order
            return table._rows(sort_keys(table._base, q.order, table._numeric), loaded_at=started)
        # extend the columns the frame was built from, and build it again
        loader = _Loader(store, conn, conds, conds, current)
        new = loader.read(None) if len(current) else None
        raw = _extend_raw(table._raw, keep, new)
        full, pks = loader._frame(*raw)
    fresh = _new_table(full, pks, raw, store, q, started)
    return fresh._take(sort_keys(fresh.frame, q.order, fresh._numeric))


def _wanted_columns(columns: Sequence[str] | None) -> dict[str, list[str]] | None:
    if columns is None:
        return None
    out: dict[str, list[str]] = {"param": [], "metric": [], "tag": []}
    for c in columns:
        fld = parse_field(c)
        if fld.kind != "attr":
            out[fld.kind].append(fld.key)
    return out
