"""References in step params: ``${params.<name>}`` and ``${steps.<step>.outputs.<key>}``.

A value that is exactly one reference becomes the referenced value with its type (a number stays
a number, a list a list); a reference inside longer text is replaced by its text. ``$${`` writes a
literal ``${``. Further dotted parts pick inside a mapping (``${steps.train.outputs.metrics.f1}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_REF = re.compile(r"(?<!\$)\$\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Ref:
    text: str  # what was inside ${...}
    scope: str  # "params" | "steps" | "" (not understood)
    name: str  # the parameter or the step
    key: str | None  # a step output's key (steps only)
    path: tuple[str, ...]  # further parts
    offset: int  # where "${" starts in the string it came from

    @property
    def problem(self) -> str | None:
        """Why the reference is malformed, or None."""
        if self.scope == "params":
            return None if self.name else f"'${{{self.text}}}' names no parameter; write ${{params.<name>}}."
        if self.scope == "steps":
            if not self.name or self.key is None:
                return (f"'${{{self.text}}}' must be ${{steps.<step>.outputs.<key>}}, naming the step and the "
                        "output it uses.")
            return None
        return (f"'${{{self.text}}}' is not a reference Modelyard knows; use ${{params.<name>}} or "
                "${steps.<step>.outputs.<key>} (write $${ for a literal ${).")


def parse(text: str, offset: int = 0) -> Ref:
    parts = [p.strip() for p in text.strip().split(".")]
    if parts and parts[0] == "params":
        return Ref(text, "params", parts[1] if len(parts) > 1 else "", None, tuple(parts[2:]), offset)
    if parts and parts[0] == "steps":
        name = parts[1] if len(parts) > 1 else ""
        if len(parts) >= 4 and parts[2] == "outputs" and parts[3]:
            return Ref(text, "steps", name, parts[3], tuple(parts[4:]), offset)
        return Ref(text, "steps", name, None, (), offset)
    return Ref(text, "", "", None, (), offset)


def find(value: Any) -> Iterator[Ref]:
    """Every reference in ``value`` (strings, and inside lists and mappings, keys excluded)."""
    if isinstance(value, str):
        for mt in _REF.finditer(value):
            yield parse(mt.group(1), mt.start())
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from find(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from find(v)


class UnresolvedReference(LookupError):
    """A reference to something a run does not have (a missing output key, say)."""


def _lookup(ref: Ref, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    if ref.problem:
        raise UnresolvedReference(ref.problem)
    if ref.scope == "params":
        if ref.name not in params:
            raise UnresolvedReference(f"the pipeline has no parameter {ref.name!r}")
        value = params[ref.name]
    else:
        if ref.name not in outputs:
            raise UnresolvedReference(f"step {ref.name!r} has no outputs (it did not run)")
        step_out = outputs[ref.name] or {}
        if ref.key not in step_out:
            known = ", ".join(sorted(step_out)) or "none"
            raise UnresolvedReference(f"step {ref.name!r} has no output {ref.key!r} (its outputs: {known})")
        value = step_out[ref.key]
    for part in ref.path:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise UnresolvedReference(f"'${{{ref.text}}}': there is no {part!r} in {json.dumps(value, default=str)[:80]}")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def resolve(value: Any, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """``value`` with every reference replaced (see the module docstring). Raises
    :class:`UnresolvedReference` naming what is missing."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(parse(whole.group(1)), params, outputs)
        text = _REF.sub(lambda mt: _as_text(_lookup(parse(mt.group(1), mt.start()), params, outputs)), value)
        return text.replace("$${", "${")
    if isinstance(value, Mapping):
        return {k: resolve(v, params, outputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, params, outputs) for v in value]
    return value


def is_name(text: str) -> bool:
    """A step or parameter name: letters, digits, ``_`` and ``-``, not starting with a digit."""
    return bool(_NAME.match(text))
