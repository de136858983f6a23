"""What a training run records about itself and how the job reports: the environment facts
(python, packages, git), values cleaned for JSON, progress slices and warnings to the log.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from modelyard.core.experiments.training.trials import warning_line
from modelyard.core.jobs.runner import JobContext

PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "pyarrow", "threadpoolctl")


# =========================================================================== facts


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_facts(cwd: str | None) -> dict[str, Any] | None:
    """The git commit (and whether the tree has changes) of the folder ``cwd``, or None."""
    if not cwd or not os.path.isdir(cwd):
        return None

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, timeout=10,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None,
            "root": git("rev-parse", "--show-toplevel")}


def threads_to_use() -> int:
    """Cores a training job may use: all but one (the window keeps one)."""
    return max(1, (os.cpu_count() or 2) - 1)


def environment(cwd: str | None = None) -> dict[str, Any]:
    """Python, platform, package versions and git commit: the facts a result may depend on."""
    from modelyard._version import __version__

    return {"python": platform.python_version(), "python_implementation": platform.python_implementation(),
            "platform": platform.platform(), "system": platform.system(), "machine": platform.machine(),
            "packages": _package_versions(), "modelyard": __version__, "threads": threads_to_use(),
            "git": git_facts(cwd)}


# =========================================================================== JSON


def clean(value: Any) -> Any:
    """JSON-able plain values: numpy scalars and arrays to Python, NaN and infinities to None."""
    import numpy as np

    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return clean(value.item())
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except (TypeError, ValueError):
            pass
    return str(value)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(clean(obj), indent=1, allow_nan=False).encode()


# =========================================================================== progress


@contextlib.contextmanager
def _warnings_to_log(ctx: JobContext) -> Iterator[None]:
    """Log each distinct warning (e.g. a solver that did not converge) once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                text = warning_line(w)
                if text not in seen:
                    seen.add(text)
                    ctx.log(text)
