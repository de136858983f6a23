"""The files that make an unzipped bundle an MLflow model folder: ``MLmodel``, ``requirements.txt``,
``python_env.yaml``, ``conda.yaml`` and ``input_example.json``.

``mlflow.pyfunc.load_model(folder)`` reads ``MLmodel``; its ``python_function`` flavour names
``mlflow.sklearn`` as the loader and ``model_path`` (the skops file, relative to the folder); the
``sklearn`` flavour says ``serialization_format: skops`` and lists ``skops_trusted_types``, which
``mlflow.sklearn`` passes to ``skops.io.load``. (Checked against mlflow 3.x's
``mlflow/sklearn/__init__.py``: ``_load_pyfunc`` reads ``serialization_format`` and
``skops_trusted_types`` from the ``sklearn`` flavour and ``model_path`` from ``python_function``.)
Recent MLflow refuses to deserialise any model, skops included, unless
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``: set it for bundles you trust.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Any

PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "skops")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in (*PACKAGES, "modelyard", "cryptography", "pyarrow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if out.get("modelyard") is None:
        from modelyard._version import __version__

        out["modelyard"] = __version__
    return out


def requirements(packages: dict[str, str | None], *, needs_modelyard: bool) -> list[str]:
    """Pinned pip requirements to load the model (``modelyard`` when the model uses its functions)."""
    names = list(PACKAGES) + (["modelyard"] if needs_modelyard else [])
    return [f"{n}=={packages[n]}" if packages.get(n) else n for n in names]


_MLFLOW_TYPES = (("float32", "float"), ("float", "double"), ("int8", "integer"), ("int16", "integer"),
                 ("int32", "integer"), ("uint", "long"), ("int", "long"), ("bool", "boolean"),
                 ("datetime", "datetime"), ("timestamp", "datetime"), ("str", "string"), ("object", "string"),
                 ("category", "string"), ("large_string", "string"))


def _mlflow_type(dtype: Any) -> str | None:
    d = str(dtype or "").lower()
    for prefix, kind in _MLFLOW_TYPES:
        if d.startswith(prefix):
            return kind
    return None


def mlflow_signature(signature: dict[str, Any] | None) -> dict[str, Any] | None:
    """The MLflow signature (``{"inputs": json, "outputs": json, "params": None}``) of a Modelyard
    signature, or None when a column's type has no MLflow equivalent."""
    if not isinstance(signature, dict) or not isinstance(signature.get("inputs"), list) or not signature["inputs"]:
        return None
    inputs: list[dict[str, Any]] = []
    for col in signature["inputs"]:
        if not isinstance(col, dict):
            return None
        if "name" in col:
            kind = _mlflow_type(col.get("dtype"))
            if kind is None:
                return None
            inputs.append({"type": kind, "name": str(col["name"]), "required": True})
        elif isinstance(col.get("shape"), list) and col.get("dtype"):
            inputs.append({"type": "tensor", "tensor-spec": {"dtype": str(col["dtype"]), "shape": col["shape"]}})
        else:
            return None
    out: dict[str, Any] = {"inputs": json.dumps(inputs), "outputs": None, "params": None}
    target = signature.get("target") if isinstance(signature.get("target"), dict) else {}
    output = signature.get("output") if isinstance(signature.get("output"), dict) else {}
    kind = None
    if output.get("kind") == "number":
        kind = "double"
    elif output.get("kind") == "label":
        classes = target.get("classes") or []
        kind = "string" if classes and all(isinstance(c, str) for c in classes) else _mlflow_type(target.get("dtype"))
    if kind is not None:
        out["outputs"] = json.dumps([{"type": kind, "required": True}])
    return out


def example_document(signature: dict[str, Any] | None) -> dict[str, Any] | None:
    """``input_example.json`` (pandas 'split' orient) from a signature's example rows."""
    ex = (signature or {}).get("example") if isinstance(signature, dict) else None
    if not isinstance(ex, dict) or not isinstance(ex.get("columns"), list) or not isinstance(ex.get("rows"), list):
        return None
    return {"columns": ex["columns"], "data": ex["rows"]}


def mlmodel(*, skops_path: str, trusted_types: list[str], packages: dict[str, str | None],
            signature: dict[str, Any] | None, has_example: bool, created_at: str, bundle_id: str,
            model_ref: str) -> dict[str, Any]:
    """The ``MLmodel`` document (YAML-able dict)."""
    python = platform.python_version()
    doc: dict[str, Any] = {
        "artifact_path": None,
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": skops_path,
                "predict_fn": "predict",
                "python_version": python,
            },
            "sklearn": {
                "code": None,
                "pickled_model": skops_path,
                "serialization_format": "skops",
                "skops_trusted_types": list(trusted_types),
                "sklearn_version": packages.get("scikit-learn"),
            },
        },
        "model_uuid": bundle_id,
        "utc_time_created": created_at,
        "metadata": {"modelyard_model": model_ref, "modelyard_version": packages.get("modelyard")},
    }
    sig = mlflow_signature(signature)
    if sig is not None:
        doc["signature"] = sig
    if has_example and sig is not None and "name" in (signature or {}).get("inputs", [{}])[0]:
        doc["saved_input_example_info"] = {"artifact_path": "input_example.json", "type": "dataframe",
                                           "pandas_orient": "split"}
    return doc


def python_env() -> dict[str, Any]:
    return {"python": platform.python_version(), "build_dependencies": ["pip"], "dependencies": ["-r requirements.txt"]}


def conda_env(reqs: list[str]) -> dict[str, Any]:
    return {"name": "mlflow-env", "channels": ["conda-forge"],
            "dependencies": [f"python={platform.python_version()}", "pip", {"pip": list(reqs)}]}


def yaml_bytes(doc: dict[str, Any]) -> bytes:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True).encode()
