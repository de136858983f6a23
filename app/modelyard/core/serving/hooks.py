"""What a request does beside scoring, for :class:`~modelyard.core.serving.server.ModelServer`:
the feature lookup before validation (hybrid serving), and after the answer is written the
prediction log and the shadow challenger's scoring. Nothing here runs unless the server was
given a lookup, a prediction log or a shadow route.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from modelyard.core.serving.inputs import InputError

if TYPE_CHECKING:
    from modelyard.core.serving.routing import Route
    from modelyard.core.serving.server import LoadedModel, ModelServer

log = logging.getLogger("modelyard.serving")


def enrich(server: ModelServer, data: Any) -> Any:
    """The request's rows with the lookup table's columns joined by its key (columns stay
    columns: no DataFrame is made for a JSON request). A request without the key column, or
    with a key the table does not hold, is a 400 naming the key (the lookup raises an
    ``InputError`` whose ``fields`` is the key column)."""
    lookup = server.lookup
    if isinstance(data, dict):
        return lookup.enrich_columns(data)  # type: ignore[union-attr]
    if hasattr(data, "columns") and hasattr(data, "index"):  # a DataFrame (CSV, Parquet)
        return lookup.enrich(data)  # type: ignore[union-attr]
    key = lookup.key  # type: ignore[union-attr]
    raise InputError(f"The request needs the key column '{key}' by name: this server looks up features by it "
                     f"in {lookup.ref}; send dataframe_split with 'columns', or records.",  # type: ignore[union-attr]
                     fields=[key])


def log_request(server: ModelServer, plog: Any, served: LoadedModel, route: str, v: Any, values: Any,
                latency_s: float, status: int, keys: Any, at: float | None = None) -> None:
    """Hand one answered request to the prediction log: its validated columns (the model's, in
    order; None for a refused request) and output as they are, no copies (a queue put; never
    raises). ``at``: when the request arrived (the champion's and the shadow's answers to one
    request carry the same, so monitoring pairs them)."""
    try:
        plog.submit(inputs=v.columns if v is not None else None, outputs=values,
                    version_id=served.info.id, version_ref=served.ref, latency_s=latency_s, status=status,
                    route=route, keys=keys if v is not None else None, at=at)
    except Exception:  # the log must never fail a request
        log.exception("could not hand a request to the prediction log")


def shadow_score(server: ModelServer, route: Route, data: Any, method: str, keys: Any,
                 at: float | None = None) -> None:
    """Score the request's input with the shadow challenger (after the champion's answer is
    written) and log it with route ``shadow``; a failure is counted, never answered."""
    t0 = time.perf_counter()
    challenger = route.model
    try:
        v = challenger.predictor.validate(data)
        values = challenger.predict(v, method)
    except Exception as exc:  # noqa: BLE001 - the champion answered; the challenger's failure is counted
        route.shadow_done(False)
        log.debug("the shadow %s failed: %s", challenger.ref, exc)
        if server.prediction_log is not None:
            log_request(server, server.prediction_log, challenger, "shadow", None, None,
                        time.perf_counter() - t0, 400 if hasattr(exc, "message") else 500, keys, at)
        return
    route.shadow_done(True)
    if server.prediction_log is not None:
        log_request(server, server.prediction_log, challenger, "shadow", v, values, time.perf_counter() - t0,
                    200, keys, at)
