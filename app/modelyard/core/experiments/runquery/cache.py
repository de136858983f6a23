"""The runs table's block cache: columnar snapshots of 4,096 runs each in ``runs_table_cache``
(see ``models.RunsTableCache``: kept valid by triggers, on SQLite and on PostgreSQL), encoded
without pickle, stored by reads only when no write touched the block since."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from modelyard.core.store import Store

# =========================================================================== the block cache

CACHE_SAVE_BUSY_MS = 250  # a read stores the blocks it built only if the write lock is free this soon
_BLOCK_MAGIC = b"MYRTC2\n"  # 2: with the folds of cross-validation metrics (and their mean)
_BLOCK_INTS = ("pk", "experiment_id", "parent")
_BLOCK_TIMES = ("start", "end")
_BLOCK_TEXT_KINDS = ("param", "tag", "fold")  # per-key text columns (see loader.KINDS)
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
    for kind in _BLOCK_TEXT_KINDS:
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
        for kind in _BLOCK_TEXT_KINDS:
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
    for kind in ("metric", *_BLOCK_TEXT_KINDS):
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
    (SQLite: its generation is unchanged; PostgreSQL: :func:`_pg_save_blocks`). Best effort: skipped when the write lock is not free within
    ``CACHE_SAVE_BUSY_MS`` or the database is read-only. Returns how many were stored."""
    from sqlalchemy import and_, update
    from sqlalchemy.dialects.sqlite import insert
    from sqlalchemy.exc import DBAPIError

    from modelyard.core.store import models as m

    if not blocks or store.in_write():
        return 0
    if store.engine.dialect.name != "postgresql":
        blocks = [item for item in blocks if item[2] is not None]  # PostgreSQL's "prune only" items
    if store.engine.dialect.name == "postgresql":
        return _pg_save_blocks(store, blocks)
    if not store.is_sqlite:
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


# PostgreSQL (models.RunsTableCache): store a block with the snapshot it was read in unless a mark
# that snapshot does not see exists already (it would be stale at once), and only over a stored
# snapshot this one sees all of (the marks it saw were removed); then remove the marks it sees.
_PG_SAVE = """
WITH saved AS (
  INSERT INTO runs_table_cache AS c (block, generation, data, snapshot)
  SELECT %(block)s::integer, 0, %(data)s::bytea, %(snapshot)s::text
  WHERE NOT EXISTS (SELECT 1 FROM runs_table_cache_marks k WHERE k.block = %(block)s
                    AND NOT pg_visible_in_snapshot(k.xid::text::xid8, %(snapshot)s::text::pg_snapshot))
  ON CONFLICT (block) DO UPDATE SET data = excluded.data, snapshot = excluded.snapshot
  WHERE c.snapshot IS NULL
     OR pg_snapshot_xmin(excluded.snapshot::pg_snapshot) >= pg_snapshot_xmax(c.snapshot::pg_snapshot)
  RETURNING block),
pruned AS (
  DELETE FROM runs_table_cache_marks k USING saved WHERE k.block = saved.block
  AND pg_visible_in_snapshot(k.xid::text::xid8, %(snapshot)s::text::pg_snapshot))
SELECT count(*) FROM saved"""


def _pg_save_blocks(store: Store, blocks: list[tuple[int, int | None, bytes]]) -> int:
    """PostgreSQL's :func:`_save_blocks`: each item's second value is the read's snapshot
    (``pg_current_snapshot()`` as text); an item with no data (a block holding a running run)
    stores none but still removes the marks the snapshot sees, so a block written to for days
    does not gather them until its runs end. No writer ever waits for this: it touches only cache
    rows and marks of blocks a writer has left (a writer only adds marks)."""
    from sqlalchemy.exc import DBAPIError

    saved = 0
    try:
        with store.engine.connect() as conn:
            raw = conn.connection.driver_connection
            with conn.begin():
                raw.execute(f"SET LOCAL lock_timeout = {int(CACHE_SAVE_BUSY_MS)}")
                for block, snapshot, blob in blocks:
                    n = raw.execute(_PG_SAVE, {"block": block, "data": blob, "snapshot": snapshot}).fetchone()[0]
                    saved += n if blob is not None else 0
    except DBAPIError:
        return 0
    except Exception as exc:  # noqa: BLE001 - psycopg's own errors (raw.execute): permission, lock timeout
        import psycopg

        if isinstance(exc, psycopg.Error):
            return 0
        raise
    return saved
