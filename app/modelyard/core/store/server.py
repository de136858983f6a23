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
from typing import Any

from sqlalchemy import Engine, create_engine, text

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


def server_engine(url: str) -> Engine:
    """An engine for a store on a database server."""
    return create_engine(url, pool_pre_ping=True, json_serializer=dumps, json_deserializer=loads)


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
