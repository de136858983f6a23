"""Canary and shadow routes of a model server: a challenger version of the same model beside the
one served (the champion).

* **canary** (``modelyard serve churn@champion --canary challenger=10%``): that share of the
  requests is answered by the challenger. Which requests is decided by a counter, not a random
  draw: request *n* goes to the challenger when ``floor((n+1)·share)`` passes ``floor(n·share)``,
  so over any run of requests the challenger's share is exact to one request (10 % is every
  tenth request).
* **shadow** (``--shadow challenger``): every request is answered by the champion; after the
  answer is written the challenger scores the same input too, and both are logged (the
  prediction log's ``route``: ``champion`` and ``shadow``).

A :class:`Route` is immutable: the server holds one reference to it (``None``: no route), a
request reads that reference once at its start and keeps it, and a change — another share,
another challenger, the end of the canary — replaces the reference in one assignment, the new
challenger loaded before. So changing a route never fails a request in flight.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.common.errors import ModelyardError

CANARY = "canary"
SHADOW = "shadow"
_PPM = 1_000_000  # shares are kept in millionths, so the counter's arithmetic is exact


def parse_share(text: str | float) -> float:
    """``"10%"`` or ``"0.1"`` (a fraction) as 0.1; refuses what is not between 0 and 100 %."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip()
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", s)
        if m is None:
            raise ModelyardError(f"A share is a percentage such as 10% or a fraction such as 0.1, not {s!r}.")
        value = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
        if not m.group(2) and value > 1:
            raise ModelyardError(f"A share without % is a fraction from 0 to 1, not {s!r}; write {s}% for a "
                                 "percentage.")
    if not 0.0 <= value <= 1.0:
        raise ModelyardError(f"A share is from 0% to 100%, not {text!r}.")
    return value


def parse_canary(text: str) -> tuple[str, float]:
    """``"challenger=10%"`` as ``("challenger", 0.1)``."""
    who, sep, share = str(text).partition("=")
    if not sep or not who.strip():
        raise ModelyardError(f"--canary takes VERSION=SHARE, such as challenger=10% or v4=5%, not {text!r}.")
    return who.strip(), parse_share(share)


def challenger_ref(model_name: str, given: str) -> str:
    """The full reference of a challenger given as an alias (``challenger``), a version (``v4``)
    or ``NAME@...`` of the same model."""
    given = given.strip()
    if "@" in given:
        name, _, what = given.partition("@")
        if name != model_name:
            raise ModelyardError(f"The challenger {given!r} is a version of {name!r}, not of the served model "
                                 f"{model_name!r}; give an alias or vN of {model_name!r}.")
        given = what
    if not given:
        raise ModelyardError("Name the challenger as an alias (challenger) or a version (v4) of the served model.")
    return f"{model_name}@{given}"


@dataclass(frozen=True)
class Route:
    """A challenger beside the champion (see the module docstring). ``model`` is the challenger's
    :class:`~modelyard.core.serving.server.LoadedModel`; ``given`` is how it was named
    (``challenger``, ``v4``): an alias is followed as the champion's is."""

    mode: str  # CANARY or SHADOW
    given: str
    ref: str  # NAME@given
    model: Any  # LoadedModel
    share: float = 0.0  # canary only
    _ppm: int = field(default=0, repr=False)
    _counter: Any = field(default_factory=itertools.count, repr=False, compare=False)
    _shadow: list[int] = field(default_factory=lambda: [0, 0], repr=False, compare=False)  # scored, failed
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def canary(cls, given: str, ref: str, model: Any, share: float) -> Route:
        return cls(CANARY, given, ref, model, float(share), round(float(share) * _PPM))

    @classmethod
    def shadow(cls, given: str, ref: str, model: Any) -> Route:
        return cls(SHADOW, given, ref, model)

    def with_model(self, model: Any) -> Route:
        """The same route with another challenger version (its alias moved)."""
        if self.mode == CANARY:
            return Route.canary(self.given, self.ref, model, self.share)
        return Route.shadow(self.given, self.ref, model)

    @property
    def alias(self) -> str | None:
        """The challenger's alias when it was named by one (followed as it moves), else None."""
        return None if re.fullmatch(r"v\d+", self.given) else self.given

    def to_challenger(self) -> bool:
        """Whether the next request goes to the challenger (canary; thread-safe: ``next`` on an
        ``itertools.count`` is atomic)."""
        n = next(self._counter)
        return ((n + 1) * self._ppm) // _PPM > (n * self._ppm) // _PPM

    def shadow_done(self, ok: bool) -> None:
        with self._lock:
            self._shadow[0 if ok else 1] += 1

    @property
    def shadow_scored(self) -> int:
        return self._shadow[0]

    @property
    def shadow_errors(self) -> int:
        return self._shadow[1]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "challenger": self.given, "ref": self.ref,
                               "served": self.model.ref, "model_version_id": self.model.info.id}
        if self.mode == CANARY:
            out["share"] = self.share
        else:
            out["shadow_scored"] = self.shadow_scored
            out["shadow_errors"] = self.shadow_errors
        return out
