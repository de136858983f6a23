"""Serving registered models over HTTP (MLflow's scoring protocol).

* :mod:`.server` — :class:`~modelyard.core.serving.server.ModelServer`: the HTTP server in this
  process (threads), with the watcher that swaps models when an alias moves;
* :mod:`.process` — :class:`~modelyard.core.serving.process.ServerProcess`: ``modelyard serve``
  in a child process, for the window (which must never wait on a model) and for tests;
* :mod:`.payloads` — the request formats; :mod:`.fastpath` — the quick path through a fitted
  pipeline for small requests.

Importing this package loads only the standard library: the window imports
:class:`ServerProcess` on its main thread. ``ModelServer`` (which needs the store, numpy and
scikit-learn) is imported on first use of the name.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.serving.process import ServerProcess

__all__ = ["ModelServer", "ServerProcess"]


def __getattr__(name: str) -> Any:
    if name == "ModelServer":
        from modelyard.core.serving.server import ModelServer

        return ModelServer
    raise AttributeError(name)
