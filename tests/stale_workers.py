"""Child-process functions of tests/core/registry/test_stale_edits.py (spawned processes import them by name).

Each reports ``("ok", member, details)`` or ``("error", member, traceback)`` on ``queue``.
"""

from __future__ import annotations

import os
import traceback
from typing import Any


def move_champion(root: str, db_url: str | None, member: str, refs: list[str], expected: int | None, go: Any,
                  queue: Any) -> None:
    """As ``member``, point champion at each of ``refs`` in turn (from revision ``expected`` when
    given), starting when ``go`` is set; report each move's outcome."""
    try:
        os.environ["MODELYARD_USER"] = member
        from modelyard.core.common.errors import StaleEditError
        from modelyard.core.registry import versions as registry
        from modelyard.core.store import Store

        outcomes: list[dict[str, Any]] = []
        with Store.open(root, db_url=db_url) as store:
            go.wait(30)
            for ref in refs:
                try:
                    info = registry.set_alias(store, ref, "champion", comment=f"{member}: {ref}",
                                              expected_revision=expected)
                    outcomes.append({"ref": ref, "moved": True, "revision": info.model_revision})
                except StaleEditError as exc:
                    outcomes.append({"ref": ref, "moved": False, "message": exc.message, "who": exc.who})
        queue.put(("ok", member, outcomes))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put(("error", member, traceback.format_exc()))


def move_alias_later(root: str, db_url: str | None, member: str, ref: str, alias: str, delay_s: float,
                     queue: Any) -> None:
    """As ``member`` (another process, another member), point ``alias`` at ``ref`` after ``delay_s``."""
    try:
        import time

        os.environ["MODELYARD_USER"] = member
        from modelyard.core.registry import versions as registry
        from modelyard.core.store import Store

        with Store.open(root, db_url=db_url) as store:
            time.sleep(delay_s)
            info = registry.set_alias(store, ref, alias, comment=f"{member} moves {alias}")
        queue.put(("ok", member, {"ref": info.ref, "revision": info.model_revision}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put(("error", member, traceback.format_exc()))
