"""Writing a bundle: :func:`export_bundle` (see :mod:`modelyard.core.bundles` for the format)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import platform
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from modelyard.core.bundles import mlflow_files
from modelyard.core.bundles.format import (
    CARD_HTML_PATH,
    CARD_JSON_PATH,
    CONDA_PATH,
    EXAMPLE_PATH,
    FORMAT,
    FORMAT_VERSION,
    JOBLIB_PATH,
    MANIFEST,
    MANIFEST_DIGEST,
    MLMODEL_PATH,
    PROFILE_PATH,
    PYTHON_ENV_PATH,
    README_PATH,
    REQUIREMENTS_PATH,
    ROWS_PATH,
    SIGNATURE,
    SKOPS_PATH,
    SUFFIX,
    BundleError,
    hash_file,
    manifest_bytes,
)
from modelyard.core.bundles.signing import (
    KeySource,
    key_id,
    load_private_key,
    raw_public,
    sign_manifest,
)
from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.outputs import cannot_write
from modelyard.core.common.procs import current_user
from modelyard.core.registry import safety
from modelyard.core.store import Store, records
from modelyard.core.store import models as m

Progress = Callable[[float | None, str], Any]
ENTITY = "registered_model"
REPRO_PATH = "reproducibility.json"
INPUT_EXAMPLE_RUN_PATH = "model/input_example.json"


@dataclass(frozen=True)
class BundleInfo:
    """What :func:`export_bundle` wrote."""

    path: str
    sha256: str
    size: int
    ref: str
    model_version_id: int
    bundle_id: str
    created_at: str
    signed: bool
    key_id: str | None
    safe_load: bool  # the skops file loads without trusting anything beyond Modelyard's allow-list
    unsafe_types: list[str] = field(default_factory=list)
    has_profile: bool = False
    has_rows: bool = False
    mlflow: bool = False
    notes: list[str] = field(default_factory=list)  # what is missing and why (no profile, no skops...)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _noop(fraction: float | None, message: str) -> None:
    pass


def target_path(path: str | os.PathLike[str]) -> Path:
    """Where the bundle goes: ``path``, with ``.mybundle`` added when it has no extension."""
    p = Path(path).expanduser()
    if not p.suffix:
        p = p.with_name(p.name + SUFFIX)
    if p.is_dir():
        raise BundleError("output", f"{p} is a folder; give the bundle a file name (e.g. {p / ('model' + SUFFIX)}).")
    if not p.parent.is_dir():
        raise BundleError("output", f"The folder {p.parent} does not exist.", hint="Create it, or choose another place.")
    return p


def _refuse_existing(target: Path, force: bool) -> None:
    if not force and os.path.lexists(target):
        raise BundleError("output", f"{target} already exists; the bundle was not written.",
                          hint="Pass --force (force=True) to replace it, or choose another file name.")


# --------------------------------------------------------------------------- pieces


def _skops_dump(model: Any) -> tuple[bytes | None, str | None]:
    import skops.io as sio

    try:
        return sio.dumps(model), None
    except Exception as exc:  # noqa: BLE001 - skops cannot save some objects (lambdas, closures...)
        return None, f"{type(exc).__name__}: {exc}"


def example_input(example: dict[str, Any] | None, signature: dict[str, Any] | None) -> Any:
    """The model input (a DataFrame or an array) of a recorded example, typed as the signature says."""
    import numpy as np
    import pandas as pd

    if not isinstance(example, dict):
        return None
    if example.get("format") == "ndarray":
        dtype = None
        inputs = (signature or {}).get("inputs") or []
        if inputs and isinstance(inputs[0], dict) and inputs[0].get("dtype"):
            dtype = inputs[0]["dtype"]
        return np.asarray(example["rows"], dtype=dtype)
    frame = pd.DataFrame(example["rows"], columns=example["columns"])
    for col in (signature or {}).get("inputs") or []:
        name, dtype = col.get("name"), str(col.get("dtype") or "")
        if name not in frame.columns:
            continue
        try:
            if dtype.startswith(("datetime", "timestamp")):
                frame[name] = pd.to_datetime(frame[name], errors="coerce")
            elif dtype.startswith(("float", "int", "uint", "bool")) and not frame[name].isna().any():
                frame[name] = frame[name].astype(dtype)
            elif dtype.startswith("float"):
                frame[name] = frame[name].astype("float64")
        except (TypeError, ValueError):
            pass
    return frame


def _recorded_example(store: Store, info: Any) -> dict[str, Any] | None:
    """The version's example rows: its signature's, else its run's ``model/input_example.json``."""
    sig = info.signature if isinstance(info.signature, dict) else {}
    ex = sig.get("example")
    if isinstance(ex, dict) and isinstance(ex.get("columns"), list) and isinstance(ex.get("rows"), list):
        return {"format": "dataframe", "columns": ex["columns"], "rows": ex["rows"]}
    run_sha = _run_artifact(store, info.run_id, INPUT_EXAMPLE_RUN_PATH)
    doc = store.artifacts.read_json(run_sha, missing_ok=True)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        if doc.get("format") == "dataframe" and isinstance(doc.get("columns"), list):
            return {"format": "dataframe", "columns": doc["columns"], "rows": doc["data"]}
        if doc.get("format") == "ndarray":
            return {"format": "ndarray", "rows": doc["data"]}
    return None


def _predictions(model: Any, example: dict[str, Any] | None, signature: Any) -> list[Any] | None:
    if example is None:
        return None
    try:
        X = example_input(example, signature)
        out = model.predict(X)
        return json.loads(json.dumps(list(getattr(out, "tolist", lambda: list(out))()), default=str))
    except Exception:  # noqa: BLE001 - an example the model cannot score just leaves the check out
        return None


def _run_artifact(store: Store, run_uuid: str | None, path: str) -> str | None:
    if not run_uuid:
        return None
    with store.session() as s:
        return s.scalar(select(m.RunArtifact.sha256).join(m.Run, m.Run.id == m.RunArtifact.run_id)
                        .where(m.Run.uuid == run_uuid, m.RunArtifact.path == path))


def _model_card(store: Store, version_id: int) -> dict[str, Any] | None:
    try:
        from modelyard.core.registry import cards
    except ImportError:  # pragma: no cover - the cards module ships with Modelyard
        return None
    return cards.model_card(store, version_id)


def _card_html(card: dict[str, Any]) -> bytes | None:
    try:
        from modelyard.core.registry import cards
    except ImportError:  # pragma: no cover
        return None
    return cards.render_html(card).encode()


def _profile(store: Store, version_id: int) -> tuple[dict[str, Any] | None, str | None]:
    from modelyard.core.registry.reference import reference_for_version

    try:
        profile = reference_for_version(store, version_id)
    except ModelyardError as exc:
        return None, f"No reference profile: {exc.message}"
    if profile is None:
        return None, ("No reference profile: the training data of this version is not in this store and it "
                      "has no stored profile, so drift checks on the receiving side need a reference dataset.")
    return profile, None


def _rows(store: Store, version_id: int) -> tuple[bytes | None, int, str | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelyard.core.registry.reference import load_reference_data

    with store.session() as s:
        mv = s.get(m.ModelVersion, version_id)
        signature = dict(mv.signature or {}) if mv is not None else {}
    inputs = [str(c["name"]) for c in signature.get("inputs") or [] if isinstance(c, dict) and "name" in c]
    target = (signature.get("target") or {}).get("name")
    data = load_reference_data(store, version_id, columns=[*inputs, *([target] if target else [])] or None)
    if data is None:
        return None, 0, "The training rows were asked for, but this version's dataset is not in this store."
    cols = [c for c in dict.fromkeys([*inputs, *data.features, *([data.target] if data.target else [])])
            if c in data.frame.columns]
    table = pa.Table.from_pandas(data.frame[cols], preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue(), len(data.frame), None


def _model_facts(store: Store, info: Any) -> dict[str, Any]:
    with store.session() as s:
        stored = s.get(m.ModelVersion, info.id)
        card = dict(stored.card or {}) if stored is not None else {}
    return card


def _origin(info: Any, card: dict[str, Any], store_id: str | None) -> dict[str, Any]:
    bundle = card.get("bundle") if isinstance(card.get("bundle"), dict) else None
    if info.source == "bundle" and bundle and isinstance(bundle.get("origin"), dict):
        return dict(bundle["origin"])
    return {"store_id": store_id, "model_version_id": info.id, "ref": info.ref}


def _readme(info: Any, safe: bool, has_mlflow: bool) -> bytes:
    lines = [
        f"Modelyard bundle of {info.ref}",
        "",
        "Import it into a Modelyard store:   modelyard bundle import FILE",
        "Check it without importing:         modelyard bundle inspect FILE",
        "",
        "manifest.json lists every file with its sha256; manifest.sha256 is the manifest's own digest and",
        "manifest.sig (when present) an Ed25519 signature of manifest.json.",
        f"{SKOPS_PATH} loads without unpickling (skops); {JOBLIB_PATH} is the same model as joblib (a pickle:",
        "load it only if you trust where the file comes from).",
    ]
    if has_mlflow:
        lines += ["", "MLflow: unzip this file into a folder and load it with",
                  "    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true  mlflow.pyfunc.load_model(folder)",
                  "(requirements.txt lists the packages it needs)."]
    if not safe:
        lines += ["", "Note: this model uses types outside Modelyard's safe list: it loads only when trusted."]
    return ("\n".join(lines) + "\n").encode()


class _ZipWriter:
    """Writes members with fixed metadata and records each one's sha256 and size."""

    def __init__(self, fh: IO[bytes], when: dt.datetime) -> None:
        self.zf = zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.when = when.astimezone(dt.UTC).timetuple()[:6]
        self.files: dict[str, dict[str, Any]] = {}

    def _info(self, name: str) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name, date_time=self.when)
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.external_attr = 0o100644 << 16
        return zi

    def add_bytes(self, name: str, data: bytes, *, listed: bool = True) -> None:
        self.zf.writestr(self._info(name), data)
        if listed:
            self.files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def close(self) -> None:
        self.zf.close()


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, default=str) + "\n").encode()


# --------------------------------------------------------------------------- export


def export_bundle(store: Store, ref: str, path: str | os.PathLike[str], *, signing_key: KeySource | None = None,
                  include_rows: bool = False, force: bool = False, progress: Progress | None = None) -> BundleInfo:
    """Write the model version ``ref`` (``NAME@vN``, ``NAME@champion``...) as a bundle at ``path``.

    See :mod:`modelyard.core.bundles`. The file is written next to ``path`` under a temporary
    name and renamed into place in the same step that records the ``exported_as`` lineage edge
    and the ``export_bundle`` audit event, so a failed export leaves neither file nor record.
    An existing file at ``path`` is refused unless ``force``.
    """
    from modelyard._version import __version__
    from modelyard.core.registry import versions as registry

    report = progress or _noop
    info = registry.get_version(store, ref)
    if not info.model_sha256 or not store.artifacts.exists(info.model_sha256):
        raise BundleError("no_model", f"{info.ref} has no model file in the store, so there is nothing to export.",
                          hint="'modelyard store verify' checks the artifact files.")
    target = target_path(path)
    _refuse_existing(target, force)
    private = load_private_key(signing_key) if signing_key is not None else None
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    created_at = created.isoformat()
    store_id = store.meta().get("store_id")
    card = _model_facts(store, info)
    notes: list[str] = []

    report(0.05, f"Reading {info.ref}")
    from modelyard.core.registry.modelfiles import read_verified

    # the bundle ships these bytes, checked against the recorded sha256 (never the file read again)
    joblib_data = read_verified(store.artifacts.path(info.model_sha256), info.model_sha256, what=info.ref)
    model = registry.load_model(store, info.ref)
    report(0.2, "Saving the model with skops")
    skops_data, skops_error = _skops_dump(model)
    untrusted = safety.untrusted_types(skops_data) if skops_data is not None else []
    unsafe = safety.not_allowed(untrusted) if skops_data is not None else []
    safe = skops_data is not None and not unsafe
    if skops_data is None:
        notes.append(f"skops cannot save this model ({skops_error}); the bundle holds the joblib file only, "
                     "and importing it needs explicit trust.")
    elif unsafe:
        notes.append("The model uses types outside Modelyard's safe list (" + ", ".join(unsafe) + "); importing "
                     "it needs explicit trust.")

    report(0.35, "Profiling the training data")
    profile, profile_note = _profile(store, info.id)
    if profile_note:
        notes.append(profile_note)
    rows_data, n_rows, rows_note = (None, 0, None)
    if include_rows:
        report(0.5, "Reading the training rows")
        rows_data, n_rows, rows_note = _rows(store, info.id)
        if rows_note:
            notes.append(rows_note)

    report(0.6, "Writing the model card")
    card_doc = _model_card(store, info.id)
    example = _recorded_example(store, info)
    predictions = _predictions(model, example, info.signature)
    packages = mlflow_files.package_versions()
    needs_modelyard = any(t.startswith("modelyard.") for t in untrusted)
    reqs = mlflow_files.requirements(packages, needs_modelyard=needs_modelyard)
    repro = store.artifacts.read_json(_run_artifact(store, info.run_id, REPRO_PATH), missing_ok=True)
    if repro is None:
        repro = card.get("reproducibility")
    bundle_id = uuid.uuid4().hex
    lineage = {
        "run_id": info.run_id, "experiment": card.get("experiment"),
        "dataset_version_id": info.dataset_version_id if info.source != "bundle" else None,
        "split_id": info.split_id if info.source != "bundle" else None,
        "spec": card.get("spec"),
        "data": (card_doc or {}).get("data") if card_doc else card.get("data"),
        "imported_from": (card.get("bundle") or {}).get("source") if info.source == "bundle" else None,
    }
    manifest: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "bundle_id": bundle_id,
        "created_at": created_at, "created_by": current_user(), "created_with": f"modelyard {__version__}",
        "model": {"name": info.name, "version": info.version, "ref": info.ref, "description": info.description,
                  "stage": info.stage, "aliases": list(info.aliases), "source": info.source,
                  "created_at": info.created_at.isoformat(), "created_by": info.created_by,
                  "estimator": f"{type(model).__module__}.{type(model).__qualname__}"},
        "source": {"store_id": store_id, "model_version_id": info.id, "ref": info.ref,
                   "model_sha256": info.model_sha256},
        "origin": _origin(info, card, store_id),
        "signature": info.signature,
        "metrics": dict(info.metrics),
        "lineage": lineage,
        "card": {"params": (card_doc or {}).get("params", card.get("params")),
                 "slices": (card_doc or {}).get("slices", card.get("slices")),
                 "data": lineage["data"], "reproducibility": repro,
                 "notes": (card_doc or {}).get("notes", card.get("notes"))},
        "environment": {"python": platform.python_version(), "implementation": platform.python_implementation(),
                        "platform": platform.platform(), "packages": packages},
        "requirements": reqs,
        "model_files": {"joblib": JOBLIB_PATH, "skops": SKOPS_PATH if skops_data is not None else None,
                        "skops_error": skops_error, "skops_untrusted_types": untrusted, "unsafe_types": unsafe,
                        "safe_load": safe},
        "reference_profile": ({"path": PROFILE_PATH, "n_rows": profile.get("n_rows"),
                               "source": profile.get("source")} if profile is not None else None),
        "reference_profile_note": profile_note,
        "reference_rows": {"path": ROWS_PATH, "n_rows": n_rows} if rows_data is not None else None,
        "check": ({"input": example, "predictions": predictions} if predictions is not None else None),
        "mlflow": {"mlmodel": MLMODEL_PATH, "model_path": SKOPS_PATH} if skops_data is not None else None,
        "signed": private is not None,
    }

    report(0.7, f"Writing {target.name}")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise cannot_write(target, exc, what="the bundle") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            zw = _ZipWriter(fh, created)
            zw.add_bytes(JOBLIB_PATH, joblib_data)
            if skops_data is not None:
                zw.add_bytes(SKOPS_PATH, skops_data)
                mlmodel = mlflow_files.mlmodel(skops_path=SKOPS_PATH, trusted_types=untrusted, packages=packages,
                                               signature=info.signature, has_example=example is not None
                                               and example.get("format") == "dataframe",
                                               created_at=created_at, bundle_id=bundle_id, model_ref=info.ref)
                zw.add_bytes(MLMODEL_PATH, mlflow_files.yaml_bytes(mlmodel))
                zw.add_bytes(REQUIREMENTS_PATH, ("\n".join(reqs) + "\n").encode())
                zw.add_bytes(PYTHON_ENV_PATH, mlflow_files.yaml_bytes(mlflow_files.python_env()))
                zw.add_bytes(CONDA_PATH, mlflow_files.yaml_bytes(mlflow_files.conda_env(reqs)))
                if "saved_input_example_info" in mlmodel and example is not None:
                    zw.add_bytes(EXAMPLE_PATH, _json({"columns": example["columns"], "data": example["rows"]}))
            if profile is not None:
                zw.add_bytes(PROFILE_PATH, _json(profile))
            if rows_data is not None:
                zw.add_bytes(ROWS_PATH, rows_data)
            if card_doc is not None:
                zw.add_bytes(CARD_JSON_PATH, _json(card_doc))
                html = _card_html(card_doc)
                if html is not None:
                    zw.add_bytes(CARD_HTML_PATH, html)
            zw.add_bytes(README_PATH, _readme(info, safe, skops_data is not None))
            manifest["files"] = dict(sorted(zw.files.items()))
            raw = manifest_bytes(manifest)
            zw.add_bytes(MANIFEST, raw, listed=False)
            zw.add_bytes(MANIFEST_DIGEST, f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST}\n".encode(), listed=False)
            kid = None
            if private is not None:
                zw.add_bytes(SIGNATURE, sign_manifest(raw, private), listed=False)
                kid = key_id(raw_public(private.public_key()))
            zw.close()
            fh.flush()
            os.fsync(fh.fileno())
        report(0.95, "Recording the export")
        sha, size = hash_file(tmp)
        renamed = False
        try:
            with store.write() as s:
                model_row = s.get(m.RegisteredModel, info.model_id)
                records.link(s, "model_version", info.id, "bundle", sha, "exported_as",
                             {"path": str(target), "signed": private is not None,
                              "created_at": created_at, "bundle_id": bundle_id})
                records.audit(s, ENTITY, info.model_id, "export_bundle", from_value=info.ref, to_value=str(target),
                              details={"version": info.version, "bundle_sha256": sha, "path": str(target),
                                       "signed": private is not None, "key_id": kid})
                if model_row is not None:
                    model_row.updated_at = m.utcnow()
                s.flush()
                _refuse_existing(target, force)
                os.replace(tmp, target)
                renamed = True
        except BaseException:
            if renamed:
                target.unlink(missing_ok=True)
            raise
    except OSError as exc:
        if exc.filename not in (None, tmp_name, str(target)):  # e.g. reading the store's model file
            raise
        raise cannot_write(target, exc, what="the bundle") from None  # a full disk while writing...
    finally:
        tmp.unlink(missing_ok=True)
    return BundleInfo(path=str(target), sha256=sha, size=size, ref=info.ref, model_version_id=info.id,
                      bundle_id=bundle_id, created_at=created_at, signed=private is not None, key_id=kid,
                      safe_load=safe, unsafe_types=unsafe, has_profile=profile is not None,
                      has_rows=rows_data is not None, mlflow=skops_data is not None, notes=notes)
