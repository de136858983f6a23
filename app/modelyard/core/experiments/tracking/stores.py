"""Which store a tracking call writes to: ``store=`` as given, or opened once per process."""

from __future__ import annotations

import os
import threading

from modelyard.core.store import Store

# =========================================================================== stores

_stores: dict[tuple[str, str | None], Store] = {}
_stores_pid = os.getpid()
_stores_lock = threading.Lock()


def _store(store: Store | str | os.PathLike[str] | None) -> Store:
    """``store`` itself, or the store at a path / the default store (opened once per process)."""
    global _stores_pid
    if isinstance(store, Store):
        return store
    from modelyard.core.common.paths import DB_URL_ENV, STORE_ENV, resolve_store_dir

    root = resolve_store_dir(store)
    db_url = os.environ.get(DB_URL_ENV) or None
    key = (str(root), db_url)
    with _stores_lock:
        if _stores_pid != os.getpid():  # a forked child must not share the parent's connections
            _stores.clear()
            _stores_pid = os.getpid()
        opened = _stores.get(key)
        if opened is None:
            # Only the platform's default store is created on first use; a folder or database
            # named by store=, MODELYARD_STORE or MODELYARD_DB_URL must already be a store (as in the CLI).
            default = store is None and not os.environ.get(STORE_ENV) and db_url is None
            opened = _stores[key] = Store.open(root, db_url=db_url, create=default)
        return opened
