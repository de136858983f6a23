"""A step's cache key: what its result depends on, hashed.

``sha256`` over the step's kind, its resolved params (the outputs it consumes are inside them),
the content of the input files it reads (an import's files; a check's or a score's file), and the
step's code version (Modelyard's version and the kind; for a ``python`` step the source of its
function's module, for a ``shell`` step the command, which is in its params). A step whose key
equals the key of an earlier succeeded run of the same step is not run again: it reuses those
outputs (``cached``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from modelyard._version import __version__
from modelyard.core.pipelines.spec import Step

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _file_param(value: Any, folder: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    p = Path(value).expanduser()
    p = p if p.is_absolute() else folder / p
    return p if p.is_file() else None


def input_hashes(step: Step, params: dict[str, Any], folder: str | Path) -> dict[str, str]:
    """{path: sha256} of the files the step reads (their content, not their names or times)."""
    folder = Path(folder)
    files: list[Path] = []
    if step.kind == "import":
        from modelyard.core.pipelines.steps.data import input_files

        files = input_files(params.get("path") or "", folder)
    elif step.kind in ("check", "score"):
        for key in ("batch", "path", "dataset"):
            p = _file_param(params.get(key), folder)
            if p is not None:
                files.append(p)
    elif step.kind == "bundle" and params.get("signing_key"):
        p = _file_param(params["signing_key"], folder)
        if p is not None:
            files.append(p)
    return {str(p): file_sha256(p) for p in files}


def _module_source(function: str, dirs: list[Path]) -> str:
    """The sha256 of the source of ``function``'s module (looked for in ``dirs`` first), or ""."""
    module = str(function).partition(":")[0].strip()
    if not module:
        return ""
    rel = Path(*module.split("."))
    for d in dirs:
        for candidate in (d / rel.with_suffix(".py"), d / rel / "__init__.py"):
            if candidate.is_file():
                return file_sha256(candidate)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return ""
    origin = getattr(spec, "origin", None) if spec is not None else None
    return file_sha256(Path(origin)) if origin and Path(origin).is_file() else ""


def code_version(step: Step, params: dict[str, Any], folder: str | Path) -> str:
    if step.kind == "python":
        given = params.get("path")
        items = [given] if isinstance(given, str) else list(given or [])
        dirs = [(Path(folder) / p) if not Path(p).is_absolute() else Path(p) for p in items] or [Path(folder)]
        return f"python:{_module_source(str(params.get('function') or ''), dirs)}"
    return f"modelyard {__version__}:{step.kind}"


def cache_key(step: Step, params: dict[str, Any], folder: str | Path) -> str:
    """The step's cache key (see the module docstring)."""
    body = {"kind": step.kind, "params": params, "inputs": input_hashes(step, params, folder),
            "code": code_version(step, params, folder)}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
