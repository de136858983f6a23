"""What a store on a database server (PostgreSQL) needs beyond SQLite: its engine, JSON that
carries NaN and infinities, and advisory locks where SQLite's one writer kept writes apart.

SQLite keeps JSON as text, so Python's ``json`` writes ``NaN`` and ``Infinity`` into it and reads
them back. PostgreSQL's ``json`` type refuses those tokens (a model version's metrics from a
bundle may hold them), so on a server a non-finite float is written as ``{"$float": "NaN"}``
(or ``"Infinity"``, ``"-Infinity"``) and read back as the float.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

_FLOAT_KEY = "$float"
_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_KEY: "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """JSON text PostgreSQL accepts: non-finite floats as ``{"$float": ...}``."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere (rare): walk the value
        return json.dumps(_encode(value), allow_nan=False)


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_KEY in obj and obj[_FLOAT_KEY] in _NAMES:
        return _NAMES[obj[_FLOAT_KEY]]
    return obj


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode)


PING_AFTER_IDLE_S = 2.0  # a pooled connection unused this long is tested before it is handed out


def server_engine(url: str) -> Engine:
    """An engine for a store on a database server.

    A pooled connection is pinged only when it sat unused for :data:`PING_AFTER_IDLE_S` (a server
    restart or a dropped connection while the app was idle is still caught before use, and the
    dead connection replaced at once), not at every checkout as ``pool_pre_ping`` does: that is
    one round trip fewer per transaction, and a small write is bound by round trips on a server
    (tests/benchmarks/team_store.py). A connection lost while in use fails that statement;
    SQLAlchemy then renews the whole pool.
    """
    engine = create_engine(url, json_serializer=dumps, json_deserializer=loads)
    event.listen(engine.pool, "checkin", _stamp_checkin)
    dialect = engine.dialect

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        _ping_if_idle(dialect, dbapi_connection, record)

    event.listen(engine.pool, "checkout", ping_if_idle)
    return engine


_CHECKED_IN = "modelyard_checked_in"


def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any) -> None:
    since = record.info.get(_CHECKED_IN)
    if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
        return
    from sqlalchemy.exc import DisconnectionError

    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as exc:  # noqa: BLE001 - any failure: the pool connects anew
        raise DisconnectionError(str(exc)) from exc
    if not alive:
        raise DisconnectionError("the server did not answer")


def xact_lock(conn: Any, *key: str, wait: bool = True) -> bool:
    """Hold a lock named ``key`` until the transaction of ``conn`` (a Connection or a Session) ends.

    SQLite needs none: a write transaction (``BEGIN IMMEDIATE``) holds the database's one write
    lock, so writers already run one at a time (True). On PostgreSQL writers run side by side, so
    a read-then-write that must not interleave (the next version number of a model, an artifact
    file gc may remove) takes ``pg_advisory_xact_lock`` on a 64-bit hash of ``key``; a waiter
    then reads what the holder committed (READ COMMITTED). ``wait=False`` answers False at once
    when another transaction holds it.
    """
    from sqlalchemy.orm import Session

    if isinstance(conn, Session):
        conn = conn.connection()
    if conn.dialect.name != "postgresql":
        return True
    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
    params = {"k": int.from_bytes(digest, "big", signed=True)}
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), params)
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), params).scalar())
