"""Which types a bundle's skops file may contain and still be loaded without explicit trust.

skops (:mod:`skops.io`) loads a model without unpickling: it rebuilds objects from a schema and
refuses any type that is not trusted. It trusts primitives, containers, numpy arrays and dtypes
and scikit-learn's public estimators by default; :func:`skops.io.get_untrusted_types` lists
everything else a file names. Modelyard then trusts, on top of skops' defaults:

- **classes** defined in ``sklearn``, ``numpy`` or ``scipy.sparse`` (fitted trees, histogram
  predictors, loss objects, sparse matrices...). A class is only constructed and given its state;
  none of these run code from the file;
- **numpy ufuncs** (``numpy.log1p``...), and functions in ``sklearn.metrics`` and
  ``sklearn.feature_selection`` (score and distance functions an estimator calls with its data);
- the transform functions of Modelyard's own preprocessing
  (:mod:`modelyard.core.experiments.training.preprocess`), which every model trained by Modelyard uses;
- ``collections.OrderedDict``.

Resolving a name imports a module only when its top package is one of these libraries (already
installed here), never a module the file names otherwise. Private test helpers
(``*.tests``, ``*._testing``), ``sklearn.datasets`` (functions that download and write files),
``sklearn.externals``, ``numpy.memmap`` and numpy's file functions are never trusted.
Anything else (a custom class or function, ``functools.partial``, ``builtins.eval``) makes the
model *unpickle-only*: :func:`modelyard.core.bundles.import_bundle` refuses it unless the user
trusts the bundle.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

SAFE_NAMES = frozenset({
    "modelyard.core.experiments.training.preprocess.to_float",
    "modelyard.core.experiments.training.preprocess.to_category_text",
    "modelyard.core.experiments.training.preprocess.datetime_parts",
    "modelyard.core.experiments.training.preprocess.datetime_part_names",
    "collections.OrderedDict",
})
CLASS_PACKAGES = ("sklearn.", "numpy.", "scipy.sparse.")
FUNCTION_PACKAGES = ("sklearn.metrics.", "sklearn.feature_selection.")
DENIED_PARTS = (".tests.", "._testing.", ".testing.", "sklearn.datasets.", "sklearn.externals.", "numpy.f2py.",
                "numpy.distutils.", "numpy.ctypeslib.", "numpy.lib.npyio.", "numpy.lib._npyio_impl.")
DENIED_NAMES = frozenset({"numpy.memmap", "numpy.core.memmap.memmap", "numpy._core.memmap.memmap",
                          "numpy.load", "numpy.save", "numpy.savez", "numpy.fromfile", "numpy.loadtxt",
                          "numpy.savetxt", "numpy.genfromtxt", "numpy.DataSource"})


def _resolve(name: str) -> Any:
    """The object a dotted ``module.attr`` name points at, importing only the module part."""
    module_name, _, attr = name.rpartition(".")
    while module_name:
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attr = f"{head}.{attr}"
            continue
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    raise LookupError(name)


def is_allowed(type_name: str) -> bool:
    """True when ``type_name`` (as skops names it) may be loaded without explicit trust."""
    name = str(type_name)
    if name in SAFE_NAMES:
        return True
    if name in DENIED_NAMES or any(part in f".{name}." for part in DENIED_PARTS):
        return False
    if not name.startswith(CLASS_PACKAGES + FUNCTION_PACKAGES):
        return False
    try:
        obj = _resolve(name)
    except (LookupError, AttributeError, ImportError, ValueError):
        return False
    if isinstance(obj, type):
        return "memmap" not in obj.__name__.lower()
    import numpy as np

    if isinstance(obj, np.ufunc):
        return True
    return callable(obj) and name.startswith(FUNCTION_PACKAGES)


def not_allowed(type_names: Iterable[str]) -> list[str]:
    """The names skops does not trust that Modelyard does not trust either, sorted."""
    return sorted({str(t) for t in type_names if not is_allowed(str(t))})


def untrusted_types(source: Any) -> list[str]:
    """skops' untrusted type names of a skops file (a path or a binary file object)."""
    import skops.io as sio

    if isinstance(source, bytes):
        return sorted(sio.get_untrusted_types(data=source))
    return sorted(sio.get_untrusted_types(file=source))
