"""What each step kind does: one handler per kind of :data:`~modelyard.core.pipelines.spec.STEP_KINDS`.

A handler is ``handle(sc: StepContext, params: dict) -> StepResult`` (see :mod:`.base`); the
modules are imported on first use, so listing the kinds loads nothing heavy.

* :mod:`.data` — ``import`` (a file, a glob or a folder -> one dataset version), ``split``
* :mod:`.models` — ``train``, ``gate``, ``register``, ``bundle``, ``retrain``
* :mod:`.ops` — ``score``, ``check``, ``serve``
* :mod:`.escape` — ``python``, ``shell``
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

HANDLERS: dict[str, str] = {
    "import": "data:do_import",
    "split": "data:do_split",
    "train": "models:do_train",
    "gate": "models:do_gate",
    "register": "models:do_register",
    "bundle": "models:do_bundle",
    "retrain": "models:do_retrain",
    "score": "ops:do_score",
    "check": "ops:do_check",
    "serve": "ops:do_serve",
    "python": "escape:do_python",
    "shell": "escape:do_shell",
}


def handler(kind: str) -> Callable[..., Any]:
    """The handler of step kind ``kind`` (KeyError for a kind validation would have refused)."""
    module, _, name = HANDLERS[kind].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
