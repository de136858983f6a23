"""Reading runs: :class:`_Loader` reads run rows and pivots params, latest metrics and tags
into columns (from the block cache, :mod:`.cache`, when many runs are selected)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelyard.core.experiments.runquery.cache import (
    _concat_parts,
    _decode_block,
    _encode_block,
)
from modelyard.core.experiments.runquery.tokens import is_fold_series

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.core.store import Store

# =========================================================================== loading

_SEP = "\x1f"   # between text values in group_concat
_NULL = "\x1e"  # stands for NULL in group_concat of nullable text
_SMALL = 5000   # up to this many selected runs, fetch their rows by id instead of scanning
# Above this many selected runs, a full read assembles the table from the block cache
# (models.RunsTableCache); below it, reading the rows directly is as fast.
CACHE_MIN_RUNS = 5000
_RUN_TEXT = ("uuid", "name", "status", "user", "source_type", "source", "start", "end")
_TEXT_COLUMNS = ("run_id", "name", "user", "source", "source_type", "parent_run_id")
# what the loader reads per key: metrics (latest value; a fold series' mean), params, tags, and
# the folds of a fold series as text (column ``folds.<key>``, see :func:`is_fold_series`)
KINDS = ("metric", "param", "tag", "fold")
_Raw = tuple[dict[str, Any], dict[str, dict[str, Any]]]  # _Loader.read: run attributes, {kind: {key: values}}


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
    from sqlalchemy import Text, cast, func, select

    from modelyard.core.store import models as m

    total = conn.execute(select(func.count()).select_from(m.Run)).scalar() or 0
    if scope_with is not None and total > CACHE_MIN_RUNS:
        ids = (func.group_concat(m.Run.id) if conn.dialect.name == "sqlite"
               else func.string_agg(cast(m.Run.id, Text), ","))
        count, text = conn.execute(select(func.count(), ids).where(*scope_with)).one()
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
        self.postgresql = conn.dialect.name == "postgresql"  # psycopg: native values, naive UTC datetimes
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
            total, inside = _counts(conn, conds,
                                    scope_with=scan_conds if cache and (self.sqlite or self.postgresql) else None)
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
        series = [k for k in kinds.get("metric", {}) if is_fold_series(k)]
        kinds["fold"] = self._folds(series, pks, kinds["metric"]) if series and n else {}
        return d, kinds

    def _folds(self, keys: list[str], pks: np.ndarray, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Cross-validation metrics logged per fold (:func:`is_fold_series`): replace each one's
        column in ``metrics`` (the latest value: the last fold) by the mean over its steps, and
        return the folds as text per key (``"0.84,0.86,0.83"``, in step order; None elsewhere)."""
        import numpy as np
        from sqlalchemy import select

        from modelyard.core.store import models as m

        M = m.Metric
        where = self._where_pk(M.run_id)
        rows = self.conn.execute(select(M.run_id, M.key, M.value).where(M.key.in_(keys), *where)
                                 .order_by(M.run_id, M.key, M.step, M.timestamp)).all()
        n = len(pks)
        grouped: dict[tuple[int, str], list[float]] = {}
        for run, key, value in rows:
            grouped.setdefault((run, key), []).append(value)
        out = {k: np.full(n, None, dtype=object) for k in keys}
        for (run, key), values in grouped.items():
            i = int(np.searchsorted(pks, run))
            if i >= n or pks[i] != run:
                continue  # a run outside the selection (in the scanned id range)
            metrics[key][i] = float(np.mean(values))
            out[key][i] = ",".join(repr(float(v)) for v in values)
        return out

    def _frame(self, d: dict[str, np.ndarray], kinds: dict[str, dict[str, np.ndarray]]
               ) -> tuple[pd.DataFrame, np.ndarray]:
        import numpy as np
        import pandas as pd

        cols: dict[str, Any] = self._assemble(d)
        pks = cols.pop("_pk")
        for kind in KINDS:
            for k, col in kinds.get(kind, {}).items():
                cols[f"{kind}s.{k}"] = col
        for c, v in cols.items():  # keep text as Python objects (None when absent), not pandas' str dtype
            if c.startswith(("params.", "tags.", "folds.")) or c in _TEXT_COLUMNS:
                cols[c] = pd.Series(np.asarray(v, dtype=object), dtype=object, copy=False)
        return pd.DataFrame(cols, copy=False), pks

    # -- the block cache: columnar snapshots of 4,096 runs each, see models.RunsTableCache
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
        if self.postgresql:
            state = _pg_cache_state(self.conn, needed)
        else:
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
                seen = state["snapshot"][0] if self.postgresql else state[b][0] if b in state else None
                if not np.any(part[0]["status"] == "running"):  # a running run changes within seconds
                    blob = _encode_block(part, b)
                    if blob is not None:  # with what the read saw (PostgreSQL: its snapshot)
                        self.to_save.append((b, seen, blob))
                elif self.postgresql:  # no snapshot, but the marks this read sees can go (cache._PG_SAVE)
                    self.to_save.append((b, seen, None))
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
                want = wanted[kind] if kind != "fold" else [k for k in wanted["metric"] if is_fold_series(k)]
                out[kind] = {k: cols[k] if k in cols else (np.full(n, np.nan) if numeric else
                                                           np.full(n, None, dtype=object))
                             for k in dict.fromkeys(want)}
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
        result = self.conn.execute(select(R.id, R.uuid, R.experiment_id, R.parent_run_id, R.name, R.status,
                                          R.start_time, R.end_time, R.user, R.source_type, R.source_name)
                                   .where(*conds))
        # PostgreSQL: the driver's tuples (a Row and an aware datetime per value cost ~10x the read)
        rows = result.cursor.fetchall() if self.postgresql else result.all()
        result.close()
        cols = list(zip(*rows)) if rows else [[] for _ in range(11)]

        def times(values: Sequence[Any]) -> np.ndarray:
            if self.postgresql:  # naive UTC datetimes or None (NaT)
                return np.array(values, dtype="datetime64[us]")
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
        from sqlalchemy import Text, case, cast, func, literal_column, select

        conn = self.conn
        K1 = len(keys) + 1
        # No "key IN (...)" condition for scans: it would make SQLite walk the (key, value) index
        # and look every row up; one sequential scan of the table is several times faster.
        code = case({k: i for i, k in enumerate(keys)}, value=table.key, else_=len(keys))
        where = self._where_pk(table.run_id)
        if self.small:
            where.append(table.key.in_(keys))
        packed_expr = table.run_id * K1 + code
        if (self.sqlite or (self.postgresql and not numeric)) and not self.small:
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
                if self.sqlite:
                    both = (func.group_concat(packed_expr), func.group_concat(table.value, _SEP))
                else:  # PostgreSQL: the same two strings (both aggregates read the rows in one order)
                    both = (func.string_agg(cast(packed_expr, Text), ","), func.string_agg(table.value, _SEP))
                count, text, vals = conn.execute(select(func.count(), *both).where(*where)).one()
                count = count or 0
                if count == 0:
                    return np.zeros(0, np.int64), np.zeros(0, dtype=object)
                parts = vals.split(_SEP)
                if len(parts) == count:  # else a value holds the separator: read rows instead
                    return _ints(text, count), _shared(np.array(parts, dtype=object))
        result = conn.execute(select(packed_expr, table.value).where(*where))
        rows = result.cursor.fetchall() if self.sqlite or self.postgresql else result.all()  # nothing to convert
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


def _pg_cache_state(conn: Any, blocks: list[int]) -> dict[Any, tuple[Any, Any]]:
    """PostgreSQL: ``{block: (None, data)}`` for the stored blocks still current (no mark the
    block's stored snapshot does not see: models.RunsTableCache), and ``"snapshot"``: this read's
    snapshot, taken first (a block read after it may hold later writes too: storing it with this
    snapshot only ever marks it stale too early, never too late)."""
    from sqlalchemy import text

    snapshot = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar()
    rows = conn.execute(text(
        "SELECT c.block, c.data FROM runs_table_cache c WHERE c.block = ANY(:blocks) AND c.data IS NOT NULL "
        "AND c.snapshot IS NOT NULL AND NOT EXISTS (SELECT 1 FROM runs_table_cache_marks k WHERE k.block = c.block "
        "AND NOT pg_visible_in_snapshot(k.xid::text::xid8, c.snapshot::pg_snapshot))"), {"blocks": blocks}).all()
    state: dict[Any, tuple[Any, Any]] = {b: (None, data) for b, data in rows}
    state["snapshot"] = (snapshot, None)
    return state


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

    for kind in KINDS:
        old = kinds_old.get(kind, {})
        add = new[1].get(kind, {}) if new is not None else {}
        numeric = kind == "metric"
        kinds[kind] = {k: np.concatenate([part(old, k, keep, n_keep, numeric), part(add, k, None, n_new, numeric)])
                       for k in sorted(set(old) | set(add))}
    return d, kinds
