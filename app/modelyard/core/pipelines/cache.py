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


_SEEN: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, in this process
_SEEN_MAX = 4096


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes (remembered in this process while its size and time stay:
    an agent running a pipeline every few minutes does not read a large file again each time)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _SEEN:
        return _SEEN[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    _SEEN[key] = h.hexdigest()
    return _SEEN[key]


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


def still_there(step: Step, outputs: dict[str, Any]) -> bool:
    """Whether the files an earlier run's outputs name are still there (a bundle, a predictions
    file): a step whose files were removed runs again rather than reuse outputs that lie."""
    if step.kind in ("bundle", "score") and outputs.get("path"):
        return Path(outputs["path"]).is_file()
    if step.kind == "python":
        return all(Path(f.get("path") or "").is_file() for f in outputs.get("files") or [])
    return True


#: the param naming a model version, per kind: an alias or "latest" may point elsewhere by the next run
_MODEL_REFS = {"check": "model", "score": "model", "bundle": "ref", "serve": "ref"}


def registry_state(store: Any, step: Step, params: dict[str, Any]) -> dict[str, Any]:
    """What in the registry a step's result depends on beyond its params: the version a model
    reference resolves to now (``churn@champion`` moves), and for a gate the model's gates and its
    champion. Empty for other kinds, or when the reference resolves to nothing (the step says why)."""
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.registry import versions as registry

    try:
        if step.kind in _MODEL_REFS and isinstance(params.get(_MODEL_REFS[step.kind]), str):
            return {"version": registry.get_version(store, params[_MODEL_REFS[step.kind]]).id}
        if step.kind == "gate" and isinstance(params.get("model"), str):
            model = registry.get_model(store, registry.parse_ref(params["model"])[0])
            given = params.get("gates")
            gates = given if isinstance(given, dict) else model.gates or {}
            state: dict[str, Any] = {} if isinstance(given, dict) else {"gates": model.gates}
            if gates.get("beat_champion"):  # only then does the champion matter
                state["champion"] = model.aliases.get(registry.CHAMPION)
            return state
    except ModelyardError:
        return {}
    return {}


def cache_key(step: Step, params: dict[str, Any], folder: str | Path, store: Any = None) -> str:
    """The step's cache key (see the module docstring); with ``store``, also what the registry
    holds for it now (:func:`registry_state`)."""
    body = {"kind": step.kind, "params": params, "inputs": input_hashes(step, params, folder),
            "code": code_version(step, params, folder),
            "registry": registry_state(store, step, params) if store is not None else {}}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
